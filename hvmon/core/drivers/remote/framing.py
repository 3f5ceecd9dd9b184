"""Frames of the remote protocol: a length word, a fixed header, a payload.

Layout (all integers big-endian)::

    u32 length   whole frame in bytes, this word included
    u8  type     CALL, REPLY, ERROR, EVENT, STREAM_DATA, STREAM_END,
                 STREAM_ABORT, STREAM_CREDIT
    u8  flags    FLAG_ZLIB: the payload is zlib-compressed
    u16 reserved must be zero
    u32 id       call serial, or the id of the stream (its opening call's serial)
    ...          payload: JSON (UTF-8) for every type but STREAM_DATA (raw bytes)

See docs/protocol.md for the messages carried in the payloads.
"""

from __future__ import annotations

import json
import struct
import zlib
from enum import IntEnum
from typing import Any

from hvmon.core.errors import InvalidArgument

PROTOCOL_VERSION = 1

LENGTH = struct.Struct("!I")
HEADER = struct.Struct("!BBHI")
PREFIX = LENGTH.size + HEADER.size

#: hard limit of one frame, length word included; a longer length loses the framing
MAX_FRAME = 64 * 1024 * 1024
#: payloads larger than this are sent zlib-compressed
COMPRESS_OVER = 1024 * 1024
#: byte-stream chunk size and credit window (in chunks) the server announces
STREAM_CHUNK = 256 * 1024
STREAM_WINDOW = 8

FLAG_ZLIB = 0x01
KNOWN_FLAGS = FLAG_ZLIB


class FrameType(IntEnum):
    CALL = 1
    REPLY = 2
    ERROR = 3
    EVENT = 4
    STREAM_DATA = 5
    STREAM_END = 6
    STREAM_ABORT = 7
    STREAM_CREDIT = 8


class FramingLost(Exception):  # noqa: N818 - a condition, not an API error
    """The length word is out of range: the byte stream can no longer be framed."""


def check_length(length: int) -> int:
    """The number of bytes following the length word, or :class:`FramingLost`."""
    if length < PREFIX or length > MAX_FRAME:
        raise FramingLost(f"frame length {length} out of range ({PREFIX}..{MAX_FRAME})")
    return length - LENGTH.size


def pack(kind: int, ident: int, payload: bytes = b"", flags: int = 0) -> bytes:
    """One whole frame."""
    size = PREFIX + len(payload)
    if size > MAX_FRAME:
        raise InvalidArgument(f"message of {size} bytes exceeds the {MAX_FRAME}-byte frame limit")
    return LENGTH.pack(size) + HEADER.pack(kind, flags, 0, ident) + payload


def unpack_header(body: bytes | memoryview) -> tuple[int, int, int, int]:
    """(type, flags, reserved, id) from the bytes after the length word."""
    return HEADER.unpack_from(body)


def dump(message: Any) -> tuple[int, bytes]:
    """JSON-encode ``message``; large payloads compressed. Returns (flags, payload)."""
    data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    if len(data) > COMPRESS_OVER:
        return FLAG_ZLIB, zlib.compress(data, 1)
    return 0, data


def load(flags: int, payload: bytes | memoryview) -> Any:
    """Decode a JSON payload; a bad one raises :class:`InvalidArgument`."""
    if flags & ~KNOWN_FLAGS:
        raise InvalidArgument(f"unknown frame flags 0x{flags:02x}")
    data: bytes | memoryview = payload
    if flags & FLAG_ZLIB:
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(payload, MAX_FRAME)
        except zlib.error as exc:
            raise InvalidArgument(f"bad compressed payload: {exc}") from None
        if inflater.unconsumed_tail:
            raise InvalidArgument(f"compressed payload inflates past {MAX_FRAME} bytes")
    try:
        return json.loads(bytes(data))
    except (ValueError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidArgument(f"bad JSON payload: {reason}") from None
