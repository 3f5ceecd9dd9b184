"""QEMU driver: start, destroy and stats latency of N guests, hvmond next to libvirtd.

The same guests (64 MiB, one vCPU, machine ``pc``, a virtio balloon, no disk, no
OS) are run by both daemons on this machine, one after the other, for N = 1, 10
and 20 (``--guests``):

* ``start``: define and start the N guests one after the other (define -> running),
  total seconds;
* ``stats``: one ``get_all_domain_stats`` (libvirt: ``getAllDomainStats(0)``,
  every group) over the N running guests, median of ``--repeat`` calls after one
  warm-up call;
* ``destroy``: destroy the N guests one after the other, total seconds.

Each figure is the median of ``--cycles`` cycles (default 3), after one untimed
warm-up cycle of one guest that lets both daemons probe QEMU.

hvmon: ``hvmond`` on ``qemu:///embed?root=TMP`` (the QEMU driver, no agents),
reached through its UNIX socket with the Python API (``qemu+unix:///...``).

libvirt: a private ``libvirtd`` (Debian ``libvirt-daemon-system``): its own
``libvirtd.conf`` (``unix_sock_dir`` in a temp dir) and ``qemu.conf``, started
with ``--config`` and ``--pid-file`` and stopped by PID. As root it runs as
uid/gid 65534 (``nobody``), i.e. libvirt's ``qemu:///session`` with every
directory (``XDG_*``) in the temp dir, because a root ``libvirtd`` always uses
the system's ``/etc/libvirt``, ``/run/libvirt`` and ``/var/lib/libvirt`` and
the system ``virtlogd``: it would share state with a system libvirtd. Its
``qemu.conf`` sets ``stdio_handler = "file"`` (no virtlogd). A session
libvirtd does no cgroup, namespace or security-label work, so it is if
anything faster than ``qemu:///system``. The client is libvirt's Python
binding (Debian ``python3-libvirt``, run by the system ``python3`` in a
subprocess: the venv cannot import it), or ``virsh`` (each batch in one virsh
process, minus the time of a ``virsh uri`` run) when the binding is missing.
When root and ``libvirtd`` is missing, the Debian packages are installed.

Goal (issue 10): hvmon no slower than libvirt on each row (ratio <= 1).

Usage: ``python benchmarks/bench_qemu.py [--guests 1 10 20] [--cycles 3] [--repeat 5] [--kvm]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

GOAL = 1.0
LIBVIRT_PACKAGES = ["libvirt-daemon-system", "libvirt-daemon-driver-qemu", "libvirt-clients",
                    "python3-libvirt"]
SYSTEM_PYTHON = "/usr/bin/python3"
NOBODY = 65534
READY_TIMEOUT = 60.0
OPS = ("start", "stats", "destroy")


def guest_xml(name: str, kind: str) -> str:
    """The benchmark guest: no OS, 64 MiB, one vCPU, a balloon (both daemons get this XML)."""
    return f"""<domain type='{kind}'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><memballoon model='virtio'/></devices>
