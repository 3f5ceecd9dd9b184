"""Typed errors with stable codes.

Codes follow libvirt's ``virErrorNumber`` where libvirt has the same error, so
tools that map libvirt error numbers keep working. Every error carries a
one-line message meant for a person.
"""

from __future__ import annotations


class HvmonError(Exception):
    """Base of every error hvmon raises on purpose."""

    code: int = 1
    name: str = "internal-error"

    def __init__(self, message: str) -> None:
        message = " ".join(str(message).split())  # always one line
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly form: used by the remote protocol and ``--json``."""
        return {"code": self.code, "error": self.name, "message": self.message}


class InternalError(HvmonError):
    code, name = 1, "internal-error"


class Unsupported(HvmonError):
    """The driver or build does not support the operation (VIR_ERR_NO_SUPPORT)."""

    code, name = 3, "unsupported"


class NoConnect(HvmonError):
    """No driver could open the URI (VIR_ERR_NO_CONNECT)."""

    code, name = 5, "no-connect"


class InvalidArgument(HvmonError):
    code, name = 8, "invalid-argument"


class OperationFailed(HvmonError):
    code, name = 9, "operation-failed"


class InvalidXML(HvmonError):
    """Malformed or schema-invalid XML (VIR_ERR_XML_ERROR)."""

    code, name = 27, "invalid-xml"


class OperationDenied(HvmonError):
    """Forbidden by the connection's read-only mode (VIR_ERR_OPERATION_DENIED)."""

    code, name = 29, "operation-denied"


class SystemError_(HvmonError):
    """An operating-system call failed (VIR_ERR_SYSTEM_ERROR)."""

    code, name = 38, "system-error"


class NoSuchDomain(HvmonError):
    code, name = 42, "no-such-domain"


class NoSuchNetwork(HvmonError):
    code, name = 43, "no-such-network"


class NoSuchPool(HvmonError):
    code, name = 49, "no-such-pool"


class NoSuchVolume(HvmonError):
    code, name = 50, "no-such-volume"


class OperationInvalid(HvmonError):
    """Not valid in the object's current state (VIR_ERR_OPERATION_INVALID)."""

    code, name = 55, "operation-invalid"


class NoSuchSecret(HvmonError):
    code, name = 66, "no-such-secret"


class NoSuchNWFilter(HvmonError):
    code, name = 62, "no-such-nwfilter"


class OperationTimeout(HvmonError):
    code, name = 68, "operation-timeout"


class AccessDenied(OperationDenied):
    """Forbidden by the access policy (VIR_ERR_ACCESS_DENIED); an OperationDenied too,
    so one ``except`` covers read-only mode and access rules."""

    code, name = 88, "access-denied"


class AlreadyExists(HvmonError):
    """An object with that name or UUID exists already (VIR_ERR_DOM_EXIST and kin)."""

    code, name = 28, "already-exists"


def all_error_classes() -> list[type[HvmonError]]:
    """Every concrete error class, for mapping codes back to types."""
    seen: list[type[HvmonError]] = []
    stack: list[type[HvmonError]] = [HvmonError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


def error_from_code(code: int, message: str) -> HvmonError:
    """Rebuild a typed error from its code (used by remote clients).

    The classes of this module win over subclasses defined elsewhere (the
    CLI's own errors reuse codes), so a client always gets a core error type.
    """
    matches = [c for c in all_error_classes() if c.code == code and c is not HvmonError]
    matches.sort(key=lambda c: c.__module__ != __name__)
    if matches:
        return matches[0](message)
    return HvmonError(message)
