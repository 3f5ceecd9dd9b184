"""hvmon: a host-management core for virtualization hosts, with agents.

``import hvmon`` gives the public API: :func:`open`, :func:`open_readonly`,
the object classes and the typed errors.
"""

from hvmon.core.api import (
    Connection,
    Domain,
    DomainEvent,
    Network,
    NWFilter,
    NWFilterBinding,
    Secret,
    StoragePool,
    StorageVolume,
    api_registry,
    open,
    open_readonly,
)
from hvmon.core.errors import (
    AccessDenied,
    AlreadyExists,
    HvmonError,
    InternalError,
    InvalidArgument,
    InvalidXML,
    NoConnect,
    NoSuchDomain,
    NoSuchNetwork,
    NoSuchNWFilter,
    NoSuchPool,
    NoSuchSecret,
    NoSuchVolume,
    OperationDenied,
    OperationFailed,
    OperationInvalid,
    OperationTimeout,
    Unsupported,
)
from hvmon.core.events import LifecycleEvent
from hvmon.core.types import CpuCompareResult, DomainState, PoolState

__version__ = "0.1.0"

__all__ = [
    "AccessDenied", "AlreadyExists", "Connection", "CpuCompareResult", "Domain", "DomainEvent",
    "DomainState", "HvmonError", "InternalError", "InvalidArgument", "InvalidXML",
    "LifecycleEvent", "NWFilter", "NWFilterBinding", "Network", "NoConnect", "NoSuchDomain",
    "NoSuchNWFilter", "NoSuchNetwork", "NoSuchPool", "NoSuchSecret",
    "NoSuchVolume", "OperationDenied", "OperationFailed", "OperationInvalid",
    "OperationTimeout", "PoolState", "Secret", "StoragePool", "StorageVolume", "Unsupported",
    "__version__", "api_registry", "open", "open_readonly",
]
