"""hvmon: a host-management core for virtualization hosts, with agents.

``import hvmon`` gives the public API: :func:`open`, :func:`open_readonly`,
the object classes and the typed errors.
"""

from hvmon.core.api import (
    Connection,
    Domain,
    DomainEvent,
    Network,
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
from hvmon.core.types import DomainState, PoolState

__version__ = "0.1.0"

__all__ = [
    "AccessDenied", "AlreadyExists", "Connection", "Domain", "DomainEvent", "DomainState",
    "HvmonError", "InternalError", "InvalidArgument", "InvalidXML", "LifecycleEvent",
    "Network", "NoConnect", "NoSuchDomain", "NoSuchNetwork", "NoSuchPool", "NoSuchSecret",
    "NoSuchVolume", "OperationDenied", "OperationFailed", "OperationInvalid",
    "OperationTimeout", "PoolState", "Secret", "StoragePool", "StorageVolume", "Unsupported",
    "__version__", "api_registry", "open", "open_readonly",
]
