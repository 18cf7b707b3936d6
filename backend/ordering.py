"""DALT's cold-start order written into a Label Studio project, so annotators label the most typical tasks first.

Label Studio Community Edition has no API to reorder the label stream, but its data manager sorts by any
task data field, and the label stream ("Label All Tasks") follows the sorting of the tab it starts from.
So ``dalt order`` (this module's functions):

1. computes the order from the embeddings bulk encoding cached in Redis (``backend.coldstart``: the most
   typical task of each k-means cluster first, then the rest in random order);
2. writes it into every task's data as ``dalt_order`` (0 first; ``PATCH /api/tasks/ID`` through
   label-studio-sdk, keeping the task's other data fields; tasks already holding the right value are skipped);
3. creates (or updates) a data manager tab titled "DALT order" sorted by ``tasks:data.dalt_order``
   ascending. Annotators open that tab and click "Label All Tasks", or sort any tab by the
   ``dalt_order`` column.

Usage (after ``dalt encode --project ID``)::

    LABEL_STUDIO_URL=http://localhost:8080 LABEL_STUDIO_API_KEY=... dalt order --project 3
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tqdm.auto import tqdm

from backend.coldstart import default_clusters, order_values, typicality_order
from backend.config import Config
from backend.store import Store

FIELD = "dalt_order"
VIEW_TITLE = "DALT order"


class NotEncodedError(ValueError):
    """The project has nothing to order yet: bulk encoding has not run."""


def compute_order(store: Store, pid: int, clusters: int | None = None, seed: int = 0) -> dict[int, int]:
    """``{task id: position}`` for every task with a cached embedding of the current encoder.

    Raises:
        NotEncodedError: the project has no encoder or no embeddings yet.
    """
    enc = store.current_encoder(pid)
    if enc is None:
        raise NotEncodedError(f"project {pid} has no encoder yet: run `dalt encode --project {pid}` first")
    ids, X = store.all_embeddings(pid, enc.version)
    if len(ids) == 0:
        raise NotEncodedError(f"project {pid}: no cached embeddings for encoder {enc.version}")
    n_classes = len(store.project(pid).get("classes") or []) or 10
    k = clusters or default_clusters(len(ids), n_classes)
    return order_values(typicality_order(ids, X, k, seed=seed))


def write_order(client: Any, pid: int, positions: dict[int, int], field: str = FIELD, workers: int = 8,
                progress: bool = True) -> dict[str, int]:
    """Write ``positions`` into the project's task data; returns counts (written, unchanged, unknown)."""
    todo: list[tuple[int, dict]] = []
    counts = {"written": 0, "unchanged": 0, "not_encoded": 0}
    for task in client.tasks.list(project=pid, fields="task_only", page_size=500):
        data = dict(task.data or {})
        pos = positions.get(int(task.id))
        if pos is None:
            counts["not_encoded"] += 1
        elif data.get(field) == pos:
            counts["unchanged"] += 1
        else:
            todo.append((int(task.id), {**data, field: pos}))

    def patch(item: tuple[int, dict]) -> None:
        client.tasks.update(id=str(item[0]), data=item[1])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in tqdm(pool.map(patch, todo), total=len(todo), desc="write order", unit="task", disable=not progress):
            counts["written"] += 1
    return counts


def ensure_view(client: Any, pid: int, field: str = FIELD, title: str = VIEW_TITLE) -> int:
    """Create or update the data manager tab sorted by ``field``; returns its id."""
    data = {"title": title, "ordering": [f"tasks:data.{field}"]}
    for view in client.views.list(project=pid):
        vdata = view.data if isinstance(view.data, dict) else {}
        if vdata.get("title") == title:
            client.views.update(id=str(view.id), project=pid, data={**vdata, **data})
            return int(view.id)
    return int(client.views.create(project=pid, data=data).id)


def label_studio_client(config: Config, store: Store, pid: int, ls_url: str | None = None) -> Any:
    """A label-studio-sdk client with the configured credentials (or those /setup saved for ``pid``).

    Raises:
        ValueError: the Label Studio URL or key is unknown.
    """
    from backend.labelstudio import client, label_studio_access

    access = label_studio_access(config, store.project(pid))
    url, key = (ls_url or access.url), (config.label_studio_api_key if ls_url else access.api_key)
    if not url or not key:
        raise ValueError("set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY (or connect the backend first)")
    return client(url, key, timeout=60)
