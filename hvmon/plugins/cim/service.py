"""The WBEM service: HTTP requests in, CIM-XML MethodResponses out (DSP0200).

Checks the path (``/cimom``), method (POST; M-POST gets 501 so clients fall
back), basic auth, the ``CIMOperation``/``CIMMethod``/``CIMObject`` headers
(percent-decoded, as wbemcli sends them) against the body, then parses and
dispatches in a worker thread with a deadline. Protocol errors are HTTP 400
with a ``CIMError`` header; operation errors are ``<ERROR>`` answers.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import TYPE_CHECKING

from hvmon.plugins.cim import xmlbuild as xb
from hvmon.plugins.cim.errors import CIMError, ProtocolError, Status
from hvmon.plugins.cim.httpserver import HttpRequest, HttpResponse
from hvmon.plugins.cim.xmlparse import Request, parse_call, parse_envelope

if TYPE_CHECKING:
    from hvmon.plugins.cim.auth import BasicAuth
    from hvmon.plugins.cim.operations import Dispatcher

PATHS = ("/cimom", "/")
XML_TYPE = 'application/xml; charset="utf-8"'


def _error(status: int, cim_error: str, detail: str = "") -> HttpResponse:
    headers = [("CIMError", cim_error)]
    if detail:
        headers.append(("CIMErrorDetails", urllib.parse.quote(detail[:200])))
    return HttpResponse(status, headers, (detail + "\n").encode() if detail else b"")


def _namespace_of_object(cimobject: str) -> str:
    """The namespace part of a CIMObject header value (``root/virt:KVM_X.Name="a"``)."""
    return cimobject.split(":", 1)[0].strip().strip("/").lower()


class WbemService:
    """The HTTP application of the CIM agent."""

    def __init__(self, dispatcher: Dispatcher, auth: BasicAuth, *, timeout: float = 30.0,
                 max_concurrency: int = 8, logger: logging.Logger | None = None) -> None:
        self.dispatcher = dispatcher
        self.auth = auth
        self.timeout = timeout
        self.log = logger or logging.getLogger(__name__)
        self._slots = asyncio.Semaphore(max_concurrency)
        self.requests = 0
        self.errors = 0

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.target.split("?", 1)[0]
        if path not in PATHS:
            return HttpResponse(404, [("Content-Type", "text/plain")], b"POST CIM-XML to /cimom\n")
        if request.method == "M-POST":
            return HttpResponse(501, [], b"use POST\n")
        if request.method != "POST":
            return HttpResponse(405, [("Allow", "POST")], b"POST CIM-XML to /cimom\n")
        if self.auth.required:
            user = await asyncio.to_thread(self.auth.check, request.header("authorization"))
            if user is None:
                self.log.info("CIM request from %s: authentication failed", request.peer)
                return HttpResponse(401, [("WWW-Authenticate", 'Basic realm="hvmon CIM"')],
                                    b"authentication required\n")
        operation = (request.header("cimoperation") or "").strip()
        if operation.lower() != "methodcall":
            return _error(400, "unsupported-operation",
                          "CIMOperation header must be MethodCall")
        method_header = request.header("cimmethod")
        if not method_header:
            return _error(400, "header-mismatch", "CIMMethod header is missing")
        self.requests += 1
        try:
            async with self._slots:
                async with asyncio.timeout(self.timeout):
                    parsed = await asyncio.to_thread(self._parse, request)
                    if isinstance(parsed, str):
                        return self._ok(parsed)
                    answer = await asyncio.to_thread(self.dispatcher.handle, parsed)
        except ProtocolError as exc:
            self.errors += 1
            self.log.info("CIM request from %s refused: %s %s: %s", request.peer,
                          exc.http_status, exc.cim_error, exc.detail)
            return _error(exc.http_status, exc.cim_error, exc.detail)
        except TimeoutError:
            self.errors += 1
            return self._timeout(request)
        return self._ok(answer)

    def _parse(self, request: HttpRequest) -> Request | str:
        """The request, or an error answer (a bad call inside a valid envelope)."""
        call, msgid = parse_envelope(request.body)
        name = call.get("NAME", "")
        method_header = urllib.parse.unquote(request.header("cimmethod") or "")
        if method_header.lower() != name.lower():
            raise ProtocolError(400, "header-mismatch",
                                f"CIMMethod header {method_header!r:.40} does not match the "
                                f"call {name!r:.40}")
        try:
            req = parse_call(call, msgid)
        except CIMError as exc:
            build = xb.method_error if call.tag == "METHODCALL" else xb.imethod_error
            return build(msgid, name, int(exc.status), exc.description)
        cimobject = request.header("cimobject")
        if cimobject is not None:
            header_ns = _namespace_of_object(urllib.parse.unquote(cimobject))
            if header_ns and header_ns != req.namespace.strip("/").lower():
                raise ProtocolError(400, "header-mismatch",
                                    f"CIMObject header names namespace {header_ns!r:.40}, the "
                                    f"call {req.namespace!r:.40}")
        return req

    def _ok(self, answer: str) -> HttpResponse:
        return HttpResponse(200, [("Content-Type", XML_TYPE), ("CIMOperation", "MethodResponse")],
                            answer.encode("utf-8"))

    def _timeout(self, request: HttpRequest) -> HttpResponse:
        """CIM_ERR_FAILED for a call that missed its deadline (the work may still finish)."""
        try:
            call, msgid = parse_envelope(request.body)
        except ProtocolError as exc:
            return _error(exc.http_status, exc.cim_error, exc.detail)
        build = xb.method_error if call.tag == "METHODCALL" else xb.imethod_error
        return self._ok(build(msgid, call.get("NAME", ""), int(Status.FAILED),
                              f"the operation did not finish within {self.timeout:g} s"))
