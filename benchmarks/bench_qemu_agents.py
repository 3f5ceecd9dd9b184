"""Real QEMU guests: hvmon's domstats CLI, Prometheus exporter and collectd feed next to libvirt's.

The same guests as :mod:`bench_qemu` (64 MiB, one vCPU, no disk, no OS; TCG
unless ``--kvm``) run under both daemons at once, N of each for N = 1, 10, 20
(``--guests``; the guests of a smaller size stay for the next):

* hvmon: ``hvmond`` on ``qemu:///embed?root=TMP`` with only its Prometheus
  agent loaded (``compat = "libvirt"``, ``snapshot_max_age = 0``: every scrape
  collects, as the libvirt exporter queries libvirt on every scrape);
* libvirt: the private ``libvirtd`` of :mod:`bench_qemu` (session mode as
  uid 65534, its own socket and directories, stopped by PID).

For each N, hvmon and libvirt taking turns:

* ``domstats``: wall time of one ``hvmon -c URI domstats`` process next to one
  ``virsh -c URI domstats`` (every group, N guests; process start included:
  that is what a user waits for; hvmon's modules from a bytecode cache, as
  installed), median of ``--repeat`` after a warm-up;
* ``scrape``: one HTTP scrape of hvmon's exporter next to Debian's
  ``prometheus-libvirt-exporter --libvirt.uri=<the private libvirtd>``, median
  of ``--repeat`` after a warm-up; the ``libvirt_*`` names the libvirt
  exporter emits that hvmon does not are listed (goal: none);
* ``collectd``: a collectd (``collectd -f -C conf``, ``Interval`` =
  ``--interval``) running either ``hvmon collectd-exec`` (Exec plugin, as
  nobody, against hvmond's read-only socket) or its own ``virt`` plugin
  (``Connection`` = the private libvirtd, ``ExtraStats "disk domain_state
  memory vcpu"``: the value lists hvmon sends). Both send their values with the
  network plugin to a local UDP socket nobody reads. The two collectd run at
  the same time; once each holds values of the N guests (``LISTVAL`` over its
  unixsock), the CPU time (user+sys) of each collectd with its Exec child and
  of the daemon serving it (hvmond or libvirtd) is read over the same
  ``--intervals`` intervals: the threads' run times in
  ``/proc/PID/task/TID/schedstat`` (ns), or ``utime + stime`` of
  ``/proc/PID/stat`` (10 ms ticks) when a thread ended in the window; the
  figure is CPU ms per interval. QEMU's own CPU is not counted.

Goals (issue 15): each hvmon/libvirt cost ratio <= 1.0; no libvirt exporter
name missing.

After the guests of a size are started the script waits ``--settle`` seconds
(default 3) so their firmware boot (busy under TCG) is over before measuring.

Usage: ``python benchmarks/bench_qemu_agents.py [--guests 1 10 20] [--repeat 5]
[--interval 1] [--intervals 10] [--settle 3] [--kvm] [--json FILE]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench_qemu  # sibling script
from bench_libvirt_exporter import metric_names, series_count
from bench_prometheus import Client

EXPORTER = "prometheus-libvirt-exporter"
TYPES_DB = Path("/usr/share/collectd/types.db")
REPO = Path(__file__).resolve().parents[1]
PREFIX = "ag"
READY = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- small pure helpers (unit-tested) --------------------------------------------------
def normalize_key(key: str) -> str:
    """A domstats key with its device/vCPU indexes replaced: ``vcpu.0.time`` -> ``vcpu.N.time``."""
    return re.sub(r"(?<=\.)\d+(?=\.|$)", "N", key)


def parse_domstats(text: str) -> dict[str, set[str]]:
    """virsh-style ``domstats`` output: domain name -> its normalized keys."""
    out: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in text.splitlines():
        if line.startswith("Domain: "):
            current = out.setdefault(line[len("Domain: "):].strip().strip("'"), set())
        elif current is not None and line.startswith("  ") and "=" in line:
            current.add(normalize_key(line.strip().split("=", 1)[0]))
    return out


def proc_cpu(stat: str) -> float:
    """user+sys seconds from the text of ``/proc/PID/stat`` (the comm may hold spaces)."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def proc_parent(stat: str) -> int:
    """The parent PID from the text of ``/proc/PID/stat``."""
    return int(stat.rsplit(")", 1)[1].split()[1])


