"""Pool and volume commands against test:///default."""

from __future__ import annotations

import json

GiB = 1024**3


def test_pool_list_and_info_of_default_pool(cli):
    result = cli("pool-list")
    assert result.code == 0
    assert result.out.splitlines()[0] == " Name           State    Autostart"
    assert " default-pool   active   " in result.out
    info = cli("pool-info", "default-pool").out.splitlines()
    assert "Name:           default-pool" in info
    assert "State:          running" in info
    assert "Persistent:     yes" in info
    assert "Capacity:       100.00 GiB" in info
    assert any(line.startswith("Allocation:     ") for line in info)
    assert any(line.startswith("Available:      ") for line in info)
    data = json.loads(cli("pool-info", "--json", "default-pool").out)
    assert data["capacity_bytes"] == 100 * GiB
    assert data["state"] == "running"


def test_pool_flow_and_volumes(cli, write, conn, xmls):
    path = write("p2.xml", xmls.pool.format(name="pool2"))
    assert cli("pool-define", path).out == f"Pool pool2 defined from {path}\n\n"
    assert "pool2" not in cli("pool-list").out
    assert " pool2          inactive" in cli("pool-list", "--all").out
    assert "State:          inactive" in cli("pool-info", "pool2").out
    assert "Capacity:" not in cli("pool-info", "pool2").out

    assert cli("pool-build", "pool2").out == "Pool pool2 built\n\n"
    assert cli("pool-start", "pool2").out == "Pool pool2 started\n\n"
    assert cli("pool-autostart", "pool2").out == "Pool pool2 marked as autostarted\n\n"
    assert "Autostart:      yes" in cli("pool-info", "pool2").out
    assert "<name>pool2</name>" in cli("pool-dumpxml", "pool2").out

    result = cli("vol-create-as", "pool2", "disk1", "1G", "--format", "raw")
    assert (result.code, result.out) == (0, "Vol disk1 created\n\n")
    assert cli("vol-create-as", "pool2", "disk2", "512M", "--allocation", "0").code == 0

    listing = cli("vol-list", "pool2").out.splitlines()
    assert listing[0].split() == ["Name", "Path"]
    assert [line.split()[0] for line in listing[2:] if line] == ["disk1", "disk2"]
    details = cli("vol-list", "pool2", "--details").out
    assert details.splitlines()[0].split() == ["Name", "Path", "Type", "Capacity",
                                               "Allocation"]
    assert "1.00 GiB" in details and "512.00 MiB" in details

    info = cli("vol-info", "disk1", "--pool", "pool2").out.splitlines()
    assert info[:3] == ["Name:           disk1", "Type:           file",
                        "Capacity:       1.00 GiB"]
    assert cli("vol-info", "--bytes", "disk1", "--pool", "pool2").out.splitlines()[2] == (
        f"Capacity:       {GiB} bytes")
    vol_path = conn.lookup_pool_by_name("pool2").lookup_volume_by_name("disk1").path
    assert cli("vol-path", "disk1", "--pool", "pool2").out == f"{vol_path}\n\n"
    assert cli("vol-info", vol_path).out.startswith("Name:           disk1\n")
    data = json.loads(cli("vol-info", "--json", vol_path).out)
    assert data["capacity_bytes"] == GiB and data["pool"] == "pool2"

    result = cli("vol-clone", "disk1", "disk1-copy", "--pool", "pool2", "--progress")
    assert result.code == 0
    assert result.out == "Vol disk1-copy cloned from disk1\n\n"
    assert "100%" in result.err and "[" in result.err and result.err.endswith("\n")
    copy = conn.lookup_pool_by_name("pool2").lookup_volume_by_name("disk1-copy")
    assert copy.info().capacity == GiB

    result = cli("vol-clone", "disk1", "quiet-copy", "--pool", "pool2")
    assert result.code == 0 and result.err == ""  # stderr is not a terminal

    result = cli("vol-resize", "disk1", "2G", "--pool", "pool2")
    assert result.out == "Size of volume 'disk1' successfully changed to 2G\n\n"
    assert "Capacity:       2.00 GiB" in cli("vol-info", "disk1", "--pool", "pool2").out
    result = cli("vol-resize", "disk1", "1G", "--pool", "pool2")
    assert result.code == 1 and "shrink" in result.err
    assert "Capacity:       2.00 GiB" in cli("vol-info", "disk1", "--pool", "pool2").out
    assert cli("vol-resize", "disk1", "512M", "--pool", "pool2", "--delta").code == 0
    assert "Capacity:       2.50 GiB" in cli("vol-info", "disk1", "--pool", "pool2").out

    assert cli("vol-delete", "disk2", "--pool", "pool2").out == "Vol disk2 deleted\n\n"
    assert "disk2" not in cli("vol-list", "pool2").out
    assert cli("pool-refresh", "pool2").out == "Pool pool2 refreshed\n\n"

    assert cli("pool-destroy", "pool2").out == "Pool pool2 destroyed\n\n"
    assert cli("pool-undefine", "pool2").out == "Pool pool2 has been undefined\n\n"
    assert "pool2" not in cli("pool-list", "--all").out


def test_volume_errors(cli):
    result = cli("vol-info", "nosuch", "--pool", "default-pool")
    assert result.code == 1 and result.err.startswith("error: failed to get vol 'nosuch'")
    result = cli("vol-list", "nosuch")
    assert result.code == 1 and result.err.startswith("error: failed to get pool 'nosuch'")
    result = cli("vol-resize", "x", "lots", "--pool", "default-pool")
    assert result.code == 1 and "invalid size 'lots'" in result.err


def test_readonly_refuses_volume_creation(cli):
    result = cli("-r", "vol-create-as", "default-pool", "v", "1M")
    assert result.code == 1 and result.err.startswith("error: read-only connection: ")
    assert " v " not in cli("vol-list", "default-pool").out


def test_find_storage_pool_sources_on_the_test_driver(tmp_path, capsys):
    from hvmon.cli.main import main

    assert main(["-c", "test:///default", "find-storage-pool-sources", "logical"]) == 0
    assert "<name>testvg1</name>" in capsys.readouterr().out
    assert main(["-c", "test:///default", "find-storage-pool-sources-as", "netfs",
                 "nas.example"]) == 0
    assert "<host name='nas.example'/>" in capsys.readouterr().out
    assert main(["-c", "test:///default", "find-storage-pool-sources", "iscsi"]) == 1
    assert "find_pool_sources of type 'iscsi'" in capsys.readouterr().err
