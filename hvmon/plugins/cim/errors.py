"""CIM status codes (DSP0200 / DSP0004) and the one exception the server raises on purpose.

Typed core errors are mapped to CIM status codes only here, at the plugin's boundary.
"""

from __future__ import annotations

from enum import IntEnum

from hvmon.core.errors import (
    AccessDenied,
    AlreadyExists,
    HvmonError,
    InvalidArgument,
    InvalidXML,
    NoSuchDomain,
    NoSuchNetwork,
    NoSuchPool,
    NoSuchVolume,
    OperationDenied,
    OperationInvalid,
    Unsupported,
)


class Status(IntEnum):
    """CIM_ERR_* status codes."""

    FAILED = 1
    ACCESS_DENIED = 2
    INVALID_NAMESPACE = 3
    INVALID_PARAMETER = 4
    INVALID_CLASS = 5
    NOT_FOUND = 6
    NOT_SUPPORTED = 7
    CLASS_HAS_CHILDREN = 8
    CLASS_HAS_INSTANCES = 9
    INVALID_SUPERCLASS = 10
    ALREADY_EXISTS = 11
    NO_SUCH_PROPERTY = 12
    TYPE_MISMATCH = 13
    QUERY_LANGUAGE_NOT_SUPPORTED = 14
    INVALID_QUERY = 15
    METHOD_NOT_AVAILABLE = 16
    METHOD_NOT_FOUND = 17


class CIMError(Exception):
    """An error answered as ``<ERROR CODE=.. DESCRIPTION=..>``; the description is one line."""

    def __init__(self, status: Status, description: str) -> None:
        description = " ".join(str(description).split())
        super().__init__(f"{status.name}: {description}")
        self.status = status
        self.description = description


class ProtocolError(Exception):
    """An HTTP-level error (DSP0200 ch. 7): a status and a ``CIMError`` header value."""

    def __init__(self, http_status: int, cim_error: str, detail: str = "") -> None:
        super().__init__(f"{http_status} {cim_error}: {detail}")
        self.http_status = http_status
        self.cim_error = cim_error
        self.detail = " ".join(detail.split())


_MAP: tuple[tuple[type[HvmonError], Status], ...] = (
    (OperationDenied, Status.ACCESS_DENIED),
    (AccessDenied, Status.ACCESS_DENIED),
    (NoSuchDomain, Status.NOT_FOUND),
    (NoSuchPool, Status.NOT_FOUND),
    (NoSuchVolume, Status.NOT_FOUND),
    (NoSuchNetwork, Status.NOT_FOUND),
    (AlreadyExists, Status.ALREADY_EXISTS),
    (InvalidXML, Status.INVALID_PARAMETER),
    (InvalidArgument, Status.INVALID_PARAMETER),
    (Unsupported, Status.NOT_SUPPORTED),
    (OperationInvalid, Status.FAILED),
)


def from_core(exc: HvmonError) -> CIMError:
    """The CIM error for a typed core error (anything unmapped is CIM_ERR_FAILED)."""
    for cls, status in _MAP:
        if isinstance(exc, cls):
            return CIMError(status, exc.message)
    return CIMError(Status.FAILED, exc.message)