</domain>"""


# --- the measured cycle (also run by the system python for libvirt's binding) -----------
class Client(Protocol):
    #: seconds each call spends outside the daemon's work (virsh: process start + open)
    overhead: float

    def define_start(self, name: str) -> Any: ...

    def stats(self) -> int: ...

    def destroy(self, handle: Any) -> None: ...

    def undefine(self, handle: Any) -> None: ...


def cycle(client: Client, n: int, repeat: int, prefix: str) -> dict[str, float]:
    """Start n guests, time stats over them, destroy them; seconds per operation.

    Undefining the guests after the destroys is not timed.
    """
    handles: list[Any] = []
    try:
        begin = time.perf_counter()
        for index in range(n):
            handles.append(client.define_start(f"{prefix}-{index}"))
        started = time.perf_counter() - begin - n * client.overhead
        if client.stats() != n:  # warm-up, and a check that every guest is seen
            raise RuntimeError(f"stats did not cover the {n} guests")
        samples = []
        for _ in range(repeat):
            begin = time.perf_counter()
            client.stats()
            samples.append(time.perf_counter() - begin - client.overhead)
        begin = time.perf_counter()
        for handle in handles:
            client.destroy(handle)
        destroyed = time.perf_counter() - begin - n * client.overhead
        for handle in handles:
            client.undefine(handle)
        handles.clear()
        return {"start": started, "stats": statistics.median(samples), "destroy": destroyed}
    finally:
        for handle in handles:  # a failed cycle leaves nothing behind
            with contextlib.suppress(Exception):
                client.destroy(handle)
            with contextlib.suppress(Exception):
                client.undefine(handle)


def run_cycles(client: Client, sizes: list[int], cycles: int,
               repeat: int) -> dict[int, dict[str, float]]:
    """Median figures per size, after one untimed warm-up cycle of one guest."""
    cycle(client, 1, 1, "bench-warmup")
    result = {}
    for n in sizes:
        runs = [cycle(client, n, repeat, f"bench-{n}-{c}") for c in range(cycles)]
        result[n] = {op: statistics.median(run[op] for run in runs) for op in OPS}
    return result


class LibvirtBinding:
    """libvirt's Python binding (system python only); undefine is excluded from destroy."""

    def __init__(self, uri: str, kind: str) -> None:
        import libvirt  # noqa: PLC0415 - the system python's binding, not the venv's

        self.conn = libvirt.open(uri)
        self.kind = kind
        self.overhead = 0.0

    def define_start(self, name: str) -> Any:
        dom = self.conn.defineXML(guest_xml(name, self.kind))
        dom.create()
        return dom

    def stats(self) -> int:
        return len(self.conn.getAllDomainStats(0))

    def destroy(self, handle: Any) -> None:
        handle.destroy()

    def undefine(self, handle: Any) -> None:
        handle.undefine()


def libvirt_client_main(argv: list[str]) -> int:
    """``--libvirt-client URI KIND CYCLES REPEAT N...``: print the figures as JSON."""
    uri, kind, cycles, repeat, *sizes = argv
    client = LibvirtBinding(uri, kind)
    print(json.dumps(run_cycles(client, [int(s) for s in sizes], int(cycles), int(repeat))))
    return 0


# --- hvmon: hvmond on an embedded QEMU root --------------------------------------------
class HvmonClient:
    def __init__(self, uri: str, kind: str) -> None:
        import hvmon  # noqa: PLC0415 - the venv's package; the system python never gets here

        self.conn = hvmon.open(uri)
        self.kind = kind
        self.overhead = 0.0

    def define_start(self, name: str) -> Any:
        dom = self.conn.define_domain_xml(guest_xml(name, self.kind))
        dom.create()
        return dom

    def stats(self) -> int:
        return len(self.conn.get_all_domain_stats())

    def destroy(self, handle: Any) -> None:
        handle.destroy()

    def undefine(self, handle: Any) -> None:
        handle.undefine()


AGENT_PLUGINS = ("prometheus", "snmp", "collectd", "cim", "amqp")


@contextlib.contextmanager
def hvmond(tmp: Path) -> Iterator[str]:
    """hvmond serving ``qemu:///embed?root=tmp/root``; yields the client URI."""
    with hvmond_process(tmp) as (uri, _):
        yield uri


@contextlib.contextmanager
def hvmond_process(tmp: Path, extra_config: str = "",
                   plugins: tuple[str, ...] = ()) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """hvmond on ``qemu:///embed?root=tmp/root`` with only the agent ``plugins`` loaded.

    ``extra_config`` is appended to its TOML config (e.g. an ``[agents.prometheus]``
    table). Yields the client URI and the daemon's process; every guest left in the
    root is ended by PID afterwards.
    """
    from urllib.parse import quote  # noqa: PLC0415

    root, run = tmp / "root", tmp / "run"
    config = tmp / "hvmond.toml"
    config.write_text(f'[daemon]\nuri = "qemu:///embed?root={root}"\nsnapshot_interval = 0\n'
                      + extra_config)
    log = tmp / "hvmond.log"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HVMON_DISABLE_PLUGINS"] = ",".join(p for p in AGENT_PLUGINS if p not in plugins)
    binary = Path(sys.executable).parent / "hvmond"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(binary), "--config", str(config), "--run-dir", str(run),
                                 "--state-dir", str(tmp / "state")], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        end = time.monotonic() + READY_TIMEOUT
        while "\nready " not in "\n" + log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("hvmond did not get ready: " +
                                   log.read_text(errors="replace")[-500:])
            time.sleep(0.05)
        yield (f"qemu+unix:///embed?root={quote(str(root))}"
               f"&socket={quote(str(run / 'hvmon-sock'))}", proc)
    finally:
        _stop(proc)
        from hvmon.core.drivers.qemu import process  # noqa: PLC0415

        for status_file in (root / "run/qemu").glob("*.status.json"):
            status = process.read_status(status_file)
            if status is not None:
                with contextlib.suppress(Exception):
                    process.terminate(status.pid, status.uuid)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, SIGKILL after 15 s; reaped."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# --- libvirt: a private libvirtd ---------------------------------------------------------
