"""Secret commands: the value goes in and comes out only where asked for."""

from __future__ import annotations

import base64
import re

VALUE = b"s3cr3t-ceph-key"
B64 = base64.b64encode(VALUE).decode()


def _define(cli, write, xmls) -> str:
    result = cli("secret-define", write("s.xml", xmls.secret))
    assert result.code == 0
    match = re.fullmatch(r"Secret ([0-9a-f-]{36}) created\n\n", result.out)
    assert match, result.out
    return match.group(1)


def test_secret_define_set_get(cli, write, xmls):
    uuid = _define(cli, write, xmls)
    listing = cli("secret-list").out
    assert listing.splitlines()[0].split() == ["UUID", "Usage"]
    assert f" {uuid}   ceph client.admin" in listing

    result = cli("secret-set-value", uuid, "--base64", B64)
    assert (result.code, result.out, result.err) == (0, "Secret value set\n\n", "")
    assert cli("secret-get-value", uuid).out == f"{B64}\n\n"

    others = [cli("secret-dumpxml", uuid), cli("secret-list"), cli("secret-list", "--json")]
    for result in others:
        assert B64 not in result.out and VALUE.decode() not in result.out

    assert cli("secret-undefine", uuid).out == f"Secret {uuid} deleted\n\n"
    assert uuid not in cli("secret-list").out


def test_secret_value_from_file(cli, write, xmls):
    uuid = _define(cli, write, xmls)
    assert cli("secret-set-value", uuid, "--file", write("v.b64", B64 + "\n")).code == 0
    assert cli("secret-get-value", uuid).out == f"{B64}\n\n"
    plain = write("v.raw", "raw value")
    assert cli("secret-set-value", uuid, "--file", plain, "--plain").code == 0
    assert cli("secret-get-value", uuid).out == (
        base64.b64encode(b"raw value").decode() + "\n\n")


def test_bad_base64_never_echoes_value(cli, write, xmls):
    uuid = _define(cli, write, xmls)
    result = cli("secret-set-value", uuid, "--base64", "not*base64!")
    assert result.code == 1
    assert result.err == "error: Invalid base64 data\n"


def test_secret_set_value_needs_a_source(cli, write, xmls):
    uuid = _define(cli, write, xmls)
    assert cli("secret-set-value", uuid).code == 2


def test_secret_interactive_reads_without_echo(cli, write, xmls, monkeypatch):
    uuid = _define(cli, write, xmls)
    monkeypatch.setattr("getpass.getpass", lambda prompt: "typed")
    result = cli("secret-set-value", uuid, "--interactive")
    assert result.code == 0 and "typed" not in result.out + result.err
    assert cli("secret-get-value", uuid).out == base64.b64encode(b"typed").decode() + "\n\n"


def test_readonly_cannot_read_or_set_value(cli, write, xmls):
    uuid = _define(cli, write, xmls)
    cli("secret-set-value", uuid, "--base64", B64)
    result = cli("-r", "secret-get-value", uuid)
    assert result.code == 1 and result.out == ""
    assert result.err.startswith("error: read-only connection: ")
    result = cli("-r", "secret-set-value", uuid, "--base64", base64.b64encode(b"x").decode())
    assert result.code == 1
    assert cli("secret-get-value", uuid).out == f"{B64}\n\n"


def test_unknown_secret(cli):
    result = cli("secret-get-value", "00000000-0000-0000-0000-000000000000")
    assert result.code == 1 and result.err.startswith("error: failed to get secret")
