"""Per-project settings learnt from Label Studio (/setup, /predict and webhook payloads).

Label Studio repeats the label config on every /setup, /predict and webhook; parsing it and writing it to
Redis each time would cost more than the prediction itself, so parsed configs are cached by their text and
a project's settings are written only when they change.
"""

from __future__ import annotations

import threading
from typing import Any

from backend.labelconfig import ClassificationConfig, UnsupportedConfig, cached_config
from backend.store import Store


class UnknownProject(LookupError):
    """A request names a project the backend has no label config for."""


class Projects:
    """Reads and saves project settings through the store, skipping writes that change nothing."""

    def __init__(self, store: Store):
        self.store = store
        self._saved: dict[tuple, tuple] = {}
        self._lock = threading.Lock()

    def configure(self, pid: int, label_config: str | None, **extra: Any) -> ClassificationConfig | None:
        """Save a project's label config (if given) and extra settings; returns the parsed config.

        Raises:
            UnsupportedConfig: the label config is not one DALT can serve (nothing is saved then).
        """
        fields: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
        cfg = None
        if label_config:
            cfg = cached_config(label_config)
            fields.update(
                label_config=label_config,
                classes=list(cfg.classes),
                from_name=cfg.from_name,
                to_name=cfg.to_name,
                image_key=cfg.image_key,
            )
        fingerprint = tuple(sorted((k, repr(v)) for k, v in fields.items()))
        slot = (pid, tuple(sorted(fields)))  # /setup and webhooks save different fields
        with self._lock:
            if self._saved.get(slot) == fingerprint:
                return cfg
        self.store.save_project(pid, **fields)
        with self._lock:
            self._saved[slot] = fingerprint
        return cfg

    def config(self, pid: int, label_config: str | None = None) -> ClassificationConfig:
        """The project's parsed label config: from the request when it carries one, else as saved.

        Raises:
            UnsupportedConfig: the config cannot be served.
            UnknownProject: no config given and none saved.
        """
        if label_config:
            cfg = self.configure(pid, label_config)
            assert cfg is not None
            return cfg
        saved = self.store.project(pid).get("label_config")
        if not saved:
            raise UnknownProject(f"project {pid} has no label config yet: Label Studio sends it with /setup")
        return cached_config(saved)


__all__ = ["Projects", "UnknownProject", "UnsupportedConfig"]
