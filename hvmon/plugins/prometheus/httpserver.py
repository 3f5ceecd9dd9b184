"""The exporter's HTTP endpoint: ``/`` landing page, ``/metrics`` and ``/healthz``.

One :class:`MetricsServer` per listen address, each a threading HTTP server
in its own thread (scrapes never run on the daemon's event loop). TLS and
basic auth come from a :class:`~hvmon.plugins.prometheus.webconfig.WebConfig`.
"""

from __future__ import annotations

import gzip
import html
import logging
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from hvmon.core.errors import HvmonError, InvalidArgument
from hvmon.plugins.prometheus.exposition import CONTENT_TYPE
from hvmon.plugins.prometheus.webconfig import WebConfig

#: ``scrape(groups)`` -> exposition bytes; groups None means "every enabled group"
Scrape = Callable[[frozenset[str] | None], bytes]
#: ``health()`` -> (healthy, one-line message)
Health = Callable[[], tuple[bool, str]]

log = logging.getLogger("hvmon.agent.prometheus")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 family: socket.AddressFamily) -> None:
        self.address_family = family
        super().__init__(address, handler)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """A client that breaks off (failed TLS handshake, reset) is one log line.

        socketserver's default prints a traceback on stderr for each one.
        """
        error = sys.exc_info()[1]
        if isinstance(error, OSError):  # ssl.SSLError is an OSError
            log.info("connection from %s failed: %s", client_address[0], error)
        else:
            log.exception("error serving %s", client_address[0])


class MetricsServer:
    """Serves one address until :meth:`stop`."""

    def __init__(self, host: str, port: int, *, scrape: Scrape, health: Health,
                 web: WebConfig | None = None, title: str = "hvmon exporter") -> None:
        self.host, self.port = host, port
        self._scrape, self._health, self._web, self._title = scrape, health, web, title
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self._web and self._web.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/metrics"

    def start(self) -> None:
        """Bind and serve; an address in use raises OSError before anything runs."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server = _Server((self.host, self.port), self._handler_class(), family)
        if self._web is not None and self._web.tls is not None:
            server.socket = self._web.tls.wrap_socket(server.socket, server_side=True,
                                                      do_handshake_on_connect=False)
        self.port = server.server_address[1]
        self._server = server
        # a short poll interval: stop() returns in ~0.05 s instead of up to 0.5 s
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"prometheus-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(_Handler):
            server_ref = outer

        return Handler


class _Handler(BaseHTTPRequestHandler):
    server_ref: MetricsServer
    protocol_version = "HTTP/1.1"
    server_version = "hvmon-exporter"
    # headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and
    # the client's delayed ACK add ~40 ms to every small (keep-alive) answer
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        outer = self.server_ref
        web = outer._web
        if web is not None and not web.check_authorization(self.headers.get("Authorization")):
            self._send(401, b"Unauthorized\n", "text/plain; charset=utf-8",
                       {"WWW-Authenticate": 'Basic realm="hvmon"'})
            return
        url = urlsplit(self.path)
        if url.path == "/metrics":
            self._metrics(parse_qs(url.query))
        elif url.path == "/healthz":
            healthy, message = outer._health()
            self._send(200 if healthy else 503, (message + "\n").encode(),
                       "text/plain; charset=utf-8")
        elif url.path == "/":
            self._send(200, self._landing().encode(), "text/html; charset=utf-8")
        else:
            self._send(404, b"Not Found\n", "text/plain; charset=utf-8")

    def _metrics(self, query: dict[str, list[str]]) -> None:
        wanted = query.get("collect[]")
        groups = frozenset(wanted) if wanted else None
        try:
            body = self.server_ref._scrape(groups)
        except InvalidArgument as exc:
            self._send(400, f"{exc}\n".encode(), "text/plain; charset=utf-8")
            return
        except HvmonError as exc:
            log.warning("scrape failed: %s", exc)
            self._send(500, f"scrape failed: {exc}\n".encode(), "text/plain; charset=utf-8")
            return
        extra = {}
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, compresslevel=1)
            extra["Content-Encoding"] = "gzip"
        self._send(200, body, CONTENT_TYPE, extra)

    def _landing(self) -> str:
        title = html.escape(self.server_ref._title)
        return (f"<html><head><title>{title}</title></head><body><h1>{title}</h1>"
                "<p><a href='/metrics'>Metrics</a> · <a href='/healthz'>Health</a></p>"
                "<p>Collector groups: <code>/metrics?collect[]=domain&amp;collect[]=pool"
                "</code></p></body></html>\n")

    def _send(self, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET  # noqa: N815 - http.server's name
