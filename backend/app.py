"""The Flask app factory: ``gunicorn 'backend.app:create_app()'`` serves it in production.

Besides wiring the services, the factory owns what every route shares: optional basic auth, JSON error
answers (a fault in one request never takes the server down, and never leaks secrets), a 503 with
``Retry-After`` while Redis is unreachable, full (``maxmemory`` with ``noeviction``: "OOM command not
allowed") or a read-only replica, and request metrics.
"""

from __future__ import annotations

import hmac
import logging
import time

import redis
from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from backend import labelconfig
from backend.api import Services, bp
from backend.config import Config
from backend.ledger import Ledger
from backend.metrics import Metrics
from backend.predict import HeadCache
from backend.projects import Projects
from backend.queueing import job_queue
from backend.store import Store

log = logging.getLogger("backend")

# Endpoints Label Studio or orchestrators call without credentials.
OPEN_ENDPOINTS = {"dalt.health"}


def create_app(config: Config | None = None, store: Store | None = None) -> Flask:
    """Build the backend app.

    Args:
        config: defaults to ``Config.from_env()``.
        store: defaults to a store on ``config.redis_url`` (tests pass their own).
    """
    config = config or Config.from_env()
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = store or Store.from_url(
        config.redis_url, keep_versions=config.keep_versions, socket_timeout=5, socket_connect_timeout=2
    )
    queue = job_queue(config, store)
    projects = Projects(store)
    labelconfig.config_cache.resize(config.config_cache_bytes)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_content_length
    app.json.sort_keys = False
    app.extensions["dalt"] = Services(
        config=config,
        store=store,
        queue=queue,
        projects=projects,
        heads=HeadCache(config.head_cache_bytes),
        ledger=Ledger(store, projects, queue, config),
        metrics=Metrics(store, queue, config),
    )
    app.register_blueprint(bp)
    _install_metrics(app)
    _install_auth(app, config)
    _install_errors(app)
    return app


def _install_auth(app: Flask, config: Config) -> None:
    @app.before_request
    def check_auth() -> Response | None:
        if request.endpoint in OPEN_ENDPOINTS:
            return None
        if request.endpoint == "dalt.webhook" and config.webhook_secret:
            given = request.headers.get("X-DALT-Webhook-Secret") or request.args.get("secret") or ""
            if hmac.compare_digest(given.encode(), config.webhook_secret.encode()):
                return None
            if not config.basic_auth_enabled:
                return _error(401, "webhook secret missing or wrong")
        if not config.basic_auth_enabled:
            return None
        auth = request.authorization
        ok = False
        if auth is not None and auth.type == "basic":
            # Both compared every time: short-circuiting would tell by timing whether the user name was right.
            user_ok = hmac.compare_digest((auth.username or "").encode(), config.basic_auth_user.encode())
            pass_ok = hmac.compare_digest((auth.password or "").encode(), config.basic_auth_pass.encode())
            ok = user_ok & pass_ok
        if ok:
            return None
        resp = _error(401, "authentication required")
        resp.headers["WWW-Authenticate"] = 'Basic realm="DALT"'
        return resp


def _error(status: int, message: str) -> Response:
    resp = jsonify(error=message, status=status)
    resp.status_code = status
    return resp


def _install_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return _error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    def redis_down(exc: Exception) -> Response:
        log.warning("Redis unavailable during %s %s: %s", request.method, request.path, type(exc).__name__)
        resp = _error(503, "the backend's Redis is unavailable; retry shortly")
        resp.headers["Retry-After"] = "5"
        return resp

    @app.errorhandler(redis.exceptions.OutOfMemoryError)
    @app.errorhandler(redis.exceptions.ReadOnlyError)
    def redis_refuses_writes(exc: Exception) -> Response:
        full = isinstance(exc, redis.exceptions.OutOfMemoryError)
        log.error("Redis refused a write during %s %s: %s", request.method, request.path,
                  "out of memory (maxmemory reached)" if full else "read-only replica")
        why = "is full (maxmemory)" if full else "is a read-only replica"
        resp = _error(503, f"the backend's Redis {why} and refuses writes; retry later")
        resp.headers["Retry-After"] = "30"
        return resp

    @app.errorhandler(Exception)
    def internal(exc: Exception) -> Response:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return _error(500, f"internal error ({type(exc).__name__}); see the backend log")


def _install_metrics(app: Flask) -> None:
    metrics: Metrics = app.extensions["dalt"].metrics

    @app.before_request
    def start_timer() -> None:
        g.dalt_t0 = time.perf_counter()

    @app.after_request
    def observe(resp: Response) -> Response:
        t0 = g.get("dalt_t0")
        if t0 is not None:
            metrics.observe(request.endpoint or "unknown", request.method, resp.status_code,
                            time.perf_counter() - t0)
            log.info("%s %s %s %.1fms", request.method, request.path, resp.status_code,
                     (time.perf_counter() - t0) * 1000)
        return resp
