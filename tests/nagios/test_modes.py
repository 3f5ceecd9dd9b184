"""Every mode's status and perfdata, in process, on test:///default and a node file."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import hvmon
from hvmon.daemon.context import shared_connection

from .conftest import PERF_RE, SPECIAL, STATUS_RE, Check, Outcome

DEFAULT = "test:///default"


def assert_well_formed(result: Outcome) -> None:
    """One status line by the guidelines, every perfdata item well formed, a time item."""
    assert STATUS_RE.match(result.status), result.status
    state = result.status.split()[2]
    assert result.code == {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}[state]
    perfdata = result.status.split(" | ", 1)[1]
    items = perfdata.split(" ")
    labels = result.perfdata
    assert len(labels) >= 1 and "time" in labels
    if "'" not in perfdata:  # names with spaces are checked by parse_perfdata instead
        for item in items:
            assert PERF_RE.match(item), item


@pytest.fixture
def node_uri(node_file: Path) -> str:
    return f"test://{node_file}"


@pytest.fixture
def shared(node_uri: str) -> Iterator[tuple[hvmon.Connection, Callable[[str], hvmon.Connection]]]:
    """A read-write connection and a connector handing checks read-only views of it."""
    conn = hvmon.open(node_uri)
    try:
        yield conn, lambda uri: shared_connection(conn.driver, readonly=True)
    finally:
        conn.close()


@pytest.fixture
def default_shared() -> Iterator[Callable[[str], hvmon.Connection]]:
    """Read-only views of one test:///default driver (its counters advance between runs)."""
    conn = hvmon.open(DEFAULT)
    try:
        yield lambda uri: shared_connection(conn.driver, readonly=True)
    finally:
        conn.close()


# --- domain ---------------------------------------------------------------------------------

def test_domain_running_is_ok_with_memory_perfdata(check: Check) -> None:
    result = check("-U", DEFAULT, "domain", "test")
    assert_well_formed(result)
    assert result.code == 0
    assert result.status.startswith("HVMON DOMAIN OK - 'test' is running (booted), CPU: first "
                                    "sample, usage from the next run, memory 2 GiB of 8 GiB")
    perf = result.perfdata
    assert perf["test_memory"] == "2147483648B;;;0;8589934592"
    assert perf["test_memory_usage"].endswith("%;;;0;100")
    assert "test_cpu" not in perf


def test_domain_cpu_usage_between_two_runs_kept_in_a_cookie(
        check: Check, cookie_dir: Path, default_shared: Callable[[str], hvmon.Connection]) -> None:
    check("-U", DEFAULT, "domain", "test", connect=default_shared)
    (cookie,) = cookie_dir.iterdir()
    first = json.loads(cookie.read_text())
    assert first["uuid"] == "6695eb01-f6a4-8304-79aa-97f2502e193f"
    assert first["usage"] is None
    time.sleep(0.05)
    result = check("-U", DEFAULT, "domain", "test", connect=default_shared)
    assert_well_formed(result)
    value, warn, crit, low, high = result.perfdata["test_cpu"].split(";")
    assert value.endswith("%") and 0 <= float(value[:-1]) <= 100
    assert (warn, crit, low, high) == ("", "", "0", "100")
    assert json.loads(cookie.read_text())["cpu_time"] > first["cpu_time"]
    assert list(cookie_dir.iterdir()) == [cookie]  # one cookie per check


def test_domain_cpu_thresholds(check: Check,
                               default_shared: Callable[[str], hvmon.Connection]) -> None:
    check("-U", DEFAULT, "domain", "test", connect=default_shared)
    time.sleep(0.01)
    warned = check("-U", DEFAULT, "domain", "test", "-w", "@0:100", connect=default_shared)
    assert warned.code == 1
    assert warned.status.startswith("HVMON DOMAIN WARNING - CPU ")
    assert "% (inside range 0:100) | " in warned.status
    assert warned.perfdata["test_cpu"].split(";")[1:3] == ["@100", ""]
    time.sleep(0.01)
    critical = check("-U", DEFAULT, "domain", "test", "-w", "@0:100", "-c", "@0:100",
                     connect=default_shared)
    assert critical.code == 2
    assert critical.perfdata["test_cpu"].split(";")[1:3] == ["@100", "@100"]


