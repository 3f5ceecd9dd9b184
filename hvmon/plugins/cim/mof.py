"""A small MOF (DSP0221) parser for the subset hvmon ships and embedded instances use.

It reads qualifier declarations, class declarations (qualifiers, properties,
references, methods with parameters, array and default values) and instance
declarations (``instance of Class { Prop = value; };``). ``#pragma`` lines
are skipped. pywbem's MOF compiler checks the same files in the tests; this
parser keeps pywbem out of the daemon's dependencies.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hvmon.plugins.cim.objects import TYPES, ClassDecl, Feature, Qualifier, QualifierDecl

_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<pragma>\#pragma[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<char>'(?:[^'\\\n]|\\.)')
  | (?P<number>[+-]?(?:0[xX][0-9A-Fa-f]+|\d+\.\d*(?:[eE][+-]?\d+)?
                     |\.\d+(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}\[\]();,:=$])
""", re.VERBOSE | re.DOTALL)

_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "'": "'",
            "\\": "\\"}
MAX_MOF_BYTES = 1024 * 1024


class MofError(ValueError):
    """A MOF syntax error, one line, with the line number."""


@dataclass
class InstanceDecl:
    """``instance of Class { ... };``: the class and the values as written."""

    classname: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class MofDocument:
    qualifiers: dict[str, QualifierDecl] = field(default_factory=dict)
    classes: list[ClassDecl] = field(default_factory=list)
    instances: list[InstanceDecl] = field(default_factory=list)


def _unescape(body: str) -> str:
    def repl(match: re.Match[str]) -> str:
        text = match.group(1)
        if text[0] in "xX":
            return chr(int(text[1:], 16))
        return _ESCAPES.get(text, text)

    return re.sub(r"\\([xX][0-9A-Fa-f]{1,4}|.)", repl, body)


def _tokens(text: str) -> Iterator[tuple[str, str, int]]:
    pos, line = 0, 1
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise MofError(f"MOF line {line}: unexpected character {text[pos]!r}")
        kind = match.lastgroup or ""
        value = match.group()
        if kind not in ("ws", "pragma"):
            yield kind, value, line
        line += value.count("\n")
        pos = match.end()


