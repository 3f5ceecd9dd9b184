"""Network commands against test:///default."""

from __future__ import annotations

import json
import re


def test_net_list_and_info_of_default(cli):
    out = cli("net-list").out
    assert out.splitlines()[0].split() == ["Name", "State", "Autostart", "Persistent"]
    assert " default   active   " in out
    info = cli("net-info", "default").out.splitlines()
    assert "Name:           default" in info
    assert "Active:         yes" in info
    assert "Bridge:         virbr0" in info
    data = json.loads(cli("net-list", "--json").out)
    assert data["networks"][0]["name"] == "default"


def test_net_flow_with_dhcp_leases(cli, write, xmls):
    path = write("n.xml", xmls.network.format(name="net2"))
    assert cli("net-define", path).out == f"Network net2 defined from {path}\n\n"
    assert "net2" not in cli("net-list").out
    assert " net2      inactive" in cli("net-list", "--all").out
    assert cli("net-start", "net2").out == "Network net2 started\n\n"
    assert cli("net-autostart", "net2").out == "Network net2 marked as autostarted\n\n"
    assert "<name>net2</name>" in cli("net-dumpxml", "net2").out

    cli("define", write("d.xml", xmls.domain.format(name="guest", network="net2")))
    cli("start", "guest")
    result = cli("net-dhcp-leases", "net2")
    assert result.code == 0
    header, dashes, *rows = result.out.splitlines()
    assert re.split(r"\s{3,}", header.strip()) == [
        "Expiry Time", "MAC address", "Protocol", "IP address", "Hostname",
        "Client ID or DUID"]
    assert set(dashes) == {"-"}
    lease_rows = [r for r in rows if r]
    assert lease_rows and "52:54:00:12:34:56" in lease_rows[0]
    assert "ipv4" in lease_rows[0] and "10.9.0." in lease_rows[0]
    leases = json.loads(cli("net-dhcp-leases", "net2", "--json").out)["leases"]
    assert leases[0]["mac"] == "52:54:00:12:34:56"
    assert cli("net-dhcp-leases", "net2", "--mac", "00:00:00:00:00:01").out.count("\n") == 3

    assert cli("net-destroy", "net2").out == "Network net2 destroyed\n\n"
    assert cli("net-undefine", "net2").out == "Network net2 has been undefined\n\n"
    assert "net2" not in cli("net-list", "--all").out


def test_unknown_network(cli):
    result = cli("net-start", "nosuch")
    assert result.code == 1
    assert result.err.startswith("error: failed to get network 'nosuch'")
