"""The audit trail: one JSON line per operation, written and fsync'd before it acts.

Every call the gate lets through that changes state or reveals secrets
(``ApiSpec.mutates`` or a secure call) is recorded twice: a ``begin`` record
with the time, the caller's identity and transport, the operation, its object
and the host resources it ties the guest to (disks, NICs, host devices and
secrets of the domain XML; the device XML of a hot-plug; pool, volume,
migration URI) is written and fsync'd *before* the driver runs; an ``end``
record with the result follows. A crash between the two leaves the ``begin``
on disk.

With ``chain = true`` each record carries ``prev`` (the previous record's
``hash``) and its own ``hash`` (SHA-256 over ``prev`` and the record's
canonical JSON without ``hash``): :func:`verify` finds any record edited,
inserted or removed before the last one (``hvmon audit verify FILE``).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hvmon.core.access import ApiSpec, Identity
from hvmon.core.errors import HvmonError, NoConnect, OperationFailed

GENESIS = "0" * 64


def canonical(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def record_hash(prev: str, record: Mapping[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(prev.encode() + b"\n" + canonical(body)).hexdigest()


class AuditLog:
    """An append-only JSON-lines file, thread-safe, every record fsync'd."""

    def __init__(self, path: Path, *, chain: bool = True) -> None:
        self.path = path
        self.chain = chain
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._prev = GENESIS
        self._seq = 0

    def open(self) -> None:
        """Open (creating, mode 0600) and pick up the chain where the file ends."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            last = _last_record(self.path)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                               0o600)
        except OSError as exc:
            raise NoConnect(f"audit log {self.path}: {exc.strerror or exc}") from None
        if last is not None:
            self._prev = str(last.get("hash", GENESIS))
            seq = last.get("seq")
            self._seq = seq if isinstance(seq, int) else 0

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def write(self, record: dict[str, Any]) -> int:
        """Append one record (numbered, chained when asked), fsync'd; returns its seq."""
        with self._lock:
            if self._fd is None:
                raise NoConnect(f"audit log {self.path} is not open")
            self._seq += 1
            full = {"seq": self._seq, **record}
            if self.chain:
                full["prev"] = self._prev
                full["hash"] = record_hash(self._prev, full)
            line = canonical(full) + b"\n"
            try:
                os.write(self._fd, line)
                os.fsync(self._fd)
            except OSError as exc:
                self._seq -= 1
                raise OperationFailed(f"audit log {self.path}: cannot write a record: "
                                      f"{exc.strerror or exc}") from None
            if self.chain:
                self._prev = full["hash"]
            return self._seq

    def begin(self, who: Identity, spec: ApiSpec, procedure: str,
              obj: Mapping[str, Any], resources: list[dict[str, Any]]) -> int:
        return self.write({
            "time": _now(), "phase": "begin", "identity": who.label(),
            "transport": who.transport, "operation": spec.name, "procedure": procedure,
            "permission": spec.permission, "object": dict(obj), "resources": resources,
        })

    def end(self, begin_seq: int, who: Identity, spec: ApiSpec,
            error: BaseException | None) -> int:
        record: dict[str, Any] = {
            "time": _now(), "phase": "end", "begin": begin_seq, "identity": who.label(),
            "transport": who.transport, "operation": spec.name,
            "result": "ok" if error is None else "error",
        }
        if error is not None:
            record["error"] = (error.code if isinstance(error, HvmonError)
                               else type(error).__name__)
        return self.write(record)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")


def _last_record(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
            stream.seek(max(0, size - 65536))
            lines = stream.read().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                return record
    return None


def verify(path: Path) -> list[str]:
    """Every problem of a chained audit log (empty: intact)."""
    problems: list[str] = []
    prev = GENESIS
    seq = 0
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        return [f"cannot read {path}: {exc.strerror or exc}"]
    with stream:
        for number, line in enumerate(stream, 1):
            try:
                record = json.loads(line)
            except ValueError:
                problems.append(f"line {number}: not a JSON record")
                continue
            if not isinstance(record, dict) or "hash" not in record:
                problems.append(f"line {number}: not a chained record")
                continue
            if record.get("prev") != prev:
                problems.append(f"line {number}: chain broken (prev does not match the hash "
                                "of the record before)")
            if record_hash(str(record.get("prev")), record) != record["hash"]:
                problems.append(f"line {number}: record altered (hash mismatch)")
            if record.get("seq") != seq + 1 and seq:
                problems.append(f"line {number}: sequence jumps from {seq} to "
                                f"{record.get('seq')}")
            seq = record.get("seq") if isinstance(record.get("seq"), int) else seq
            prev = str(record["hash"])
    return problems