def parse_listval(lines: list[str]) -> tuple[int, set[str]]:
    """collectd unixsock ``LISTVAL`` answer: (identifiers, domains with ``virt-<dom>`` values)."""
    if not lines or not lines[0].split()[0].lstrip("-").isdigit():
        raise ValueError(f"bad LISTVAL answer: {lines[:1]!r}")
    count = int(lines[0].split()[0])
    if count < 0:
        raise ValueError(f"LISTVAL failed: {lines[0]!r}")
    domains = set()
    for line in lines[1:count + 1]:
        ident = line.split(" ", 1)[-1]
        parts = ident.split("/")
        if len(parts) == 3 and parts[1].startswith("virt-"):
            domains.add(parts[1][len("virt-"):])
    return count, domains


def collectd_conf(workdir: Path, interval: float, body: str, sink_port: int) -> str:
    """A collectd configuration: logfile, unixsock (for LISTVAL), ``body``.

    The values go out with the network plugin to a UDP socket on 127.0.0.1:sink_port
    that nobody reads (without a writer collectd logs a complaint per value).
    """
    return f"""Hostname "bench"
FQDNLookup false
Interval {interval}
BaseDir "{workdir}"
PIDFile "{workdir}/collectd.pid"
TypesDB "{TYPES_DB}"
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "{workdir}/collectd.log"
</Plugin>
LoadPlugin unixsock
<Plugin unixsock>
  SocketFile "{workdir}/collectd.sock"
</Plugin>
LoadPlugin network
<Plugin network>
  Server "127.0.0.1" "{sink_port}"
</Plugin>
{body}
"""


def virt_body(uri: str) -> str:
    """collectd's own virt plugin on ``uri``, named as hvmon names its values."""
    return f"""LoadPlugin virt
<Plugin virt>
  Connection "{uri}"
  RefreshInterval 60
  HostnameFormat hostname
  PluginInstanceFormat name
  ExtraStats "disk domain_state memory vcpu"
</Plugin>
"""


def exec_body(launcher: Path, uri: str) -> str:
    """collectd's Exec plugin running ``hvmon collectd-exec`` as nobody."""
    argv = [str(launcher), "-c", uri, "collectd-exec", "--hostname-format", "hostname",
            "--plugin-instance-format", "name"]
    quoted = " ".join(f'"{arg}"' for arg in argv)
    return f'LoadPlugin exec\n<Plugin exec>\n  Exec "nobody:nogroup" {quoted}\n</Plugin>\n'


# --- processes ---------------------------------------------------------------------------
@dataclass
class CpuSample:
    """One process's CPU so far: user+sys from its stat and on-CPU ns per live thread."""

    ticks: float
    threads: dict[int, int]


def cpu_delta(before: CpuSample, after: CpuSample) -> float:
    """CPU seconds between two samples of a process.

    The threads' ``schedstat`` run times (ns) when no thread ended in between (a new
    thread's run time is all inside); else ``utime + stime`` (10 ms ticks, but
    counting ended threads too).
    """
    if before.threads and not before.threads.keys() - after.threads.keys():
        return (sum(after.threads.values()) - sum(before.threads.values())) / 1e9
    return after.ticks - before.ticks


def cpu_sample(pid: int) -> CpuSample | None:
    """The process's :class:`CpuSample` from /proc, or None when it is gone."""
    try:
        ticks = proc_cpu(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, IndexError, ValueError):
        return None
    threads = {}
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, IndexError, ValueError):
                threads[int(task.name)] = int((task / "schedstat").read_text().split()[0])
    return CpuSample(ticks, threads)


def cpu_between(before: dict[int, CpuSample | None], after: dict[int, CpuSample | None]) -> float:
    """Summed CPU seconds of the processes present in both samplings."""
    return sum(cpu_delta(b, a) for pid, b in before.items()
               if b is not None and (a := after.get(pid)) is not None)


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if proc_parent((entry / "stat").read_text()) == pid:
                    found.append(int(entry.name))
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + READY
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start: "
                                   f"{log.read_text(errors='replace')[-300:]}") from None
            time.sleep(0.05)


