"""``hvmon collectd-exec`` under a real collectd's Exec plugin (as nobody), and on its own."""

from __future__ import annotations

import io
import os
import pwd
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from toolcheck import stop_process

import hvmon
from hvmon.cli.main import collect_commands, main
from hvmon.plugins.collectd.exec import commands

from .conftest import Collectd, wait_for

HVMOND = Path(sys.executable).parent / "hvmond"


@pytest.fixture
def hvmond(reachable_dir: Path) -> Iterator[str]:
    """An hvmond on test:///default whose read-only socket nobody can reach; its ro URI."""
    run_dir = reachable_dir / "run"
    config = reachable_dir / "hvmon.toml"
    config.write_text('[daemon]\nuri = "test:///default"\nsnapshot_interval = 0\n')
    env = {k: v for k, v in os.environ.items() if k not in ("HVMON_DISABLE_PLUGINS",
                                                            "PYTHONPATH")}
    with (reachable_dir / "hvmond.log").open("wb") as log:
        proc = subprocess.Popen([str(HVMOND), "--config", str(config), "--run-dir", str(run_dir),
                                 "--state-dir", str(reachable_dir / "state")],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env)
    try:
        wait_for(lambda: True if "\nready " in "\n" + (reachable_dir / "hvmond.log").read_text()
                 else (pytest.fail("hvmond exited") if proc.poll() is not None else None),
                 20, "hvmond to be ready")
        yield f"test+unix:///default?socket={run_dir / 'hvmon-sock-ro'}"
    finally:
        stop_process(proc, grace=10)


def children_of(pid: int) -> list[tuple[int, int, str]]:
    """(pid, real uid, command line) of the processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            uid = int(next(x for x in status.splitlines() if x.startswith("Uid:")).split()[1])
            found.append((int(entry.name), uid, cmdline))
    return found


def exec_conf(launcher: Path, *args: str) -> str:
    quoted = " ".join(f'"{a}"' for a in (str(launcher), *args))
    return f'LoadPlugin exec\n<Plugin exec>\n  Exec "nobody:nogroup" {quoted}\n</Plugin>\n'


def test_collectd_runs_collectd_exec_as_nobody_against_the_daemon(
        start_collectd: Callable[..., Collectd], launcher: Path, hvmond: str) -> None:
    collectd = start_collectd(exec_conf(launcher, "-c", hvmond, "collectd-exec"))

    def cpu_rows() -> list[list[str]] | None:
        rows = collectd.csv_rows("virt-test/virt_cpu_total")
        return rows if len(rows) >= 3 else None

    rows = wait_for(cpu_rows, 30, f"virt_cpu_total rows (log: {collectd.log[-1500:]})")
    assert collectd.proc is not None
    children = children_of(collectd.proc.pid)
    nobody = pwd.getpwnam("nobody").pw_uid
    assert children and all(uid == nobody for _, uid, _ in children), children
    assert any("hvmon.plugins.collectd" in cmd for _, _, cmd in children), children
    values = [int(float(r[1])) for r in rows]
    assert values == sorted(values) and values[-1] > values[0]
    files = collectd.csv_files()
    for identifier in ("virt-test/virt_vcpu-0", "virt-test/virt_vcpu-1",
                       "virt-test/disk_octets-vda", "virt-test/disk_ops-vda",
                       "virt-test/disk_time-vda", "virt-test/if_octets-testnet0",
                       "virt-test/if_packets-testnet0", "virt-test/if_errors-testnet0",
                       "virt-test/if_dropped-testnet0", "virt-test/memory-total",
                       "virt-test/memory-rss", "virt-test/domain_state",
                       "df-pool-default-pool/df_complex-used", "hvmon/count-domains"):
        assert f"hvtest/{identifier}" in files, identifier
    # the newest snapshot the daemon served is what collectd wrote for that time
    with hvmon.open_readonly(hvmond) as conn:
        snap = conn.get_snapshot(3600)  # the cached one: no refresh
    stamp = f"{snap.timestamp:.3f}"
    stats = snap.domain("test").stats

    def row(identifier: str) -> list[str] | None:
        found = [r for r in collectd.csv_rows(identifier) if r[0] == stamp]
        return found[0] if found else None

    assert int(wait_for(lambda: row("virt-test/virt_cpu_total"), 10, "row")[1]) \
        == stats["cpu.time"]
    assert [int(float(v)) for v in wait_for(lambda: row("virt-test/disk_octets-vda"), 10,
                                            "row")[1:]] \
        == [stats["block.0.rd.bytes"], stats["block.0.wr.bytes"]]
    log = collectd.log
    assert "Traceback" not in log and "exec plugin: " not in log.replace(
        "exec plugin: Unable to", ""), log[-2000:]  # no complaints from Exec about our lines


def test_lifecycle_events_become_notifications_in_collectd(
        start_collectd: Callable[..., Collectd], launcher: Path, reachable_dir: Path) -> None:
    """A control file makes the driver crash ``test``: collectd logs the FAILURE notification."""
    controls = reachable_dir / "controls.json"
    controls.write_text("{}")
    os.chmod(controls, 0o644)
    uri = f"test:///default?control={controls}"
    collectd = start_collectd(exec_conf(launcher, "-c", uri, "collectd-exec"))
    wait_for(lambda: collectd.csv_rows("virt-test/domain_state") or None, 30, "first values")
    temp = reachable_dir / "controls.tmp"
    temp.write_text('{"crash": ["test"]}')
    os.chmod(temp, 0o644)
    temp.rename(controls)
    wait_for(lambda: True if "Domain state: crashed" in collectd.log else None, 30,
             f"the notification in collectd's log ({collectd.log[-1500:]})")
    line = next(x for x in collectd.log.splitlines() if "Domain state: crashed" in x)
    assert "FAILURE" in line and "hvtest" in line and "virt" in line


def run_exec(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hvmon.plugins.collectd", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        stop_process(proc, grace=10)


def test_exits_cleanly_when_the_pipe_closes(processes: list[subprocess.Popen[bytes]]) -> None:
    proc = run_exec(["collectd-exec", "--interval", "0.1"])
    processes.append(proc)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"PUTVAL ")
    proc.stdout.close()  # what collectd does when it stops reading
    assert proc.wait(timeout=10) == 0
    assert proc.stderr.read() == b""  # no traceback, no "Exception ignored"


def test_exits_cleanly_on_sigterm(processes: list[subprocess.Popen[bytes]]) -> None:
    proc = run_exec(["collectd-exec", "--interval", "30"],
                    env={**os.environ, "COLLECTD_HOSTNAME": "hvx"})
    processes.append(proc)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b'PUTVAL "hvx/hvmon/count-domains" interval=30.000')
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert proc.stderr.read() == b""


def test_one_stalled_domain_never_delays_the_others(tmp_path: Path,
                                                    processes: list[subprocess.Popen[bytes]]
                                                    ) -> None:
    """``web1``'s stats stall for 60 s: every interval still brings ``web2`` on time."""
    node = tmp_path / "node.xml"
    domain = ("<domain type='test'><name>{0}</name><memory>524288</memory><vcpu>1</vcpu>"
              "<os><type>hvm</type></os></domain>")
    node.write_text(f"<node>{domain.format('web1')}{domain.format('web2')}</node>")
    uri = f"test://{node}?stall=web1:60"
    proc = run_exec(["-c", uri, "collectd-exec", "--interval", "0.5", "--deadline", "0.3"])
    processes.append(proc)
    assert proc.stdout is not None
    start = time.monotonic()
    seen: list[tuple[float, str]] = []
    while len([1 for _, line in seen if "/virt-web2/virt_cpu_total" in line]) < 4:
        line = proc.stdout.readline().decode()
        assert line, "collectd-exec stopped"
        seen.append((time.monotonic() - start, line))
        assert time.monotonic() - start < 15
    web2 = [t for t, line in seen if "/virt-web2/virt_cpu_total" in line]
    assert web2[-1] < 5  # four intervals of 0.5 s (+ a 0.3 s deadline each), not 60 s
    assert not [line for _, line in seen if "/virt-web1/" in line]  # stale: skipped
    assert any('hvmon/count-domains_stale" interval=0.500' in line and line.endswith(":1.0\n")
               for _, line in seen)


