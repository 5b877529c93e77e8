"""Reading label PNGs as object ids, and checking results before they are scored.

A DAVIS/YouTube-VOS mask is an 8-bit PNG whose *pixel values* are object ids (0 = background); the palette only
colours them for humans. The toolkit reads them with ``np.array(PIL.Image.open(path))``, which returns the raw
indices of palette ("P") and greyscale ("L") PNGs. Anything else (RGB, RGBA, 16-bit) is refused with a message naming
the file, where the toolkit would crash on a shape error.

Decoding is most of an evaluation's time, so the common case is read directly: an 8-bit, non-interlaced palette or
greyscale PNG whose rows are all stored unfiltered (how DAVIS masks and most writers' label PNGs are saved) is exactly
its inflated IDAT bytes minus one filter byte per row. That skips PIL's per-image overhead and copies and can use
libdeflate (``eval.inflate``); every other PNG goes through PIL.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from . import inflate as _inflate
from .errors import EvalError

#: Value of "void" pixels in DAVIS ground truth (treated as background by the semi-supervised protocol).
VOID_ID = 255

#: PIL modes whose pixel values are the object ids ("1": a 1-bit binary mask, object id 1).
_INDEX_MODES = ("P", "L", "1")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PALETTE, _GREYSCALE = 3, 0


def _decode_unfiltered_index_png(data: bytes) -> np.ndarray | None:
    """(H, W) uint8 indices of an 8-bit palette/greyscale PNG stored without row filters, else None."""
    if not data.startswith(_PNG_SIGNATURE):
        return None
    chunks, pos, size = [], len(_PNG_SIGNATURE), None
    while pos + 8 <= len(data):
        (length,), kind = struct.unpack_from(">I", data, pos), data[pos + 4:pos + 8]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack_from(">IIBBBBB", data, pos + 8)
            if depth != 8 or colour not in (_PALETTE, _GREYSCALE) or interlace:
                return None
            size = (height, width)
        elif kind == b"IDAT":
            chunks.append(data[pos + 8:pos + 8 + length])
        elif kind == b"IEND":
            break
        pos += 12 + length
    if size is None:
        return None
    height, width = size
    raw = _inflate.inflate(b"".join(chunks), height * (width + 1))
    if raw is None:
        return None
    rows = raw.reshape(height, width + 1)
    if rows[:, 0].any():  # some row uses a PNG filter: let PIL undo it
        return None
    return rows[:, 1:]


def read_labels(path: Path) -> np.ndarray:
    """(H, W) uint8 object ids of one label PNG; ``EvalError`` if it is missing or not an 8-bit index image."""
    try:
        labels = _decode_unfiltered_index_png(Path(path).read_bytes())
        if labels is not None:
            return labels
        with Image.open(path) as image:
            if image.mode not in _INDEX_MODES:
                raise EvalError(f"{path} is a {image.mode} image; masks must be 8-bit palette or greyscale PNGs whose "
                                "pixel values are object ids (0 = background), not colours")
            return np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise EvalError(f"{path} is missing; write one PNG per evaluated frame with the ground truth's file names") \
            from None
    except OSError as err:  # PIL's UnidentifiedImageError and truncated files
        raise EvalError(f"{path} is not a readable PNG ({err}); rewrite it as an 8-bit palette PNG") from None


def read_ground_truth(path: Path) -> np.ndarray:
    """(H, W) uint8 ground-truth ids with void (255) mapped to background, as the semi-supervised protocol does."""
    labels = read_labels(path)
    if labels.max() == VOID_ID:
        labels = np.where(labels == VOID_ID, 0, labels).astype(np.uint8)
    return labels


def read_result(path: Path, shape: tuple[int, int], object_ids: frozenset[int]) -> np.ndarray:
    """(H, W) uint8 predicted ids, checked against the ground truth's frame ``shape`` and its ``object_ids``.

    An id that is not a ground-truth object is an error: the toolkit exits 0 without a CSV on an id above the object
    count and tries to allocate tens of GB on a 255.
    """
    labels = read_labels(path)
    if labels.shape != shape:
        raise EvalError(f"{path} is {labels.shape[1]}x{labels.shape[0]} but its ground truth is {shape[1]}x{shape[0]}; "
                        "write results at the annotation's resolution (480p for DAVIS)")
    top = int(labels.max())
    if all(i in object_ids for i in range(1, top + 1)):
        return labels
    present = np.flatnonzero(np.bincount(labels.ravel(), minlength=top + 1))
    unknown = sorted(set(present.tolist()) - object_ids - {0})
    if VOID_ID in unknown:
        raise EvalError(f"{path} contains {VOID_ID} (void); void is only for ground truth, write 0 for background")
    if unknown:
        known = ", ".join(map(str, sorted(object_ids))) or "none"
        raise EvalError(f"{path} contains object id(s) {', '.join(map(str, unknown))} that the ground truth does not "
                        f"define (object ids: {known}); keep the ids of the first-frame annotation")
    return labels


def davis_palette() -> np.ndarray:
    """(256, 3) uint8 PASCAL VOC / DAVIS colour map: bits 0/1/2 of an index set the top bit of R/G/B, bits 3/4/5 the
    next lower bit, and so on (1 = dark red, 2 = dark green, 3 = olive, ...).

    ``vos.masks.davis_palette`` is the same map: ``eval`` keeps its own because it stands alone (it never imports
    ``vos`` or ``seggpt_core``, so anyone can score any method's results without torch or the model)."""
    index = np.arange(256)
    palette = np.zeros((256, 3), dtype=np.int64)
    for bit in range(8):
        for channel in range(3):
            palette[:, channel] |= ((index >> (3 * bit + channel)) & 1) << (7 - bit)
    return palette.astype(np.uint8)


def encode_labels_png(labels: np.ndarray) -> bytes:
    """(H, W) uint8 ids -> bytes of a palette PNG with the DAVIS colours (what DAVIS and YouTube-VOS servers read)."""
    image = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8))  # "L"; putpalette makes it "P"
    image.putpalette(davis_palette().ravel().tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def is_palette_png(data: bytes) -> bool:
    """Whether PNG bytes are an 8-bit palette image (IHDR bit depth and colour type), so they can be copied as is."""
    return data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR" and data[24] == 8 and data[25] == _PALETTE
