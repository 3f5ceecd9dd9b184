"""JSON with a small type-tag codec for the core types.

Plain JSON values (str, int, float, bool, None, lists, dicts with string keys)
travel as themselves. Everything else is a tagged object ``{"$t": TAG, "v": ...}``:
refs and listings (named tuples, ``v`` a list), the info records (dataclasses,
``v`` an object), IntEnums (``v`` an int), ``bytes`` (base64), tuples, dicts that
need escaping, and errors (``HvmonError.to_dict()``). Decoding builds only the
types in the allow-list below; anything else is :class:`InvalidArgument`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
from enum import IntEnum
from typing import Any

from hvmon.core import errors as errors_module
from hvmon.core.drivers.base import (
    DomainRef,
    Listing,
    NetworkRef,
    PoolRef,
    SecretRef,
    VolumeRef,
)
from hvmon.core.errors import HvmonError, InvalidArgument, error_from_code
from hvmon.core.events import LifecycleEvent
from hvmon.core.types import (
    DhcpLease,
    DomainInfo,
    DomainState,
    JobInfo,
    NodeInfo,
    PoolInfo,
    PoolState,
    VcpuInfo,
    VolumeInfo,
    VolumeType,
)

TAG = "$t"

_TUPLES: dict[str, type] = {
    cls.__name__: cls
    for cls in (DomainRef, PoolRef, VolumeRef, NetworkRef, SecretRef, Listing)
}
_RECORDS: dict[str, type] = {
    cls.__name__: cls
    for cls in (NodeInfo, DomainInfo, JobInfo, PoolInfo, VolumeInfo, DhcpLease, VcpuInfo)
}
_ENUMS: dict[str, type[IntEnum]] = {
    cls.__name__: cls for cls in (DomainState, PoolState, VolumeType, LifecycleEvent)
}


def encode(value: Any) -> Any:
    """A JSON-safe form of ``value``; unknown types raise :class:`TypeError`."""
    if value is None or isinstance(value, str | float) or type(value) in (int, bool):
        return value
    kind = type(value)
    name = kind.__name__
    if isinstance(value, IntEnum):
        if _ENUMS.get(name) is not kind:
            raise TypeError(f"cannot encode enum {name}")
        return {TAG: name, "v": int(value)}
    if isinstance(value, tuple):
        if _TUPLES.get(name) is kind:
            return {TAG: name, "v": [encode(v) for v in value]}
        if kind is not tuple:
            raise TypeError(f"cannot encode {name}")
        return {TAG: "tuple", "v": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if TAG in value or not all(type(k) is str for k in value):
            return {TAG: "dict", "v": [[encode(k), encode(v)] for k, v in value.items()]}
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {TAG: "bytes", "v": base64.b64encode(value).decode("ascii")}
    if isinstance(value, HvmonError):
        return {TAG: "error", "v": value.to_dict()}
    if dataclasses.is_dataclass(value) and _RECORDS.get(name) is kind:
        return {TAG: name, "v": {f.name: encode(getattr(value, f.name))
                                 for f in dataclasses.fields(value)}}
    raise TypeError(f"cannot encode {name}")


def decode(data: Any) -> Any:
    """Rebuild a value from :func:`encode` output; only allow-listed types."""
    try:
        return _decode(data)
    except RecursionError:
        raise InvalidArgument("payload nested too deeply") from None


def _decode(data: Any) -> Any:
    if isinstance(data, list):
        return [_decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if TAG not in data:
        return {k: _decode(v) for k, v in data.items()}
    tag, inner = data[TAG], data.get("v")
    if not isinstance(tag, str):
        raise InvalidArgument("type tag must be a string")
    try:
        return _build(tag, inner)
    except (TypeError, ValueError, binascii.Error) as exc:
        raise InvalidArgument(f"bad value for type tag '{tag:.40}': {_one_line(exc)}") from None


def _build(tag: str, inner: Any) -> Any:
    if tag in _TUPLES:
        return _TUPLES[tag](*_list(inner))
    if tag in _RECORDS:
        if not isinstance(inner, dict):
            raise TypeError("expected an object")
        return _RECORDS[tag](**{str(k): _decode(v) for k, v in inner.items()})
    if tag in _ENUMS:
        if type(inner) is not int:
            raise TypeError("expected an integer")
        return _ENUMS[tag](inner)
    if tag == "tuple":
        return tuple(_list(inner))
    if tag == "dict":
        pairs = _list(inner)
        if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise TypeError("expected [key, value] pairs")
        return {_hashable(k): v for k, v in pairs}
    if tag == "bytes":
        if not isinstance(inner, str):
            raise TypeError("expected base64 text")
        return base64.b64decode(inner, validate=True)
    if tag == "error":
        return decode_error(inner)
    raise InvalidArgument(f"unknown type tag '{tag:.40}'")


def _list(inner: Any) -> list[Any]:
    if not isinstance(inner, list):
        raise TypeError("expected a list")
    return [_decode(v) for v in inner]


def _hashable(key: Any) -> Any:
    hash(key)  # TypeError for lists and dicts
    return key


@functools.cache
def _core_errors() -> dict[int, type[HvmonError]]:
    """Code -> class for the errors defined in hvmon.core.errors itself.

    Preferred over :func:`error_from_code`, whose walk over every subclass may
    pick a same-code subclass defined elsewhere (the CLI's ``CliError`` shares
    code 8 with ``InvalidArgument``).
    """
    table: dict[int, type[HvmonError]] = {}
    for value in vars(errors_module).values():
        if (isinstance(value, type) and issubclass(value, HvmonError)
                and value is not HvmonError and value.__module__ == errors_module.__name__):
            table.setdefault(value.code, value)
    return table


def decode_error(data: Any) -> HvmonError:
    """The typed error an error dict names (unknown codes: :class:`HvmonError`)."""
    if not isinstance(data, dict):
        raise TypeError("expected an error object")
    code, message = data.get("code"), data.get("message")
    if type(code) is not int or not isinstance(message, str):
        raise TypeError("an error needs an integer code and a message")
    cls = _core_errors().get(code)
    return cls(message) if cls is not None else error_from_code(code, message)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
