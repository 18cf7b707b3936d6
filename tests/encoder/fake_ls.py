"""A small threaded HTTP server that imitates what Label Studio 1.23.2 serves to an ML backend.

Real HTTP on loopback, with the auth rules observed on a real server (see tests/fixtures/task_*.json):
``/data/upload/...`` and ``/data/local-files/?d=...`` need ``Token LEGACY`` or ``Bearer ACCESS``; a personal
access token (a JWT refresh token) is refused as a bearer and must be exchanged at
``POST /api/token/refresh/``; ``GET /api/tasks/?project=&page=&page_size=`` pages like Label Studio
(404 past the last page). Plain paths (``/plain/...``) need no auth. Every request is recorded so tests can
check which headers went where and how often a file was downloaded.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt

SECRET = "fake-ls-signing-secret-0123456789abcdef"


def make_jwt(token_type: str, ttl: float) -> str:
    """A token shaped like Label Studio's (HS256, ``token_type``, ``exp``)."""
    now = time.time()
    return jwt.encode(
        {"token_type": token_type, "exp": int(now + ttl), "iat": int(now), "jti": uuid.uuid4().hex, "user_id": 1},
        SECRET,
        algorithm="HS256",
    )


@dataclass
class Seen:
    """One request as the server saw it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]


@dataclass
class FakeLabelStudio:
    """State of the fake server; ``url`` is its base URL once started."""

    legacy_key: str = "legacy-key-0123456789"
    access_ttl: float = 300.0
    require_auth: bool = True
    uploads: dict[str, bytes] = field(default_factory=dict)  # "/data/upload/1/x.png" -> bytes
    local_files: dict[str, bytes] = field(default_factory=dict)  # "images/x.png" -> bytes
    plain: dict[str, bytes] = field(default_factory=dict)  # "/plain/x.png" -> bytes
    tasks: dict[int, list[dict]] = field(default_factory=dict)  # project -> tasks
    requests: list[Seen] = field(default_factory=list)
    refreshes: int = 0
    url: str = ""

    def __post_init__(self) -> None:
        self.pat = make_jwt("refresh", 3600 * 24)
        self._access: set[str] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ---- control -------------------------------------------------------------------------------
    def start(self) -> FakeLabelStudio:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def revoke_access_tokens(self) -> None:
        """Make every issued access token invalid (as if they expired early)."""
        with self._lock:
            self._access.clear()

    def hits(self, path_prefix: str) -> list[Seen]:
        """Requests whose path (with query) starts with ``path_prefix``."""
        return [r for r in self.requests if (r.path + ("?" + r.query if r.query else "")).startswith(path_prefix)]

    # ---- server logic ----------------------------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        if not self.require_auth:
            return True
        if not header:
            return False
        kind, _, value = header.partition(" ")
        if kind == "Token":
            return value == self.legacy_key
        if kind == "Bearer":
            with self._lock:
                return value in self._access
        return False

    def refresh(self, body: bytes) -> tuple[int, dict]:
        try:
            token = json.loads(body)["refresh"]
        except (ValueError, KeyError, TypeError):
            return 400, {"detail": "refresh missing"}
        if token != self.pat:
            return 401, {"detail": "Token is invalid or expired", "code": "token_not_valid"}
        access = make_jwt("access", self.access_ttl)
        with self._lock:
            self._access.add(access)
            self.refreshes += 1
        return 200, {"access": access}


def _handler(ls: FakeLabelStudio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stalls

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _record(self) -> tuple[str, dict[str, list[str]]]:
            parts = urlsplit(self.path)
            ls.requests.append(Seen(self.command, parts.path, parts.query, dict(self.headers.items())))
            return parts.path, parse_qs(parts.query)

        def _send(self, status: int, body: bytes, ctype: str = "application/octet-stream", **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k.replace("_", "-"), v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, obj: object) -> None:
            self._send(status, json.dumps(obj).encode(), "application/json")

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            path, _ = self._record()
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if path == "/api/token/refresh/":
                self._json(*ls.refresh(body))
            else:
                self._json(404, {"detail": "Not found."})

        def do_GET(self) -> None:  # noqa: N802
            path, query = self._record()
            if path.startswith("/plain/"):
                return self._plain(path)
            if path == "/special/slow":
                time.sleep(float(query.get("s", ["3"])[0]))
                return self._send(200, b"late")
            if path == "/special/huge":  # no Content-Length: the client must count bytes itself
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for _ in range(int(query.get("mb", ["30"])[0]) * 16):
                        self.wfile.write(b"\0" * 65536)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True
                return None
            if path == "/special/redirect":
                return self._send(302, b"", Location=query["to"][0])
            if not ls.authorized(self.headers.get("Authorization")):
                return self._json(401, {"detail": "Authentication credentials were not provided."})
            if path.startswith("/data/upload/"):
                data = ls.uploads.get(path)
                return self._send(200, data, "image/png") if data is not None else self._json(404, {})
            if path == "/data/local-files/":
                data = ls.local_files.get(query.get("d", [""])[0])
                return self._send(200, data, "image/png") if data is not None else self._json(404, {})
            if path == "/api/tasks/":
                return self._tasks(query)
            if path == "/special/auth-redirect":
                return self._send(302, b"", Location=query["to"][0])
            return self._json(404, {"detail": "Not found."})

        def _plain(self, path: str) -> None:
            data = ls.plain.get(path)
            if data is None:
                return self._json(404, {})
            return self._send(200, data, "image/png")

        def _tasks(self, query: dict[str, list[str]]) -> None:
            project = int(query.get("project", ["0"])[0])
            page = int(query.get("page", ["1"])[0])
            size = int(query.get("page_size", ["100"])[0])
            tasks = ls.tasks.get(project, [])
            chunk = tasks[(page - 1) * size : page * size]
            if page > 1 and not chunk:
                return self._json(404, {"detail": "Invalid page."})
            return self._json(
                200, {"tasks": chunk, "total": len(tasks), "total_annotations": 0, "total_predictions": 0}
            )

    return Handler
