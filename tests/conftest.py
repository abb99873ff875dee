"""Shared fixtures: generated VGG-19 files and images (random weights, never a real result)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from fake_vgg import write_vgg_mat  # noqa: E402


@pytest.fixture(scope="session")
def network_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny generated VGG-19 in the new layout."""
    path = tmp_path_factory.mktemp("net") / "vgg-new.mat"
    write_vgg_mat(str(path), "new")
    return path


@pytest.fixture(scope="session")
def network(network_path: Path):
    """The tiny network, loaded."""
    import vgg

    return vgg.load_mat(str(network_path))


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random RGB float32 image in 0-255."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (4, 4, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.BILINEAR), np.float32)


def save(path: Path, image: np.ndarray) -> Path:
    """Write image (float 0-255) as an 8-bit file."""
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    """Content, two styles and an initial image as files."""
    return {
        "content": save(tmp_path / "content.png", smooth_image(24, 32, 1)),
        "style1": save(tmp_path / "style1.jpg", smooth_image(40, 40, 2)),
        "style2": save(tmp_path / "style2.png", smooth_image(20, 30, 3)),
        "initial": save(tmp_path / "initial.png", smooth_image(12, 16, 4)),
    }


@pytest.fixture(autouse=True)
def cache_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the weight cache of every test in a folder of its own, never the user's."""
    home = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("NEURAL_STYLE_HOME", str(home))
    return home
