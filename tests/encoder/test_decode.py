"""decode_image / choose_channels: shapes, determinism, and refusal of corrupt, non-image and bomb files."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from encoder.decode import DecodeError, choose_channels, decode_image
from tests.encoder.conftest import png_bytes


def jpeg_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def test_gray_png_keeps_pixels(mnist_small) -> None:
    digit = mnist_small[0][0]
    out = decode_image(png_bytes(digit))
    assert out.shape == (1, 28, 28) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], digit / 255.0, atol=1e-6)


def test_resize_rgb_and_determinism() -> None:
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
    for data in (png_bytes(photo), jpeg_bytes(photo)):
        a = decode_image(data, size=32, channels=3)
        b = decode_image(data, size=32, channels=3)
        assert a.shape == (3, 32, 32) and a.min() >= 0 and a.max() <= 1
        np.testing.assert_array_equal(a, b)
        assert decode_image(data, size=16, channels=1).shape == (1, 16, 16)


def test_palette_and_alpha_images_decode() -> None:
    im = Image.new("P", (10, 10), 3)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    assert decode_image(buf.getvalue(), size=8).shape == (1, 8, 8)
    rgba = np.zeros((12, 12, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 128
    assert decode_image(png_bytes(rgba, "RGBA"), size=8, channels=3)[0].min() == 1.0


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (b"<html>not an image</html>", "not an image"),
        (b"GIF89a" + b"\x00" * 5, "not an image"),
    ],
)
def test_bad_content(data: bytes, words: str) -> None:
    with pytest.raises(DecodeError, match=words):
        decode_image(data)


def test_truncated_png_is_corrupt(mnist_small) -> None:
    data = png_bytes(mnist_small[0][0])
    with pytest.raises(DecodeError, match="corrupt"):
        decode_image(data[: len(data) // 2])


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG file that claims width x height (a decompression bomb's header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_from_header() -> None:
    bomb = _png_header_only(30_000, 30_000)  # 900 megapixels in a few hundred bytes
    assert len(bomb) < 1000
    with pytest.raises(DecodeError, match="pixels"):
        decode_image(bomb)
    with pytest.raises(DecodeError, match="10000x9000 = 90000000 pixels exceeds the limit of 40000000"):
        decode_image(_png_header_only(10_000, 9_000))  # under Pillow's own limit: our header check
    with pytest.raises(DecodeError, match="exceeds the limit of 1000 pixels"):
        decode_image(png_bytes(np.zeros((40, 40), np.uint8)), max_pixels=1000)


def test_choose_channels() -> None:
    gray = png_bytes(np.full((8, 8), 100, np.uint8))
    gray_as_rgb = png_bytes(np.full((8, 8, 3), 100, np.uint8))
    color = np.zeros((8, 8, 3), np.uint8)
    color[..., 0] = 200
    assert choose_channels([gray, gray_as_rgb, b"junk"]) == 1
    assert choose_channels([gray, png_bytes(color)]) == 3
    assert choose_channels([]) == 1
