"""Three daemons on the machine's RabbitMQ and the real ``hvmon console`` over them.

Each daemon runs its own test-driver URI under its own host id; the console
(``hvmon.cli.main`` with the plugin's commands, as the entry point runs it)
sees all of them, lists their domains with a host column, gets the event when
a domain starts on one host, controls a domain on a chosen host, is refused by
the read-only one, and marks a host stale when its agent goes away. Every
indication and reply seen on the way is validated against docs/amqp.md.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from hvmon.cli.main import collect_commands, main
from hvmon.plugins.amqp.plugin import hvmon_add_cli_commands

from .conftest import amqp_options, make_daemon, running, start_console_process, until
from .schemas import Capture, validate

WEB = """<node>
  <cpu><mhz>2400</mhz><model>x86_64</model><active>8</active><nodes>1</nodes>
       <sockets>1</sockets><cores>4</cores><threads>2</threads></cpu>
  <memory>16777216</memory>
  <domain type='test'><name>web1</name><uuid>1b4e28ba-2fa1-11d2-883f-0016d3cca427</uuid>
    <memory unit='MiB'>512</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>
  </domain>
  <domain type='test'><name>web2</name><uuid>2b4e28ba-2fa1-11d2-883f-0016d3cca427</uuid>
    <memory unit='MiB'>512</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>
    <metadata><test:runstate xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>5</test:runstate></metadata>
  </domain>
