"""Per-project settings learnt from Label Studio (``/setup`` and webhook payloads).

Label Studio repeats the label config on every ``/setup``, ``/predict`` and webhook. Parsing it is cached
by its text (``backend.labelconfig``, bounded in bytes); saving compares the settings with what Redis
holds, inside one Lua script (``Store.save_settings_in``), never with what this process remembers having
written: several gunicorn workers save the same project, and a worker that skipped a write because *it*
had saved the same value earlier would leave another worker's older value in place. The webhook queues
the save in its own batch, so it costs no extra round trip.

A project is created only by a payload that carries a label config DALT can serve; other settings of an
unknown project (a webhook without a config) are dropped. ``/predict`` never writes settings: it parses
the config it carries and reads the saved one otherwise.
"""

from __future__ import annotations

from typing import Any

from backend.labelconfig import ClassificationConfig, UnsupportedConfig, cached_config
from backend.store import Store
from backend.store.scripts import Batch, Reply


class UnknownProject(LookupError):
    """A request names a project the backend has no label config for."""


def settings_of(label_config: str | None, **extra: Any) -> tuple[ClassificationConfig | None, dict[str, Any]]:
    """The parsed config and the settings fields to save for it (``extra`` without its None values).

    Raises:
        UnsupportedConfig: the label config is not one DALT can serve.
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
    return cfg, fields


class Projects:
    """Reads and saves project settings through the store."""

    def __init__(self, store: Store):
        self.store = store

    def configure_in(self, batch: Batch, pid: int, label_config: str | None,
                     **extra: Any) -> tuple[ClassificationConfig | None, Reply[int] | None]:
        """Queue the save of a project's label config (if given) and extra settings on ``batch``.

        Returns:
            The parsed config, and the save's reply (fields changed, -1 for an unknown project that was not
            created); None when there is nothing to save.

        Raises:
            UnsupportedConfig: the label config is not one DALT can serve (nothing is queued then).
        """
        cfg, fields = settings_of(label_config, **extra)
        if not fields:
            return cfg, None
        return cfg, self.store.save_settings_in(batch, pid, fields, create=cfg is not None)

    def configure(self, pid: int, label_config: str | None, **extra: Any) -> ClassificationConfig | None:
        """Save a project's label config (if given) and extra settings, in one round trip; returns the config.

        Raises:
            UnsupportedConfig: the label config is not one DALT can serve (nothing is saved then).
        """
        batch = self.store.batch()
        cfg, _ = self.configure_in(batch, pid, label_config, **extra)
        batch.execute()
        return cfg

    def config(self, pid: int, label_config: str | None = None) -> ClassificationConfig:
        """The project's parsed label config: from the request when it carries one, else as saved.

        Raises:
            UnsupportedConfig: the config cannot be served.
            UnknownProject: no config given and none saved.
        """
        if label_config:
            return cached_config(label_config)
        saved = self.store.project(pid).get("label_config")
        if not saved:
            raise UnknownProject(f"project {pid} has no label config yet: Label Studio sends it with /setup")
        return cached_config(saved)


__all__ = ["Projects", "UnknownProject", "UnsupportedConfig", "settings_of"]
