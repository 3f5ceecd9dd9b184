"""The method table: request names mapped to calls on the agent's connection or snapshot.

Methods mirror libvirt-qpid's QMF schema (plus networks and read methods):
``<class>.<method>`` with JSON ``args``. Every control call goes through
``ctx.connection``, whose central gate refuses it on a read-only agent; a
method is *mutating* when the core API it calls is declared ``mutates`` in the
API registry, so this module holds no list of its own. The AMQP user must also
be in ``allowed_users`` for a mutating (or secure) call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hvmon.core.access import spec_of
from hvmon.core.api import Connection, Domain, Network, StoragePool, StorageVolume
from hvmon.core.errors import (
    AccessDenied,
    InvalidArgument,
    NoSuchDomain,
    NoSuchNetwork,
    NoSuchPool,
    NoSuchVolume,
)
from hvmon.plugins.amqp.schema import (
    CLASSES,
    class_objects,
    domain_object,
    network_object,
    node_object,
    pool_object,
    volume_object,
)

if TYPE_CHECKING:
    from hvmon.core.snapshot.model import Snapshot

#: ``run(call)`` for one request; returns a JSON-safe result
Runner = Callable[["Call"], Any]


@dataclass(frozen=True)
class Call:
    """What a method body gets: the connection, a snapshot getter and the checked args."""

    connection: Connection
    snapshot: Callable[[], Snapshot]
    args: Mapping[str, Any]


@dataclass(frozen=True)
class Method:
    """One method: its body, its arguments (name -> type) and whether it changes state."""

    name: str
    run: Runner
    args: Mapping[str, type | tuple[type, ...]] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    mutates: bool = False
    #: an argument that, when true, makes the call privileged (``secure`` XML)
    privileged_flag: str | None = None
    help: str = ""

    def check_args(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments, type-checked; InvalidArgument names the first problem."""
        unknown = sorted(set(args) - set(self.args))
        if unknown:
            raise InvalidArgument(f"{self.name}: unknown argument(s) "
                                  f"{', '.join(k[:40] for k in unknown[:5])}"
                                  f" (known: {', '.join(self.args) or 'none'})")
        for name in self.required:
            if name not in args:
                raise InvalidArgument(f"{self.name}: missing argument '{name}'")
        for name, value in args.items():
            wanted = self.args[name]
            if isinstance(value, bool) and wanted is not bool:
                raise InvalidArgument(f"{self.name}: argument '{name}' has the wrong type")
            if not isinstance(value, wanted):
                raise InvalidArgument(f"{self.name}: argument '{name}' has the wrong type")
        return dict(args)

    def privileged(self, args: Mapping[str, Any]) -> bool:
        """Whether the allow-list applies to this call."""
        return self.mutates or bool(self.privileged_flag and args.get(self.privileged_flag))


def _mutates(fn: Callable[..., Any]) -> bool:
    spec = spec_of(fn)
    if spec is None:
        raise TypeError(f"{fn.__qualname__} is not a declared API method")
    return spec.mutates


# --- finding objects -------------------------------------------------------------------
IDENT = {"name": str, "uuid": str}


def _domain(call: Call) -> Domain:
    conn, args = call.connection, call.args
    if "uuid" in args:
        return conn.lookup_domain_by_uuid(args["uuid"])
    if "name" in args:
        return conn.lookup_domain_by_name(args["name"])
    raise InvalidArgument("name the domain with 'name' or 'uuid'")


def _pool(call: Call) -> StoragePool:
    conn, args = call.connection, call.args
    if "uuid" in args:
        return conn.lookup_pool_by_uuid(args["uuid"])
    if "name" in args:
        return conn.lookup_pool_by_name(args["name"])
    raise InvalidArgument("name the pool with 'name' or 'uuid'")


def _volume(call: Call) -> StorageVolume:
    conn, args = call.connection, call.args
    if "key" in args:
        return conn.lookup_volume_by_key(args["key"])
    if "path" in args:
        return conn.lookup_volume_by_path(args["path"])
    if "pool" in args and "name" in args:
        return conn.lookup_pool_by_name(args["pool"]).lookup_volume_by_name(args["name"])
    raise InvalidArgument("name the volume with 'key', 'path' or 'pool' and 'name'")


def _network(call: Call) -> Network:
    conn, args = call.connection, call.args
    if "uuid" in args:
        return conn.lookup_network_by_uuid(args["uuid"])
    if "name" in args:
        return conn.lookup_network_by_name(args["name"])
    raise InvalidArgument("name the network with 'name' or 'uuid'")


