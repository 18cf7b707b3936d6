"""ONE fake Label Studio 1.23.2 for the tests: a small threaded HTTP server on loopback.

What it imitates, as observed on a real server (see tests/fixtures/task_*.json and LABEL-STUDIO.md):

- Files: ``/data/upload/...`` and ``/data/local-files/?d=...`` need ``Token LEGACY`` or ``Bearer ACCESS``;
  a personal access token (a JWT refresh token) is refused as a bearer and must be exchanged at
  ``POST /api/token/refresh/``. Plain paths (``/plain/...``) need no auth; ``/special/...`` paths misbehave
  on purpose (slow, huge, dripping, redirects), also under ``/data/upload/special/...`` (a media path, which
  is all the fetcher requests from Label Studio's host).
- Tasks: ``GET /api/tasks/?project=&page=&page_size=[&fields=all]`` pages like Label Studio (404 past the
  last page); annotations are included with ``fields=all``, as label-studio-sdk 2.1.2's
  ``tasks.list(project=P, fields="all")`` asks for them.
- Label Studio's side of the webhooks: :meth:`FakeLabelStudio.annotate`, ``update`` and ``delete`` change
  annotations and return the event Label Studio would send, with the project counters computed the way it
  computes them (``total_annotations_number``: annotations not cancelled; ``skipped_annotations_number``:
  cancelled ones).

Every request is recorded, so tests can check which headers went where and how often a file was downloaded.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt

from tests.conftest import CONFIG_XML

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
    tasks: dict[int, list[dict]] = field(default_factory=dict)  # project -> task dicts (with "annotations")
    storages: dict[int, list[str]] = field(default_factory=dict)  # project -> local storage paths
    predictions: list[dict] = field(default_factory=list)  # stored predictions (with "id", "task", "project")
    views: list[dict] = field(default_factory=list)  # data manager tabs created
    actions: list[dict] = field(default_factory=list)  # data manager actions run: {"id", "project", "body"}
    model_versions: dict[int, str] = field(default_factory=dict)  # project -> its model version setting
    requests: list[Seen] = field(default_factory=list)
    refreshes: int = 0
    dripped: int = 0  # bytes /special/drip has sent
    url: str = ""

    def __post_init__(self) -> None:
        self.pat = make_jwt("refresh", 3600 * 24)
        self._access: set[str] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._next_annotation = 1

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

    @property
    def calls(self) -> list[str]:
        """Every request's path with its query string, in order."""
        return [r.path + ("?" + r.query if r.query else "") for r in self.requests]

    # ---- Label Studio's side: change annotations, build the webhook it would send ----------------
    def add_tasks(self, pid: int, ids: list[int]) -> None:
        """Image tasks (uploads) without annotations."""
        with self._lock:
            self.tasks.setdefault(pid, []).extend(
                {"id": t, "project": pid, "data": {"image": f"/data/upload/{pid}/{t}.png"}, "annotations": []}
                for t in ids
            )

    def annotate(self, pid: int, task: int, label: str | None, cancelled: bool = False) -> dict:
        """Create an annotation; returns the ANNOTATION_CREATED webhook Label Studio sends for it."""
        with self._lock:
            ann = {"id": self._next_annotation, "task": task, "project": pid, "was_cancelled": cancelled,
                   "result": _result(label), "ground_truth": False}
            self._next_annotation += 1
            self._task(pid, task).setdefault("annotations", []).append(ann)
        return self.event("ANNOTATION_CREATED", pid, annotation=ann, task={"id": task, "data": {}})

    def update(self, pid: int, ann_id: int, label: str | None) -> dict:
        with self._lock:
            ann = self._annotation(pid, ann_id)
            ann["result"] = _result(label)
        return self.event("ANNOTATION_UPDATED", pid, annotation=ann, task={"id": ann["task"], "data": {}})

    def delete(self, pid: int, ann_id: int) -> dict:
        with self._lock:
            ann = self._annotation(pid, ann_id)
            self._task(pid, ann["task"])["annotations"].remove(ann)
        return self.event("ANNOTATIONS_DELETED", pid, annotations=[{"id": ann_id}])

    def event(self, action: str, pid: int, **extra: object) -> dict:
        return {"action": action, "project": self.project(pid), **copy.deepcopy(extra)}

    def project(self, pid: int) -> dict:
        """The project as webhooks carry it, counters included."""
        with self._lock:
            tasks = [t.get("annotations", []) for t in self.tasks.get(pid, [])]
            anns = [a for t in tasks for a in t]
            return {
                "id": pid,
                "title": f"project {pid}",
                "label_config": CONFIG_XML,
                "task_number": len(tasks),
                "total_annotations_number": sum(not a["was_cancelled"] for a in anns),
                "skipped_annotations_number": sum(bool(a["was_cancelled"]) for a in anns),
                "num_tasks_with_annotations": sum(any(not a["was_cancelled"] for a in t) for t in tasks),
                "min_annotations_to_start_training": 0,
            }

    def truth(self, pid: int) -> dict[int, str]:
        """task id -> the label the backend should hold (latest non-cancelled annotation with a choice)."""
        out: dict[int, str] = {}
        with self._lock:
            for task in self.tasks.get(pid, []):
                labels = [a["result"][0]["value"]["choices"][0] for a in task.get("annotations", [])
                          if not a["was_cancelled"] and a["result"]]
                if labels:
                    out[task["id"]] = labels[-1]
        return out

    def _project_of(self, task_id: int) -> int:
        return next(pid for pid, tasks in self.tasks.items() if any(t["id"] == task_id for t in tasks))

    def _task(self, pid: int, task_id: int) -> dict:
        return next(t for t in self.tasks[pid] if t["id"] == task_id)

    def _annotation(self, pid: int, ann_id: int) -> dict:
        for task in self.tasks[pid]:
            for a in task.get("annotations", []):
                if a["id"] == ann_id:
                    return a
        raise KeyError(ann_id)

    def list_tasks(self, query: dict[str, list[str]]) -> tuple[int, dict]:
        """One page of ``GET /api/tasks/`` (annotations only with ``fields=all``, as Label Studio)."""
        project = int(query.get("project", ["0"])[0])
        page = int(query.get("page", ["1"])[0])
        size = int(query.get("page_size", ["100"])[0])
        with_annotations = query.get("fields", ["task_only"])[0] == "all"
        with self._lock:
            tasks = self.tasks.get(project, [])
            chunk = tasks[(page - 1) * size : page * size]
            if page > 1 and not chunk:
                return 404, {"detail": "Invalid page."}
            body = [copy.deepcopy({k: v for k, v in t.items() if with_annotations or k != "annotations"})
                    for t in chunk]
            n_annotations = sum(len(t.get("annotations", [])) for t in tasks)
        return 200, {"tasks": body, "total": len(tasks), "total_annotations": n_annotations, "total_predictions": 0}

    # ---- bulk accept: predictions, tabs, actions ---------------------------------------------------
    def add_predictions(self, pid: int, items: list[dict]) -> tuple[int, dict]:
        with self._lock:
            known = {t["id"] for t in self.tasks.get(pid, [])}
            if any(p.get("task") not in known for p in items):
                return 400, {"detail": "task not in project"}
            for p in items:
                self.predictions.append({**p, "id": len(self.predictions) + 1, "project": pid})
        return 201, {"created": len(items)}

    def run_action(self, query: dict[str, list[str]], body: dict) -> tuple[int, dict]:
        """``predictions_to_annotations`` as Label Studio runs it: the selected tasks' predictions of the
        given version become annotations with ``parent_prediction``; returns (status, reply) and keeps the
        ANNOTATIONS_CREATED webhook it would send in ``actions[-1]["webhook"]``."""
        name, pid = query.get("id", [""])[0], int(query.get("project", ["0"])[0])
        entry: dict = {"id": name, "project": pid, "body": body}
        self.actions.append(entry)
        if name != "predictions_to_annotations":
            return 200, {}
        included = set(body.get("selectedItems", {}).get("included", []))
        created = []
        with self._lock:
            version = body.get("model_version")
            for p in self.predictions:
                if p["project"] == pid and p["task"] in included and p.get("model_version") == version:
                    ann = {"id": self._next_annotation, "task": p["task"], "project": pid, "was_cancelled": False,
                           "result": copy.deepcopy(p["result"]), "ground_truth": False,
                           "parent_prediction": p["id"], "lead_time": None}
                    self._next_annotation += 1
                    self._task(pid, p["task"]).setdefault("annotations", []).append(ann)
                    created.append(ann)
        entry["webhook"] = self.event("ANNOTATIONS_CREATED", pid, annotation=created)
        return 200, {"detail": f"Created {len(created)} annotations"}

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


