"""The operations dispatcher: intrinsic operations (DSP0200 ch. 5.3) and extrinsic calls.

Runs in a worker thread (never on the event loop): providers may read domain
XML through the connection. Every failure is a :class:`CIMError` with its
status code, answered inside the method response.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from hvmon.plugins.cim import xmlbuild as xb
from hvmon.plugins.cim.errors import CIMError, Status
from hvmon.plugins.cim.objects import ClassDecl, Instance, InstancePath, QualifierDecl
from hvmon.plugins.cim.providers import Provider
from hvmon.plugins.cim.values import coerce, escape
from hvmon.plugins.cim.xmlparse import ClassName, ParsedInstance, Request

if TYPE_CHECKING:
    from hvmon.core.snapshot.model import Snapshot
    from hvmon.plugins.cim.model import Model, View
    from hvmon.plugins.cim.schema import Schema

#: intrinsic operations answered CIM_ERR_NOT_SUPPORTED so clients fall back (pull) or give up
NOT_SUPPORTED = frozenset(n.lower() for n in (
    "OpenEnumerateInstances", "OpenEnumerateInstancePaths", "OpenAssociatorInstances",
    "OpenAssociatorInstancePaths", "OpenReferenceInstances", "OpenReferenceInstancePaths",
    "OpenQueryInstances", "PullInstancesWithPath", "PullInstancePaths", "PullInstances",
    "CloseEnumeration", "EnumerationCount", "ExecQuery", "ModifyInstance", "CreateClass",
    "ModifyClass", "DeleteClass", "SetQualifier", "DeleteQualifier", "GetProperty",
    "SetProperty"))

#: ``invoke(view, request, class, method, params) -> (return value, {output: value})``
MethodHandler = Callable[["View", Request, ClassDecl, Any, dict[str, Any]],
                         tuple[int, dict[str, Any]]]
#: ``create(namespace, classname, values) -> path`` / ``delete(path)`` for subscriptions
Creator = Callable[[str, ClassDecl, dict[str, Any]], InstancePath]
Deleter = Callable[[str, InstancePath], None]


def _bool(req: Request, name: str, default: bool) -> bool:
    raw = req.param(name)
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().upper() in ("TRUE", "FALSE"):
        return raw.strip().upper() == "TRUE"
    raise CIMError(Status.INVALID_PARAMETER, f"{name} must be TRUE or FALSE")


def _classname(req: Request, name: str, required: bool) -> str | None:
    raw = req.param(name)
    if raw is None:
        if required:
            raise CIMError(Status.INVALID_PARAMETER, f"{req.name}: {name} is required")
        return None
    if isinstance(raw, ClassName):
        return raw.name
    if isinstance(raw, str) and raw:
        return raw
    raise CIMError(Status.INVALID_PARAMETER, f"{req.name}: {name} must be a class name")


def _string(req: Request, name: str) -> str | None:
    raw = req.param(name)
    if raw is None or isinstance(raw, str):
        return raw
    raise CIMError(Status.INVALID_PARAMETER, f"{req.name}: {name} must be a string")


def _property_list(req: Request) -> frozenset[str] | None:
    raw = req.param("PropertyList")
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise CIMError(Status.INVALID_PARAMETER, "PropertyList must be an array of names")
    return frozenset(v.lower() for v in raw)


def _instance_name(req: Request, name: str) -> InstancePath:
    raw = req.param(name)
    if not isinstance(raw, InstancePath):
        raise CIMError(Status.INVALID_PARAMETER, f"{req.name}: {name} must be an instance name")
    return raw


class Dispatcher:
    """Answers requests for the served namespaces."""

    def __init__(self, schemas: dict[str, Schema], model: Model, providers: Iterable[Provider],
                 invoke: MethodHandler, create: Creator | None = None,
                 delete: Deleter | None = None,
                 refresh: Callable[[], Snapshot] | None = None) -> None:
        self.schemas = schemas
        self.refresh = refresh
        self.model = model
        self.invoke = invoke
        self.create = create
        self.delete = delete
        self.providers: dict[tuple[str, str], Provider] = {}
        for provider in providers:
            full = provider.name if provider.name.startswith("CIM_") else \
                model.cls(provider.name)
            for ns in provider.namespaces:
                if ns in schemas and schemas[ns].has(full):
                    self.providers[(ns, full.lower())] = provider
        self.flavors = {ns: {k: (d.tosubclass, d.overridable) for k, d in s.qualifiers.items()}
                        for ns, s in schemas.items()}
        self._writers: dict[tuple[str, str, xb.Flags], xb.InstanceWriter] = {}

    # --- entry point -----------------------------------------------------------
    def handle(self, req: Request, view: View | None = None) -> str:
        """The response document for ``req`` (errors included)."""
        try:
            schema = self.schema(req.namespace)
            view = view or self.model.view()
            if req.kind == "method":
                return self._method(req, schema, view)
            handler = getattr(self, f"op_{req.name.lower()}", None)
            if handler is None:
                hint = " (use the classic operations)" if req.name.lower() in NOT_SUPPORTED else ""
                raise CIMError(Status.NOT_SUPPORTED,
                               f"operation {req.name!r:.60} is not supported{hint}")
            parts = handler(req, schema, view)
            return xb.imethod_response(req.msgid, req.name, parts)
        except CIMError as exc:
            build = xb.method_error if req.kind == "method" else xb.imethod_error
            return build(req.msgid, req.name, int(exc.status), exc.description)

    def schema(self, namespace: str) -> Schema:
        found = self.schemas.get(namespace.strip("/").lower())
        if found is None:
            raise CIMError(Status.INVALID_NAMESPACE, f"namespace {namespace!r:.60} does not exist "
                                                     f"(served: {', '.join(self.schemas)})")
        return found

    # --- helpers -----------------------------------------------------------------
    def _writer(self, schema: Schema, classname: str, flags: xb.Flags) -> xb.InstanceWriter:
        key = (schema.namespace, classname.lower(), flags)
        writer = self._writers.get(key)
        if writer is None:
            writer = xb.InstanceWriter(schema.get(classname), flags,
                                       self.flavors[schema.namespace])
            if len(self._writers) > 512:
                self._writers.clear()
            self._writers[key] = writer
        return writer

    def _concrete(self, schema: Schema, classname: str, deep: bool = True) -> list[str]:
        names = [schema.get(classname).name, *schema.subclasses(classname, deep)]
        return [n for n in names if (schema.namespace, n.lower()) in self.providers]

    def instances(self, schema: Schema, view: View, classname: str) -> Iterator[Instance]:
        """Every instance of ``classname`` and its subclasses in the namespace."""
        for name in self._concrete(schema, classname):
            yield from self.providers[(schema.namespace, name.lower())].instances(view)

    def get_instance(self, schema: Schema, view: View, path: InstancePath) -> Instance:
        cls = schema.find(path.classname)
        if cls is None:
            raise CIMError(Status.INVALID_CLASS, f"no class {path.classname} in namespace "
                                                 f"{schema.namespace}")
        provider = self.providers.get((schema.namespace, cls.name.lower()))
        found = provider.get(view, path) if provider is not None else None
        if found is None:
            raise CIMError(Status.NOT_FOUND, f"no instance {path}")
        return found

    def _flags(self, req: Request, schema: Schema, classname: str | None = None,
               deep: bool = True) -> xb.Flags:
        props = _property_list(req)
        if not deep and classname is not None:
            own = frozenset(schema.get(classname).properties)
            props = own if props is None else props & own
        return xb.Flags(_bool(req, "IncludeQualifiers", False),
                        _bool(req, "IncludeClassOrigin", False), props)

    def _named(self, schema: Schema, inst: Instance, flags: xb.Flags, host: str) -> str:
        path = inst.path.in_namespace(schema.namespace)
        body = self._writer(schema, inst.classname, flags).write(inst, host)
        return f"<VALUE.NAMEDINSTANCE>{xb.instancename(path, host)}{body}</VALUE.NAMEDINSTANCE>"

    # --- instances ------------------------------------------------------------
    def op_enumerateinstances(self, req: Request, schema: Schema, view: View) -> list[str]:
        classname = _classname(req, "ClassName", True)
        assert classname is not None
        deep = _bool(req, "DeepInheritance", True)
        flags = self._flags(req, schema, classname, deep)
        return [self._named(schema, inst, flags, view.hostname)
                for inst in self.instances(schema, view, classname)]

    def op_enumerateinstancenames(self, req: Request, schema: Schema, view: View) -> list[str]:
        classname = _classname(req, "ClassName", True)
        assert classname is not None
        return [xb.instancename(i.path.in_namespace(schema.namespace), view.hostname)
                for i in self.instances(schema, view, classname)]

    def op_getinstance(self, req: Request, schema: Schema, view: View) -> list[str]:
        path = _instance_name(req, "InstanceName")
        inst = self.get_instance(schema, view, path)
        flags = self._flags(req, schema)
        return [self._writer(schema, inst.classname, flags).write(inst, view.hostname)]

    def op_createinstance(self, req: Request, schema: Schema, view: View) -> list[str]:
        new = req.param("NewInstance")
        if not isinstance(new, ParsedInstance):
            raise CIMError(Status.INVALID_PARAMETER, "CreateInstance: NewInstance must be an "
                                                     "INSTANCE")
        cls = schema.get(new.classname)
        if self.create is None:
            raise CIMError(Status.NOT_SUPPORTED, f"instances of {cls.name} cannot be created")
        values: dict[str, Any] = {}
        for prop in new.properties.values():
            decl = cls.prop(prop.name)
            if decl is None:
                raise CIMError(Status.INVALID_PARAMETER, f"{cls.name} has no property "
                                                         f"{prop.name!r:.60}")
            values[decl.name] = coerce(decl.type, decl.is_array, prop.value,
                                       f"{cls.name}.{decl.name}")
        path = self.create(schema.namespace, cls, values)
        return [xb.instancename(path, view.hostname)]

    def op_deleteinstance(self, req: Request, schema: Schema, view: View) -> None:
        path = _instance_name(req, "InstanceName")
        schema.get(path.classname)
        if self.delete is None:
            raise CIMError(Status.NOT_SUPPORTED, f"instances of {path.classname} cannot be "
                                                 "deleted")
        self.delete(schema.namespace, path)
        return None

    # --- classes --------------------------------------------------------------
    def op_getclass(self, req: Request, schema: Schema, view: View) -> list[str]:
        classname = _classname(req, "ClassName", True)
        assert classname is not None
        cls = schema.get(classname)
        flags = xb.Flags(_bool(req, "IncludeQualifiers", True),
                         _bool(req, "IncludeClassOrigin", False), _property_list(req))
        return [xb.class_xml(cls, flags, self.flavors[schema.namespace],
                             _bool(req, "LocalOnly", True))]

    def _class_names(self, req: Request, schema: Schema) -> list[str]:
        classname = _classname(req, "ClassName", False)
        if classname is not None:
            schema.get(classname)
        return schema.subclasses(classname, _bool(req, "DeepInheritance", False))

    def op_enumerateclasses(self, req: Request, schema: Schema, view: View) -> list[str]:
        flags = xb.Flags(_bool(req, "IncludeQualifiers", True),
                         _bool(req, "IncludeClassOrigin", False))
        local_only = _bool(req, "LocalOnly", True)
        return [xb.class_xml(schema.get(n), flags, self.flavors[schema.namespace], local_only)
                for n in self._class_names(req, schema)]

    def op_enumerateclassnames(self, req: Request, schema: Schema, view: View) -> list[str]:
        return [f'<CLASSNAME NAME="{escape(n)}"></CLASSNAME>'
                for n in self._class_names(req, schema)]

    # --- qualifier declarations -------------------------------------------------
    def op_enumeratequalifiers(self, req: Request, schema: Schema, view: View) -> list[str]:
        return [_qualifier_decl(d) for d in schema.qualifiers.values()]

    def op_getqualifier(self, req: Request, schema: Schema, view: View) -> list[str]:
        name = _string(req, "QualifierName")
        decl = schema.qualifiers.get((name or "").lower())
        if decl is None:
            raise CIMError(Status.NOT_FOUND, f"no qualifier {name!r:.60}")
        return [_qualifier_decl(decl)]

    # --- associations -------------------------------------------------------------
    def _object(self, req: Request, schema: Schema) -> InstancePath:
        raw = req.param("ObjectName")
        if isinstance(raw, ClassName):
            schema.get(raw.name)
            raise CIMError(Status.NOT_SUPPORTED, "class-level association operations are not "
                                                 "supported")
        if not isinstance(raw, InstancePath):
            raise CIMError(Status.INVALID_PARAMETER, f"{req.name}: ObjectName is required")
        if not schema.has(raw.classname):
            raise CIMError(Status.INVALID_PARAMETER, f"no class {raw.classname} in namespace "
                                                     f"{schema.namespace}")
        return raw

    def _checked_class(self, req: Request, schema: Schema, name: str) -> str | None:
        classname = _classname(req, name, False)
        if classname is not None and not schema.has(classname):
            raise CIMError(Status.INVALID_PARAMETER, f"{name}: no class {classname}")
        return classname

    def _links(self, req: Request, schema: Schema, view: View, obj: InstancePath,
               assoc_param: str) -> Iterator[tuple[Instance, str]]:
        """(association instance, the role ``obj`` plays in it)."""
        assoc = self._checked_class(req, schema, assoc_param)
        role = (_string(req, "Role") or "").lower()
        wanted = obj.identity()
        for cls in schema.resolved.values():
            if not cls.is_association:
                continue
            provider = self.providers.get((schema.namespace, cls.name.lower()))
            if provider is None or (assoc is not None and not schema.is_a(cls.name, assoc)):
                continue
            for inst in provider.candidates(view, obj):
                for key, val in inst.path.keys:
                    if isinstance(val, InstancePath) and val.identity() == wanted and \
                            (not role or key.lower() == role):
                        yield inst, key
                        break

    def _targets(self, req: Request, schema: Schema, view: View) -> list[InstancePath]:
        obj = self._object(req, schema)
        result_class = self._checked_class(req, schema, "ResultClass")
        result_role = (_string(req, "ResultRole") or "").lower()
        seen: set[Any] = set()
        out: list[InstancePath] = []
        for inst, role in self._links(req, schema, view, obj, "AssocClass"):
            for key, val in inst.path.keys:
                if key == role or not isinstance(val, InstancePath):
                    continue
                if result_role and key.lower() != result_role:
                    continue
                if result_class is not None and not schema.is_a(val.classname, result_class):
                    continue
                ident = val.identity()
                if ident not in seen:
                    seen.add(ident)
                    out.append(val)
        return out

    def _with_path(self, schema: Schema, inst: Instance, path: InstancePath, flags: xb.Flags,
                   host: str) -> str:
        body = self._writer(schema, inst.classname, flags).write(inst, host)
        return (f"<VALUE.OBJECTWITHPATH>{xb.instancepath(path, host)}{body}"
                "</VALUE.OBJECTWITHPATH>")

    def op_associatornames(self, req: Request, schema: Schema, view: View) -> list[str]:
        return [xb.objectpath(t, view.hostname) for t in self._targets(req, schema, view)]

    def op_associators(self, req: Request, schema: Schema, view: View) -> list[str]:
        flags = self._flags(req, schema)
        out = []
        for target in self._targets(req, schema, view):
            target_schema = self.schemas.get(target.namespace, schema) if target.namespace \
                else schema
            try:
                inst = self.get_instance(target_schema, view, target)
            except CIMError:
                continue  # vanished between the association and the lookup
            path = target if target.namespace else target.in_namespace(schema.namespace)
            out.append(self._with_path(target_schema, inst, path, flags, view.hostname))
        return out

    def _references(self, req: Request, schema: Schema, view: View) -> list[Instance]:
        obj = self._object(req, schema)
        return [inst for inst, _role in self._links(req, schema, view, obj, "ResultClass")]

    def op_referencenames(self, req: Request, schema: Schema, view: View) -> list[str]:
        return [xb.objectpath(i.path.in_namespace(schema.namespace), view.hostname)
                for i in self._references(req, schema, view)]

    def op_references(self, req: Request, schema: Schema, view: View) -> list[str]:
        flags = self._flags(req, schema)
        return [self._with_path(schema, i, i.path.in_namespace(schema.namespace), flags,
                                view.hostname)
                for i in self._references(req, schema, view)]

    # --- extrinsic methods ----------------------------------------------------------
    def _method(self, req: Request, schema: Schema, view: View) -> str:
        target = req.target
        classname = target.name if isinstance(target, ClassName) else \
            target.classname if target is not None else ""
        cls = schema.get(classname)
        method = cls.method(req.name)
        if method is None:
            raise CIMError(Status.METHOD_NOT_FOUND, f"class {cls.name} has no method "
                                                    f"{req.name!r:.60}")
        if isinstance(target, InstancePath):
            try:
                self.get_instance(schema, view, target)  # NOT_FOUND before anything runs
            except CIMError as exc:
                if exc.status != Status.NOT_FOUND or self.refresh is None:
                    raise
                view = self.model.view(self.refresh())  # defined since the last snapshot?
                self.get_instance(schema, view, target)
        params: dict[str, Any] = {}
        for lname, given in req.params.items():
            decl = next((p for p in method.params if p.name.lower() == lname), None)
            if decl is None:
                raise CIMError(Status.INVALID_PARAMETER, f"{cls.name}.{method.name} has no "
                                                         f"parameter {given.name!r:.60}")
            if decl.qualifier("In") is False:
                raise CIMError(Status.INVALID_PARAMETER, f"{decl.name} is an output parameter")
            embedded = bool(decl.qualifier("EmbeddedInstance") or decl.qualifier("EmbeddedObject"))
            value = given.value
            if embedded and decl.type == "string":
                params[decl.name] = value  # parsed by the method (CIM-XML or MOF text)
                continue
            params[decl.name] = coerce(decl.type, decl.is_array, value,
                                       f"{method.name}.{decl.name}")
        result, outputs = self.invoke(view, req, cls, target, params)
        parts = []
        for name, val in outputs.items():
            decl = next(p for p in method.params if p.name.lower() == name.lower())
            if val is not None:
                parts.append(xb.out_param(decl, val, view.hostname))
        return xb.method_response(req.msgid, method.name, method.type, result, parts)


_SCOPES = ("CLASS", "ASSOCIATION", "REFERENCE", "PROPERTY", "METHOD", "PARAMETER",
           "INDICATION")


def _qualifier_decl(decl: QualifierDecl) -> str:
    scopes = {s.lower() for s in decl.scopes}
    everything = "any" in scopes
    attrs = " ".join(f'{s}="{"true" if everything or s.lower() in scopes else "false"}"'
                     for s in _SCOPES)
    head = f'<QUALIFIER.DECLARATION NAME="{escape(decl.name)}" TYPE="{decl.type}"'
    if decl.is_array:
        head += ' ISARRAY="true"'
    head += f' OVERRIDABLE="{"true" if decl.overridable else "false"}"'
    head += f' TOSUBCLASS="{"true" if decl.tosubclass else "false"}">'
    body = ""
    if decl.default is not None:
        body = (xb.value_array(decl.type, decl.default) if decl.is_array
                else xb.value(decl.type, decl.default))
    return f"{head}<SCOPE {attrs}></SCOPE>{body}</QUALIFIER.DECLARATION>"
