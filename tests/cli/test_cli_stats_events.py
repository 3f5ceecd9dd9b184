"""domstats and event."""

from __future__ import annotations

import threading
import time

import hvmon
from hvmon.cli.main import main


def _stats(out: str) -> dict[str, dict[str, str]]:
    domains: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in out.splitlines():
        if line.startswith("Domain: '"):
            current = domains.setdefault(line[len("Domain: '"):-1], {})
        elif line.startswith("  "):
            key, _, value = line.strip().partition("=")
            current[key] = value
    return domains


def test_domstats_raw_keys_are_libvirt_names(cli):
    result = cli("domstats", "--raw")
    assert result.code == 0
    assert result.out.startswith("Domain: 'test'\n  state.state=1\n")
    stats = _stats(result.out)["test"]
    for key in ("state.state", "state.reason", "cpu.time", "balloon.current",
                "balloon.maximum", "vcpu.current", "vcpu.0.time", "net.count",
                "net.0.rx.bytes", "net.0.tx.bytes", "block.count", "block.0.rd.bytes",
                "block.0.wr.bytes"):
        assert key in stats, key
    assert stats["balloon.maximum"] == "8388608"
    assert cli("domstats").out == result.out or _stats(cli("domstats").out).keys() == {"test"}


def test_domstats_groups_and_domains(cli, write, xmls):
    cli("define", write("d.xml", xmls.domain.format(name="vm3", network="default")))
    out = cli("domstats", "--state", "--balloon", "test").out
    stats = _stats(out)
    assert list(stats) == ["test"]
    assert {k.split(".")[0] for k in stats["test"]} == {"state", "balloon"}
    assert out.endswith("\n\n\n")  # record's blank line, then virsh's
    assert list(_stats(cli("domstats", "--state").out)) == ["test", "vm3"]
    assert list(_stats(cli("domstats", "--state", "--list-inactive").out)) == ["vm3"]


def test_domstats_error_for_one_domain_keeps_the_others(capsys):
    conn = hvmon.open("test:///default?fail=vm4")
    try:
        conn.define_domain_xml(
            "<domain type='test'><name>vm4</name><memory>1024</memory>"
            "<os><type>hvm</type></os></domain>")
        conn.lookup_domain_by_name("vm4").create()
        code = main(["domstats", "--state"], connect=lambda uri, ro: conn)
    finally:
        conn.close()
    captured = capsys.readouterr()
    assert code == 1
    assert "Domain: 'test'\n  state.state=1" in captured.out
    assert "Domain: 'vm4'" not in captured.out
    assert captured.err.startswith("error: ") and "'vm4'" in captured.err
    assert captured.err.count("\n") == 1


def test_domstats_json(cli):
    import json

    data = json.loads(cli("domstats", "--json", "--cpu-total").out)
    assert data["domains"][0]["name"] == "test"
    assert data["domains"][0]["error"] is None
    assert "cpu.time" in data["domains"][0]["stats"]


def test_domstats_unknown_domain(cli):
    result = cli("domstats", "nosuch")
    assert result.code == 1 and result.err.startswith("error: failed to get domain 'nosuch'")


def _in_thread(argv, conn):
    result = {}

    def target():
        result["code"] = main(argv, connect=lambda uri, ro: conn)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


def test_event_prints_lifecycle_events_as_virsh(conn, capsys):
    thread, result = _in_thread(["event", "--loop", "--timeout", "1.5"], conn)
    time.sleep(0.3)
    dom = conn.lookup_domain_by_name("test")
    dom.suspend()
    dom.resume()
    dom.destroy()
    dom.create()
    thread.join(5)
    assert not thread.is_alive()
    out = capsys.readouterr().out
    assert result["code"] == 0
    assert out.splitlines()[:4] == [
        "event 'lifecycle' for domain 'test': Suspended Paused",
        "event 'lifecycle' for domain 'test': Resumed Unpaused",
        "event 'lifecycle' for domain 'test': Stopped Destroyed",
        "event 'lifecycle' for domain 'test': Started Booted",
    ]
    assert "event loop timed out\nevents received: 4\n" in out


def test_event_without_loop_stops_after_one(conn, capsys):
    thread, result = _in_thread(["event", "--all", "--timeout", "10"], conn)
    dom = conn.lookup_domain_by_name("test")
    deadline = time.monotonic() + 5
    while thread.is_alive() and time.monotonic() < deadline:
        dom.suspend()
        dom.resume()
        time.sleep(0.05)
    thread.join(5)
    out = capsys.readouterr().out
    assert result["code"] == 0
    assert out.startswith("event 'lifecycle' for domain 'test': ")
    assert "events received: 1\n" in out


def test_event_timeout_without_events(cli):
    result = cli("event", "--loop", "--timeout", "0.2", "--domain", "test")
    assert result.code == 0
    assert result.out == "event loop timed out\nevents received: 0\n\n"


def test_event_list(cli):
    assert cli("event", "--list").out == "lifecycle\n\n"