def _result(label: str | None) -> list[dict]:
    if label is None:
        return []
    return [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]


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
            elif not ls.authorized(self.headers.get("Authorization")):
                self._json(401, {"detail": "Authentication credentials were not provided."})
            elif path.startswith("/api/projects/") and path.endswith("/import/predictions"):
                self._json(*ls.add_predictions(int(path.split("/")[3]), json.loads(body)))
            elif path == "/api/predictions/":
                item = json.loads(body)
                status, _ = ls.add_predictions(int(ls._project_of(item["task"])), [item])
                self._json(status, ls.predictions[-1] if status == 201 else {})
            elif path == "/api/dm/views/":
                view = {**json.loads(body), "id": len(ls.views) + 1}
                ls.views.append(view)
                self._json(201, view)
            elif path == "/api/dm/actions/":
                self._json(*ls.run_action(parse_qs(self.path.partition("?")[2]), json.loads(body)))
            else:
                self._json(404, {"detail": "Not found."})

        def do_PATCH(self) -> None:  # noqa: N802
            path, _ = self._record()
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if not ls.authorized(self.headers.get("Authorization")):
                return self._json(401, {"detail": "Authentication credentials were not provided."})
            pid = int(path.rstrip("/").rsplit("/", 1)[-1]) if path.startswith("/api/projects/") else 0
            if pid not in ls.tasks:
                return self._json(404, {"detail": "Not found."})
            if "model_version" in body:
                ls.model_versions[pid] = body["model_version"]
            return self._json(200, {"id": pid, "model_version": ls.model_versions.get(pid, "DALT")})

        def do_GET(self) -> None:  # noqa: N802
            path, query = self._record()
            if path.startswith("/data/upload/special/"):  # the misbehaving paths, as Label Studio media paths
                path = path[len("/data/upload"):]
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
            if path == "/special/drip":  # one byte every ``s`` seconds: only a total deadline stops it
                n, pause = int(query.get("n", ["50"])[0]), float(query.get("s", ["0.2"])[0])
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(n))
                self.end_headers()
                try:
                    for _ in range(n):
                        self.wfile.write(b"\0")
                        self.wfile.flush()
                        ls.dripped += 1
                        time.sleep(pause)
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
                return self._json(*ls.list_tasks(query))
            if path == "/api/predictions/":
                pid = int(query.get("project", ["0"])[0])
                return self._json(200, [p for p in ls.predictions if p["project"] == pid])
            if path == "/api/storages/localfiles/":
                pid = int(query.get("project", ["0"])[0])
                return self._json(200, [{"id": i + 1, "project": pid, "path": p, "type": "localfiles"}
                                        for i, p in enumerate(ls.storages.get(pid, []))])
            if path.startswith("/api/projects/") and path.rstrip("/").rsplit("/", 1)[-1].isdigit():
                pid = int(path.rstrip("/").rsplit("/", 1)[-1])
                if pid in ls.tasks:
                    return self._json(200, {"id": pid, "title": f"project {pid}",
                                            "model_version": ls.model_versions.get(pid, "DALT")})
                return self._json(404, {"detail": "Not found."})
            if path == "/special/auth-redirect":
                return self._send(302, b"", Location=query["to"][0])
            return self._json(404, {"detail": "Not found."})

        def _plain(self, path: str) -> None:
            data = ls.plain.get(path)
            if data is None:
                return self._json(404, {})
            return self._send(200, data, "image/png")

    return Handler
