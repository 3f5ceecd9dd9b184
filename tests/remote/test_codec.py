"""The payload codec: core types round-trip; only allow-listed types are built."""

from __future__ import annotations

import json

import pytest

import hvmon
from hvmon.core.drivers.base import DomainRef, Listing, PoolRef, SecretRef, VolumeRef
from hvmon.core.drivers.remote import codec, framing
from hvmon.core.events import LifecycleEvent
from hvmon.core.types import (
    DhcpLease,
    DomainInfo,
    DomainState,
    JobInfo,
    NodeInfo,
    PoolInfo,
    PoolState,
    VolumeInfo,
    VolumeType,
)

VALUES = [
    None, True, 3, 2.5, "x", [1, "a"], {"a": 1},
    DomainRef("u", "n", 3), Listing(PoolRef("u", "p"), True, False, True),
    VolumeRef("p", "v", "/k", "/p"), SecretRef("u"),
    NodeInfo("m", 1, 2, 3, 4, 5, 6, 7), DomainInfo(DomainState.PAUSED, 1, 2, 3, 4),
    JobInfo(), PoolInfo(PoolState.RUNNING, 1, 2, 3), VolumeInfo(VolumeType.BLOCK, 1, 2),
    DhcpLease("vnet0", 1, "ipv4", "52:54:00:00:00:01", "10.0.0.2", 24),
    (DomainState.RUNNING, 1), b"\x00\xff", ("groups", "state"),
    {"$t": "not a tag", 1: "int key"}, LifecycleEvent.STARTED,
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_round_trip(value: object) -> None:
    wire = json.loads(json.dumps(codec.encode(value)))
    back = codec.decode(wire)
    assert back == value and type(back) is type(value)


def test_errors_round_trip_with_their_type() -> None:
    results = [{"state.state": 1}, hvmon.OperationFailed("cannot get stats")]
    back = codec.decode(json.loads(json.dumps(codec.encode(results))))
    assert back[0] == {"state.state": 1}
    assert isinstance(back[1], hvmon.OperationFailed) and str(back[1]) == "cannot get stats"


@pytest.mark.parametrize("value", [object(), {1, 2}, ValueError("x")])
def test_unknown_types_are_not_encoded(value: object) -> None:
    with pytest.raises(TypeError):
        codec.encode(value)


@pytest.mark.parametrize("wire", [
    {"$t": "Popen", "v": ["/bin/sh"]}, {"$t": "DomainRef", "v": "x"},
    {"$t": "DomainRef", "v": [1, 2, 3, 4, 5]}, {"$t": "NodeInfo", "v": {"bogus": 1}},
    {"$t": "DomainState", "v": 99}, {"$t": "bytes", "v": "!!"}, {"$t": 3},
    {"$t": "dict", "v": [[[1], 2]]}, {"$t": "error", "v": {"code": "x"}},
])
def test_decoding_builds_only_allowed_types(wire: object) -> None:
    with pytest.raises(hvmon.InvalidArgument):
        codec.decode(wire)


def test_large_payloads_are_compressed() -> None:
    flags, payload = framing.dump({"blob": "x" * (2 * framing.COMPRESS_OVER)})
    assert flags == framing.FLAG_ZLIB and len(payload) < framing.COMPRESS_OVER
    assert framing.load(flags, payload)["blob"] == "x" * (2 * framing.COMPRESS_OVER)
    assert framing.dump({"small": 1})[0] == 0


def test_errors_decode_to_the_core_class_even_when_others_share_the_code() -> None:
    import hvmon.cli.inputs  # noqa: F401 - defines CliError with code 8

    for cls in (hvmon.InvalidArgument, hvmon.NoSuchDomain, hvmon.OperationDenied,
                hvmon.NoConnect, hvmon.InternalError):
        error = codec.decode_error(cls("boom").to_dict())
        assert type(error) is cls and str(error) == "boom"
    assert type(codec.decode_error({"code": 12345, "message": "m"})) is hvmon.HvmonError
