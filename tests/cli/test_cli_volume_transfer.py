"""vol-upload / vol-download: content round trip, ranges, progress, refusals."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

Cli = Any  # the ``cli`` fixture of conftest.py


def make_volume(cli: Cli, name: str = "blob", size: str = "4M") -> None:
    result = cli("vol-create-as", "default-pool", name, size)
    assert result.code == 0, result.err


def test_upload_then_download_round_trip(cli: Cli, tmp_path: Path) -> None:
    make_volume(cli)
    payload = os.urandom(1024 * 1024 + 17)
    src = tmp_path / "in.bin"
    src.write_bytes(payload)
    result = cli("vol-upload", "blob", str(src), "--pool", "default-pool", "--progress")
    assert result.code == 0, result.err
    assert result.out == f"Uploaded {len(payload)} bytes to volume blob\n\n"
    assert "Uploading blob [" in result.err and "100%" in result.err

    dst = tmp_path / "out.bin"
    result = cli("vol-download", "blob", str(dst), "--pool", "default-pool",
                 "--length", str(len(payload)))
    assert result.code == 0, result.err
    assert result.err == ""  # no bar when stderr is not a terminal
    assert dst.read_bytes() == payload


def test_download_whole_volume_reads_zeros_past_the_data(cli: Cli, tmp_path: Path) -> None:
    make_volume(cli, size="1M")
    src = tmp_path / "in.bin"
    src.write_bytes(b"abc")
    assert cli("vol-upload", "blob", str(src), "--pool", "default-pool",
               "--offset", "10").code == 0
    dst = tmp_path / "out.bin"
    result = cli("vol-download", "blob", str(dst), "--pool", "default-pool", "--progress")
    assert result.code == 0 and "100%" in result.err
    data = dst.read_bytes()
    assert len(data) == 1024 * 1024
    assert data[:13] == bytes(10) + b"abc" and not any(data[13:])


def test_upload_past_the_end_is_refused(cli: Cli, tmp_path: Path) -> None:
    make_volume(cli, size="1K")
    src = tmp_path / "big.bin"
    src.write_bytes(bytes(4096))
    result = cli("vol-upload", "blob", str(src), "--pool", "default-pool")
    assert result.code == 1
    assert "longer than 1024 bytes" in result.err and result.err.count("\n") == 1


def test_readonly_may_neither_upload_nor_download(cli: Cli, tmp_path: Path) -> None:
    make_volume(cli)
    src = tmp_path / "in.bin"
    src.write_bytes(b"data")
    result = cli("-r", "vol-upload", "blob", str(src), "--pool", "default-pool")
    assert result.code == 1 and "read-only" in result.err
    dst = tmp_path / "never.bin"
    result = cli("-r", "vol-download", "blob", str(dst), "--pool", "default-pool")
    assert result.code == 1 and "read-only" in result.err
    assert not dst.exists()


def test_missing_input_file_is_one_line(cli: Cli, tmp_path: Path) -> None:
    make_volume(cli)
    result = cli("vol-upload", "blob", str(tmp_path / "nope"), "--pool", "default-pool")
    assert result.code == 1 and "cannot read" in result.err and result.err.count("\n") == 1
