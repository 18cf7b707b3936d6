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


def gray16_png(width: int, height: int, seed: int = 0) -> bytes:
    """A 16-bit grayscale PNG; a constant image compresses to a few kB whatever its size."""
    if seed < 0:
        arr = np.full((height, width), 40_000, np.uint16)
    else:
        arr = np.random.default_rng(seed).integers(0, 65535, (height, width)).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_decode_memory_is_bounded_by_bytes_per_pixel_not_pixel_count() -> None:
    """Under the 40 MP pixel limit, a 6300 x 6300 float TIFF needs 4 bytes a pixel (159 MB) and a 16-bit PNG 3
    (119 MB: the pixels and the 8-bit result): each is judged on its header, before any pixel is decoded."""
    png16 = gray16_png(6300, 6300, seed=-1)
    assert len(png16) < 200_000
    with pytest.raises(DecodeError, match="needs 114 MiB.*max_decode_bytes"):
        decode_image(png16, max_decode_bytes=100 * 2**20)
    buf = io.BytesIO()
    Image.new("F", (6300, 6300), 1.5).save(buf, format="TIFF", compression="tiff_deflate")
    assert len(buf.getvalue()) < 2_000_000
    with pytest.raises(DecodeError, match="mode F needs 151 MiB"):
        decode_image(buf.getvalue())  # the default budget, 128 MiB
    with pytest.raises(DecodeError, match="max_decode_bytes"):
        decode_image(png16, channels=3, max_decode_bytes=100 * 2**20)  # converting to RGB costs more, not less
    # A budget, not a ban: the same kind of image that fits it decodes.
    assert decode_image(gray16_png(300, 200, seed=-1), max_decode_bytes=300 * 200 * 3).shape == (1, 28, 28)
    with pytest.raises(DecodeError, match="max_decode_bytes"):
        decode_image(gray16_png(300, 200, seed=-1), max_decode_bytes=300 * 200 * 3 - 1)


def test_16_bit_images_are_scaled_in_strips_without_a_full_size_float_copy() -> None:
    """The result is the one the full-size float computation gives, and the numpy memory used on the way stays a
    small part of the 2000 x 2000 image (the old path held two full-size float32 copies: 32 MB)."""
    import tracemalloc

    rng_img = np.random.default_rng(3).integers(0, 65535, (2000, 2000)).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(rng_img).save(buf, format="PNG")
    data = buf.getvalue()
    tracemalloc.start()
    out = decode_image(data, size=28)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    expected_l = (rng_img.astype(np.float32) * (255.0 / float(rng_img.max()))).clip(0, 255).astype(np.uint8)
    expected = np.asarray(Image.fromarray(expected_l, "L").resize((28, 28), Image.Resampling.BILINEAR,
                                                                   reducing_gap=3.0), np.float32) / 255.0
    np.testing.assert_allclose(out[0], expected, atol=1e-6)
    # The 8-bit result (4 MB) and one strip (2 MB as float32); never a full-size float32 array (16 MB).
    assert peak < 8 * 2**20, f"peak traced memory {peak / 2**20:.1f} MiB"