@contextlib.contextmanager
def exporter(binary: str, uri: str, tmp: Path) -> Iterator[int]:
    """Debian's libvirt exporter on a free loopback port; stopped by PID."""
    port = free_port()
    log = tmp / "exporter.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}",
                                 f"--libvirt.uri={uri}"], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=out)
    try:
        wait_port(port, proc, EXPORTER, log)
        yield port
    finally:
        bench_qemu._stop(proc)


def launcher(tmp: Path) -> Path | None:
    """A 755 script running ``python -m hvmon.plugins.collectd`` that nobody can use.

    The venv's interpreter may sit under a 0700 home: the system python of the same
    version runs this checkout with the venv's site-packages (docs/collectd.md).
    """
    wanted = f"python{sys.version_info.major}.{sys.version_info.minor}"
    python = next((p for p in (f"/usr/bin/{wanted}", f"/usr/local/bin/{wanted}")
                   if os.access(p, os.X_OK)), None)
    if python is None:
        return None
    site = sysconfig.get_paths()["purelib"]
    script = tmp / "hvmon-collectd-exec"
    script.write_text("#!/bin/sh\n"
                      f"PYTHONPATH='{REPO}:{site}' PYTHONDONTWRITEBYTECODE=1 "
                      f"exec '{python}' -m hvmon.plugins.collectd \"$@\"\n")
    script.chmod(0o755)
    return script


def listval(sock_path: Path) -> tuple[int, set[str]]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(sock_path))
        sock.sendall(b"LISTVAL\n")
        reader = sock.makefile("r", encoding="utf-8", errors="replace")
        first = reader.readline()
        lines = [first]
        with contextlib.suppress(ValueError):
            lines += [reader.readline() for _ in range(max(0, int(first.split()[0])))]
    return parse_listval([line.rstrip("\n") for line in lines])


@dataclass
class CollectdFigure:
    agent_ms: float
    daemon_ms: float
    values: int

    @property
    def total_ms(self) -> float:
        return self.agent_ms + self.daemon_ms


@dataclass
class CollectdRun:
    """A running collectd: its process (+ Exec children) and unixsock."""

    proc: subprocess.Popen[bytes]
    sock: Path
    kids: list[int] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [self.proc.pid, *self.kids]


