"""HTTP routes, as Label Studio's ML-backend protocol defines them.

``GET /health``, ``POST /setup``, ``POST /predict``, ``POST /webhook``, ``GET /versions`` are what Label
Studio calls; ``GET /`` and ``GET /metrics`` are for people and Prometheus.

What one request may cost is bounded here, before any work: the body (``DALT_MAX_CONTENT_LENGTH``, 413),
the JSON values in it, counted on the raw bytes before parsing (``DALT_MAX_JSON_VALUES``, 413: parsing
costs memory per value, 20 times the bytes for ``[{},{},...]``), the tasks of one ``/predict``
(``DALT_PREDICT_MAX_TASKS``, 413) and of one webhook (``DALT_WEBHOOK_MAX_TASKS``, 413), ids outside
int64 (400). ``/``, ``/versions`` and ``/metrics`` list at most ``DALT_METRICS_PROJECTS`` projects, the
most recently active, in a fixed number of Redis round trips.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, current_app, jsonify, request
from rq import Queue
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnprocessableEntity

from backend.config import Config
from backend.encoding import encode_missing
from backend.events import MAX_ID, BadEvent, TooLarge, parse_event, project_id
from backend.labelstudio import setup_access
from backend.ledger import Ledger
from backend.metrics import Metrics
from backend.predict import NO_MODEL_VERSION, HeadCache, predict_tasks
from backend.projects import Projects, UnknownProject
from backend.store import Store

bp = Blueprint("dalt", __name__)


@dataclass
class Services:
    """Everything a request needs, built once per app by ``create_app``."""

    config: Config
    store: Store
    queue: Queue
    projects: Projects
    heads: HeadCache
    ledger: Ledger
    metrics: Metrics


def services() -> Services:
    return current_app.extensions["dalt"]


def json_body() -> dict:
    """The request's JSON object, or a 400 (413) that says what is wrong."""
    raw = request.get_data(cache=True)  # bounded by DALT_MAX_CONTENT_LENGTH (413 above it)
    limit = services().config.max_json_values
    # Every JSON value but the first follows a ',' or opens a container; strings may hold more ',' (an
    # overcount, never an undercount). Counted in C at memory speed, before parsing allocates anything.
    if raw.count(b",") + raw.count(b"[") + raw.count(b"{") > limit:
        raise RequestEntityTooLarge(f"request body holds more than {limit} JSON values (DALT_MAX_JSON_VALUES)")
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # the JSON parser recurses per nesting level: a [[[[...]]]] body must not be a 500
        raise BadRequest("request body JSON is nested too deeply") from None
    if data is None:
        raise BadRequest("request body must be JSON (Content-Type: application/json)")
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    return data


def _pid(value: object) -> int:
    try:
        return project_id(value)
    except ValueError as exc:
        raise BadRequest(f"'project': {exc}") from None


@bp.get("/health")
def health() -> Response:
    s = services()
    s.store.ping()  # a Redis outage answers 503 (see the app's error handler)
    return jsonify(status="UP", model_class="DALT")


@bp.get("/")
def index() -> Response:
    s = services()
    pids, total = s.store.listed_projects(s.config.metrics_projects)
    versions = s.store.current_versions(pids)
    return jsonify(
        status="UP",
        model_class="DALT",
        projects={str(p): versions[p] or NO_MODEL_VERSION for p in pids},
        projects_total=total,
    )


@bp.post("/setup")
def setup() -> Response:
    s = services()
    data = json_body()
    pid = _pid(data.get("project"))
    schema = data.get("schema")
    if not isinstance(schema, str) or not schema.strip():
        raise BadRequest("'schema' (the project's label config) must be a non-empty string")
    # Saved as one pair, and only when no LABEL_STUDIO_URL is configured (backend.labelstudio).
    access = setup_access(s.config, data.get("hostname"), data.get("access_token"))
    try:
        s.projects.configure(pid, schema, setup_access=access)
    except ValueError as exc:
        raise UnprocessableEntity(str(exc)) from None
    return jsonify(model_version=s.store.current_version(pid) or NO_MODEL_VERSION)


@bp.post("/predict")
def predict() -> Response:
    s = services()
    data = json_body()
    tasks = data.get("tasks")
    if not isinstance(tasks, list):
        raise BadRequest("'tasks' must be a list of Label Studio tasks")
    if len(tasks) > s.config.predict_max_tasks:
        raise RequestEntityTooLarge(f"{len(tasks)} tasks in one /predict; at most {s.config.predict_max_tasks} "
                                    "(DALT_PREDICT_MAX_TASKS): select fewer tasks at a time")
    for t in tasks:
        tid = t.get("id") if isinstance(t, dict) else None
        if isinstance(tid, int) and not isinstance(tid, bool) and not 0 <= tid <= MAX_ID:
            raise BadRequest(f"task id {tid} is outside [0, 2**63)")
    pid = _pid(data.get("project") or _project_of(tasks))
    label_config = data.get("label_config")
    if label_config is not None and not isinstance(label_config, str):
        raise BadRequest("'label_config' must be a string")
    try:
        cfg = s.projects.config(pid, label_config)
    except UnknownProject as exc:
        raise UnprocessableEntity(str(exc)) from None
    except ValueError as exc:
        raise UnprocessableEntity(str(exc)) from None
    version, results = predict_tasks(
        s.store,
        s.heads,
        pid,
        cfg,
        tasks,
        encode_missing=lambda todo: encode_missing(s.store, s.config, pid, todo),
        encode_limit=s.config.predict_encode_limit,
    )
    s.metrics.predicted_tasks.inc(len(tasks))
    return jsonify(results=results, model_version=version)


def _project_of(tasks: list) -> object:
    """Label Studio always sends 'project'; scripts may rely on the tasks' own project field."""
    for t in tasks:
        if isinstance(t, dict) and t.get("project") is not None:
            return t["project"]
    return None


@bp.post("/webhook")
def webhook() -> Response:
    """A Label Studio event: parsed and validated once (``events``), then applied (``ledger``)."""
    s = services()
    try:
        event = parse_event(json_body(), saved_config=s.ledger.saved_config, max_tasks=s.config.webhook_max_tasks)
    except TooLarge as exc:  # nothing has been written
        raise RequestEntityTooLarge(str(exc)) from None
    except BadEvent as exc:
        raise BadRequest(str(exc)) from None
    return jsonify(s.ledger.apply(event).as_dict())


@bp.get("/versions")
def versions() -> Response:
    s = services()
    arg = request.args.get("project")
    pids = [_pid(arg)] if arg else s.store.listed_projects(s.config.metrics_projects)[0]
    per_project = {str(p): {"current": s.store.current_version(p), "history": s.store.versions(p)} for p in pids}
    flat = [h["version"] for p in per_project.values() for h in p["history"]]
    return jsonify(versions=flat, projects=per_project)


@bp.get("/metrics")
def metrics() -> Response:
    return Response(services().metrics.render(), mimetype="text/plain; version=0.0.4; charset=utf-8")
