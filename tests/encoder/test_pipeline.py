"""TaskEncoder: Label Studio tasks in all three URL forms -> vectors; bad tasks get reasons, not failures."""

from __future__ import annotations

import numpy as np
import pytest

from encoder.artifact import EncoderArtifact
from encoder.fetch import ImageFetcher
from encoder.model import ConvEncoder
from encoder.pipeline import TaskEncoder, task_image_url
from tests.fake_label_studio import FakeLabelStudio


@pytest.fixture
def artifact() -> EncoderArtifact:
    import torch

    torch.manual_seed(0)
    return EncoderArtifact(ConvEncoder(1, 28, 8), objective="autoencoder")


def test_task_image_url() -> None:
    task = {"id": 1, "data": {"text": "", "image": "/data/upload/1/a.png", "other": "x"}}
    assert task_image_url(task, "image") == "/data/upload/1/a.png"
    assert task_image_url(task, None) == "/data/upload/1/a.png"  # first non-empty string
    for bad in ({"id": 2, "data": {}}, {"id": 3}, {"id": 4, "data": {"image": 5}}):
        with pytest.raises(ValueError):
            task_image_url(bad, "image")


def test_encode_tasks_mixed(
    fake_ls: FakeLabelStudio, foreign_host: FakeLabelStudio, artifact: EncoderArtifact, digit_pngs: list[bytes]
) -> None:
    fake_ls.uploads["/data/upload/1/corrupt.png"] = digit_pngs[5][:60]
    fake_ls.uploads["/data/upload/1/text.png"] = b"hello, not an image"
    tasks = [
        {"id": 1, "data": {"image": "/data/upload/1/93470f75-up_zero.png"}},
        {"id": 3, "data": {"image": "/data/local-files/?d=images/loc_zero.png"}},
        {"id": 5, "data": {"image": foreign_host.url + "/plain/http_one.png"}},
        {"id": 7, "data": {"image": "/data/upload/1/missing.png"}},
        {"id": 8, "data": {"image": "/data/upload/1/corrupt.png"}},
        {"id": 9, "data": {"image": "/data/upload/1/text.png"}},
        {"id": 10, "data": {}},
    ]
    fetcher = ImageFetcher(fake_ls.url, fake_ls.pat, allowed_hosts=("*",), allow_private_networks=True)
    with fetcher:
        vectors, errors = TaskEncoder(artifact, fetcher, image_key="image").encode_tasks(tasks)
    assert sorted(vectors) == [1, 3, 5]
    assert all(v.shape == (8,) and v.dtype == np.float32 for v in vectors.values())
    assert sorted(errors) == [7, 8, 9, 10]
    assert errors[7].startswith("not_found:")
    assert errors[8].startswith("decode: corrupt") and errors[9].startswith("decode: not an image")
    assert errors[10].startswith("bad_url:")
    from encoder.decode import decode_image

    expected = artifact.encode(decode_image(digit_pngs[0])[None])[0]
    np.testing.assert_allclose(vectors[1], expected, rtol=1e-5, atol=1e-6)
