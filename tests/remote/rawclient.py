"""A bare protocol client for tests that need to send exactly the bytes they choose."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from hvmon.core.drivers.remote import framing
from hvmon.core.drivers.remote.framing import FrameType


class RawClient:
    """Frames written and read by hand on one UNIX socket."""

    def __init__(self, path: Path, timeout: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self._buffer = b""

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, kind: int, ident: int, payload: bytes = b"", flags: int = 0,
             reserved: int = 0) -> None:
        head = framing.HEADER.pack(kind, flags, reserved, ident)
        self.send_raw(framing.LENGTH.pack(framing.LENGTH.size + len(head) + len(payload))
                      + head + payload)

    def call(self, serial: int, proc: str, *args: Any, **kwargs: Any) -> None:
        body = json.dumps({"proc": proc, "args": list(args), "kwargs": kwargs}).encode()
        self.send(FrameType.CALL, serial, body)

    def open(self, readonly: bool = False) -> dict[str, Any]:
        self.call(1, "open", uri="test:///default", readonly=readonly)
        kind, ident, message = self.read()
        assert (kind, ident) == (FrameType.REPLY, 1), message
        return message["json"]

    def _recv_exactly(self, size: int) -> bytes | None:
        while len(self._buffer) < size:
            data = self.sock.recv(1 << 16)
            if not data:
                return None
            self._buffer += data
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def read_frame(self) -> tuple[int, int, int, bytes] | None:
        """(type, flags, id, payload), or None at the end of the stream."""
        head = self._recv_exactly(framing.LENGTH.size)
        if head is None:
            return None
        size = framing.check_length(framing.LENGTH.unpack(head)[0])
        body = self._recv_exactly(size)
        assert body is not None, "the daemon sent a truncated frame"
        kind, flags, reserved, ident = framing.unpack_header(body)
        assert reserved == 0
        return kind, flags, ident, body[framing.HEADER.size:]

    def read(self) -> tuple[int, int, Any]:
        """The next frame with its JSON payload decoded."""
        frame = self.read_frame()
        assert frame is not None, "the daemon closed the connection"
        kind, flags, ident, payload = frame
        return kind, ident, framing.load(flags, payload) if payload else None

    def read_all(self) -> list[tuple[int, int, int, bytes]]:
        """Every frame until the daemon closes (after we stopped writing)."""
        frames = []
        while (frame := self.read_frame()) is not None:
            frames.append(frame)
        return frames