@contextlib.contextmanager
def collectd_running(binary: str, workdir: Path, body: str, interval: float,
                     n: int) -> Iterator[CollectdRun]:
    """A collectd with ``body``, once it holds values of the ``n`` guests; stopped by PID."""
    workdir.mkdir(mode=0o755)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    conf = workdir / "collectd.conf"
    conf.write_text(collectd_conf(workdir, interval, body, sink.getsockname()[1]))
    checked = subprocess.run([binary, "-t", "-C", str(conf)], capture_output=True, text=True,
                             timeout=30, check=False)
    if checked.returncode != 0:
        sink.close()
        raise RuntimeError(f"collectd config: {(checked.stdout + checked.stderr).strip()[-300:]}")
    with (workdir / "collectd.out").open("wb") as out:
        proc = subprocess.Popen([binary, "-f", "-C", str(conf)], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    run = CollectdRun(proc, workdir / "collectd.sock")
    try:
        deadline = time.monotonic() + READY
        seen: set[str] = set()
        while len(seen) < n:
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (workdir / "collectd.log").read_text(errors="replace")
                raise RuntimeError(f"collectd saw {len(seen)} of {n} guests: {log[-400:]}")
            time.sleep(interval / 2)
            with contextlib.suppress(OSError, ValueError):
                seen = {d for d in listval(run.sock)[1] if d.startswith(PREFIX + "-")}
        run.kids = children(proc.pid)
        yield run
    finally:
        bench_qemu._stop(proc)
        sink.close()
        for kid in run.kids:  # an Exec child collectd did not end
            with contextlib.suppress(OSError):
                os.kill(kid, 9)


def cpu_per_interval(runs: list[tuple[CollectdRun, int]], interval: float,
                     intervals: int) -> list[CollectdFigure]:
    """CPU ms per interval of each (collectd, daemon PID) over one common window."""
    time.sleep(interval)  # one more interval: every plugin past its first read
    pids = [pid for run, daemon in runs for pid in (*run.pids, daemon)]
    before = {pid: cpu_sample(pid) for pid in pids}
    begin = time.monotonic()
    time.sleep(interval * intervals)
    after = {pid: cpu_sample(pid) for pid in pids}
    done = (time.monotonic() - begin) / interval

    def ms(group: list[int]) -> float:
        return cpu_between({p: before[p] for p in group}, after) * 1000 / done

    return [CollectdFigure(ms(run.pids), ms([daemon]), listval(run.sock)[0])
            for run, daemon in runs]


# --- guests ------------------------------------------------------------------------------
class HvmonGuests:
    """Guests on hvmond through the Python API."""

    def __init__(self, uri: str, kind: str) -> None:
        import hvmon  # noqa: PLC0415

        self.conn = hvmon.open(uri)
        self.kind = kind
        self.domains: list[Any] = []

    def grow(self, n: int) -> None:
        while len(self.domains) < n:
            dom = self.conn.define_domain_xml(
                bench_qemu.guest_xml(f"{PREFIX}-{len(self.domains)}", self.kind))
            self.domains.append(dom)
            dom.create()

    def clear(self) -> None:
        for dom in self.domains:
            with contextlib.suppress(Exception):
                dom.destroy()
            with contextlib.suppress(Exception):
                dom.undefine()
        self.domains.clear()
        with contextlib.suppress(Exception):
            self.conn.close()


class VirshGuests:
    """Guests on the private libvirtd through one virsh process per batch."""

    def __init__(self, virsh: str, uri: str, kind: str, workdir: Path) -> None:
        self.virsh, self.uri, self.kind, self.workdir = virsh, uri, kind, workdir
        self.count = 0

    def _run(self, commands: list[str], check: bool = True) -> None:
        if commands:
            subprocess.run([self.virsh, "-q", "-c", self.uri, "; ".join(commands)],
                           check=check, capture_output=True, timeout=600)

    def grow(self, n: int) -> None:
        commands = []
        for index in range(self.count, n):
            path = self.workdir / f"{PREFIX}-{index}.xml"
            path.write_text(bench_qemu.guest_xml(f"{PREFIX}-{index}", self.kind))
            path.chmod(0o644)
            commands += [f"define {path}", f"start {PREFIX}-{index}"]
        self._run(commands)
        self.count = max(self.count, n)

    def clear(self) -> None:
        self._run([f"destroy {PREFIX}-{i}" for i in range(self.count)], check=False)
        self.count = 0


# --- the measured parts ------------------------------------------------------------------
def timed_run(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    begin = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    elapsed = time.perf_counter() - begin
    if done.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} failed: {done.stderr.strip()[-300:]}")
    return elapsed, done.stdout


def alternate(first: Callable[[], float], second: Callable[[], float],
              repeat: int) -> tuple[float, float]:
    """Medians of ``repeat`` alternating calls of each (the callers warm both up first)."""
    ours, theirs = [], []
    for _ in range(repeat):
        ours.append(first())
        theirs.append(second())
    return statistics.median(ours), statistics.median(theirs)


@dataclass
class Results:
    domstats: list[dict[str, Any]] = field(default_factory=list)
    scrape: list[dict[str, Any]] = field(default_factory=list)
    collectd: list[dict[str, Any]] = field(default_factory=list)
    missing_keys: set[str] = field(default_factory=set)
    missing_names: set[str] | None = None
    notes: list[str] = field(default_factory=list)


def measure_domstats(hv_uri: str, lv_uri: str, virsh: str, n: int, repeat: int,
                     res: Results, pycache: Path) -> None:
    """An installed hvmon has its ``.pyc`` files: the runs share a bytecode cache in
    ``pycache`` (filled by the warm-up run) even where the environment sets
    ``PYTHONDONTWRITEBYTECODE`` (as bench_check_hvmon does)."""
    hv_env = {k: v for k, v in os.environ.items()
              if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    hv_env["PYTHONPYCACHEPREFIX"] = str(pycache)
    lv_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"}
    hv_argv = [str(Path(sys.executable).parent / "hvmon"), "-c", hv_uri, "domstats"]
    lv_argv = [virsh, "-c", lv_uri, "domstats"]
    ours = parse_domstats(timed_run(hv_argv, hv_env)[1])  # also the warm-up runs
    theirs = parse_domstats(timed_run(lv_argv, lv_env)[1])
    if len(ours) != n or len(theirs) != n:
        raise RuntimeError(f"domstats saw {len(ours)} (hvmon) / {len(theirs)} (virsh) of {n}")
    res.missing_keys |= set().union(*theirs.values()) - set().union(*ours.values())
    hv, lv = alternate(lambda: timed_run(hv_argv, hv_env)[0],
                       lambda: timed_run(lv_argv, lv_env)[0], repeat)
    res.domstats.append({"guests": n, "hvmon s": hv, "virsh s": lv,
                         "hvmon keys": len(set().union(*ours.values())),
                         "virsh keys": len(set().union(*theirs.values()))})


def measure_scrape(hv_port: int, lv_port: int, n: int, repeat: int, res: Results) -> None:
    hv_client, lv_client = Client(hv_port), Client(lv_port)
    try:
        hv_body, lv_body = hv_client.get(), lv_client.get()  # also the warm-up scrapes

        def one(client: Client) -> float:
            begin = time.perf_counter()
            client.get()
            return time.perf_counter() - begin

        hv, lv = alternate(lambda: one(hv_client), lambda: one(lv_client), repeat)
    finally:
        hv_client.close()
        lv_client.close()
    missing = {name for name in metric_names(lv_body) - metric_names(hv_body)
               if name.startswith("libvirt_")}
    res.missing_names = (res.missing_names or set()) | missing
    res.scrape.append({"guests": n, "hvmon ms": hv * 1000, "libvirt exporter ms": lv * 1000,
                       "hvmon domains": series_count(hv_body),
                       "exporter domains": series_count(lv_body),
                       "hvmon bytes": len(hv_body), "exporter bytes": len(lv_body)})


def measure_collectd(binary: str, launch: Path, hv_ro_uri: str, hv_pid: int, lv_uri: str,
                     lv_pid: int, n: int, interval: float, intervals: int, workdir: Path,
                     res: Results) -> None:
    with collectd_running(binary, workdir / f"cd-hv-{n}", exec_body(launch, hv_ro_uri),
                          interval, n) as hv_run, \
            collectd_running(binary, workdir / f"cd-lv-{n}", virt_body(lv_uri),
                             interval, n) as lv_run:
        ours, theirs = cpu_per_interval([(hv_run, hv_pid), (lv_run, lv_pid)], interval,
                                        intervals)
    res.collectd.append({
        "guests": n, "hvmon ms": ours.total_ms, "virt ms": theirs.total_ms,
        "exec side: collectd+child ms": ours.agent_ms, "hvmond ms": ours.daemon_ms,
        "virt side: collectd ms": theirs.agent_ms, "libvirtd ms": theirs.daemon_ms,
        "hvmon values": ours.values, "virt values": theirs.values})


# --- driver ------------------------------------------------------------------------------
class Steps:
    """Wall time of the steps of one size, for the progress line."""

    def __init__(self) -> None:
        self.done: list[str] = []
        self.mark = time.perf_counter()

    def __call__(self, label: str) -> None:
        now = time.perf_counter()
        self.done.append(f"{label} {now - self.mark:.1f} s")
        self.mark = now

    def __str__(self) -> str:
        return ", ".join(self.done)


def libvirtd_pid(lv_dir: Path) -> int:
    return int((lv_dir / "run" / "libvirtd.pid").read_text().strip())


class Blocked(Exception):
    """The libvirt side cannot run here (the script skips, naming why)."""


def run(args: argparse.Namespace, kind: str, res: Results) -> str:
    """Every part over the sizes; returns the libvirt description for the note."""
    info = bench_qemu.Libvirt()
    virsh = shutil.which("virsh")
    if virsh is None:
        raise Blocked("virsh is not installed (Debian package libvirt-clients)")
    exporter_bin = shutil.which(EXPORTER)
    collectd_bin = shutil.which("collectd") or shutil.which("collectd", path="/usr/sbin")
    if exporter_bin is None:
        res.notes.append(f"scrape: {EXPORTER} not installed")
    if collectd_bin is None or not TYPES_DB.is_file():
        res.notes.append("collectd: collectd-core not installed")
        collectd_bin = None
    if others := bench_qemu._other_libvirt_daemons():
        raise Blocked("another libvirt daemon runs here (" + ", ".join(others) +
                      "): not disturbed")
    hv_port = free_port()
    prom = (f'\n[agents.prometheus]\nenabled = true\nlisten = ["127.0.0.1:{hv_port}"]\n'
            'compat = "libvirt"\nsnapshot_max_age = 0.0\n')
    begin = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bqa-") as tmp:  # short: socket paths
        base = Path(tmp)
        base.chmod(0o755)  # libvirtd and collectd's Exec child run as nobody below it
        for sub in ("hv", "lv", "work"):
            (base / sub).mkdir()
        (base / "work").chmod(0o755)
        launch = launcher(base / "work") if collectd_bin else None
        if collectd_bin and launch is None:
            res.notes.append("collectd: no system python for the Exec user")
        with bench_qemu.hvmond_process(base / "hv", prom, ("prometheus",)) as (hv_uri, hv_proc), \
                bench_qemu.private_libvirtd(base / "lv", info) as lv_uri:
            (base / "hv").chmod(0o755)
            (base / "hv" / "run").chmod(0o755)
            if lv_uri is None:
                raise Blocked(f"libvirtd blocked: {info.blocked}")
            hv_ro = hv_uri.replace("hvmon-sock", "hvmon-sock-ro")
            ours, theirs = HvmonGuests(hv_uri, kind), VirshGuests(virsh, lv_uri, kind,
                                                                  base / "work")
            stack = contextlib.ExitStack()
            with stack:
                stack.callback(theirs.clear)
                stack.callback(ours.clear)
                lv_port = (stack.enter_context(exporter(exporter_bin, lv_uri, base / "work"))
                           if exporter_bin else None)
                print(f"  daemons up in {time.perf_counter() - begin:.1f} s", flush=True)
                for n in sorted(set(args.guests)):
                    step = Steps()
                    ours.grow(n)
                    theirs.grow(n)
                    time.sleep(args.settle)  # past the guests' firmware boot (TCG: busy)
                    step("guests started and settled")
                    measure_domstats(hv_uri, lv_uri, virsh, n, args.repeat, res,
                                     Path(tmp, "pycache"))
                    step("domstats")
                    if lv_port is not None:
                        measure_scrape(hv_port, lv_port, n, args.repeat, res)
                        step("scrape")
                    if collectd_bin and launch is not None:
                        measure_collectd(collectd_bin, launch, hv_ro, hv_proc.pid, lv_uri,
                                         libvirtd_pid(base / "lv"), n, args.interval,
                                         args.intervals, base / "work", res)
                        step("collectd")
                    print(f"  {n} guest(s) on each daemon: {step}", flush=True)
    return f"{info.version}, {info.mode}"


def fmt_rows(rows: list[dict[str, Any]], ratio_of: tuple[str, str]) -> str:
    if not rows:
        return "  (not measured)"
    columns = list(rows[0])
    head = [*columns, "ratio"]
    cells = [[f"{r[c]:.1f}" if isinstance(r[c], float) and "ms" in c else
              f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in columns]
             + [f"{r[ratio_of[0]] / r[ratio_of[1]]:.2f}" if r[ratio_of[1]] else "-"]
             for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *cells, strict=True)]
    lines = ["  " + "  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  " + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True))
              for row in cells]
    return "\n".join(lines)