def _ident(obj: Domain | StoragePool | Network) -> dict[str, str]:
    return {"name": obj.name, "uuid": obj.uuid}


# --- control methods -------------------------------------------------------------------
def _domain_action(action: str) -> Method:
    fn = getattr(Domain, action)

    def run(call: Call) -> dict[str, str]:
        dom = _domain(call)
        getattr(dom, action)()
        return _ident(dom)

    return Method(f"domain.{action}", run, IDENT, mutates=_mutates(fn),
                  help=f"{action} the domain (name or uuid)")


def _pool_action(action: str, core: str | None = None) -> Method:
    fn = getattr(StoragePool, core or action)

    def run(call: Call) -> dict[str, str]:
        pool = _pool(call)
        getattr(pool, core or action)()
        return _ident(pool)

    return Method(f"pool.{action}", run, IDENT, mutates=_mutates(fn),
                  help=f"{action} the pool (name or uuid)")


def _network_action(action: str) -> Method:
    fn = getattr(Network, action)

    def run(call: Call) -> dict[str, str]:
        net = _network(call)
        getattr(net, action)()
        return _ident(net)

    return Method(f"network.{action}", run, IDENT, mutates=_mutates(fn),
                  help=f"{action} the network (name or uuid)")


def _define(name: str, fn: Callable[..., Any], what: str) -> Method:
    def run(call: Call) -> dict[str, str]:
        return _ident(fn(call.connection, call.args["xml"]))

    return Method(name, run, {"xml": str}, ("xml",), mutates=_mutates(fn), help=what)


def _domain_xml(call: Call) -> dict[str, str]:
    return {"xml": _domain(call).xml_desc(secure=bool(call.args.get("secure")),
                                          inactive=bool(call.args.get("inactive")))}


def _domain_migrate(call: Call) -> dict[str, str]:
    """The daemon drives the migration itself (peer to peer) towards ``destination_uri``."""
    moved = _domain(call).migrate(call.args["destination_uri"],
                                  live=bool(call.args.get("live", True)),
                                  persistent=bool(call.args.get("persistent", False)),
                                  undefine_source=bool(call.args.get("undefine_source", False)))
    return {"name": moved.name, "uuid": moved.uuid}


def _pool_volume_xml(call: Call) -> dict[str, str]:
    vol = _pool(call).create_volume_xml(call.args["xml"])
    return {"name": vol.name, "key": vol.key, "path": vol.path}


def _volume_delete(call: Call) -> dict[str, str]:
    vol = _volume(call)
    result = {"name": vol.name, "key": vol.key, "path": vol.path}
    vol.delete()
    return result


# --- read methods (served from the snapshot) ---------------------------------------------
def _need(obj: Any, error: type[Exception], what: str) -> Any:
    if obj is None:
        raise error(what)
    return obj


def _snap_domain(call: Call) -> Any:
    key = call.args.get("uuid") or call.args.get("name")
    if not key:
        raise InvalidArgument("name the domain with 'name' or 'uuid'")
    return _need(call.snapshot().domain(key), NoSuchDomain, f"no domain '{key}'")


def _snap_pool(call: Call) -> Any:
    key = call.args.get("uuid") or call.args.get("name")
    if not key:
        raise InvalidArgument("name the pool with 'name' or 'uuid'")
    return _need(call.snapshot().pool(key), NoSuchPool, f"no pool '{key}'")


def _snap_network(call: Call) -> Any:
    key = call.args.get("uuid") or call.args.get("name")
    if not key:
        raise InvalidArgument("name the network with 'name' or 'uuid'")
    return _need(call.snapshot().network(key), NoSuchNetwork, f"no network '{key}'")


def _snap_volume(call: Call) -> Any:
    args = call.args
    for vol in call.snapshot().volumes:
        if ("key" in args and vol.key == args["key"]) or (
                "path" in args and vol.path == args["path"]) or (
                args.get("pool") == vol.pool and args.get("name") == vol.name):
            return vol
    raise NoSuchVolume("no such volume")


def _node_list(call: Call) -> list[dict[str, Any]]:
    cls = call.args.get("class", "domain")
    if cls not in CLASSES:
        raise InvalidArgument(f"node.list: unknown class {cls!r:.40} (known: {', '.join(CLASSES)})")
    return class_objects(call.snapshot(), cls, statistics=False)


