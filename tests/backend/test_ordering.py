"""backend.ordering (``dalt order``): the cold-start order from the store, written into task data, a sorted tab.

Checked once by hand against a real Label Studio 1.23.2 (the tab's task list and /next follow
``dalt_order``); here the Label Studio client is a small fake recording what the command sends.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from backend import ordering


class FakeClient:
    """The few label-studio-sdk calls the command makes."""

    def __init__(self, tasks: dict[int, dict]):
        self.data = tasks
        self.patches: list[int] = []
        self.tabs: dict[int, dict] = {}
        self.tasks = SimpleNamespace(list=self._list, update=self._update)
        self.views = SimpleNamespace(list=self._views, create=self._create, update=self._vupdate)

    def _list(self, project, fields, page_size):
        return [SimpleNamespace(id=t, data=dict(d)) for t, d in self.data.items()]

    def _update(self, id, data):
        self.patches.append(int(id))
        self.data[int(id)] = data

    def _views(self, project):
        return [SimpleNamespace(id=i, data=d) for i, d in self.tabs.items()]

    def _create(self, project, data):
        vid = len(self.tabs) + 1
        self.tabs[vid] = dict(data)
        return SimpleNamespace(id=vid)

    def _vupdate(self, id, project, data):
        self.tabs[int(id)] = dict(data)


@pytest.fixture
def fake(store):
    store.save_project(5, classes=["a", "b"])
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(c, 0.2, size=(10, 3)) for c in (0, 4)]).astype(np.float32)
    ids = list(range(1, 21))
    store.put_encoder(5, "e1", b"", {"dim": 3})
    store.put_embeddings(5, "e1", dict(zip(ids, X, strict=True)))
    return store, FakeClient({t: {"image": f"/data/upload/{t}.png"} for t in [*ids, 99]})


def test_order_is_written_into_task_data_once_and_a_sorted_tab_is_made(fake) -> None:
    store, client = fake
    pos = ordering.compute_order(store, 5, clusters=2)
    assert sorted(pos.values()) == list(range(20))
    counts = ordering.write_order(client, 5, pos, progress=False)
    assert counts == {"written": 20, "unchanged": 0, "not_encoded": 1}
    assert client.data[3]["image"] == "/data/upload/3.png" and client.data[3]["dalt_order"] == pos[3]
    assert "dalt_order" not in client.data[99]
    again = ordering.write_order(client, 5, pos, progress=False)
    assert again["written"] == 0 and again["unchanged"] == 20
    vid = ordering.ensure_view(client, 5)
    assert client.tabs[vid] == {"title": "DALT order", "ordering": ["tasks:data.dalt_order"]}
    assert ordering.ensure_view(client, 5) == vid and len(client.tabs) == 1


def test_no_encoder_is_a_clear_error(store) -> None:
    with pytest.raises(ordering.NotEncodedError, match="dalt encode --project 6"):
        ordering.compute_order(store, 6)
