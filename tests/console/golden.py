"""Golden screenshots: a PNG compared with the checked-in one, with a tolerance.

    compare(actual_png, golden_path, out_dir)   # None when alike, else what differs (and
                                                # <name>.actual.png / <name>.diff.png in out_dir)

Two pixels differ when any channel differs by more than ``PIXEL_THRESHOLD`` (of 255): this
absorbs anti-aliasing noise. An image matches when at most ``DIFFERING_FRACTION_MAX`` of its
pixels differ and it has the golden's size. ``TRADEX_GOLDEN_UPDATE=1`` (``./dev golden``)
writes the actual image as the new golden instead of comparing.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

GOLDEN_DIR = Path(__file__).parent / "golden"
OUTPUT_DIR = Path(__file__).parent / "output"  # actual and diff images of failed comparisons
PIXEL_THRESHOLD = 24  # per channel, of 255
DIFFERING_FRACTION_MAX = 0.002  # of the image's pixels
UPDATE_ENV = "TRADEX_GOLDEN_UPDATE"


def updating() -> bool:
    return os.environ.get(UPDATE_ENV, "") == "1"


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert rgb.ndim == 3, rgb.shape
    assert rgb.shape[2] == 3, rgb.shape
    return rgb


def differing(actual: np.ndarray, golden: np.ndarray) -> np.ndarray:
    """A boolean mask of the pixels that differ by more than the threshold."""
    assert actual.shape == golden.shape, (actual.shape, golden.shape)
    mask: np.ndarray = (np.abs(actual - golden) > PIXEL_THRESHOLD).any(axis=2)
    return mask


def _diff_image(actual: np.ndarray, mask: np.ndarray) -> Image.Image:
    """The actual image dimmed, the differing pixels in pure red."""
    shown = (actual // 3).astype(np.uint8)
    shown[mask] = (255, 0, 0)
    return Image.fromarray(shown, "RGB")


def compare(actual_png: bytes, golden: Path, out_dir: Path = OUTPUT_DIR) -> str | None:
    """None when `actual_png` matches `golden` (or was written as it, when updating);
    else a sentence saying what differs, with the paths of the images written to look at."""
    if updating():
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(actual_png)
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    actual_path = out_dir / f"{golden.stem}.actual.png"
    if not golden.exists():
        actual_path.write_bytes(actual_png)
        return (f"no golden image {golden} (the screen is new? `./dev golden` writes it; "
                f"look at it first): actual image {actual_path}")  # fmt: skip
    actual, expected = _pixels(actual_png), _pixels(golden.read_bytes())
    if actual.shape != expected.shape:
        actual_path.write_bytes(actual_png)
        return (f"{golden.name}: size {actual.shape[1]}x{actual.shape[0]}, the golden is "
                f"{expected.shape[1]}x{expected.shape[0]}; actual image {actual_path}")  # fmt: skip
    mask = differing(actual, expected)
    fraction = float(mask.mean())
    if fraction <= DIFFERING_FRACTION_MAX:
        return None
    actual_path.write_bytes(actual_png)
    diff_path = out_dir / f"{golden.stem}.diff.png"
    _diff_image(actual, mask).save(diff_path)
    return (f"{golden.name}: {fraction:.2%} of the pixels differ (at most "
            f"{DIFFERING_FRACTION_MAX:.2%} may); actual {actual_path}, differences in red "
            f"{diff_path}; if the change is meant, `./dev golden` and review the images")  # fmt: skip