@dataclass
class Libvirt:
    """What the libvirt side ran with, or why it could not run."""

    blocked: str = ""
    version: str = ""
    client: str = ""
    mode: str = ""
    tried: list[str] = field(default_factory=list)


def _libvirtd_binary(info: Libvirt) -> str | None:
    binary = shutil.which("libvirtd") or shutil.which("libvirtd", path="/usr/sbin:/sbin")
    if binary is None and os.geteuid() == 0 and shutil.which("apt-get"):
        info.tried.append("apt-get install " + " ".join(LIBVIRT_PACKAGES))
        print("installing Debian packages: " + " ".join(LIBVIRT_PACKAGES), flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                        *LIBVIRT_PACKAGES], check=False, env=env)
        binary = shutil.which("libvirtd", path="/usr/sbin:/sbin:/usr/bin")
    if binary is None:
        info.blocked = ("libvirtd is not installed (Debian packages " +
                        ", ".join(LIBVIRT_PACKAGES) + ")")
    return binary


def _other_libvirt_daemons() -> list[str]:
    """Running libvirtd/virtqemud processes (read from /proc; never touched)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                name = (entry / "comm").read_text().strip()
                if name in ("libvirtd", "virtqemud"):
                    found.append(f"{name} pid {entry.name}")
    return found


@contextlib.contextmanager
def private_libvirtd(tmp: Path, info: Libvirt) -> Iterator[str | None]:
    """A libvirtd of its own in ``tmp``; yields its URI, or None with ``info.blocked`` set."""
    binary = _libvirtd_binary(info)
    if binary is None:
        yield None
        return
    tmp.chmod(0o755)
    dirs = {name: tmp / name for name in ("home", "run", "config", "cache", "data")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    conf_dir = dirs["config"] / "libvirt"
    conf_dir.mkdir(exist_ok=True)
    sock_dir = dirs["run"] / "libvirt"
    (conf_dir / "libvirtd.conf").write_text(f'unix_sock_dir = "{sock_dir}"\n')
    (conf_dir / "qemu.conf").write_text('stdio_handler = "file"\n')
    pidfile = dirs["run"] / "libvirtd.pid"
    as_nobody = os.geteuid() == 0
    if as_nobody:
        for path in [tmp, *tmp.rglob("*")]:
            os.chown(path, NOBODY, NOBODY)
        dirs["run"].chmod(0o700)
    info.mode = ("session mode as uid 65534, private XDG dirs and socket" if as_nobody else
                 "session mode as this user, private XDG dirs and socket")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(dirs["home"]),
           "XDG_RUNTIME_DIR": str(dirs["run"]), "XDG_CONFIG_HOME": str(dirs["config"]),
           "XDG_CACHE_HOME": str(dirs["cache"]), "XDG_DATA_HOME": str(dirs["data"]),
           "LANG": "C"}
    log = tmp / "libvirtd.log"
    argv = [binary, "--config", str(conf_dir / "libvirtd.conf"), "--pid-file", str(pidfile)]
    info.tried.append(" ".join(argv) + (" (uid 65534)" if as_nobody else ""))
    ids = [str(NOBODY), str(NOBODY)] if as_nobody else []
    with log.open("wb") as out:  # under a subreaper: see REAPER
        proc = subprocess.Popen([sys.executable, "-c", REAPER, *ids, "--", *argv], env=env,
                                cwd=tmp, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    sock = sock_dir / "libvirt-sock"
    uri = f"qemu:///session?socket={sock}"
    try:
        end = time.monotonic() + READY_TIMEOUT
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > end:
                lines = [line for line in log.read_text(errors="replace").splitlines()
                         if " error : " in line] or ["no socket, no error logged"]
                info.blocked = f"libvirtd did not start: {lines[-1][-200:]}"
                yield None
                return
            time.sleep(0.05)
        info.version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                                      check=False).stdout.strip()
        yield uri
    finally:
        _stop(proc)
        # a session libvirtd leaves its guests running when it stops: end them by PID
        for pid_file in (dirs["run"] / "libvirt/qemu/run").glob("*.pid"):
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)


#: Runs libvirtd (as ``UID GID`` when given) and reaps its orphans at once. libvirtd
#: daemonizes each QEMU and its destroy waits until the pid is gone; when this machine's
#: init reaps orphans late (in the development container: ~1.6 s), that wait would be
#: charged to libvirt. Under systemd the QEMU is reaped at once; so it is here.
REAPER = """
import ctypes, os, signal, subprocess, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
args = sys.argv[1:]
split = args.index("--")
ids, argv = args[:split], args[split + 1:]
extra = {"user": int(ids[0]), "group": int(ids[1]), "extra_groups": []} if ids else {}
daemon = subprocess.Popen(argv, **extra)
signal.signal(signal.SIGTERM, lambda *_: daemon.send_signal(signal.SIGTERM))
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        break
    except InterruptedError:
        continue
    if pid == daemon.pid:
        daemon.returncode = os.waitstatus_to_exitcode(status)
        break
