"""Label Studio webhook payloads: what the backend reads from them.

``project_id`` normalizes the ways Label Studio names a project.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def project_id(value: Any) -> int:
    """Normalize the ways Label Studio names a project to its integer id.

    ``/setup`` and ``/predict`` send ``"ID.CREATED_TIMESTAMP"``; webhooks send ``{"id": ID, ...}``.

    Raises:
        ValueError: when no positive integer id can be read.
    """
    if isinstance(value, Mapping):
        value = value.get("id")
    if isinstance(value, bool) or value is None:
        raise ValueError("project id missing")
    if isinstance(value, int):
        pid = value
    elif isinstance(value, str):
        head = value.split(".", 1)[0].strip()
        if not head.isdigit():
            raise ValueError(f"project id {value!r} is not of the form ID or ID.TIMESTAMP")
        pid = int(head)
    else:
        raise ValueError(f"project id of type {type(value).__name__} is not supported")
    if pid <= 0 or pid > 2**53:
        raise ValueError(f"project id {pid} out of range")
    return pid