class _Parser:
    def __init__(self, text: str, qualifiers: dict[str, QualifierDecl]) -> None:
        self.toks = list(_tokens(text))
        self.pos = 0
        self.doc = MofDocument(qualifiers=dict(qualifiers))

    # --- token helpers ----------------------------------------------------
    def peek(self, offset: int = 0) -> tuple[str, str, int]:
        index = self.pos + offset
        return self.toks[index] if index < len(self.toks) else ("eof", "", self._line())

    def _line(self) -> int:
        return self.toks[-1][2] if self.toks else 1

    def next(self) -> tuple[str, str, int]:
        tok = self.peek()
        if tok[0] == "eof":
            raise MofError(f"MOF line {tok[2]}: unexpected end of input")
        self.pos += 1
        return tok

    def accept(self, value: str) -> bool:
        kind, text, _ = self.peek()
        if kind in ("punct", "ident") and text.lower() == value.lower():
            self.pos += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.accept(value):
            kind, text, line = self.peek()
            raise MofError(f"MOF line {line}: expected {value!r}, got {text or kind!r}")

    def ident(self) -> str:
        kind, text, line = self.next()
        if kind != "ident":
            raise MofError(f"MOF line {line}: expected a name, got {text!r}")
        return text

    # --- grammar ------------------------------------------------------------
    def parse(self) -> MofDocument:
        while self.peek()[0] != "eof":
            quals = self.qualifier_list()
            word = self.peek()[1].lower()
            if word == "qualifier" and not quals:
                self.next()
                self.qualifier_decl()
            elif word == "class":
                self.next()
                self.doc.classes.append(self.class_decl(quals))
            elif word == "instance":
                self.next()
                self.expect("of")
                self.doc.instances.append(self.instance_decl())
            else:
                kind, text, line = self.peek()
                raise MofError(f"MOF line {line}: expected class, instance or qualifier, "
                               f"got {text or kind!r}")
        return self.doc

    def value(self) -> Any:
        kind, text, line = self.next()
        if kind == "string":
            parts = [_unescape(text[1:-1])]
            while self.peek()[0] == "string":
                parts.append(_unescape(self.next()[1][1:-1]))
            return "".join(parts)
        if kind == "char":
            return _unescape(text[1:-1])
        if kind == "number":
            if re.fullmatch(r"[+-]?0[xX][0-9A-Fa-f]+", text):
                return int(text, 16)
            if re.fullmatch(r"[+-]?\d+", text):
                return int(text)
            return float(text)
        if kind == "ident" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind == "ident" and text.lower() == "null":
            return None
        if kind == "punct" and text == "{":
            items: list[Any] = []
            if not self.accept("}"):
                while True:
                    items.append(self.value())
                    if self.accept("}"):
                        break
                    self.expect(",")
            return items
        raise MofError(f"MOF line {line}: expected a value, got {text!r}")

    def qualifier_list(self) -> dict[str, Qualifier]:
        quals: dict[str, Qualifier] = {}
        if not self.accept("["):
            return quals
        while True:
            name = self.ident()
            value: Any = True
            if self.accept("("):
                value = self.value()
                self.expect(")")
            elif self.peek()[1] == "{":
                value = self.value()
            decl = self.doc.qualifiers.get(name.lower())
            if decl is None:
                raise MofError(f"MOF line {self.peek()[2]}: qualifier {name!r} is not declared")
            quals[name.lower()] = Qualifier(decl.name, decl.type, value, decl.is_array)
            if self.accept("]"):
                return quals
            self.expect(",")

    def qualifier_decl(self) -> None:
        name = self.ident()
        self.expect(":")
        qtype = self.ident().lower()
        is_array = False
        if self.accept("["):
            is_array = True
            self.expect("]")
        default = self.value() if self.accept("=") else None
        scopes: list[str] = []
        tosubclass, overridable = True, True
        while self.accept(","):
            word = self.ident().lower()
            self.expect("(")
            words = [self.ident().lower()]
            while self.accept(","):
                words.append(self.ident().lower())
            self.expect(")")
            if word == "scope":
                scopes = words
            elif word == "flavor":
                tosubclass = "restricted" not in words
                overridable = "disableoverride" not in words
        self.expect(";")
        self.doc.qualifiers[name.lower()] = QualifierDecl(name, qtype, is_array, default,
                                                          tuple(scopes), tosubclass, overridable)

    def class_decl(self, quals: dict[str, Qualifier]) -> ClassDecl:
        cls = ClassDecl(self.ident(), qualifiers=quals)
        if self.accept(":"):
            cls.superclass = self.ident()
        self.expect("{")
        while not self.accept("}"):
            feature_quals = self.qualifier_list()
            feature = self.feature(feature_quals, cls.name)
            target = cls.methods if feature.is_method else cls.properties
            target[feature.name.lower()] = feature
        self.expect(";")
        return cls

    def _type(self) -> tuple[str, str]:
        """(cim type, reference class) of a declaration's type."""
        name = self.ident()
        if self.accept("ref"):
            return "reference", name
        if name.lower() not in TYPES:
            kind, text, line = self.peek()
            raise MofError(f"MOF line {line}: unknown type {name!r}")
        return name.lower(), ""

    def feature(self, quals: dict[str, Qualifier], origin: str) -> Feature:
        ftype, refclass = self._type()
        name = self.ident()
        if self.accept("("):
            params: list[Feature] = []
            if not self.accept(")"):
                while True:
                    pquals = self.qualifier_list()
                    ptype, pref = self._type()
                    pname = self.ident()
                    is_array = False
                    if self.accept("["):
                        is_array = True
                        self.expect("]")
                    params.append(Feature(pname, ptype, is_array, pref, pquals))
                    if self.accept(")"):
                        break
                    self.expect(",")
            self.expect(";")
            return Feature(name, ftype, False, refclass, quals, class_origin=origin,
                           params=params, is_method=True)
        is_array = False
        if self.accept("["):
            is_array = True
            self.expect("]")
        default = self.value() if self.accept("=") else None
        self.expect(";")
        return Feature(name, ftype, is_array, refclass, quals, default, class_origin=origin)

    def instance_decl(self) -> InstanceDecl:
        inst = InstanceDecl(self.ident())
        if self.accept("as"):
            self.expect("$")
            self.ident()
        self.expect("{")
        while not self.accept("}"):
            self.qualifier_list()
            name = self.ident()
            self.expect("=")
            inst.values[name] = self.value()
            self.expect(";")
        self.expect(";")
        return inst


def parse_mof(text: str, qualifiers: dict[str, QualifierDecl] | None = None) -> MofDocument:
    """Parse MOF text; ``qualifiers`` are declarations from files read before."""
    if len(text) > MAX_MOF_BYTES:
        raise MofError(f"MOF text larger than {MAX_MOF_BYTES} bytes")
    return _Parser(text, qualifiers or {}).parse()
