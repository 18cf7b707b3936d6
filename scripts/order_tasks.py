"""Write DALT's cold-start order into a Label Studio project, so annotators label the most typical tasks first.

Label Studio Community Edition has no API to reorder the label stream, but its data manager sorts by any
task data field, and the label stream ("Label All Tasks") follows the sorting of the tab it starts from.
So this command:

1. computes the order from the embeddings bulk encoding cached in Redis (``backend.coldstart``: the most
   typical task of each k-means cluster first, then the rest in random order);
2. writes it into every task's data as ``dalt_order`` (0 first; ``PATCH /api/tasks/ID`` through
   label-studio-sdk, keeping the task's other data fields; tasks already holding the right value are skipped);
3. creates (or updates) a data manager tab titled "DALT order" sorted by ``tasks:data.dalt_order``
   ascending. Annotators open that tab and click "Label All Tasks", or sort any tab by the
   ``dalt_order`` column.

Usage (after ``scripts/encode_tasks.py --project ID``)::

    LABEL_STUDIO_URL=http://localhost:8080 LABEL_STUDIO_API_KEY=... scripts/order_tasks.py --project 3
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tqdm.auto import tqdm  # noqa: E402

from backend.coldstart import default_clusters, order_values, typicality_order  # noqa: E402
from backend.config import Config  # noqa: E402
from backend.labelstudio import label_studio_access  # noqa: E402
from backend.store import Store  # noqa: E402

FIELD = "dalt_order"
VIEW_TITLE = "DALT order"


def compute_order(store: Store, pid: int, clusters: int | None = None, seed: int = 0) -> dict[int, int]:
    """``{task id: position}`` for every task with a cached embedding of the current encoder.

    Raises:
        SystemExit: the project has no encoder or no embeddings yet.
    """
    enc = store.current_encoder(pid)
    if enc is None:
        raise SystemExit(f"project {pid} has no encoder yet: run scripts/encode_tasks.py --project {pid} first")
    ids, X = store.all_embeddings(pid, enc.version)
    if len(ids) == 0:
        raise SystemExit(f"project {pid}: no cached embeddings for encoder {enc.version}")
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--project", type=int, required=True, help="Label Studio project id (also the store key)")
    p.add_argument("--ls-url", help="Label Studio URL (default: LABEL_STUDIO_URL, else what /setup saved)")
    p.add_argument("--redis-url", help="Redis URL (default: REDIS_URL)")
    p.add_argument("--clusters", type=int, help="k-means clusters (default: 5 per class, at least 10)")
    p.add_argument("--seed", type=int, default=0, help="k-means and shuffle seed")
    p.add_argument("--field", default=FIELD, help=f"task data field to write (default {FIELD})")
    p.add_argument("--dry-run", action="store_true", help="compute and print the first tasks, write nothing")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    config = Config.from_env()
    store = Store.from_url(opts.redis_url or config.redis_url)
    positions = compute_order(store, opts.project, opts.clusters, opts.seed)
    first = sorted(positions, key=positions.get)[:10]
    print(f"project {opts.project}: order of {len(positions)} tasks; first: {first}")
    if opts.dry_run:
        return 0
    url, key = label_studio_access(config, store.project(opts.project))
    if opts.ls_url:
        url = opts.ls_url
    if not url or not key:
        raise SystemExit("set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY (or connect the backend first)")
    from label_studio_sdk import LabelStudio

    client = LabelStudio(base_url=url, api_key=key, timeout=60)
    counts = write_order(client, opts.project, positions, opts.field, progress=not opts.no_progress)
    view = ensure_view(client, opts.project, opts.field)
    print(f"wrote {counts['written']}, unchanged {counts['unchanged']}, not encoded {counts['not_encoded']}; "
          f"data manager tab {VIEW_TITLE!r} (id {view}) sorts by tasks:data.{opts.field}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
