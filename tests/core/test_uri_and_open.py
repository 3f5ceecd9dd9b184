"""Opening connections by URI."""

from __future__ import annotations

import pytest

import hvmon
from hvmon.core.uri import parse_uri


def test_parse_uri_parts():
    u = parse_uri("qemu+tls://host.example:16514/system?socket=/x&no_verify=1")
    assert (u.driver, u.transport, u.host, u.port, u.path) == (
        "qemu", "tls", "host.example", 16514, "/system")
    assert u.query == {"socket": "/x", "no_verify": "1"}
    assert parse_uri("test:///default").is_local


@pytest.mark.parametrize("uri", ["nonsense", "bogus:///x", "test+tcp://h/default",
                                 "test://host:notaport/default"])
def test_unknown_or_bad_uris_give_one_line_no_connect(uri):
    with pytest.raises(hvmon.NoConnect) as exc:
        hvmon.open(uri)
    assert "\n" not in str(exc.value) and exc.value.code == 5


def test_default_uri_from_environment(monkeypatch):
    monkeypatch.setenv("HVMON_DEFAULT_URI", "test:///default?seed=3")
    with hvmon.open() as conn:
        assert conn.get_uri() == "test:///default?seed=3"
    monkeypatch.delenv("HVMON_DEFAULT_URI")
    with hvmon.open_readonly() as conn:
        assert conn.get_uri() == "test:///default" and conn.readonly


def test_each_open_of_default_is_fresh():
    with hvmon.open("test:///default") as a, hvmon.open("test:///default") as b:
        a.lookup_domain_by_name("test").destroy()
        assert b.lookup_domain_by_name("test").is_active()


def test_capabilities_document():
    with hvmon.open_readonly("test:///default") as conn:
        caps = conn.capabilities()
    assert caps.startswith("<capabilities>")
    assert "<arch>i686</arch>" in caps and "test" in caps
    assert conn.get_hostname()