"""


def _binding_available() -> bool:
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", "import libvirt"], capture_output=True,
                          check=False).returncode == 0


def measure_libvirt(uri: str, kind: str, sizes: list[int], cycles: int, repeat: int,
                    info: Libvirt, workdir: Path) -> dict[int, dict[str, float]]:
    if _binding_available():
        info.client = "python3-libvirt (system python)"
        result = subprocess.run([SYSTEM_PYTHON, str(Path(__file__).resolve()),
                                 "--libvirt-client", uri, kind, str(cycles), str(repeat),
                                 *map(str, sizes)], capture_output=True, text=True,
                                check=False, env={"PATH": os.environ.get("PATH", ""),
                                                  "LANG": "C"})
        if result.returncode != 0:
            raise RuntimeError(f"libvirt client failed: {result.stderr.strip()[-400:]}")
        return {int(n): figures for n, figures in json.loads(result.stdout).items()}
    virsh = shutil.which("virsh")
    if virsh is None:
        raise RuntimeError("neither python3-libvirt nor virsh (libvirt-clients) is installed")
    info.client = "virsh (a batch per process, minus a 'virsh uri' run)"
    return run_cycles(VirshClient(virsh, uri, kind, workdir), sizes, cycles, repeat)


class VirshClient:
    """virsh without python3-libvirt: a virsh process per call, its start + open subtracted."""

    def __init__(self, virsh: str, uri: str, kind: str, workdir: Path) -> None:
        self.virsh, self.uri, self.kind = virsh, uri, kind
        self.tmp = workdir
        samples = []
        for _ in range(5):
            begin = time.perf_counter()
            self._run("uri")
            samples.append(time.perf_counter() - begin)
        self.overhead = statistics.median(samples)

    def _run(self, command: str) -> str:
        return subprocess.run([self.virsh, "-q", "-c", self.uri, command], check=True,
                              capture_output=True, text=True, timeout=300).stdout

    def define_start(self, name: str) -> str:
        path = self.tmp / f"{name}.xml"
        path.write_text(guest_xml(name, self.kind))
        path.chmod(0o644)
        self._run(f"define {path}; start {name}")
        return name

    def stats(self) -> int:
        return self._run("domstats").count("Domain: ")

    def destroy(self, handle: str) -> None:
        self._run(f"destroy {handle}")

    def undefine(self, handle: str) -> None:
        self._run(f"undefine {handle}")


# --- the table ---------------------------------------------------------------------------
def render(ours: dict[int, dict[str, float]], theirs: dict[int, dict[str, float]],
           info: Libvirt, kind: str) -> str:
    labels = {"start": "start (define -> running)", "stats": "stats (all groups, N guests)",
              "destroy": "destroy"}
    header = ("operation", "N", "hvmon s", "libvirt s", "hvmon/libvirt", "goal met?")
    lines = []
    for n in sorted(ours):
        for op in OPS:
            mine = ours[n].get(op)
            other = theirs.get(n, {}).get(op)
            ratio = mine / other if mine is not None and other else None
            verdict = ("blocked" if info.blocked else "-") if ratio is None else (
                "yes" if ratio <= GOAL else "NO")
            lines.append((labels[op], str(n), f"{mine:.3f}" if mine is not None else "-",
                          f"{other:.3f}" if other is not None else "-",
                          f"{ratio:.2f}" if ratio is not None else "-", verdict))
    widths = [max(len(col) for col in column) for column in zip(header, *lines, strict=False)]
    fmt = " | ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    out = [fmt.format(*header), "-+-".join("-" * w for w in widths)]
    out += [fmt.format(*line) for line in lines]
    accel = "KVM" if kind == "kvm" else "TCG"
    out += ["", f"guests: 64 MiB, 1 vCPU, machine pc, no disk, no OS; domain type '{kind}' "
            f"({accel}); start/destroy: N guests one after the other (total s); stats: one "
            "call over N running guests"]
    if info.blocked:
        out.append(f"libvirt BLOCKED: {info.blocked}")
        out += [f"  tried: {step}" for step in info.tried]
    else:
        out.append(f"libvirt: {info.version}, {info.mode}; client {info.client}")
    out.append("hvmon: hvmond (qemu:///embed root in a temp dir) over its UNIX socket, "
               "Python API")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["--libvirt-client"]:
        return libvirt_client_main(args_list[1:])
    parser = argparse.ArgumentParser(description="QEMU driver latency next to libvirtd")
    parser.add_argument("--guests", type=int, nargs="+", default=[1, 10, 20])
    parser.add_argument("--cycles", type=int, default=3, help="cycles per size (median)")
    parser.add_argument("--repeat", type=int, default=5, help="stats calls per cycle")
    parser.add_argument("--kvm", action="store_true", help="domain type 'kvm' (default TCG)")
    parser.add_argument("--json", type=Path, help="write the results here (benchmarks/report.py)")
    args, _ = parser.parse_known_args(args_list)  # run.py passes other scripts' options
    kind = "kvm" if args.kvm else "qemu"
    cycles, repeat = max(1, min(args.cycles, 5)), max(1, min(args.repeat, 20))
    if shutil.which("qemu-system-x86_64") is None:
        print("qemu-system-x86_64 is not installed (Debian package qemu-system-x86): skipped")
        return 0
    print(f"== QEMU driver: hvmond vs libvirtd (seconds, median of {cycles} cycles) ==",
          flush=True)
    info = Libvirt()
    with tempfile.TemporaryDirectory(prefix="bq-") as tmp:  # short: socket paths
        base = Path(tmp)
        base.chmod(0o755)  # libvirtd runs as nobody below it
        (base / "hv").mkdir()
        with hvmond(base / "hv") as uri:
            ours = run_cycles(HvmonClient(uri, kind), args.guests, cycles, repeat)
        theirs: dict[int, dict[str, float]] = {}
        (base / "lv").mkdir()
        if others := _other_libvirt_daemons():
            info.blocked = ("another libvirt daemon runs here (" + ", ".join(others) +
                            "): not disturbed, no private one started")
        else:
            with private_libvirtd(base / "lv", info) as libvirt_uri:
                if libvirt_uri is not None:
                    try:
                        theirs = measure_libvirt(libvirt_uri, kind, args.guests, cycles,
                                                 repeat, info, base / "lv")
                    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
                        info.blocked = f"libvirt side failed: {exc}"
    print(render(ours, theirs, info, kind))
    if args.json:
        write_json(args.json, ours, theirs, info, kind)
    return 0


def write_json(path: Path, ours: dict[int, dict[str, float]],
               theirs: dict[int, dict[str, float]], info: Libvirt, kind: str) -> None:
    """Each operation per size and its hvmon/libvirtd ratio (benchmarks/report.py)."""
    import report  # sibling module

    columns = ("operation", "guests", "hvmon s", "libvirt s")
    lines, ratios = [], []
    for n in sorted(ours):
        for op in OPS:
            mine, other = ours[n].get(op), theirs.get(n, {}).get(op)
            lines.append({"operation": op, "guests": n, "hvmon s": mine, "libvirt s": other})
            ratios.append(report.ratio(f"{op}, {n} guest(s)", "libvirtd", mine, other))
    note = f"libvirt blocked: {info.blocked}" if info.blocked else (
        f"libvirt {info.version}, {info.mode}")
    report.write_result(path, "bench_qemu.py",
                        title=f"QEMU driver vs libvirtd ({'KVM' if kind == 'kvm' else 'TCG'})",
                        note=note[:400], tables=[report.table("seconds", columns, lines)],
                        ratios=ratios)


if __name__ == "__main__":
    raise SystemExit(main())
