"""Checking a call's arguments against the Driver signature before anything runs.

Arguments are bound to the :class:`~hvmon.core.drivers.base.Driver` method of
the same name and checked against its type hints, so a client gets
``InvalidArgument`` for a wrong count or type, never a driver traceback.
Parameters the server supplies itself (an upload's ``chunks``) and callables
(``progress``) cannot be sent.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hvmon.core.drivers.base import Driver
from hvmon.core.errors import InvalidArgument

#: parameters filled in by the server, never sent by a client
SERVER_SIDE = frozenset({"chunks"})


@dataclass(frozen=True)
class BoundCall:
    """A procedure with checked arguments, ready to run on a driver."""

    name: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    arguments: Mapping[str, Any]

    def run(self, driver: Driver, **extra: Any) -> Any:
        return getattr(driver, self.name)(*self.args, **self.kwargs, **extra)


@functools.cache
def _signature(name: str) -> tuple[inspect.Signature, Mapping[str, Any]]:
    method = getattr(Driver, name)
    hints = typing.get_type_hints(method, localns={"Snapshot": object})
    sig = inspect.signature(method)
    params = [p for p in list(sig.parameters.values())[1:] if p.name not in SERVER_SIDE]
    return sig.replace(parameters=params), hints


def bind(name: str, args: Any, kwargs: Any) -> BoundCall:
    """Bind ``args``/``kwargs`` to Driver method ``name`` and check their types."""
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise InvalidArgument(f"{name}: args must be a list and kwargs an object")
    sig, hints = _signature(name)
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as exc:
        raise InvalidArgument(f"{name}: {exc}") from None
    for param, value in bound.arguments.items():
        hint = hints.get(param, Any)
        if not matches(value, hint):
            raise InvalidArgument(
                f"{name}: argument '{param}' must be {describe(hint)}, "
                f"not {type(value).__name__}"
            )
    bound.apply_defaults()
    return BoundCall(name, tuple(bound.args), dict(bound.kwargs), dict(bound.arguments))


def matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits ``hint`` (the hint shapes Driver methods use)."""
    if hint is Any or hint is object:
        return True
    origin, params = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, option) for option in params)
    if hint is type(None):
        return value is None
    if hint is bool:
        return type(value) is bool
    if hint is int:
        return type(value) is int
    if hint is float:
        return type(value) in (int, float)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(params) == 2 and params[1] is Ellipsis:
            return all(matches(v, params[0]) for v in value)
        return len(params) == len(value) and all(map(matches, value, params))
    if origin in (list, collections.abc.Sequence):
        return isinstance(value, list | tuple) and all(matches(v, params[0]) for v in value)
    if origin is collections.abc.Callable:
        return False  # callables do not travel
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def describe(hint: Any) -> str:
    """A short name of a type hint for error messages."""
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("collections.abc.", "")
