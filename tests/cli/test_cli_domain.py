"""Domain commands against test:///default."""

from __future__ import annotations

import json

UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"


def test_list_shows_the_default_domain(cli):
    result = cli("list")
    assert result.code == 0
    assert result.out == (
        " Id   Name   State\n"
        "----------------------\n"
        " 1    test   running\n"
        "\n"
    )


def test_dominfo_has_virsh_fields(cli):
    result = cli("dominfo", "test")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == "Id:             1"
    assert "Name:           test" in lines
    assert f"UUID:           {UUID}" in lines
    assert "OS Type:        hvm" in lines
    assert "State:          running" in lines
    assert "CPU(s):         2" in lines
    assert "Max memory:     8388608 KiB" in lines
    assert "Used memory:    2097152 KiB" in lines
    assert "Persistent:     yes" in lines
    assert "Autostart:      disable" in lines
    assert any(line.startswith("CPU time:") and line.endswith("s") for line in lines)


def test_domain_found_by_id_uuid_and_name(cli):
    for ref in ("1", UUID, "test"):
        assert cli("domname", ref).out == "test\n\n"
    assert cli("domuuid", "1").out == f"{UUID}\n\n"
    assert cli("domid", "test").out == "1\n\n"


def test_domstate_with_reason(cli):
    assert cli("domstate", "test").out == "running\n\n"
    assert cli("domstate", "test", "--reason").out == "running (booted)\n\n"


def test_json_outputs_are_objects_with_snake_case_keys(cli):
    listing = json.loads(cli("list", "--json").out)
    assert listing["domains"][0]["name"] == "test"
    assert listing["domains"][0]["id"] == 1
    assert listing["domains"][0]["state"] == "running"
    info = json.loads(cli("--json", "dominfo", "test").out)
    assert info["max_memory_kib"] == 8388608
    assert info["used_memory_kib"] == 2097152
    assert info["persistent"] is True
    state = json.loads(cli("domstate", "test", "--json").out)
    assert state == {"state": "running", "state_code": 1, "reason": "booted",
                     "reason_code": 1}


def test_full_lifecycle(cli, write, conn, xmls):
    path = write("vm1.xml", xmls.domain.format(name="vm1", network="default"))
    result = cli("define", path)
    assert (result.code, result.out) == (0, f"Domain 'vm1' defined from {path}\n\n")

    listing = cli("list", "--all").out.splitlines()
    assert " -    vm1    shut off" in listing
    assert " vm1" not in cli("list").out
    assert "vm1" in cli("list", "--inactive").out
    assert "test" not in cli("list", "--inactive").out

    assert cli("start", "vm1").out == "Domain 'vm1' started\n\n"
    assert conn.lookup_domain_by_name("vm1").is_active()
    assert cli("domstate", "vm1").out == "running\n\n"

    assert cli("suspend", "vm1").out == "Domain 'vm1' suspended\n\n"
    assert "State:          paused" in cli("dominfo", "vm1").out
    assert cli("domstate", "vm1", "--reason").out == "paused (user)\n\n"
    assert cli("resume", "vm1").out == "Domain 'vm1' resumed\n\n"

    assert cli("autostart", "vm1").out == "Domain 'vm1' marked as autostarted\n\n"
    assert "Autostart:      enable" in cli("dominfo", "vm1").out
    assert cli("autostart", "--disable", "vm1").out == (
        "Domain 'vm1' unmarked as autostarted\n\n")

    assert cli("destroy", "vm1").out == "Domain 'vm1' destroyed\n\n"
    assert cli("domstate", "vm1", "--reason").out == "shut off (destroyed)\n\n"
    info = cli("dominfo", "vm1").out
    assert info.startswith("Id:             -\n")

    assert cli("undefine", "vm1").out == "Domain 'vm1' has been undefined\n\n"
    assert "vm1" not in cli("list", "--all").out


def test_create_starts_a_transient_domain(cli, write, xmls):
    path = write("t.xml", xmls.domain.format(name="tmp1", network="default"))
    assert cli("create", path).out == f"Domain 'tmp1' created from {path}\n\n"
    assert "running" in cli("domstate", "tmp1").out
    assert "Persistent:     no" in cli("dominfo", "tmp1").out


