"""nwfilter-* and nwfilter-binding-* commands on the test driver."""

from __future__ import annotations

from hvmon.cli.main import main

URI = "test:///default"
FILTER = ("<filter name='no-smtp' chain='ipv4'><rule action='drop' direction='out'>"
          "<tcp dstportstart='25'/></rule></filter>")
BINDING = ("<filterbinding><portdev name='vnet3'/><mac address='52:54:00:00:00:03'/>"
           "<filterref filter='clean-traffic'/></filterbinding>")


def test_filters_and_bindings_through_the_cli(tmp_path, capsys):
    assert main(["-c", URI, "nwfilter-list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["UUID", "Name"]
    assert any(line.split()[-1:] == ["clean-traffic"] for line in out.splitlines())
    assert main(["-c", URI, "nwfilter-dumpxml", "clean-traffic"]) == 0
    assert "<filter" in capsys.readouterr().out

    # one process per command: each opens a fresh test:///default, so define and use at once
    source = tmp_path / "f.xml"
    source.write_text(FILTER)
    assert main(["-c", URI, "nwfilter-define", str(source)]) == 0
    assert f"Network filter no-smtp defined from {source}" in capsys.readouterr().out
    binding = tmp_path / "b.xml"
    binding.write_text(BINDING)
    assert main(["-c", URI, "nwfilter-binding-create", str(binding)]) == 0
    assert "Network filter binding on vnet3 created" in capsys.readouterr().out
    assert main(["-c", URI, "nwfilter-undefine", "clean-traffic"]) == 1
    assert "shipped with hvmon and cannot be undefined" in capsys.readouterr().err
    assert main(["-c", URI, "nwfilter-dumpxml", "no-such-filter"]) == 1
    assert capsys.readouterr().err.startswith("error: network filter not found")
    assert main(["-c", URI, "-r", "nwfilter-define", str(source)]) == 1
    assert "read-only connection" in capsys.readouterr().err
