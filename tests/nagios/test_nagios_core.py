"""A real Nagios core (Debian nagios4-core) running check_hvmon against hvmond.

The test writes a self-contained Nagios configuration in a temporary
directory (nagios_user/nagios_group = the current user, so the launcher, the
venv and the daemon's sockets are reachable by what Nagios runs), checks it
with ``nagios4 -v``, starts ``nagios4`` in the foreground and stops it by PID.
Checks are forced through the external command FIFO and their results read
from ``status.dat``.
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from toolcheck import need_tool

import hvmon

from .conftest import Daemon, short_dir, wait_for

OBJECTS = """
define timeperiod {{
    timeperiod_name always
    alias           always
    sunday          00:00-24:00
    monday          00:00-24:00
    tuesday         00:00-24:00
    wednesday       00:00-24:00
    thursday        00:00-24:00
    friday          00:00-24:00
    saturday        00:00-24:00
}}
define command {{
    command_name check_hvmon
    command_line {launcher} -U '{uri}' --max-age 0 -t 10 $ARG1$
}}
define command {{
    command_name notify_nobody
    command_line /bin/true
}}
define contact {{
    contact_name                  nobody
    host_notifications_enabled    0
    service_notifications_enabled 0
    host_notification_period      always
    service_notification_period   always
    host_notification_options     n
    service_notification_options  n
    host_notification_commands    notify_nobody
    service_notification_commands notify_nobody
}}
define host {{
    host_name             hv1
    address               127.0.0.1
    check_command         check_hvmon!host
    max_check_attempts    1
    check_interval        3600
    retry_interval        3600
    check_period          always
    contacts              nobody
    notification_period   always
    notification_interval 0
}}
"""

SERVICE = """
define service {{
    host_name             hv1
    service_description   {name}
    check_command         check_hvmon!{args}
    max_check_attempts    1
    check_interval        3600
    retry_interval        3600
    check_period          always
    contacts              nobody
    notification_period   always
    notification_interval 0
}}
"""

SERVICES = {"domain-test": "domain test --cookie-dir {d}/cookies",
            "pool-default": "pool default-pool", "hvmond": "daemon"}

MAIN = """
log_file={d}/nagios.log
cfg_file={d}/objects.cfg
object_cache_file={d}/objects.cache
precached_object_file={d}/objects.precache
resource_file={d}/resource.cfg
status_file={d}/status.dat
status_update_interval=1
nagios_user={user}
nagios_group={group}
check_external_commands=1
command_file={d}/nagios.cmd
lock_file={d}/nagios.lock
temp_file={d}/nagios.tmp
temp_path={d}/tmp
check_result_path={d}/checkresults
query_socket={d}/nagios.qh
state_retention_file={d}/retention.dat
retain_state_information=0
use_retained_program_state=0
interval_length=1
check_for_updates=0
bare_update_check=1
use_syslog=0
log_notifications=0
enable_notifications=0
enable_flap_detection=0
service_inter_check_delay_method=n
host_inter_check_delay_method=n
service_interleave_factor=1
max_service_check_spread=1
max_host_check_spread=1
check_result_reaper_frequency=1
max_check_result_reaper_time=1
service_check_timeout=30
host_check_timeout=30
execute_service_checks=1
execute_host_checks=1
accept_passive_service_checks=0
log_rotation_method=n
illegal_object_name_chars=`~!$%^&*|'"<>?,()=
illegal_macro_output_chars=`~$&|'"<>
"""


def write_config(d: Path, launcher: Path, uri: str) -> Path:
    for sub in ("tmp", "checkresults"):
        (d / sub).mkdir()
    objects = OBJECTS.format(launcher=launcher, uri=uri) + "".join(
        SERVICE.format(name=name, args=args.format(d=d)) for name, args in SERVICES.items())
    (d / "objects.cfg").write_text(objects)
    (d / "resource.cfg").write_text("$USER1$=/usr/lib/nagios/plugins\n")
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    main = d / "nagios.cfg"
    main.write_text(MAIN.format(d=d, user=user, group=group))
    return main


def parse_status(path: Path) -> dict[str, dict[str, str]]:
    """``servicestatus``/``hoststatus`` blocks of status.dat by service (or ``host:NAME``)."""
    blocks: dict[str, dict[str, str]] = {}
    kind, fields = "", {}
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line.endswith("{"):
            kind, fields = line[:-1].strip(), {}
        elif line == "}":
            if kind == "servicestatus":
                blocks[fields.get("service_description", "")] = fields
            elif kind == "hoststatus":
                blocks["host:" + fields.get("host_name", "")] = fields
        elif "=" in line:
            key, _, value = line.partition("=")
            fields[key] = value
    return blocks


class Nagios:
    """A running nagios4 with its directory."""

    def __init__(self, binary: str, d: Path, config: Path) -> None:
        self.d, self.config = d, config
        self.log = (d / "nagios.out").open("wb")
        self.proc = subprocess.Popen([binary, str(config)], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=d)

    def status(self) -> dict[str, dict[str, str]]:
        path = self.d / "status.dat"
        if self.proc.poll() is not None:
            pytest.fail(f"nagios4 exited with {self.proc.returncode}: "
                        f"{(self.d / 'nagios.out').read_text()[-2000:]}")
        try:
            return parse_status(path)
        except FileNotFoundError:
            return {}

    def command(self, text: str) -> None:
        """Write one external command to the FIFO (opened without blocking forever)."""
        fifo = self.d / "nagios.cmd"
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, f"[{int(time.time())}] {text}\n".encode())
        finally:
            os.close(fd)

    def force(self, service: str) -> int:
        """Force a check of ``service`` now; returns the time it was asked for."""
        asked = int(time.time())
        self.command(f"SCHEDULE_FORCED_SVC_CHECK;hv1;{service};{asked}")
        return asked

    def result(self, service: str, state: int, after: int, timeout: float = 30) -> dict[str, str]:
        """The status of ``service`` once a check after ``after`` gave ``state``."""
        def probe() -> dict[str, str] | None:
            block = self.status().get(service)
            if block and block.get("has_been_checked") == "1" and \
                    int(block.get("last_check", 0)) >= after and \
                    int(block.get("current_state", -1)) == state:
                return block
            return None

        last: dict[str, str] = {}

        def remember() -> dict[str, str] | None:
            nonlocal last
            block = probe()
            last = self.status().get(service, last)
            return block

        try:
            return wait_for(remember, timeout, f"{service} in state {state}", 0.2)  # type: ignore[return-value]
        except pytest.fail.Exception:
            pytest.fail(f"{service}: wanted state {state}, last status {last}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


@pytest.fixture
def nagios_dir() -> Iterator[Path]:
    import shutil

    d = short_dir()
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_nagios_runs_check_hvmon(launcher: Path, start_daemon: Callable[..., Daemon],
                                 nagios_dir: Path) -> None:
    binary = need_tool("nagios4")
    daemon = start_daemon()
    config = write_config(nagios_dir, launcher, daemon.uri())

    verify = subprocess.run([binary, "-v", str(config)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "Total Errors:   0" in verify.stdout
    assert "Total Warnings: 0" in verify.stdout

    nagios = Nagios(binary, nagios_dir, config)
    try:
        wait_for(lambda: (nagios_dir / "nagios.cmd").exists() and nagios.status(), 30,
                 "nagios4 to write status.dat and open its command file")
        # the first checks run at start-up (no inter-check delay)
        ok = nagios.result("domain-test", 0, 0)
        assert ok["plugin_output"].startswith("HVMON DOMAIN OK - 'test' is running (booted)")
        assert "test_memory=2147483648B;;;0;8589934592" in ok["performance_data"]
        assert nagios.result("hvmond", 0, 0)["plugin_output"].startswith("HVMON DAEMON OK")
        host = wait_for(lambda: (nagios.status().get("host:hv1") or {}).get("plugin_output"),
                        30, "the host check")
        assert (nagios.status().get("host:hv1") or {}).get("current_state") == "0"
        assert str(host).startswith("HVMON HOST OK")

        # destroy the domain through a read-write connection: CRITICAL
        with hvmon.open(daemon.uri(readonly=False)) as rw:
            rw.lookup_domain_by_name("test").destroy()
            critical = nagios.result("domain-test", 2, nagios.force("domain-test"))
            assert critical["plugin_output"] == "HVMON DOMAIN CRITICAL - 'test' is shut off " \
                                                "(destroyed)"

            # push the pool past 80 %: WARNING
            assert nagios.result("pool-default", 0, 0)["plugin_output"].startswith(
                "HVMON POOL OK - pool 'default-pool' 0% used")
            pool = rw.lookup_pool_by_name("default-pool")
            pool.create_volume_xml(
                "<volume><name>big.img</name><capacity unit='GiB'>85</capacity>"
                "<allocation unit='GiB'>85</allocation></volume>")
            warning = nagios.result("pool-default", 1, nagios.force("pool-default"))
            assert warning["plugin_output"] == ("HVMON POOL WARNING - pool 'default-pool' 85% "
                                                "used (outside range 0:80)")
            assert "'default-pool_usage'=85%;80;90;0;100" in warning["performance_data"]
    finally:
        nagios.stop()
    assert not (nagios_dir / "status.dat").exists()  # nagios removes it on a clean stop