def render(res: Results, libvirt: str, kind: str, interval: float, intervals: int) -> str:
    out = ["domstats CLI (wall s, process start included):",
           fmt_rows(res.domstats, ("hvmon s", "virsh s")),
           "Prometheus scrape (ms): hvmond compat=libvirt vs " + EXPORTER + ":",
           fmt_rows(res.scrape, ("hvmon ms", "libvirt exporter ms")),
           f"collectd CPU ms per interval ({interval:g} s, {intervals} intervals; "
           "collectd + Exec child + daemon):",
           fmt_rows(res.collectd, ("hvmon ms", "virt ms"))]
    if res.missing_names is not None:
        out.append("libvirt exporter names hvmon does not emit: "
                   + (", ".join(sorted(res.missing_names)) or "none (goal met)"))
    out.append("virsh domstats keys hvmon does not print: "
               + (", ".join(sorted(res.missing_keys)) or "none"))
    out.append(f"guests: bench_qemu's (64 MiB, 1 vCPU, no disk, no OS), type '{kind}'; "
               f"libvirt {libvirt}")
    out += [f"note: {note}" for note in res.notes]
    return "\n".join(out)


def write_json(path: Path, res: Results, libvirt: str, kind: str) -> None:
    """Tables, ratios per size and the missing-names goal (benchmarks/report.py)."""
    import report  # sibling module

    tables, ratios = [], []
    parts = (("domstats CLI, wall s", res.domstats, "hvmon s", "virsh s", "virsh domstats", "s",
              "domstats CLI"),
             ("Prometheus scrape, ms", res.scrape, "hvmon ms", "libvirt exporter ms", EXPORTER,
              "ms", "Prometheus scrape"),
             ("collectd CPU ms per interval", res.collectd, "hvmon ms", "virt ms",
              "collectd virt plugin + libvirtd", "ms CPU", "collectd exec + hvmond CPU/interval"))
    for title, rows, mine, other, peer, unit, label in parts:
        if rows:
            tables.append(report.table(title, list(rows[0]), rows))
        ratios += [report.ratio(f"{label}, {r['guests']} real guest(s)", peer, r[mine], r[other],
                                unit) for r in rows]
    if res.missing_keys:
        tables.append(report.table("virsh domstats keys hvmon does not print (indexes as N)",
                                   ["key"], [{"key": k} for k in sorted(res.missing_keys)]))
    goals = []
    if res.missing_names is not None:
        goals.append(report.goal("libvirt exporter metric names hvmon does not emit "
                                 "(real guests)", len(res.missing_names), "<=", 0, "names"))
    note = f"libvirt {libvirt}" + "".join(f"; {n}" for n in res.notes)
    if res.missing_names:
        note += "; missing names: " + ", ".join(sorted(res.missing_names))
    report.write_result(path, "bench_qemu_agents.py",
                        title=f"real guests ({'KVM' if kind == 'kvm' else 'TCG'}): domstats, "
                              "Prometheus, collectd vs libvirt",
                        note=note[:400], tables=tables, goals=goals, ratios=ratios)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="domstats/Prometheus/collectd on real guests")
    parser.add_argument("--guests", type=int, nargs="+", default=[1, 10, 20])
    parser.add_argument("--repeat", type=int, default=5, help="CLI runs and scrapes per size")
    parser.add_argument("--interval", type=float, default=1.0, help="collectd Interval (s)")
    parser.add_argument("--intervals", type=int, default=10, help="intervals measured")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds to wait after starting guests, before measuring")
    parser.add_argument("--kvm", action="store_true", help="domain type 'kvm' (default TCG)")
    parser.add_argument("--json", type=Path, help="write the results here (benchmarks/report.py)")
    args, _ = parser.parse_known_args(argv)  # run.py passes other scripts' options
    args.repeat = max(1, min(args.repeat, 50))
    kind = "kvm" if args.kvm else "qemu"
    if shutil.which("qemu-system-x86_64") is None:
        print("qemu-system-x86_64 is not installed (Debian package qemu-system-x86): skipped")
        return 0
    print(f"== real guests: hvmon vs libvirt (domstats CLI, Prometheus, collectd; median of "
          f"{args.repeat}) ==", flush=True)
    res = Results()
    try:
        libvirt = run(args, kind, res)
    except Blocked as exc:
        print(f"{exc}: skipped")
        if args.json:
            import report  # sibling module

            report.write_result(args.json, "bench_qemu_agents.py", status="skipped",
                                note=str(exc)[:400])
        return 0
    print(render(res, libvirt, kind, args.interval, args.intervals))
    if args.json:
        write_json(args.json, res, libvirt, kind)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
