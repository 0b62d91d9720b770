"""The golden comparison itself (no browser): alike within the tolerance, or not, and why."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.console import golden as golden_module
from tests.console.golden import DIFFERING_FRACTION_MAX, PIXEL_THRESHOLD, compare


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def picture() -> np.ndarray:
    rng = np.random.default_rng(15)
    return rng.integers(0, 256, size=(60, 100, 3), dtype=np.int16)


@pytest.fixture(autouse=True)
def _not_updating(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(golden_module.UPDATE_ENV, raising=False)


def test_the_same_image_and_noise_under_the_threshold_match(picture, tmp_path: Path) -> None:
    golden = tmp_path / "screen.png"
    golden.write_bytes(png(picture))
    assert compare(png(picture), golden, tmp_path / "out") is None
    noisy = np.clip(picture + PIXEL_THRESHOLD, 0, 255)
    assert compare(png(noisy), golden, tmp_path / "out") is None
    assert not (tmp_path / "out" / "screen.actual.png").exists()


def test_a_changed_block_fails_and_leaves_the_actual_and_the_diff(picture, tmp_path: Path) -> None:
    golden = tmp_path / "screen.png"
    golden.write_bytes(png(picture))
    changed = picture.copy()
    changed[10:20, 10:20] = 255 - changed[10:20, 10:20]  # 100 of 6,000 pixels (1.7 %)
    problem = compare(png(changed), golden, tmp_path / "out")
    assert problem is not None
    assert "% of the pixels differ" in problem
    diff = np.asarray(Image.open(tmp_path / "out" / "screen.diff.png"))
    red = (diff == (255, 0, 0)).all(axis=2)
    assert red[10:20, 10:20].mean() > 0.9
    assert red.sum() <= 100
    assert (tmp_path / "out" / "screen.actual.png").read_bytes() == png(changed)


def test_a_few_differing_pixels_are_tolerated_more_are_not(picture, tmp_path: Path) -> None:
    golden = tmp_path / "screen.png"
    golden.write_bytes(png(picture))
    allowed = int(DIFFERING_FRACTION_MAX * picture.shape[0] * picture.shape[1])
    flat = picture.reshape(-1, 3)
    for count, alike in ((allowed, True), (allowed + 1, False)):
        changed = flat.copy()
        changed[:count] = (changed[:count] + 128) % 256  # each channel 128 away
        found = compare(png(changed.reshape(picture.shape)), golden, tmp_path / "out")
        assert (found is None) == alike, (count, found)


def test_another_size_or_no_golden_fails(picture, tmp_path: Path) -> None:
    golden = tmp_path / "screen.png"
    problem = compare(png(picture), golden, tmp_path / "out")
    assert problem is not None and "no golden image" in problem
    golden.write_bytes(png(picture))
    problem = compare(png(picture[:50]), golden, tmp_path / "out")
    assert problem is not None and "size 100x50, the golden is 100x60" in problem


def test_updating_writes_the_golden(picture, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(golden_module.UPDATE_ENV, "1")
    golden = tmp_path / "golden" / "screen.png"
    assert compare(png(picture), golden, tmp_path / "out") is None
    assert golden.read_bytes() == png(picture)
