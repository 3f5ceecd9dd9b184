"""Lifecycle events reach every registered callback, with libvirt's details."""

from __future__ import annotations

import hvmon
from hvmon.core.access import AccessGate
from hvmon.core.events import LifecycleEvent as E

XML = """<domain type='test'><name>ev</name><memory>65536</memory>
<os><type>hvm</type></os></domain>"""


def test_lifecycle_events_with_details():
    with hvmon.open("test:///default") as conn:
        seen: list[tuple[str, str]] = []
        other: list[str] = []
        conn.domain_event_register(lambda ev: seen.append((ev.domain.name, ev.describe())))
        cb = conn.domain_event_register(lambda ev: other.append(ev.event.name))
        dom = conn.define_domain_xml(XML)
        dom.create()
        dom.suspend()
        dom.resume()
        dom.shutdown()
        conn.define_domain_xml(XML)
        conn.domain_event_deregister(cb)
        dom.start()
        dom.destroy()
        dom.undefine()
    assert seen == [
        ("ev", "Defined Added"), ("ev", "Started Booted"), ("ev", "Suspended Paused"),
        ("ev", "Resumed Unpaused"), ("ev", "Shutdown Finished"), ("ev", "Stopped Shutdown"),
        ("ev", "Defined Updated"), ("ev", "Started Booted"), ("ev", "Stopped Destroyed"),
        ("ev", "Undefined Removed"),
    ]
    assert other == ["DEFINED", "STARTED", "SUSPENDED", "RESUMED", "SHUTDOWN", "STOPPED",
                     "DEFINED"]


def test_read_only_connection_can_register_and_sees_changes_made_elsewhere():
    with hvmon.open("test:///default") as rw:
        ro = hvmon.Connection(rw.driver, AccessGate(readonly=True))
        events = []
        ro.domain_event_register(lambda ev: events.append((ev.event, ev.detail)))
        rw.lookup_domain_by_name("test").destroy()
        assert events == [(E.STOPPED, 1)]


def test_a_failing_callback_does_not_stop_others():
    with hvmon.open("test:///default") as conn:
        got = []

        def broken(ev):
            raise RuntimeError("listener bug")

        conn.domain_event_register(broken)
        conn.domain_event_register(lambda ev: got.append(ev.event))
        conn.lookup_domain_by_name("test").suspend()
        assert got == [E.SUSPENDED]


def test_crash_from_control_file(tmp_path):
    control = tmp_path / "c.json"
    control.write_text("{}")
    with hvmon.open(f"test:///default?control={control}") as conn:
        events = []
        conn.domain_event_register(lambda ev: events.append(ev.describe()))
        control.write_text('{"crash": ["test"]}')
        dom = conn.lookup_domain_by_name("test")
        assert dom.state() == (hvmon.DomainState.SHUTOFF, 3)
        assert events == ["Crashed Panicked", "Stopped Crashed"]
