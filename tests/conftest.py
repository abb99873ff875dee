"""Shared fixtures: generated VGG-19 files and images (random weights, never a real result)."""

from __future__ import annotations

import io
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


def cli_args(inputs: dict[str, Path], network_path: Path, output: Path, *extra: str) -> list[str]:
    """A command line for main(): the content, first style, output, network and extra."""
    return [
        "--content", str(inputs["content"]),
        "--styles", str(inputs["style1"]),
        "--output", str(output),
        "--network", str(network_path),
        # float32, not auto: the tests compare losses with float32 numbers worked out by hand
        "--precision", "float32",
        *extra,
    ]  # fmt: skip


def tmp_cli_args(inputs: dict[str, Path], network_path: Path, tmp_path: Path, *extra: str):
    """cli_args with the output tmp_path/out.jpg."""
    return cli_args(inputs, network_path, tmp_path / "out.jpg", *extra)


def losses_by_hand(
    network, content, styles, start, content_layers, style_layers, pooling="max", blend=None
):
    """The content, style and tv losses at the default weights (5, 100, 100) and their total,
    of a start image, by the formulas of README's "What it computes", in float64 numpy.

    styles: the style images at the sizes the run uses them (a single image: one style);
    blend: their weights (equal when None), normalised to sum 1.
    """

    import vgg

    styles = [styles] if isinstance(styles, np.ndarray) else list(styles)
    blend = np.ones(len(styles)) if blend is None else np.asarray(blend, np.float64)
    blend = blend / blend.sum()
    net = vgg.constants(network)

    def feats(image, layers):
        x = vgg.preprocess(image, network.mean_pixel)[None]
        out = vgg.extract(net, x, tuple(layers), pooling)
        return {k: v.numpy().astype(np.float64) for k, v in out.items()}

    def gram(x):
        flat = x.reshape(-1, x.shape[-1])
        return flat.T @ flat / x.size

    def style_term(fx, fs):
        return sum(
            w * np.sum((gram(fx[n]) - gram(fs[n])) ** 2) / gram(fs[n]).size
            for n, w in style_layers.items()
        )

    fx = feats(start, {**content_layers, **style_layers})
    fc = feats(content, content_layers)
    content_loss = 5.0 * sum(
        w * np.sum((fx[n] - fc[n]) ** 2) / fc[n].size for n, w in content_layers.items()
    )
    style_loss = 100.0 * sum(
        b * style_term(fx, feats(style, style_layers))
        for b, style in zip(blend, styles, strict=True)
    )
    pre = vgg.preprocess(start, network.mean_pixel).astype(np.float64)
    dy, dx = pre[1:] - pre[:-1], pre[:, 1:] - pre[:, :-1]
    tv_loss = 100.0 * (np.sum(dy**2) / dy.size + np.sum(dx**2) / dx.size)
    return [content_loss, style_loss, tv_loss, content_loss + style_loss + tv_loss]


def run_stylize(
    network, content, styles, *, initial=None, stop=None, cache=None, resume=None,
    on_tile=None, **settings,
):  # fmt: skip
    """stylize.stylize with Settings(**settings): the run's generator."""
    import stylize
    from settings import Settings

    settings.setdefault("precision", "float32")
    return stylize.stylize(
        network, content, styles, Settings(**settings), initial=initial, stop=stop,
        cache=cache, resume=resume, on_tile=on_tile,
    )  # fmt: skip


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True
