"""Byte streams: volume upload and download with credit flow control."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator

import pytest

import hvmon
from hvmon.core.api import Connection
from hvmon.core.drivers.remote import framing
from hvmon.core.drivers.remote.streams import DownloadStream

from .conftest import Daemon

MiB = 1024 * 1024
BIG = 100 * MiB
BIG_POOL_XML = """<pool type='dir'><name>big</name><capacity unit='GiB'>1</capacity>
<target><path>/big</path></target></pool>"""


def volume(conn: Connection, capacity: int, name: str = "blob") -> hvmon.StorageVolume:
    pool = conn.lookup_pool_by_name("default-pool")
    return pool.create_volume_xml(
        f"<volume><name>{name}</name><capacity>{capacity}</capacity></volume>")


def test_100_mib_round_trip(remote: Connection, daemon: Daemon,
                            capsys: pytest.CaptureFixture[str]) -> None:
    pool = remote.create_pool_xml(BIG_POOL_XML)
    vol = pool.create_volume_xml(
        f"<volume><name>big.img</name><capacity>{BIG}</capacity></volume>")
    assert vol.info().capacity >= BIG
    block = random.Random(7).randbytes(MiB)
    sent = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        for n in range(BIG // MiB):
            chunk = n.to_bytes(4, "big") + block[4:]
            sent.update(chunk)
            yield chunk

    start = time.perf_counter()
    assert vol.upload(chunks()) == BIG
    upload_s = time.perf_counter() - start
    received = hashlib.sha256()
    size = 0
    start = time.perf_counter()
    for chunk in vol.download():
        received.update(chunk)
        size += len(chunk)
    download_s = time.perf_counter() - start
    assert size == BIG and received.hexdigest() == sent.hexdigest()
    # memory stays bounded by the credit window on both ends
    assert 0 < daemon.server.max_backlog <= framing.STREAM_WINDOW
    assert 0 < remote.driver._transport.max_backlog <= framing.STREAM_WINDOW
    with capsys.disabled():
        print(f"\n    100 MiB through the daemon: upload {BIG / MiB / upload_s:.0f} MiB/s, "
              f"download {BIG / MiB / download_s:.0f} MiB/s")


def test_download_abandoned_early_is_cleaned_up(remote: Connection, daemon: Daemon) -> None:
    vol = volume(remote, 16 * MiB)
    chunks = vol.download()
    assert len(next(chunks)) == framing.STREAM_CHUNK
    assert daemon.wait_for(lambda: daemon.server.stream_count == 1)
    chunks.close()  # the caller stops iterating
    del chunks
    assert daemon.wait_for(lambda: daemon.server.stream_count == 0)
    assert vol.info().capacity == 16 * MiB  # the connection goes on
    stream = remote.driver.volume_download(vol._ref, 0, 0)
    assert isinstance(stream, DownloadStream)
    next(stream)
    stream.close()
    assert daemon.wait_for(lambda: daemon.server.stream_count == 0)
    dropped = vol.download()
    next(dropped)
    del dropped  # never closed: dropping it is enough
    assert daemon.wait_for(lambda: daemon.server.stream_count == 0)
    assert b"".join(vol.download(0, 10)) == bytes(10)


def test_download_errors_come_before_the_stream(remote: Connection) -> None:
    vol = volume(remote, MiB)
    with pytest.raises(hvmon.InvalidArgument):
        vol.download(2 * MiB, 0)
    assert b"".join(vol.download(MiB, 0)) == b""


def test_driver_error_mid_upload_ends_both_sides(remote: Connection, daemon: Daemon) -> None:
    vol = volume(remote, MiB)
    with pytest.raises(hvmon.InvalidArgument, match="longer than"):
        vol.upload(iter([bytes(600 * 1024)] * 4))
    assert daemon.wait_for(lambda: daemon.server.stream_count == 0)
    assert vol.upload(b"ok") == 2


def test_client_side_failure_aborts_the_upload(remote: Connection, daemon: Daemon) -> None:
    vol = volume(remote, 4 * MiB)

    def failing() -> Iterator[bytes]:
        yield b"a" * MiB
        raise RuntimeError("source file vanished")

    with pytest.raises(RuntimeError, match="source file vanished"):
        vol.upload(failing())
    assert daemon.wait_for(lambda: daemon.server.stream_count == 0)
    assert vol.info().capacity == 4 * MiB


def test_streams_and_calls_share_the_connection(remote: Connection) -> None:
    first, second = volume(remote, 2 * MiB, "one"), volume(remote, 2 * MiB, "two")
    first.upload(b"1" * 2 * MiB)
    second.upload(b"2" * 2 * MiB)
    a, b = first.download(), second.download()
    seen = []
    for x, y in zip(a, b, strict=True):
        seen.append((x[:1], y[:1]))
        assert remote.lookup_domain_by_name("test").is_active()
    assert set(seen) == {(b"1", b"2")} and len(seen) == 8


def test_daemon_going_away_mid_download_fails_the_stream(daemon: Daemon) -> None:
    conn = daemon.open()
    try:
        vol = volume(conn, 16 * MiB)
        chunks = vol.download()
        next(chunks)
        daemon.stop()
        with pytest.raises(hvmon.NoConnect, match="lost"):
            for _ in chunks:
                pass
        with pytest.raises(hvmon.NoConnect, match="lost"):
            vol.info()
    finally:
        conn.close()
