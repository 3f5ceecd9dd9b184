"""Test controls steer a test driver that runs in another process (as in a daemon)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
    import json, sys
    import hvmon
    conn = hvmon.open(sys.argv[1])
    for line in sys.stdin:
        out = {}
        for rec in conn.get_all_domain_stats(groups=["state", "cpu-total"], deadline=0.5):
            out[rec.domain.name] = (rec.stats.get("cpu.time"), rec.stats.get("state.state"),
                                    type(rec.error).__name__ if rec.error else None)
        dom = conn.lookup_domain_by_name("test")
        job = dom.job_info()
        out["_job"] = [job.type, job.data_processed]
        out["_leases"] = [l.ipaddr for l in conn.lookup_network_by_name("default").dhcp_leases()]
        print(json.dumps(out), flush=True)
""")


def test_control_file_steers_a_driver_in_another_process(tmp_path):
    control = tmp_path / "controls.json"
    control.write_text(json.dumps({"clock": 100}))
    uri = f"test:///default?control={control}&seed=5"
    child = subprocess.Popen([sys.executable, "-c", CHILD, uri], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        def ask(controls=None):
            if controls is not None:
                control.write_text(json.dumps(controls))
            child.stdin.write("\n")
            child.stdin.flush()
            return json.loads(child.stdout.readline())

        first = ask()
        assert first["test"][2] is None
        again = ask()
        assert again["test"][0] == first["test"][0]  # manual clock: nothing moves
        later = ask({"clock": 160})
        assert later["test"][0] > first["test"][0]
        stalled = ask({"clock": 160, "stall": {"test": 30}})
        assert stalled["test"] == [None, None, "OperationTimeout"]
        failing = ask({"clock": 170, "fail": {"test": "qmp gone"}})
        assert failing["test"][2] == "OperationFailed"
        healed = ask({"clock": 180,
                      "jobs": {"test": {"total": 1000, "rate": 10}},
                      "leases": {"default": [{"mac": "52:54:00:01:02:03",
                                              "ip": "192.168.122.77"}]}})
        assert healed["test"][2] is None and healed["test"][0] > later["test"][0]
        assert healed["_job"] == [2, 0]
        assert "192.168.122.77" in healed["_leases"]
        moved = ask({"clock": 190, "jobs": {"test": {"total": 1000, "rate": 10}}})
        assert moved["_job"] == [2, 100]
    finally:
        child.stdin.close()
        child.wait(timeout=30)
