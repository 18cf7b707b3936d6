"""Reading Label Studio's payloads."""

import pytest

from backend.events import project_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1), ("7", 7), ("12.1795682067", 12), ({"id": 3, "title": "x"}, 3)],
)
def test_project_id_accepts_label_studio_forms(value, expected):
    assert project_id(value) == expected


@pytest.mark.parametrize("value", [None, "", "abc", "-1", 0, True, 1.5, {"title": "x"}, [1]])
def test_project_id_rejects_garbage(value):
    with pytest.raises(ValueError):
        project_id(value)
