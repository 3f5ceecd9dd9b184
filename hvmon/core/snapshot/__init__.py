"""One data model for every protocol: the host snapshot and its shared cache.

See ``docs/snapshot.md`` for the schema and the refresh and staleness rules.
"""

from hvmon.core.snapshot.cache import SnapshotCache
from hvmon.core.snapshot.collector import collect_snapshot
from hvmon.core.snapshot.model import (
    SCHEMA_VERSION,
    DomainSnapshot,
    HostFacts,
    JobSnapshot,
    NetworkSnapshot,
    NicSnapshot,
    PoolSnapshot,
    Snapshot,
    VolumeSnapshot,
)

__all__ = [
    "SCHEMA_VERSION",
    "DomainSnapshot",
    "HostFacts",
    "JobSnapshot",
    "NetworkSnapshot",
    "NicSnapshot",
    "PoolSnapshot",
    "Snapshot",
    "SnapshotCache",
    "VolumeSnapshot",
    "collect_snapshot",
]
