"""Baseline servers for ``dalt bench``, served by gunicorn exactly like DALT.

* ``floor_app()``: the same server shape answering a constant prediction per task: the cost of HTTP,
  Flask and JSON alone, the floor no ML backend can beat.
* ``sync_training_app()``: DALT's own app, except that ``/webhook`` also trains and publishes the head
  synchronously before answering, with the same head and code path: what Label Studio's example backends
  do (they call ``fit`` inside the webhook request).
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

from backend.app import create_app


def floor_app() -> Flask:
    """A Flask app that parses /predict's JSON and returns one constant prediction per task."""
    app = Flask(__name__)
    app.json.sort_keys = False

    @app.get("/health")
    def health() -> Response:
        return jsonify(status="UP", model_class="floor")

    @app.post("/predict")
    def predict() -> Response:
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or not isinstance(data.get("tasks"), list):
            return jsonify(error="bad request"), 400
        results = [
            {
                "result": [
                    {
                        "from_name": "label",
                        "to_name": "image",
                        "type": "choices",
                        "value": {"choices": ["0"]},
                        "score": 0.5,
                    }
                ],
                "score": 0.5,
                "model_version": "v1",
            }
            for _ in data["tasks"]
        ]
        return jsonify(results=results, model_version="v1")

    return app


def sync_training_app() -> Flask:
    """DALT's app with a ``/webhook`` that trains and publishes the head before it answers."""
    from backend.training import train_project

    app = create_app()
    services = app.extensions["dalt"]
    handle = app.view_functions["dalt.webhook"]

    def webhook_then_train() -> Response:
        resp = handle()
        body = request.get_json(silent=True) or {}
        pid = (body.get("project") or {}).get("id") if isinstance(body.get("project"), dict) else None
        if pid:
            train_project(services.store, services.config, int(pid))
        return resp

    app.view_functions["dalt.webhook"] = webhook_then_train
    return app

