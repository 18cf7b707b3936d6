"""Image bytes -> a fixed-size float tensor, with limits against hostile files.

Why a module of its own: decoding is where untrusted bytes meet a C library, so the guards live in one
place: a pixel budget and a memory budget, both checked on the header before any pixel is decoded (the
memory a decode needs is its pixels times the bytes per pixel of its mode and of every full-size copy
the conversion makes: a 92 kB 16-bit PNG of 40 MP needs 5 bytes a pixel, not 1), and Pillow's own bomb
check as a second line. Conversions from high bit depths work in strips, never on a float copy of the
whole image. The module also holds and so does the one preprocessing rule every encoder version relies on:
convert to grayscale (``L``) or ``RGB``, squash to ``size x size`` (bilinear, aspect not kept),
scale to ``[0, 1]``. Same bytes in, same tensor out.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

_EXIF_FORMATS = {"JPEG", "MPO", "TIFF", "WEBP"}
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "La"}
_WIDE_GRAY = {"I", "F"}  # resized in their own mode, then scaled
_GRAY16 = {"I;16", "I;16B", "I;16L", "I;16N"}  # scaled to L in strips
# Bytes Pillow keeps per pixel: one for 1/L/P, two for 16-bit, four for I, F and every multi-band mode.
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "I": 4, "F": 4}
DEFAULT_MAX_DECODE_BYTES = 128 * 2**20
_STRIP_ROWS = 128


class DecodeError(ValueError):
    """The bytes are not an image we accept (corrupt, not an image, or too many pixels)."""


def _open(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise DecodeError("empty file")
    # Pillow's own guard stays as a backstop (it errors above 2x Image.MAX_IMAGE_PIXELS while reading the
    # header); the budget below is stricter. No warnings filter here: changing it is not thread-safe.
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise DecodeError("not an image (unrecognized format)") from None
    except Image.DecompressionBombError as exc:
        raise DecodeError(f"image refused as a decompression bomb: {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise DecodeError(f"corrupt image: {exc}") from None
    w, h = im.size
    if w <= 0 or h <= 0:
        raise DecodeError(f"image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise DecodeError(f"image of {w}x{h} = {w * h} pixels exceeds the limit of {max_pixels} pixels")
    return im


def pixel_bytes(mode: str) -> int:
    """Bytes Pillow keeps per pixel of an image in ``mode``."""
    return _PIXEL_BYTES.get(mode, 4)


def decode_cost(im: Image.Image, mode: str, transpose: bool = False) -> int:
    """Bytes that decoding ``im`` and converting it to ``mode`` at full size needs at its peak.

    The decoded image, plus: for 16-bit gray the 8-bit result; for ``I``/``F`` nothing (resized in their own
    mode); for other modes the converted copy; an EXIF rotation one more copy.
    """
    w, h = im.size
    src = pixel_bytes(im.mode)
    if im.mode == mode or (im.mode in _WIDE_GRAY and mode == "L"):
        extra = 0
    elif im.mode in _GRAY16 and mode == "L":
        extra = 1
    else:
        extra = pixel_bytes(mode)
    if transpose:
        extra += src
    return w * h * (src + extra)


def _check_cost(im: Image.Image, mode: str, max_decode_bytes: int, transpose: bool = False) -> None:
    need = decode_cost(im, mode, transpose)
    if need > max_decode_bytes:
        w, h = im.size
        raise DecodeError(
            f"image of {w}x{h} pixels in mode {im.mode} needs {need / 2**20:.0f} MiB to decode, more than the "
            f"limit of {max_decode_bytes / 2**20:.0f} MiB (max_decode_bytes)"
        )


def _gray16_to_l(im: Image.Image) -> Image.Image:
    """16-bit gray -> ``L`` scaled by the image's maximum, a strip of rows at a time: no full-size copy but
    the 8-bit result (a numpy view of the whole image would copy it, a float one would take 4 bytes a pixel)."""
    hi = float(im.getextrema()[1]) or 1.0
    w, h = im.size
    out = np.empty((h, w), np.uint8)
    scale = np.float32(255.0 / hi)
    for r in range(0, h, _STRIP_ROWS):
        strip = np.asarray(im.crop((0, r, w, min(h, r + _STRIP_ROWS))), dtype=np.float32)
        strip *= scale
        out[r : r + _STRIP_ROWS] = np.clip(strip, 0, 255, out=strip)
    return Image.fromarray(out, "L")


def _wide_to_l(im: Image.Image, size: int) -> Image.Image:
    """``I``/``F`` -> ``L``: resized in its own mode first, then scaled by the image's maximum."""
    hi = float(im.getextrema()[1]) or 1.0
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    arr = np.asarray(im, dtype=np.float32) * np.float32(255.0 / hi)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8), "L")


