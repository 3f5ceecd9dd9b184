"""SNMPv3: USM keys (RFC 3414 A.3), net-snmp interop over SHA-2/AES, reports, engine ID state."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from hvmon.plugins.snmp.ber import encode_varbind
from hvmon.plugins.snmp.engine import SnmpEngine
from hvmon.plugins.snmp.localmib import COUNTERS
from hvmon.plugins.snmp.message import (
    FLAG_AUTH,
    FLAG_PRIV,
    FLAG_REPORTABLE,
    PduType,
    decode_v3,
    encode_pdu_raw,
    encode_scoped_raw,
)
from hvmon.plugins.snmp.usm import (
    EngineState,
    LocalKeys,
    SecurityParams,
    UsmUser,
    encode_secure,
    extend_key,
    localize_key,
    password_to_key,
    verify,
)
from hvmon.plugins.snmp.vacm import read_only, read_write

from .conftest import Client, EngineFactory, FakeView, snmp
from .test_engine import BASE, COL_STATE, ROWS, entries

RFC_ENGINE = bytes.fromhex("000000000000000000000002")
USERS = [
    ("sha256", "SHA-256", "AES"),
    ("sha512", "SHA-512", "AES-256"),
    ("sha1", "SHA", "AES-192"),
    ("md5", "MD5", "AES"),
    ("sha224", "SHA-224", None),
    ("sha384", "SHA-384", "AES-256"),
]
AUTH_PASS, PRIV_PASS = "auth-secret-1", "priv-secret-1"


def test_rfc3414_key_localization_vectors() -> None:
    ku = password_to_key(b"maplesyrup", "md5")
    assert ku.hex() == "9faf3283884e92834ebc9847d8edd963"
    assert localize_key(ku, RFC_ENGINE, "md5").hex() == "526f5eed9fcce26f8964c2930787d82b"
    ku = password_to_key(b"maplesyrup", "sha1")
    assert ku.hex() == "9fb5cc0381497b3793528939ff788d5d79145211"
    assert localize_key(ku, RFC_ENGINE, "sha1").hex() == \
        "6695febc9288e36282235fc7151f128497b38f3f"
    # Blumenthal extension: Kul || H(Kul) ...
    kul = localize_key(ku, RFC_ENGINE, "sha1")
    extended = extend_key(kul, 32, "sha1")
    assert extended[:20] == kul and len(extended) == 32


@pytest.fixture
def view() -> FakeView:
    return FakeView(entries(), writable=[COL_STATE + (r,) for r in range(1, ROWS + 1)])


def make_users() -> list[tuple[UsmUser, object]]:
    users: list[tuple[UsmUser, object]] = []
    for name, auth, priv in USERS:
        user = UsmUser.create(name, auth, AUTH_PASS, priv, PRIV_PASS if priv else "")
        users.append((user, read_only(name, min_level=user.level)))
    admin = UsmUser.create("admin", "SHA-256", AUTH_PASS, "AES", PRIV_PASS)
    users.append((admin, read_write("admin", min_level=2)))
    return users


@pytest.fixture
def engine(start_engine: EngineFactory, view: FakeView, tmp_path: Path) -> SnmpEngine:
    return start_engine(view, users=make_users(), state=EngineState.load(tmp_path),
                        control=True)


def v3_args(engine: SnmpEngine, user: str, auth: str | None, priv: str | None,
            auth_pass: str = AUTH_PASS, priv_pass: str = PRIV_PASS) -> list[str]:
    host, port = engine.addresses[0]
    args = ["-v3", "-u", user, "-On"]
    if auth is None:
        args += ["-l", "noAuthNoPriv"]
    elif priv is None:
        args += ["-l", "authNoPriv", "-a", auth, "-A", auth_pass]
    else:
        args += ["-l", "authPriv", "-a", auth, "-A", auth_pass, "-x", priv, "-X", priv_pass]
    return [*args, f"{host}:{port}"]


@pytest.mark.parametrize(("user", "auth", "priv"), USERS, ids=[u[0] for u in USERS])
def test_net_snmp_v3_get_and_bulkwalk(engine: SnmpEngine, user: str, auth: str,
                                      priv: str | None) -> None:
    got = snmp("snmpget", *v3_args(engine, user, auth, priv), ".1.3.6.1.4.1.32473.1.1.0")
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == '.1.3.6.1.4.1.32473.1.1.0 = STRING: "host"'
    walk = snmp("snmpbulkwalk", "-Cr25", *v3_args(engine, user, auth, priv),
                ".1.3.6.1.4.1.32473.1.2")
    assert walk.returncode == 0, walk.stderr
    assert len(walk.stdout.splitlines()) == 3 * ROWS


def counter(engine: SnmpEngine, name: str) -> int:
    return engine.local.counters[name]


@pytest.mark.parametrize(("args", "message", "count"), [
    (("admin", "SHA-256", "AES", "wrong-pass-1"), "Authentication failure", "wrongDigests"),
    (("nobody", "SHA-256", "AES"), "Unknown user name", "unknownUserNames"),
    (("admin", "SHA-256", "AES", AUTH_PASS, "wrong-priv-1"), "Decryption error",
     "decryptionErrors"),
    (("sha224", "SHA-224", "AES"), "Unsupported security level", "unsupportedSecLevels"),
])
def test_bad_credentials_get_reports_and_counts(engine: SnmpEngine, args: tuple[str, ...],
                                                message: str, count: str) -> None:
    got = snmp("snmpget", *v3_args(engine, *args), ".1.3.6.1.4.1.32473.1.1.0")  # type: ignore[arg-type]
    assert got.returncode != 0
    assert message in got.stderr
    assert counter(engine, count) >= 1
    assert counter(engine, "unknownEngineIDs") >= 1  # the discovery step


def test_lower_security_level_than_configured_is_an_authorization_error(
        engine: SnmpEngine) -> None:
    got = snmp("snmpget", *v3_args(engine, "admin", "SHA-256", None), ".1.3.6.1.4.1.32473.1.1.0")
    assert "authorizationError" in got.stdout + got.stderr


def test_v3_set_read_write_user_only(engine: SnmpEngine, view: FakeView) -> None:
    oid = ".1.3.6.1.4.1.32473.1.2.1.2.7"
    refused = snmp("snmpset", "-Ir", *v3_args(engine, "sha256", "SHA-256", "AES"), oid, "i", "3")
    assert refused.returncode != 0 and "notWritable" in refused.stderr
    assert view.values[COL_STATE + (7,)].data == 1
    done = snmp("snmpset", "-Ir", *v3_args(engine, "admin", "SHA-256", "AES"), oid, "i", "3")
    assert done.returncode == 0, done.stderr
    assert view.values[COL_STATE + (7,)].data == 3


def test_not_in_time_window_report_is_authenticated(
        engine: SnmpEngine, client_for: Callable[..., Client]) -> None:
    admin = next(u for u, _ in make_users() if u.name == b"admin")
    keys = LocalKeys.for_engine(admin, engine.state.engine_id)
    scoped = encode_scoped_raw(engine.state.engine_id, b"", encode_pdu_raw(
        PduType.GET, 5, 0, 0, encode_varbind(BASE + (1, 0), __import__(
            "hvmon.plugins.snmp.types", fromlist=["NULL"]).NULL)))
    params = SecurityParams(engine.state.engine_id, engine.state.boots, 100000, b"admin",
                            b"", b"")
    request = encode_secure(77, 65507, FLAG_AUTH | FLAG_REPORTABLE, params, scoped, keys)
    answer = client_for(engine).ask(request)
    assert answer is not None
    msg = decode_v3(answer)
    assert msg.msg_id == 77 and msg.auth and not msg.priv
    reply_params = SecurityParams.decode(msg.security_params)
    verify(answer, msg.params_at + reply_params.auth_at, reply_params, keys)  # signed by us
    assert reply_params.boots == engine.state.boots
    assert msg.scoped.pdu.type == PduType.REPORT  # type: ignore[union-attr]
    assert msg.scoped.pdu.varbinds[0][0] == COUNTERS["notInTimeWindows"]  # type: ignore[union-attr]
    # with the right time the same request is answered (encrypted when asked)
    params = SecurityParams(engine.state.engine_id, engine.state.boots, engine.state.time,
                            b"admin", b"", b"\x00" * 8)
    encrypted = keys.encrypt(scoped, params.boots, params.time, params.priv)
    request = encode_secure(78, 65507, FLAG_AUTH | FLAG_PRIV | FLAG_REPORTABLE, params,
                            encrypted, keys)
    answer = client_for(engine).ask(request)
    assert answer is not None and decode_v3(answer).priv


def test_engine_id_is_persisted_and_boots_count_starts(tmp_path: Path) -> None:
    first = EngineState.load(tmp_path)
    second = EngineState.load(tmp_path)
    assert first.engine_id == second.engine_id
    assert first.engine_id[:5] == bytes.fromhex("80007ed905") and len(first.engine_id) == 17
    assert (first.boots, second.boots) == (1, 2)
    data = json.loads((tmp_path / EngineState.FILE).read_text())
    assert data == {"engine_id": first.engine_id.hex(), "boots": 2}
    (tmp_path / EngineState.FILE).write_text("{not json")
    with pytest.raises(ValueError, match="bad SNMP engine state in .*snmp-engine.json") as info:
        EngineState.load(tmp_path)
    assert "\n" not in str(info.value)


def test_engine_id_stable_across_agent_restarts_seen_by_net_snmp(
        start_engine: EngineFactory, view: FakeView, tmp_path: Path,
        loop_thread: object) -> None:
    seen = []
    for _ in range(2):
        engine = start_engine(view, users=make_users(), state=EngineState.load(tmp_path))
        got = snmp("snmpget", *v3_args(engine, "sha256", "SHA-256", "AES"),
                   ".1.3.6.1.6.3.10.2.1.1.0", ".1.3.6.1.6.3.10.2.1.2.0")
        assert got.returncode == 0, got.stderr
        found = re.search(r"10\.2\.1\.1\.0 = Hex-STRING: ([0-9A-F\s]+?)\s*\n\S*?"
                          r"10\.2\.1\.2\.0 = INTEGER: (\d+)", got.stdout, re.S)
        assert found, got.stdout
        seen.append(("".join(found.group(1).split()).lower(), int(found.group(2))))
        loop_thread.call(engine.stop())  # type: ignore[attr-defined]
    (id1, boots1), (id2, boots2) = seen
    assert id1 == id2 == json.loads((tmp_path / EngineState.FILE).read_text())["engine_id"]
    assert id1.startswith("80007ed905")
    assert (boots1, boots2) == (1, 2)
