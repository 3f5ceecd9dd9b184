"""Perfdata labels and values by the Monitoring Plugins rules, whatever the names."""

from __future__ import annotations

import pytest
from nagiosplugin import Range

from hvmon.plugins.nagios.perfdata import (
    Perf,
    format_number,
    format_range,
    quote_label,
    safe_text,
)

from .conftest import PERF_RE, parse_perfdata


@pytest.mark.parametrize(("label", "quoted"), [
    ("cpu", "cpu"),
    ("test_memory", "test_memory"),
    ("default-pool_usage", "'default-pool_usage'"),
    ("web 1_cpu", "'web 1_cpu'"),
    ("it's", "'it''s'"),
    ("''", "''''''"),
    ("a=b|c", "a_b_c"),
    ("a b=c", "'a b_c'"),
    ("line\nbreak", "line_break"),
    ("café", "'café'"),
])
def test_labels_are_quoted_with_single_quotes_doubled(label: str, quoted: str) -> None:
    assert quote_label(label) == quoted


@pytest.mark.parametrize(("spec", "text"), [
    ("", ""), ("80", "80"), ("10:", "10:"), ("~:10", "~:10"), ("10:20", "10:20"),
    ("@10:20", "@10:20"), ("@0:", "@0:"), ("@5", "@5"), ("1.5", "1.5"), ("~:", "~:"),
])
def test_ranges_in_perfdata_keep_their_meaning(spec: str, text: str) -> None:
    assert format_range(Range(spec)) == text


def test_perf_renders_value_uom_and_ranges() -> None:
    perf = Perf("it's 1_cpu", 12.5, "%", Range("80"), Range("@90:95"), 0, 100)
    assert str(perf) == "'it''s 1_cpu'=12.5%;80;@90:95;0;100"
    assert str(Perf("n", 3)) == "n=3"
    assert str(Perf("n", 3, min=0)) == "n=3;;;0"
    assert str(Perf("bytes", 2147483648, "B", "", "", 0, 8589934592)) == \
        "bytes=2147483648B;;;0;8589934592"
    assert PERF_RE.match(str(perf))
    assert parse_perfdata(str(perf)) == {"it's 1_cpu": "12.5%;80;@90:95;0;100"}


@pytest.mark.parametrize(("value", "text"), [
    (0, "0"), (12, "12"), (0.5, "0.5"), (1 / 3, "0.3333"), (2.0, "2"), (1e-9, "0"),
    (123456789.125, "123456789.125"), (True, "1"),
])
def test_numbers_never_use_exponents(value: object, text: str) -> None:
    assert format_number(value) == text


def test_status_text_loses_the_perfdata_separator_and_line_breaks() -> None:
    assert safe_text("a|b\nc\td") == "a\u00a6b c d"