def test_domain_cookie_dir_that_cannot_be_used_is_unknown(check: Check, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = check("-U", DEFAULT, "domain", "test", "--cookie-dir", str(blocker / "sub"))
    assert result.code == 3
    assert f"cannot keep CPU samples in {blocker / 'sub'}" in result.status


def test_domain_damaged_cookie_starts_again(check: Check, cookie_dir: Path) -> None:
    check("-U", DEFAULT, "domain", "test")
    (cookie,) = cookie_dir.iterdir()
    cookie.write_text("{not json")
    result = check("-U", DEFAULT, "domain", "test")
    assert result.code == 0 and "CPU: first sample" in result.status
    assert json.loads(cookie.read_text())["uuid"]


@pytest.mark.parametrize(("name", "extra", "code", "text"), [
    ("alpha", [], 0, "'alpha' is running (booted)"),
    ("paused", [], 1, "'paused' is paused (user)"),
    ("off", [], 2, "'off' is shut off"),
    ("nope", [], 2, "domain 'nope' is not defined"),
    ("paused", ["--state", "paused=ok"], 0, "'paused' is paused"),
    ("off", ["--state", "shutoff=warning"], 1, "'off' is shut off"),
    ("alpha", ["--state", "running=critical"], 2, "'alpha' is running"),
    ("nope", ["--state", "missing=unknown"], 3, "domain 'nope' is not defined"),
    ("00000000-0000-4000-8000-000000000001", [], 0, "'alpha' is running"),
])
def test_domain_states(check: Check, node_uri: str, name: str, extra: list[str], code: int,
                       text: str) -> None:
    result = check("-U", node_uri, "domain", name, *extra)
    assert_well_formed(result)
    assert result.code == code
    assert text in result.status


def test_inactive_domain_has_no_cpu_or_memory(check: Check, node_uri: str) -> None:
    result = check("-U", node_uri, "domain", "off")
    assert set(result.perfdata) == {"time"}


def test_crashed_domain_is_critical(check: Check, node_file: Path, tmp_path: Path) -> None:
    control = tmp_path / "controls.json"
    control.write_text(json.dumps({"crash": ["alpha"]}))
    uri = f"test://{node_file}?control={control}"
    result = check("-U", uri, "domain", "alpha")
    assert result.code == 2
    assert "'alpha' is crashed" in result.status
    assert check("-U", uri, "domain", "alpha", "--state", "crashed=warning").code == 1


def test_domain_names_are_data(check: Check, shared) -> None:  # noqa: ANN001
    """Spaces, quotes, ``;``, ``|`` and ``=`` in a name: shown, quoted, never executed."""
    _, connect = shared
    check("-U", "x", "domain", SPECIAL, connect=connect)
    time.sleep(0.01)
    result = check("-U", "x", "domain", SPECIAL, connect=connect)
    assert_well_formed(result)
    assert result.code == 0
    shown = SPECIAL.replace("|", "\u00a6")
    assert result.status.startswith(f"HVMON DOMAIN OK - '{shown}' is running")
    assert result.status.count(" | ") == 1
    label = SPECIAL.replace("|", "_").replace("=", "_")
    raw = "'" + label.replace("'", "''")
    assert f" {raw}_cpu'=" in result.status and f" {raw}_memory'=" in result.status
    perf = result.perfdata
    assert perf[f"{label}_memory"] == "2147483648B;;;0;4294967296"
    assert perf[f"{label}_cpu"].endswith("%;;;0;100")


def test_stale_statistics_are_a_warning(check: Check) -> None:
    uri = "test:///default?stall=test:1"
    conn = hvmon.open_readonly(uri)
    try:
        from hvmon.core.snapshot.cache import SnapshotCache

        cache = SnapshotCache(conn, deadline=0.2)

        class Cached:
            readonly = True

            def get_snapshot(self, max_age: float | None = None) -> object:
                return cache.get(0)

            def close(self) -> None:
                pass

        result = check("-U", uri, "domain", "test", connect=lambda u: Cached())
        assert result.code in (1, 3)  # never seen: state unknown; seen before: stale values
        result = check("-U", uri, "domain", "test", connect=lambda u: Cached())
        assert "statistics are" in result.status
        cache.stop()
    finally:
        conn.close()


# --- host -------------------------------------------------------------------------------------

def test_host_default(check: Check) -> None:
    result = check("-U", DEFAULT, "host")
    assert_well_formed(result)
    assert result.code == 0
    assert result.status.startswith("HVMON HOST OK - vm: 1 domains (1 running), memory "
                                    "overcommit 0.67, vCPU overcommit 0.12 (2 vCPUs on 16 CPUs)")
    perf = result.perfdata
    assert perf["domains_running"] == "1;;;0"
    assert perf["domains_total"] == "1;;;0"
    assert perf["memory_overcommit"] == "0.6667;1;1.5;0"
    assert perf["vcpu_overcommit"] == "0.125;4;8;0"
    assert perf["memory_committed"] == "2147483648B;;;0;3221225472"


def test_host_counts_by_state_and_overcommit_thresholds(check: Check, node_uri: str) -> None:
    result = check("-U", node_uri, "host")
    assert result.code == 0
    perf = result.perfdata
    assert (perf["domains_running"], perf["domains_paused"], perf["domains_shutoff"]) == \
        ("2;;;0", "1;;;0", "1;;;0")
    assert perf["vcpu_overcommit"] == "2;4;8;0"  # 8 vCPUs of active domains on 4 CPUs
    memory = check("-U", node_uri, "host", "--memory-warning", "0.5")
    assert memory.code == 1 and memory.status.startswith("HVMON HOST WARNING - memory overcommit")
    vcpu = check("-U", node_uri, "host", "-c", "1.5")
    assert vcpu.code == 2 and "vCPU overcommit 2" in vcpu.status
    assert vcpu.perfdata["vcpu_overcommit"] == "2;4;1.5;0"


def test_host_without_an_answer_is_critical(check: Check, tmp_path: Path) -> None:
    result = check("-U", f"test+unix:///default?socket={tmp_path}/none", "host")
    assert result.code == 2
    assert result.status.startswith("HVMON HOST CRITICAL - no answer from test+unix:")
    assert "cannot connect to daemon" in result.status


# --- domains ----------------------------------------------------------------------------------

def test_domains_without_autostart_is_ok(check: Check) -> None:
    result = check("-U", DEFAULT, "domains")
    assert_well_formed(result)
    assert result.status.startswith("HVMON DOMAINS OK - no autostart domains")


def test_every_autostart_domain_must_run(check: Check, shared) -> None:  # noqa: ANN001
    conn, connect = shared
    for name in ("alpha", "off", SPECIAL):
        conn.lookup_domain_by_name(name).set_autostart(True)
    result = check("-U", "x", "domains", connect=connect)
    assert_well_formed(result)
    assert result.code == 2
    assert "1 of 3 autostart domains not running: 'off' (shut off)" in result.status
    perf = result.perfdata
    assert perf["off_running"] == "0;;;0;1" and perf["alpha_running"] == "1;;;0;1"
    assert perf["autostart_not_running"] == "1;;0;0;3"
    assert check("-U", "x", "domains", "--exclude", "of?", connect=connect).code == 0
    only = check("-U", "x", "domains", "--include", "al*", "--include", "web*", connect=connect)
    assert only.code == 0 and "all 2 autostart domains running" in only.status
    assert check("-U", "x", "domains", "-w", "0", "-c", "5", connect=connect).code == 1


# --- pool -------------------------------------------------------------------------------------

def test_pool_over_its_warning_threshold(check: Check, node_uri: str) -> None:
    result = check("-U", node_uri, "pool", "small-pool")
    assert_well_formed(result)
    assert result.code == 1
    assert result.status.startswith("HVMON POOL WARNING - pool 'small-pool' 85% used "
                                    "(outside range 0:80)")
    assert result.perfdata["small-pool_usage"] == "85%;80;90;0;100"
    assert result.perfdata["small-pool_used"] == "9126805504B;;;0;10737418240"
    assert check("-U", node_uri, "pool", "small-pool", "-w", "90", "-c", "95").code == 0
    assert check("-U", node_uri, "pool", "small-pool", "-c", "84").code == 2


def test_pool_all_and_missing_and_inactive(check: Check, shared) -> None:  # noqa: ANN001
    ok = check("-U", DEFAULT, "pool", "--all")
    assert ok.code == 0 and ok.perfdata["default-pool_usage"] == "0%;80;90;0;100"
    conn, connect = shared
    missing = check("-U", "x", "pool", "nope", connect=connect)
    assert missing.code == 2 and "pool 'nope' is not defined" in missing.status
    conn.lookup_pool_by_name("small-pool").destroy()
    inactive = check("-U", "x", "pool", "--all", connect=connect)
    assert inactive.code == 2
    assert inactive.status.startswith("HVMON POOL CRITICAL - pool 'small-pool' is inactive")


# --- network ----------------------------------------------------------------------------------

def test_network_dhcp_exhaustion(check: Check, node_uri: str) -> None:
    result = check("-U", node_uri, "network", "tiny")
    assert_well_formed(result)
    assert result.code == 1
    assert "network 'tiny' DHCP 90% used (9 of 10)" in result.status
    assert result.perfdata["tiny_dhcp_usage"] == "90%;80;90;0;100"
    assert result.perfdata["tiny_dhcp_leases"] == "9;;;0;10"
    assert check("-U", node_uri, "network", "tiny", "-c", "85").code == 2
    default = check("-U", DEFAULT, "network", "--all")
    assert default.code == 0 and default.perfdata["default_dhcp_usage"] == "0.4%;80;90;0;100"


def test_network_missing_and_inactive(check: Check, shared) -> None:  # noqa: ANN001
    conn, connect = shared
    assert check("-U", "x", "network", "nope", connect=connect).code == 2
    conn.lookup_network_by_name("tiny").destroy()
    result = check("-U", "x", "network", "tiny", connect=connect)
    assert result.code == 2 and "network 'tiny' is inactive" in result.status


# --- daemon and errors ------------------------------------------------------------------------

def test_daemon_mode_needs_a_daemon(check: Check) -> None:
    result = check("-U", DEFAULT, "daemon")
    assert_well_formed(result)
    assert result.code == 3 and "is not served by a daemon" in result.status


def test_no_connection_is_unknown_for_object_modes(check: Check, tmp_path: Path) -> None:
    uri = f"test+unix:///default?socket={tmp_path}/none"
    result = check("-U", uri, "domain", "test")
    assert_well_formed(result)
    assert result.code == 3 and "cannot connect to daemon" in result.status
    assert check("-U", uri, "daemon").code == 2
    bad = check("-U", "no-uri-at-all", "pool", "--all")
    assert bad.code == 3 and "invalid connection URI" in bad.status


def test_a_read_write_connection_is_refused(check: Check) -> None:
    result = check("-U", DEFAULT, "host", connect=lambda uri: hvmon.open(uri))
    assert result.code == 3
    assert "needs a read-only connection" in result.status


def test_timeout_is_unknown(check: Check) -> None:
    start = time.monotonic()
    result = check("-U", "test:///default?stall=test:3", "domain", "test", "-t", "0.5")
    assert time.monotonic() - start < 2.5
    assert_well_formed(result)
    assert result.code == 3
    assert result.status.startswith("HVMON DOMAIN UNKNOWN - timeout: no result after 0.5 s")


def test_verbosity_adds_lines_but_keeps_perfdata_on_the_status_line(check: Check) -> None:
    quiet = check("-U", DEFAULT, "pool", "--all")
    assert len(quiet.lines) == 1
    one = check("-U", DEFAULT, "pool", "--all", "-v")
    assert one.lines[1:] == ["ok: pool 'default-pool' 0% used"]
    two = check("-U", DEFAULT, "pool", "--all", "-vv")
    assert two.lines[2] == "uri: test:///default"
    assert two.lines[3].startswith("snapshot: generation 1, age ")
    three = check("-U", DEFAULT, "pool", "--all", "-vvv")
    assert [line.split()[1] for line in three.lines[4:]] == ["connect", "snapshot", "total"]
    for result in (one, two, three):
        assert_well_formed(result)
        assert all("|" not in line for line in result.lines[1:])


# --- migration ------------------------------------------------------------------------------
def test_migration_ok_when_none_runs(check: Check, default_shared: Callable[[str],
                                                                           hvmon.Connection]
                                     ) -> None:
    result = check("-U", DEFAULT, "migration", connect=default_shared)
    assert result.code == 0 and "no migration running" in result.status
    assert_well_formed(result)


def test_migration_running_too_long_warns_then_goes_critical(check: Check,
                                                             tmp_path: Path) -> None:
    controls = tmp_path / "controls.json"
    controls.write_text(json.dumps({"jobs": {"test": {"total": 1 << 30, "rate": 1 << 20}}}))
    conn = hvmon.open(f"{DEFAULT}?control={controls}")
    try:
        def connect(uri: str) -> hvmon.Connection:
            return shared_connection(conn.driver, readonly=True)

        conn.lookup_domain_by_name("test").job_info()  # the simulated migration starts
        time.sleep(0.2)
        warn = check("-U", DEFAULT, "migration", "-w", "0.1", "-c", "3600", connect=connect)
        assert warn.code == 1 and "1 migration(s) running: 'test'" in warn.status
        assert "MiB left" in warn.status and "test_migration_seconds" in warn.perfdata
        crit = check("-U", DEFAULT, "migration", "-w", "0.01", "-c", "0.1", connect=connect)
        assert crit.code == 2
        assert_well_formed(crit)
    finally:
        conn.close()
    usage = check("-U", DEFAULT, "migration", "web1")
    assert usage.code == 3 and "mode migration takes no NAME" in usage.status