def test_bad_options_are_one_line() -> None:
    err = io.StringIO()
    out = io.StringIO()
    cmds = collect_commands([commands()])
    env_before = os.environ.get("COLLECTD_INTERVAL")
    os.environ["COLLECTD_INTERVAL"] = "soon"
    try:
        sys_err, sys.stderr = sys.stderr, err
        try:
            code = main(["collectd-exec"], commands=cmds)
        finally:
            sys.stderr = sys_err
    finally:
        if env_before is None:
            del os.environ["COLLECTD_INTERVAL"]
        else:
            os.environ["COLLECTD_INTERVAL"] = env_before
    assert code == 2 and out.getvalue() == ""
    assert err.getvalue() == "error: collectd-exec: COLLECTD_INTERVAL is not a number: 'soon'\n"


def test_putnotif_for_events_in_process() -> None:
    """Through ``hvmon.cli.main.main`` with an injected connection: values, then a notification."""
    conn = hvmon.open("test:///default")
    out = io.StringIO()
    done = threading.Event()

    class Tee(io.StringIO):
        def write(self, text: str) -> int:
            out.write(text)
            if text.startswith("PUTNOTIF"):
                done.set()
            return len(text)

    def suspend_later() -> None:
        time.sleep(0.5)
        conn.lookup_domain_by_name("test").suspend()

    sys_out = sys.stdout
    sys.stdout = Tee()
    worker = threading.Thread(target=suspend_later)
    worker.start()
    try:
        code = main(["collectd-exec", "--interval", "0.2", "--count", "6", "--hostname", "hv1"],
                    connect=lambda uri, ro: conn, commands=collect_commands([commands()]))
    finally:
        sys.stdout = sys_out
        worker.join()
        conn.close()
    assert code == 0
    lines = out.getvalue().splitlines()
    assert 'PUTVAL "hv1/virt-test/virt_cpu_total" interval=0.200' in lines[5]
    notes = [line for line in lines if line.startswith("PUTNOTIF")]
    assert notes and notes[0].startswith("PUTNOTIF severity=warning time=")
    assert notes[0].endswith('host="hv1" plugin="virt" plugin_instance="test" '
                             'type="domain_state" message="Domain state: paused. Reason: paused"')
