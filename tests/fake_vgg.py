"""Write generated VGG-19 files in MatConvNet's two layouts (random weights, never real)."""

from __future__ import annotations

import numpy as np
import scipy.io

# (name, out channels) per block, as in VGG-19; widths are scaled for tests.
BLOCKS = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))
FULL_WIDTHS = tuple(width for _, width in BLOCKS)
TINY_WIDTHS = (4, 6, 8, 8, 8)
# The real file's mean pixel (ImageNet), used so generated files look like the real one.
MEAN_PIXEL = np.array([123.68, 116.779, 103.939], dtype=np.float32)


def _cell(items: list) -> np.ndarray:
    """A 1xN MATLAB cell array holding items."""
    cell = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        cell[0, i] = item
    return cell


def layer_specs(widths: tuple[int, ...] = FULL_WIDTHS, fc: bool = False) -> list[tuple]:
    """(name, type, kernel shape [w, h, in, out] or None) for every layer of the file."""
    specs = []
    channels = 3
    for block, ((convs, _), width) in enumerate(zip(BLOCKS, widths, strict=True), start=1):
        for i in range(1, convs + 1):
            specs.append((f"conv{block}_{i}", "conv", (3, 3, channels, width)))
            specs.append((f"relu{block}_{i}", "relu", None))
            channels = width
        specs.append((f"pool{block}", "pool", None))
    if fc:
        specs += [
            ("fc6", "conv", (7, 7, channels, 4096)),
            ("relu6", "relu", None),
            ("fc7", "conv", (1, 1, 4096, 4096)),
            ("relu7", "relu", None),
            ("fc8", "conv", (1, 1, 4096, 1000)),
            ("prob", "softmax", None),
        ]
    return specs


def write_vgg_mat(
    path: str,
    layout: str = "new",
    widths: tuple[int, ...] = TINY_WIDTHS,
    seed: int = 0,
    fc: bool = False,
    drop: tuple[str, ...] = (),
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write a He-initialised VGG-19 .mat at path; return {conv name: (kernel whio, bias)}."""
    rng = np.random.default_rng(seed)
    layers, weights = [], {}
    for name, kind, shape in layer_specs(widths, fc):
        if name in drop:
            continue
        if kind == "conv":
            fan_in = shape[0] * shape[1] * shape[2]
            kernel = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
            bias = (rng.standard_normal((1, shape[3])) * 0.01).astype(np.float32)
            weights[name] = (kernel, bias)
            fields = {
                "name": name,
                "type": "conv",
                "weights": _cell([kernel, bias]),
                "size": np.array(shape, dtype=np.float64),
                "pad": np.array([1, 1, 1, 1], dtype=np.float64),
                "stride": np.array([1, 1], dtype=np.float64),
            }
        elif kind == "pool":
            fields = {
                "name": name,
                "type": "pool",
                "method": "max",
                "pool": np.array([2, 2], dtype=np.float64),
                "stride": np.array([2, 2], dtype=np.float64),
                "pad": np.array([0, 0, 0, 0], dtype=np.float64),
            }
        else:
            fields = {"name": name, "type": kind}
        if layout == "old":
            # The old file puts weights first; field order must not matter to the reader.
            fields = dict(sorted(fields.items(), key=lambda kv: kv[0] != "weights"))
        layers.append(fields)
    if layout == "old":
        average = np.broadcast_to(MEAN_PIXEL, (8, 8, 3)).astype(np.float32)
        data = {"normalization": {"averageImage": average, "imageSize": [224, 224, 3]}}
        data["layers"] = _cell(layers)
        data["classes"] = {"name": _cell(["n0"]), "description": _cell(["zero"])}
    elif layout == "new":
        average = MEAN_PIXEL.reshape(1, 1, 3)
        data = {
            "meta": {"normalization": {"averageImage": average, "imageSize": [224, 224, 3]}},
            "layers": _cell(layers),
        }
    else:
        raise ValueError(f"unknown layout {layout!r}")
    scipy.io.savemat(path, data, do_compression=False)
    return weights
