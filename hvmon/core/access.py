"""The one place where read-only mode and access rules are enforced.

Every public API method is declared once with :func:`api`: its ACL permission
(``domain:start``, ``secret:read_secure`` ...), whether it changes state
(``mutates``) or reveals secrets (``secure``, or ``secure_flag`` naming the
argument that makes a read secure), and the version it appeared in. The
declaration both documents the method and drives enforcement: the wrapper asks
the object's :class:`AccessGate` before the body runs, so no method body holds
its own read-only check.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from hvmon.core.errors import AccessDenied, OperationDenied

F = TypeVar("F", bound=Callable[..., Any])

API_ATTR = "__hvmon_api__"


@dataclass(frozen=True)
class ApiSpec:
    """The declaration of one public API method."""

    name: str
    permission: str
    mutates: bool = False
    secure: bool = False
    secure_flag: str | None = None
    secure_permission: str | None = None
    since: str = "0.1.0"
    signature: str = ""

    @property
    def kind(self) -> str:
        """``mutating``, ``secure``, ``secure-when-<flag>`` or ``read``."""
        if self.mutates:
            return "mutating"
        if self.secure:
            return "secure"
        if self.secure_flag:
            return f"secure-when-{self.secure_flag}"
        return "read"

    def manifest_entry(self) -> dict[str, str]:
        return {
            "name": self.name,
            "signature": self.signature,
            "permission": self.permission,
            "kind": self.kind,
            "since": self.since,
        }


class AccessPolicy(Protocol):
    """Decides whether a permission is granted (per-user rules plug in here)."""

    def allows(self, permission: str) -> bool: ...


@dataclass(frozen=True)
class Identity:
    """Who is calling, as the transport proved it.

    ``transport`` is ``local`` (in this process), ``unix`` (a daemon socket:
    ``uid``/``gid`` from SO_PEERCRED), ``tls`` (``dn`` from the verified client
    certificate) or ``agent`` (``name`` is the agent's). Access rules match on
    these fields; the audit trail records :meth:`label`.
    """

    transport: str = "local"
    uid: int | None = None
    gid: int | None = None
    pid: int | None = None
    dn: str | None = None
    name: str | None = None

    def label(self) -> str:
        """A short stable description (``uid=1000,gid=1000``, ``dn=CN=x``, ``agent=snmp``)."""
        if self.dn is not None:
            return f"dn={self.dn}"
        if self.uid is not None:
            return f"uid={self.uid},gid={self.gid}"
        if self.name is not None:
            return f"{self.transport}={self.name}"
        return self.transport


@dataclass(frozen=True)
class AccessGate:
    """What a connection may do: read-only flag plus an optional policy.

    ``identity`` says who the connection belongs to (for rules and the audit
    trail); it never widens what ``readonly`` and ``policy`` allow.
    """

    readonly: bool = False
    policy: AccessPolicy | None = field(default=None, compare=False)
    identity: Identity = field(default_factory=Identity, compare=False)

    def check(self, spec: ApiSpec, secure: bool) -> None:
        """Raise if the call described by ``spec`` is not allowed."""
        if self.readonly and (spec.mutates or secure):
            raise OperationDenied(f"read-only connection: {spec.name} is not allowed")
        if self.policy is not None:
            permission = spec.permission
            if secure and spec.secure_permission:
                permission = spec.secure_permission
            if not self.policy.allows(permission):
                raise AccessDenied(f"access denied: {spec.name} needs '{permission}'")


class Gated(Protocol):
    """Any object whose methods are declared with :func:`api`."""

    @property
    def _gate(self) -> AccessGate: ...


def api(
    permission: str,
    *,
    mutates: bool = False,
    secure: bool = False,
    secure_flag: str | None = None,
    secure_permission: str | None = None,
    since: str = "0.1.0",
) -> Callable[[F], F]:
    """Declare a public API method and enforce its access rule."""

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn)
        owner = fn.__qualname__.split(".")[0]
        spec = ApiSpec(
            name=f"{owner}.{fn.__name__}",
            permission=permission,
            mutates=mutates,
            secure=secure,
            secure_flag=secure_flag,
            secure_permission=secure_permission or (permission if secure else None),
            since=since,
            signature=str(sig).replace("'", ""),
        )
        flag_index = _positional_index(sig, secure_flag)

        @functools.wraps(fn)
        def wrapper(self: Gated, *args: Any, **kwargs: Any) -> Any:
            is_secure = secure or _flag_set(secure_flag, flag_index, args, kwargs)
            self._gate.check(spec, is_secure)
            return fn(self, *args, **kwargs)

        setattr(wrapper, API_ATTR, spec)
        return wrapper  # type: ignore[return-value]

    return decorate


def _positional_index(sig: inspect.Signature, name: str | None) -> int | None:
    if name is None:
        return None
    names = list(sig.parameters)
    if name not in names:
        raise TypeError(f"secure_flag {name!r} is not a parameter")
    return names.index(name) - 1  # minus self


def _flag_set(
    name: str | None, index: int | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> bool:
    if name is None:
        return False
    if name in kwargs:
        return bool(kwargs[name])
    return index is not None and index < len(args) and bool(args[index])


def spec_of(fn: Callable[..., Any]) -> ApiSpec | None:
    """The declaration of a method, or None if it has none."""
    return getattr(fn, API_ATTR, None)


def collect_specs(classes: Iterable[type]) -> dict[str, ApiSpec]:
    """Every declared method of ``classes``, keyed by ``Class.method``."""
    specs: dict[str, ApiSpec] = {}
    for cls in classes:
        for attr in sorted(vars(cls)):
            spec = spec_of(getattr(cls, attr))
            if spec is not None:
                specs[spec.name] = spec
    return specs


def undeclared_public_methods(classes: Iterable[type]) -> list[str]:
    """Public callables of ``classes`` that carry no :func:`api` declaration."""
    missing = []
    for cls in classes:
        for attr, value in sorted(vars(cls).items()):
            if attr.startswith("_") or isinstance(value, property):
                continue
            if isinstance(value, staticmethod | classmethod):
                continue
            if callable(value) and spec_of(value) is None:
                missing.append(f"{cls.__name__}.{attr}")
    return missing
