"""A fake Label Studio API on loopback: what label-studio-sdk 2.1.2 calls to list tasks with annotations.

``LabelStudio(base_url, api_key).tasks.list(project=P, fields="all", page=N, page_size=M)`` sends
``GET /api/tasks/?fields=all&page=N&page_size=M&project=P`` with ``Authorization: Token KEY`` and reads
``{"tasks": [...], "total", "total_annotations", "total_predictions"}``; past the last page Label Studio
answers 404. The fake also plays Label Studio's side of the webhooks: it builds each event's payload
with the project counters computed the way Label Studio computes them (``total_annotations_number``:
annotations not cancelled; ``skipped_annotations_number``: cancelled ones).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.conftest import CONFIG_XML


@dataclass
class FakeLabelStudioAPI:
    """Tasks and annotations of projects, served like Label Studio's ``/api/tasks/``."""

    key: str = "ls-legacy-key-4f1d2a9c"
    tasks: dict[int, dict[int, list[dict]]] = field(default_factory=dict)  # project -> task id -> annotations
    calls: list[str] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._next_id = 1

    def start(self) -> FakeLabelStudioAPI:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ---- Label Studio's side: change annotations, build the webhook it would send ------------------
    def add_tasks(self, pid: int, ids: list[int]) -> None:
        with self._lock:
            for t in ids:
                self.tasks.setdefault(pid, {}).setdefault(t, [])

    def annotate(self, pid: int, task: int, label: str | None, cancelled: bool = False) -> dict:
        """Create an annotation; returns the ANNOTATION_CREATED webhook Label Studio sends for it."""
        with self._lock:
            ann = {"id": self._next_id, "task": task, "project": pid, "was_cancelled": cancelled,
                   "result": _result(label), "ground_truth": False}
            self._next_id += 1
            self.tasks[pid][task].append(ann)
        return self.event("ANNOTATION_CREATED", pid, annotation=ann, task={"id": task, "data": {}})

    def update(self, pid: int, ann_id: int, label: str | None) -> dict:
        with self._lock:
            ann = self._find(pid, ann_id)
            ann["result"] = _result(label)
        return self.event("ANNOTATION_UPDATED", pid, annotation=ann, task={"id": ann["task"], "data": {}})

    def delete(self, pid: int, ann_id: int) -> dict:
        with self._lock:
            ann = self._find(pid, ann_id)
            self.tasks[pid][ann["task"]].remove(ann)
        return self.event("ANNOTATIONS_DELETED", pid, annotations=[{"id": ann_id}])

    def event(self, action: str, pid: int, **extra: object) -> dict:
        return {"action": action, "project": self.project(pid), **json.loads(json.dumps(extra))}

    def project(self, pid: int) -> dict:
        with self._lock:
            anns = [a for t in self.tasks.get(pid, {}).values() for a in t]
            return {
                "id": pid,
                "title": f"project {pid}",
                "label_config": CONFIG_XML,
                "task_number": len(self.tasks.get(pid, {})),
                "total_annotations_number": sum(not a["was_cancelled"] for a in anns),
                "skipped_annotations_number": sum(bool(a["was_cancelled"]) for a in anns),
                "num_tasks_with_annotations": sum(
                    any(not a["was_cancelled"] for a in t) for t in self.tasks.get(pid, {}).values()
                ),
                "min_annotations_to_start_training": 0,
            }

    def truth(self, pid: int) -> dict[int, str]:
        """task id -> the label the backend should hold (latest non-cancelled annotation with a choice)."""
        out: dict[int, str] = {}
        with self._lock:
            for tid, anns in self.tasks.get(pid, {}).items():
                labels = [a["result"][0]["value"]["choices"][0] for a in anns
                          if not a["was_cancelled"] and a["result"]]
                if labels:
                    out[tid] = labels[-1]
        return out

    def _find(self, pid: int, ann_id: int) -> dict:
        for anns in self.tasks[pid].values():
            for a in anns:
                if a["id"] == ann_id:
                    return a
        raise KeyError(ann_id)

    # ---- the API -----------------------------------------------------------------------------------
    def list_tasks(self, query: dict[str, list[str]]) -> tuple[int, dict]:
        pid = int(query.get("project", ["0"])[0])
        page = int(query.get("page", ["1"])[0])
        size = int(query.get("page_size", ["100"])[0])
        with_anns = query.get("fields", ["task_only"])[0] == "all"
        with self._lock:
            tasks = sorted(self.tasks.get(pid, {}).items())
            chunk = tasks[(page - 1) * size : page * size]
            if page > 1 and not chunk:
                return 404, {"detail": "Invalid page."}
            body = [{"id": t, "project": pid, "data": {"image": f"/data/upload/{pid}/{t}.png"},
                     **({"annotations": json.loads(json.dumps(a))} if with_anns else {})} for t, a in chunk]
            n_anns = sum(len(a) for _, a in tasks)
        return 200, {"tasks": body, "total": len(tasks), "total_annotations": n_anns, "total_predictions": 0}


def _result(label: str | None) -> list[dict]:
    if label is None:
        return []
    return [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]


def _handler(ls: FakeLabelStudioAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            parts = urlsplit(self.path)
            ls.calls.append(self.path)
            if self.headers.get("Authorization") != f"Token {ls.key}":
                return self._json(401, {"detail": "Authentication credentials were not provided."})
            if parts.path == "/api/tasks/":
                return self._json(*ls.list_tasks(parse_qs(parts.query)))
            return self._json(404, {"detail": "Not found."})

        def _json(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