def test_quiet_suppresses_messages_and_blank_line(cli):
    assert cli("-q", "suspend", "test").out == ""
    assert cli("-q", "domstate", "test").out == "paused\n"


def test_readonly_refuses_start_and_changes_nothing(cli, conn, write, xmls):
    cli("define", write("vm2.xml", xmls.domain.format(name="vm2", network="default")))
    result = cli("-r", "start", "vm2")
    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith("error: read-only connection: ")
    assert result.err.count("\n") == 1
    assert not conn.lookup_domain_by_name("vm2").is_active()

    result = cli("--readonly", "destroy", "test")
    assert result.code == 1 and result.err.startswith("error: read-only connection: ")
    assert conn.lookup_domain_by_name("test").is_active()
    # reading still works read-only
    assert cli("-r", "domstate", "test").out == "running\n\n"


def test_readonly_refuses_secure_xml(cli):
    assert "<domain" in cli("-r", "dumpxml", "test").out
    result = cli("-r", "dumpxml", "--security-info", "test")
    assert result.code == 1 and result.err.startswith("error: read-only connection: ")


def test_dumpxml_inactive(cli):
    assert "<name>test</name>" in cli("dumpxml", "--inactive", "test").out


def test_unknown_domain_is_one_error_line(cli):
    for command in ("dominfo", "start", "domstate", "undefine"):
        result = cli(command, "nosuch")
        assert result.code == 1
        assert result.out == ""
        assert result.err.startswith("error: failed to get domain 'nosuch'")
        assert result.err.count("\n") == 1


def test_numeric_name_falls_back_from_id(cli):
    result = cli("dominfo", "42")
    assert result.code == 1 and "failed to get domain '42'" in result.err


def test_malformed_xml_file_is_one_error_line(cli, write):
    path = write("bad.xml", "<domain><name>broken</name>")
    result = cli("define", path)
    assert result.code == 1
    assert result.err.startswith("error: ")
    assert result.err.count("\n") == 1
    assert "broken" not in cli("list", "--all").out


def test_missing_file_is_one_error_line(cli, tmp_path):
    result = cli("define", str(tmp_path / "absent.xml"))
    assert result.code == 1
    assert result.err == (
        f"error: Failed to open file '{tmp_path / 'absent.xml'}': No such file or directory\n"
    )


def test_operation_invalid_in_state(cli):
    result = cli("start", "test")  # already running
    assert result.code == 1 and result.err.startswith("error: ")
    assert result.err.count("\n") == 1


def test_domjobinfo_in_virsh_shape(tmp_path, capsys):
    from hvmon.cli.main import main

    controls = tmp_path / "controls.json"
    controls.write_text('{"jobs": {"test": {"total": 1073741824, "rate": 67108864}}}')
    uri = f"test:///default?control={controls}&clock=manual"
    assert main(["-c", uri, "domjobinfo", "test"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:2] == ["Job type:         Unbounded",
                                    "Operation:        Outgoing migration"]
    assert "Data total:       1.000 GiB" in out and "Data processed:   0.000 B" in out
    assert main(["-c", "test:///default", "domjobinfo", "test"]) == 0
    assert capsys.readouterr().out == "Job type:         None\n\n"  # virsh ends with a blank line


def test_cpu_compare_on_the_test_driver(tmp_path, capsys):
    from hvmon.cli.main import main

    cpu = tmp_path / "cpu.xml"
    for xml, code, words in (
            ("<cpu mode='host-passthrough'/>", 0, "is identical to host CPU"),
            ("<cpu><model>qemu64</model></cpu>", 0, "Host CPU is a superset of CPU"),
            ("<cpu><model>Icelake-Server</model></cpu>", 1, "is incompatible with host CPU")):
        cpu.write_text(xml)
        assert main(["-c", "test:///default", "cpu-compare", str(cpu)]) == code
        assert words in capsys.readouterr().out
    cpu.write_text("<cpu")
    assert main(["-c", "test:///default", "cpu-compare", str(cpu)]) == 1
    assert capsys.readouterr().err.startswith("error: ")
