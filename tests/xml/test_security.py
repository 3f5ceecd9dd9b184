"""Hostile and broken input: always InvalidXML with one line, never anything else."""

from __future__ import annotations

import pytest

from hvmon.core.errors import InvalidXML
from hvmon.core.xml.domain import Domain
from hvmon.core.xml.network import Network
from hvmon.core.xml.parser import parse_xml
from hvmon.core.xml.schema import quick_check, validate

XXE = """<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<domain type='kvm'><name>&e;</name></domain>"""

LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<domain type='kvm'><name>&lol3;</name></domain>"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE domain SYSTEM "http://example.invalid/domain.dtd">
<domain type='kvm'><name>x</name></domain>"""

PARAMETER_ENTITY = """<!DOCTYPE d [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><d/>"""

UNCLOSED = """<domain type='kvm'>
  <name>x</name>
  <devices>
    <disk type='file'>
  </devices>
</domain>"""


def _one_line_error(text: str | bytes) -> str:
    with pytest.raises(InvalidXML) as info:
        Domain.from_xml(text)
    message = str(info.value)
    assert "\n" not in message and message.startswith("XML error")
    assert "root:" not in message  # no /etc/passwd content leaked
    return message


@pytest.mark.parametrize("text", [XXE, LAUGHS, EXTERNAL_DTD, PARAMETER_ENTITY,
                                  XXE.encode("utf-16")], ids=["xxe", "billion-laughs",
                                                              "external-dtd", "param-entity",
                                                              "xxe-utf16"])
def test_doctype_and_entities_refused(text: str | bytes) -> None:
    message = _one_line_error(text)
    assert "not allowed" in message or "line" in message


def test_unclosed_tag_names_the_line() -> None:
    message = _one_line_error(UNCLOSED)
    assert "at line 5" in message
    assert "mismatch" in message.lower() or "tag" in message.lower()


@pytest.mark.parametrize(("text", "needle"), [
    ("", "empty document"),
    ("   \n ", "empty document"),
    ("<domain", "at line 1"),
    ("not xml at all", "at line 1"),
    ("<domain type='kvm'><name>x</name></domain><extra/>", "at line 1"),
    ("<network><name>n</name></network>", "expected <domain> root element, found <network>"),
])
def test_malformed_and_wrong_root(text: str, needle: str) -> None:
    assert needle in _one_line_error(text)


def test_non_text_input() -> None:
    with pytest.raises(InvalidXML, match="expected text, got int"):
        parse_xml(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "needle"), [
    ("<domain type='kvm'><name>x</name><uuid>1234</uuid></domain>", "invalid UUID '1234'"),
    ("<domain type='kvm'><name>x</name><memory unit='KiB'>1.5</memory></domain>",
     "invalid size '1.5'"),
    ("<domain type='kvm'><name>x</name><memory>99999999999999999999999</memory></domain>",
     "invalid size"),
    ("<domain type='kvm'><name>x</name><devices><interface type='user'>"
     "<mac address='52:54:00:zz:00:01'/></interface></devices></domain>", "invalid MAC address"),
])
def test_bad_values_are_invalid_xml(text: str, needle: str) -> None:
    root = parse_xml(text)
    for check in (validate, quick_check):
        with pytest.raises(InvalidXML, match=needle) as info:
            check(root, "domain")
        assert "\n" not in str(info.value)


def test_model_reads_bad_values_as_invalid_xml() -> None:
    dom = Domain.from_xml("<domain type='kvm'><name>x</name><memory>lots</memory>"
                          "<vcpu>two</vcpu></domain>")
    with pytest.raises(InvalidXML, match="invalid size 'lots'"):
        _ = dom.memory_kib
    with pytest.raises(InvalidXML, match="invalid value 'two'"):
        _ = dom.vcpus
    net = Network.from_xml("<network><name>n</name><ip prefix='x'/></network>")
    with pytest.raises(InvalidXML):
        _ = net.ips[0].prefix