def decode_image(
    data: bytes, *, size: int = 28, channels: int = 1, max_pixels: int = 40_000_000,
    max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES,
) -> np.ndarray:
    """Decode and preprocess one image.

    Args:
        data: the file's bytes (PNG, JPEG, GIF, BMP, WebP, TIFF... whatever Pillow reads).
        size: output side length in pixels.
        channels: 1 (grayscale) or 3 (RGB).
        max_pixels: largest width*height accepted, checked on the header before decoding.
        max_decode_bytes: most memory the decode may need (:func:`decode_cost`), checked on the header.

    Returns:
        ``float32`` array ``[channels, size, size]`` with values in ``[0, 1]``.

    Raises:
        DecodeError: corrupt or non-image content, or an image over the pixel or memory budget.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    im = _open(data, max_pixels)
    mode = "L" if channels == 1 else "RGB"
    try:
        # JPEG: let libjpeg decode at a reduced scale (1/2..1/8) when the image is much larger.
        im.draft(mode, (size, size))
        transpose = im.format in _EXIF_FORMATS and im.getexif().get(0x0112, 1) != 1
        _check_cost(im, mode, max_decode_bytes, transpose)
        if transpose:  # EXIF orientation: show it as a viewer would
            im = ImageOps.exif_transpose(im)
        if im.mode != mode:
            if im.mode in _GRAY16 and mode == "L":
                im = _gray16_to_l(im)
            elif im.mode in _WIDE_GRAY and mode == "L":
                im = _wide_to_l(im, size)
            else:
                im = im.convert(mode)
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
        arr = np.asarray(im, dtype=np.uint8)
    except DecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise DecodeError(f"image refused as a decompression bomb: {exc}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise DecodeError(f"corrupt image: {exc}") from None
    out = arr.astype(np.float32)
    out *= 1.0 / 255.0
    if channels == 1:
        return out[None, :, :]
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def _is_gray(data: bytes, max_pixels: int, max_decode_bytes: int) -> bool:
    im = _open(data, max_pixels)
    if im.mode in _GRAY_MODES:
        return True
    im.draft("RGB", (64, 64))
    _check_cost(im, "RGB", max_decode_bytes)
    im.thumbnail((64, 64))
    rgb = np.asarray(im.convert("RGB"), dtype=np.int16)
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    return bool(spread.max(initial=0) <= 8)


def channel_sample(n: int, k: int = 64, seed: int = 0) -> list[int]:
    """Indices (sorted) of a seeded random sample of ``k`` of ``n`` images to choose channels from.

    Why random and across the whole project: imports often come one class folder after another, so the
    first images may all be the one grayscale class of a colour project.
    """
    if n <= k:
        return list(range(n))
    return sorted(np.random.default_rng(seed).choice(n, k, replace=False).tolist())


def choose_channels(samples: list[bytes], *, max_pixels: int = 40_000_000,
                    max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES) -> int:
    """Pick 1 (grayscale) or 3 (RGB) from a sample of the project's images (see :func:`channel_sample`).

    Colour images stored as RGB with equal channels (common for scans and digits) count as grayscale,
    so one channel is used and the network is three times cheaper. Undecodable samples are ignored.
    """
    for data in samples:
        try:
            if not _is_gray(data, max_pixels, max_decode_bytes):
                return 3
        except DecodeError:
            continue
    return 1
