"""Formatting, size parsing, registration and argument handling (no driver needed)."""

from __future__ import annotations

import io

import pytest

from hvmon.cli import main as cli_main
from hvmon.cli.command import Command, no_arguments
from hvmon.cli.main import (
    build_parser,
    builtin_commands,
    collect_commands,
    main,
    requested_command,
)
from hvmon.cli.output import fields, parse_size, pretty_size, table
from hvmon.cli.progress import ProgressBar
from hvmon.cli.xmldoc import clone_xml, find_text, volume_xml


def test_table_matches_virsh_list_layout():
    text = table(["Id", "Name", "State"], [["1", "test", "running"], ["-", "vm1", "shut off"]])
    assert text.splitlines() == [
        " Id   Name   State",
        "-" * 23,
        " 1    test   running",
        " -    vm1    shut off",
    ]
    # virsh list on libvirt's test driver: 22 dashes under " Id   Name   State"
    assert table(["Id", "Name", "State"], [["1", "test", "running"]]).splitlines()[1] == "-" * 22


def test_table_without_rows_keeps_header_and_dashes():
    assert table(["Name", "Path"], []) == " Name   Path\n" + "-" * 14 + "\n"


def test_fields_pad_labels_like_virsh():
    assert fields([("Id:", 1), ("Max memory:", "8 KiB")]) == (
        "Id:             1\nMax memory:     8 KiB\n"
    )


@pytest.mark.parametrize(("value", "text"), [
    (0, "0.00 B"), (512, "512.00 B"), (1024, "1.00 KiB"), (100 * 1024**3, "100.00 GiB"),
    (1536 * 1024**2, "1.50 GiB"), (2 * 1024**6, "2.00 EiB"),
])
def test_pretty_size(value, text):
    assert pretty_size(value) == text


@pytest.mark.parametrize(("text", "value"), [
    ("4096", 4096), ("10G", 10 * 1024**3), ("512M", 512 * 1024**2), ("1GiB", 1024**3),
    ("1GB", 10**9), ("2k", 2048), ("7b", 7), ("1T", 1024**4), (" 3 MiB ", 3 * 1024**2),
])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "G", "1.5G", "-1G", "10X", "ten"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


def test_progress_bar_redraws_only_on_change():
    stream = io.StringIO()
    bar = ProgressBar(stream, width=10)
    for done in (0, 1, 40, 41, 100):
        bar(done, 100)
    bar.finish()
    assert stream.getvalue() == (
        "\r[          ]   0%\r[          ]   1%\r[####      ]  40%\r[####      ]  41%"
        "\r[##########] 100%\n"
    )


def test_progress_bar_adds_the_disk_bytes_of_a_storage_migration():
    from hvmon.cli.domain import _disk_progress
    from hvmon.core.types import JobInfo

    stream = io.StringIO()
    bar = ProgressBar(stream, width=4)
    job = JobInfo(type=2, disk_total=64 << 20, disk_processed=16 << 20)
    bar.detail = lambda: _disk_progress(job)
    bar(25, 100)
    assert stream.getvalue() == "\r[#   ]  25% disks 16.000 MiB/64.000 MiB"
    assert _disk_progress(JobInfo(type=2, data_total=5)) == ""  # memory only: nothing


def test_volume_xml_escapes_names():
    xml = volume_xml("a<b&c", 1024, 0, "qcow2")
    assert find_text(xml, "name") == "a<b&c"
    assert find_text(xml, "capacity") == "1024"
    assert find_text(xml, "target/format/@type") == "qcow2"


def test_clone_xml_renames_and_drops_key_and_path():
    source = ("<volume><name>a</name><key>/p/a</key><capacity>5</capacity>"
              "<target><path>/p/a</path><format type='raw'/></target></volume>")
    xml = clone_xml(source, "b")
    assert find_text(xml, "name") == "b"
    assert find_text(xml, "key") == ""
    assert find_text(xml, "target/path") == ""
    assert find_text(xml, "target/format/@type") == "raw"


def test_every_builtin_command_has_help_and_unique_name():
    commands = builtin_commands()
    names = [c.name for c in commands]
    assert len(names) == len(set(names))
    assert all(c.help for c in commands)
    build_parser(commands)  # does not raise


def test_plugin_commands_join_and_run(capsys):
    def hello(ctx, args):
        ctx.write(f"hello {args.who}\n")

    plugin = [Command("hello", "say hello", hello, lambda p: p.add_argument("who"))]
    assert main(["-q", "hello", "world"], commands=collect_commands([plugin])) == 0
    assert capsys.readouterr().out == "hello world\n"


def test_requested_command_skips_global_options_and_their_values():
    assert requested_command(["-c", "test:///default", "-r", "list", "--all"]) == "list"
    assert requested_command(["--connect", "list", "-q", "dominfo", "x"]) == "dominfo"
    assert requested_command(["--connect=qemu:///system", "console"]) == "console"
    assert requested_command(["-h"]) is None and requested_command([]) is None


@pytest.mark.parametrize(("argv", "loads_plugins"), [
    (["-c", "test:///default", "-q", "list"], False),
    (["-q", "hello", "world"], True),  # a plugin's command
    (["help"], True),  # lists the plugins' commands too
    (["-h"], True),
    (["lsit"], True),  # no such built-in: maybe a plugin's
])
def test_plugins_load_only_when_no_builtin_command_is_named(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        argv: list[str], loads_plugins: bool) -> None:
    loaded: list[bool] = []

    def plugins(err: object) -> list[list[Command]]:
        loaded.append(True)
        return [[Command("hello", "say hello", lambda ctx, args: ctx.write(f"hi {args.who}\n"),
                         lambda p: p.add_argument("who"))]]

    monkeypatch.setattr(cli_main, "plugin_commands", plugins)
    monkeypatch.setattr("sys.argv", ["hvmon", *argv])
    with pytest.raises(SystemExit) as exit_:
        cli_main.run()
    assert bool(loaded) is loads_plugins
    out = capsys.readouterr().out
    if argv[0] == "-c":
        assert exit_.value.code == 0 and " test " in out
    if argv[1:] == ["hello", "world"]:
        assert exit_.value.code == 0 and out == "hi world\n"
    if argv == ["help"]:
        assert "hello" in out and "list" in out


def test_plugin_command_reusing_a_name_is_refused():
    clash = [Command("list", "mine", lambda ctx, args: None, no_arguments)]
    with pytest.raises(ValueError, match="registered twice"):
        build_parser(collect_commands([clash]))


def test_version_needs_no_connection(capsys):
    def refuse(uri, readonly):
        raise AssertionError("version must not connect")

    assert main(["version"], connect=refuse) == 0
    out = capsys.readouterr().out
    assert "Using library: hvmon 0.1.0" in out
    assert main(["version", "--json"], connect=refuse) == 0
    assert '"version": "0.1.0"' in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    assert main(["no-such-command"]) == 2
    assert main(["dominfo"]) == 2
    assert main(["vol-create-as", "p", "v", "10X"]) == 2
    assert "invalid size '10X'" in capsys.readouterr().err


def test_global_json_refused_for_commands_without_json(capsys):
    assert main(["--json", "start", "test"]) == 2
    assert "has no JSON output" in capsys.readouterr().err


def test_help_lists_groups(capsys):
    assert main(["help"]) == 0
    out = capsys.readouterr().out
    assert "Domain Management:" in out and "vol-clone" in out
    assert main(["help", "vol-clone"]) == 0
    assert "--progress" in capsys.readouterr().out
    assert main(["help", "nope"]) == 1


def test_bad_uri_is_one_error_line(capsys):
    assert main(["-c", "nonsense", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