</node>
"""


class Console:
    """Runs ``hvmon console --prefix P --state S ...`` in a worker thread; keeps its output."""

    def __init__(self, capsys: pytest.CaptureFixture[str], prefix: str, state: Path) -> None:
        self.capsys, self.prefix, self.state = capsys, prefix, state
        self.out = self.err = ""
        self.commands = collect_commands([hvmon_add_cli_commands()])

    def collect(self) -> tuple[str, str]:
        captured = self.capsys.readouterr()
        self.out += captured.out
        self.err += captured.err
        return self.out, self.err

    async def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.collect()
        self.out = self.err = ""
        code = await asyncio.to_thread(main, ["console", "--prefix", self.prefix, "--state",
                                              str(self.state), "--wait", "2", *argv],
                                       commands=self.commands)
        out, err = self.collect()
        return code, out, err

    async def json(self, *argv: str) -> Any:
        code, out, err = await self(*argv, "--json")
        assert code == 0, err
        return json.loads(out)


class Watcher:
    """``hvmon console watch --json`` as a child process, stopped by PID."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, children: list[Any], prefix: str) -> Watcher:
        self = cls(await start_console_process(children, prefix, "watch", "--json",
                                               "--stale-after", "6"))
        assert self.proc.stderr is not None
        async with asyncio.timeout(30):
            line = await self.proc.stderr.readline()
        assert b"watching 3 host(s)" in line, line
        return self

    async def until(self, wanted: Any, what: str) -> dict[str, Any]:
        """The next JSON line for which ``wanted(line)`` is true."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(30):
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    assert self.proc.stderr is not None
                    err = (await self.proc.stderr.read()).decode()
                    pytest.fail(f"the watcher ended before {what}: {err[-2000:]}")
                body = json.loads(line)
                if wanted(body):
                    return body

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


def test_console_sees_lists_watches_and_controls_three_hosts(
        tmp_path: Path, prefix: str, capsys: pytest.CaptureFixture[str],
        children: list[Any]) -> None:
    node = tmp_path / "web.xml"
    node.write_text(WEB)
    hv1 = make_daemon(tmp_path, "test:///default",
                      amqp_options(prefix, "hv1.example", allowed_users=["guest"]), control=True)
    hv2 = make_daemon(tmp_path, f"test://{node}",  # full data rounds only at start:
                      amqp_options(prefix, "hv2.example", allowed_users=["guest"],
                                   data_interval=3600.0), control=True)  # the rest on change
    hv3 = make_daemon(tmp_path, "test:///default?seed=3",
                      amqp_options(prefix, "hv3.example", allowed_users=["guest"]))
    console = Console(capsys, prefix, tmp_path / "console-state.json")

    async def scenario() -> None:
        capture = await Capture.open(prefix)
        watcher = None
        try:
            async with running(hv1, hv2, hv3):
                watcher = await Watcher.start(children, prefix)
                await check_everything(console, watcher, node, capture)
                await hv3.stop()  # its agent goes away: the consoles mark it stale
                note = await watcher.until(
                    lambda e: e["kind"] == "host" and e["host"] == "hv3.example",
                    "hv3's status to change")
                assert note["status"] == "stale"
                hosts = await console.json("hosts")
                status = {h["host"]: h["status"] for h in hosts["hosts"]}
                assert status == {"hv1.example": "up", "hv2.example": "up",
                                  "hv3.example": "stale"}
                code, out, err = await console("list")
                assert code == 0 and "host hv3.example is stale" in err
                assert "hv3.example" not in out
            await until(lambda: {"heartbeat", "data", "event"} <= capture.kinds(), 10,
                        "every kind of indication")
        finally:
            await capture.close()
            if watcher is not None:
                await watcher.stop()
        for body in capture.bodies:
            validate(body["kind"], body)
        classes = {b["class"] for b in capture.bodies if b["kind"] == "data"}
        assert classes == {"node", "domain", "pool", "volume", "network"}

    asyncio.run(scenario())


async def check_everything(console: Console, watcher: Watcher, node: Path,
                           capture: Capture) -> None:
    # hosts: all three, with their control flag and facts from the heartbeat
    hosts = (await console.json("hosts"))["hosts"]
    assert [(h["host"], h["status"], h["control"]) for h in hosts] == [
        ("hv1.example", "up", True), ("hv2.example", "up", True), ("hv3.example", "up", False)]
    assert [h["uri"] for h in hosts] == ["test:///default", f"test://{node}",
                                         "test:///default?seed=3"]
    assert hosts[1]["domains"] == 2 and hosts[1]["domains_active"] == 1
    code, out, _ = await console("hosts")
    assert code == 0 and out.split("\n")[0].split() == [
        "Host", "Status", "Last", "seen", "Epoch", "Control", "URI", "Domains", "Active"]

    # list: every domain of every host, with the host column
    listing = await console.json("list")
    rows = {(d["host"], d["name"], d["state_label"]) for d in listing["domains"]}
    assert rows == {("hv1.example", "test", "running"), ("hv2.example", "web1", "running"),
                    ("hv2.example", "web2", "shut off"), ("hv3.example", "test", "running")}
    code, out, _ = await console("list")
    lines = out.splitlines()
    assert lines[0].split() == ["Host", "Id", "Name", "State"]
    assert any(line.split() == ["hv2.example", "-", "web2", "shut", "off"] for line in lines)

    # start web2 on hv2 from the console: the watcher (a real process) prints the event
    code, out, err = await console("call", "hv2.example", "domain", "create", "web2")
    assert code == 0, err
    assert "name:" in out and "web2" in out
    event = await watcher.until(lambda e: e["kind"] == "event", "the started event")
    assert (event["host"], event["event"], event["detail"], event["object"]["name"],
            event["severity"]) == ("hv2.example", "started", "booted", "web2", "info")
    validate("event", event)
    # hv2 publishes its domain data on change (its interval is an hour)
    def web2_running() -> bool:
        return any(b["kind"] == "data" and b["host"] == "hv2.example" and b["class"] == "domain"
                   and {o["name"]: o["state_label"] for o in b["objects"]}.get("web2")
                   == "running" for b in capture.bodies)

    await until(web2_running, 20, "hv2's domain data with web2 running")

    # control landed on hv2 only; hv1's and hv3's domains are as they were
    info = await console.json("info", "hv2.example", "domain", "web2")
    assert info["info"]["state_label"] == "running" and "statistics" in info["info"]
    listing = await console.json("list")
    assert {(d["host"], d["name"], d["state_label"]) for d in listing["domains"]} == {
        ("hv1.example", "test", "running"), ("hv2.example", "web1", "running"),
        ("hv2.example", "web2", "running"), ("hv3.example", "test", "running")}

    # the read-only host refuses control through the central gate
    code, out, err = await console("call", "hv3.example", "domain", "destroy", "test")
    assert code == 1
    assert "read-only connection: Domain.destroy is not allowed (code 29)" in err
    code, out, _ = await console("call", "hv3.example", "domain", "suspend", "test", "--json")
    reply = json.loads(out)
    assert code == 1 and reply["ok"] is False and reply["error"]["code"] == 29
    validate("reply", reply)
    info = await console.json("info", "hv3.example", "domain", "test")
    assert info["info"]["state_label"] == "running"

    # migrate: hv2's daemon drives web1 to another host (an empty test host by URI)
    empty = node.with_name("empty-host.xml")
    empty.write_text("<node/>")
    code, out, err = await console("migrate", "web1", "--from", "hv2.example",
                                   "--to-uri", f"test://{empty}")
    assert code == 0, err
    assert f"Domain 'web1' migrated from hv2.example to test://{empty}" in out
    info = await console.json("info", "hv2.example", "domain", "web1")
    assert info["info"]["state_label"] == "shut off"  # it left hv2
    code, _, err = await console("migrate", "test", "--from", "hv3.example",
                                 "--to-uri", f"test://{empty}")
    assert code == 1 and "(code 29)" in err  # a read-only host: refused by its gate

    # read methods and XML through call; a reply validates against the docs
    code, out, _ = await console("call", "hv1.example", "domain", "getXMLDesc", "test", "--json")
    reply = json.loads(out)
    assert code == 0 and reply["result"]["xml"].startswith("<domain")
    validate("reply", reply)
    node = await console.json("info", "hv1.example")
    assert node["info"]["cpus"] == 16 and node["info"]["statistics"]["domains"] == 1

    # errors are one line with the agent's code
    code, _, err = await console("call", "hv1.example", "domain", "frobnicate", "test")
    assert code == 1 and "unknown method 'domain.frobnicate'" in err and "(code 3)" in err
    code, _, err = await console("call", "nowhere.example", "domain", "list")
    assert code == 1 and "no agent for host 'nowhere.example'" in err
    code, _, err = await console("call", "hv1.example", "domain", "info", "nosuch")
    assert code == 1 and "(code 42)" in err


def test_console_migrates_to_a_host_named_by_its_heartbeat(
        tmp_path: Path, prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``migrate --to HOST``: the destination is the migration_uri HOST's heartbeat carries."""
    node = tmp_path / "web.xml"
    node.write_text(WEB)
    # host B serves its sockets (rpc) so host A's daemon can reach it by URI
    socket = tmp_path / "hvb.example" / "run" / "hvmon-sock"
    dest_uri = f"test+unix:///default?socket={socket}"
    hva = make_daemon(tmp_path, f"test://{node}",
                      amqp_options(prefix, "hva.example", allowed_users=["guest"]), control=True)
    hvb = make_daemon(tmp_path, "test:///default",
                      amqp_options(prefix, "hvb.example", migration_uri=dest_uri),
                      control=True, rpc=True)
    hvc = make_daemon(tmp_path, "test:///default?seed=3", amqp_options(prefix, "hvc.example"))
    console = Console(capsys, prefix, tmp_path / "console-state.json")

    async def scenario() -> None:
        capture = await Capture.open(prefix)
        try:
            async with running(hva, hvb, hvc):
                await until(lambda: any(b["kind"] == "heartbeat" and b["host"] == "hvb.example"
                                        for b in capture.bodies), 10, "hvb's heartbeat")
                beat = next(b for b in capture.bodies
                            if b["kind"] == "heartbeat" and b["host"] == "hvb.example")
                assert beat["migration_uri"] == dest_uri
                validate("heartbeat", beat)
                code, out, err = await console("migrate", "web1", "--from", "hva.example",
                                               "--to", "hvb.example", "--persistent")
                assert code == 0, err
                assert "Domain 'web1' migrated from hva.example to hvb.example" in out
                where: dict[tuple[str, str], str] = {}
                for _ in range(20):  # each host answers from its snapshot (0.5 s old at most)
                    listing = await console.json("list")
                    where = {(d["host"], d["name"]): d["state_label"]
                             for d in listing["domains"]}
                    if ("hvb.example", "web1") in where:
                        break
                    await asyncio.sleep(0.5)
                assert where[("hvb.example", "web1")] == "running"
                assert where.get(("hva.example", "web1")) in (None, "shut off")
                # a host that advertises nothing, and one that does not exist: one line each
                code, _, err = await console("migrate", "web2", "--from", "hva.example",
                                             "--to", "hvc.example")
                assert code == 1 and err.count("\n") == 1
                assert "hvc.example advertises no migration_uri" in err
                code, _, err = await console("migrate", "web2", "--from", "hva.example",
                                             "--to", "nowhere.example")
                assert code == 1 and "nowhere.example: no heartbeat" in err
                code, _, err = await console("migrate", "web2", "--from", "hva.example")
                assert code == 2 and "--to" in err  # one of --to / --to-uri is required
        finally:
            await capture.close()

    asyncio.run(scenario())
