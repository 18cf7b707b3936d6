"""Image bytes -> a fixed-size float tensor, with limits against hostile files.

Why a module of its own: decoding is where untrusted bytes meet a C library, so the guards (a pixel
budget checked on the header before any pixel is decoded, Pillow's own bomb check as a second line)
live in one place, and so does the one preprocessing rule every encoder version relies on:
convert to grayscale (``L``) or ``RGB``, squash to ``size x size`` (bilinear, aspect not kept),
scale to ``[0, 1]``. Same bytes in, same tensor out.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

_EXIF_FORMATS = {"JPEG", "MPO", "TIFF", "WEBP"}
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "La"}


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


def decode_image(
    data: bytes, *, size: int = 28, channels: int = 1, max_pixels: int = 40_000_000
) -> np.ndarray:
    """Decode and preprocess one image.

    Args:
        data: the file's bytes (PNG, JPEG, GIF, BMP, WebP, TIFF... whatever Pillow reads).
        size: output side length in pixels.
        channels: 1 (grayscale) or 3 (RGB).
        max_pixels: largest width*height accepted, checked on the header before decoding.

    Returns:
        ``float32`` array ``[channels, size, size]`` with values in ``[0, 1]``.

    Raises:
        DecodeError: corrupt or non-image content, or an image over the pixel budget.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    im = _open(data, max_pixels)
    mode = "L" if channels == 1 else "RGB"
    try:
        # JPEG: let libjpeg decode at a reduced scale (1/2..1/8) when the image is much larger.
        im.draft(mode, (size, size))
        if (
            im.format in _EXIF_FORMATS and im.getexif().get(0x0112, 1) != 1
        ):  # EXIF orientation: show it as a viewer would
            im = ImageOps.exif_transpose(im)
        if im.mode != mode:
            if im.mode in ("I", "I;16", "I;16B", "I;16L", "F") and mode == "L":
                arr = np.asarray(im, dtype=np.float32)
                hi = float(arr.max()) or 1.0
                im = Image.fromarray((arr * (255.0 / hi)).clip(0, 255).astype(np.uint8), "L")
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


def _is_gray(data: bytes, max_pixels: int) -> bool:
    im = _open(data, max_pixels)
    if im.mode in _GRAY_MODES:
        return True
    im.draft("RGB", (64, 64))
    im.thumbnail((64, 64))
    rgb = np.asarray(im.convert("RGB"), dtype=np.int16)
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    return bool(spread.max(initial=0) <= 8)


def choose_channels(samples: list[bytes], *, max_pixels: int = 40_000_000) -> int:
    """Pick 1 (grayscale) or 3 (RGB) from a sample of the project's images.

    Colour images stored as RGB with equal channels (common for scans and digits) count as grayscale,
    so one channel is used and the network is three times cheaper. Undecodable samples are ignored.
    """
    for data in samples:
        try:
            if not _is_gray(data, max_pixels):
                return 3
        except DecodeError:
            continue
    return 1