def _volume_list(call: Call) -> list[dict[str, Any]]:
    snap = call.snapshot()
    pool = call.args.get("pool")
    vols = snap.volumes if pool is None else snap.pool_volumes(pool)
    return [volume_object(v, statistics=False) for v in vols]


def _list(cls: str) -> Runner:
    return lambda call: class_objects(call.snapshot(), cls, statistics=False)


def build_methods() -> dict[str, Method]:
    """Every method the agent serves, by name."""
    methods = [
        _define("node.domainDefineXML", Connection.define_domain_xml, "define a domain"),
        _define("node.storagePoolDefineXML", Connection.define_pool_xml, "define a pool"),
        _define("node.storagePoolCreateXML", Connection.create_pool_xml,
                "create (start) a transient pool"),
        _define("node.networkDefineXML", Connection.define_network_xml, "define a network"),
        Method("node.info", lambda call: node_object(call.snapshot().host, call.snapshot()),
               help="host facts and statistics"),
        Method("node.list", _node_list, {"class": str}, help="objects of one class"),
        Method("node.stats", lambda c: node_object(c.snapshot().host, c.snapshot())["statistics"],
               help="host statistics"),
        *(_domain_action(a) for a in ("create", "destroy", "shutdown", "suspend", "resume",
                                      "reboot", "undefine")),
        Method("domain.getXMLDesc", _domain_xml, {**IDENT, "inactive": bool, "secure": bool},
               privileged_flag="secure", help="the domain XML"),
        Method("domain.migrate", _domain_migrate,
               {**IDENT, "destination_uri": str, "live": bool, "persistent": bool,
                "undefine_source": bool}, ("destination_uri",),
               mutates=_mutates(Domain.migrate), help="migrate the domain to another host"),
        Method("domain.list", _list("domain"), help="every domain (no statistics)"),
        Method("domain.info", lambda c: domain_object(_snap_domain(c)), IDENT,
               help="one domain with statistics"),
        Method("domain.stats", lambda c: dict(_snap_domain(c).stats), IDENT,
               help="one domain's statistics (libvirt bulk-stats keys)"),
        _pool_action("create"), _pool_action("build"), _pool_action("destroy"),
        _pool_action("delete"), _pool_action("undefine"), _pool_action("refresh"),
        Method("pool.createVolumeXML", _pool_volume_xml, {**IDENT, "xml": str}, ("xml",),
               mutates=_mutates(StoragePool.create_volume_xml), help="create a volume"),
        Method("pool.getXMLDesc", lambda c: {"xml": _pool(c).xml_desc(
            inactive=bool(c.args.get("inactive")))}, {**IDENT, "inactive": bool},
            help="the pool XML"),
        Method("pool.list", _list("pool"), help="every pool"),
        Method("pool.info", lambda c: pool_object(_snap_pool(c)), IDENT,
               help="one pool with statistics"),
        Method("volume.getXMLDesc", lambda c: {"xml": _volume(c).xml_desc()},
               {"key": str, "path": str, "pool": str, "name": str}, help="the volume XML"),
        Method("volume.delete", _volume_delete,
               {"key": str, "path": str, "pool": str, "name": str},
               mutates=_mutates(StorageVolume.delete), help="delete the volume"),
        Method("volume.list", _volume_list, {"pool": str}, help="volumes of active pools"),
        Method("volume.info", lambda c: volume_object(_snap_volume(c)),
               {"key": str, "path": str, "pool": str, "name": str},
               help="one volume with statistics"),
        *(_network_action(a) for a in ("create", "destroy", "undefine")),
        Method("network.getXMLDesc", lambda c: {"xml": _network(c).xml_desc(
            inactive=bool(c.args.get("inactive")))}, {**IDENT, "inactive": bool},
            help="the network XML"),
        Method("network.list", _list("network"), help="every network"),
        Method("network.info", lambda c: network_object(_snap_network(c)), IDENT,
               help="one network with statistics"),
    ]
    return {m.name: m for m in methods}


def authorize(method: Method, args: Mapping[str, Any], user: str | None,
              allowed: frozenset[str]) -> None:
    """AccessDenied unless ``user`` may make this call (read calls are open to all)."""
    if method.privileged(args) and (user is None or user not in allowed):
        who = f"user '{user[:64]}'" if user else "a request without user_id"
        raise AccessDenied(f"access denied: {who} may not call {method.name}")
