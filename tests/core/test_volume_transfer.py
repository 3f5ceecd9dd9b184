"""StorageVolume.upload / download on the test driver: content, ranges, progress."""

from __future__ import annotations

import pytest

import hvmon

KiB = 1024


@pytest.fixture
def vol(conn: hvmon.Connection) -> hvmon.StorageVolume:
    pool = conn.lookup_pool_by_name("default-pool")
    return pool.create_volume_xml(
        "<volume><name>blob</name><capacity>1048576</capacity></volume>"
    )


def test_chunks_round_trip_with_progress(vol: hvmon.StorageVolume) -> None:
    seen: list[tuple[int, int]] = []
    chunks = [bytes([n]) * (100 * KiB) for n in range(1, 4)]
    assert vol.upload(iter(chunks), offset=0, length=300 * KiB,
                      progress=lambda d, t: seen.append((d, t))) == 300 * KiB
    assert seen == [(100 * KiB, 300 * KiB), (200 * KiB, 300 * KiB), (300 * KiB, 300 * KiB)]
    seen.clear()
    data = b"".join(vol.download(0, 300 * KiB, progress=lambda d, t: seen.append((d, t))))
    assert data == b"".join(chunks)
    assert seen[-1] == (300 * KiB, 300 * KiB) and len(seen) >= 2


def test_download_to_the_end_and_at_an_offset(vol: hvmon.StorageVolume) -> None:
    vol.upload(b"xyz", offset=5)
    whole = b"".join(vol.download())
    assert len(whole) == 1048576 and whole[:8] == bytes(5) + b"xyz"
    assert b"".join(vol.download(6, 2)) == b"yz"


def test_wipe_clears_the_content(vol: hvmon.StorageVolume) -> None:
    vol.upload(b"secret data")
    vol.wipe()
    assert b"".join(vol.download(0, 11)) == bytes(11)


@pytest.mark.parametrize(("offset", "length"), [(-1, 0), (0, -5), (1048576, 1), (2**21, 0)])
def test_bad_ranges_are_refused_before_any_transfer(
    vol: hvmon.StorageVolume, offset: int, length: int
) -> None:
    with pytest.raises(hvmon.InvalidArgument):
        vol.download(offset, length)


def test_upload_longer_than_length_stops_with_an_error(vol: hvmon.StorageVolume) -> None:
    with pytest.raises(hvmon.InvalidArgument, match="longer than 4 bytes"):
        vol.upload([b"ab", b"cdef"], length=4)
    assert b"".join(vol.download(0, 2)) == b"ab"  # what fit was written, like a short write
