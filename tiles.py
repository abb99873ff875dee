"""Iterations computed tile by tile, for pictures whose untiled iteration exceeds the memory.

The image is cut along a grid of square cores (multiples of memory.TILE_ALIGN pixels, in the
whole image's coordinates, so that every tile's pooling grid lines up with the whole image's);
each tile's network input is its core with a halo of context around it. Each feature position
of a layer belongs to exactly one core (mapped down by the layer's stride), so:

1. a forward pass per tile (no gradient) sums F^T F over its core at each style layer and the
   content term over its core; together they are the whole image's Grams and content loss;
2. the whole image's losses, and U = dL/dG, follow from those sums;
3. a second pass per tile recomputes its forward with a tape and takes the gradient of
   sum(F_core * dL/dF_core), dL/dF = F (U + U^T) / size for style and the content term's own;
   the tiles' input gradients (halo pixels included) are added up into the image's gradient.

The total variation term and its gradient are the whole image's. Outside the image a tile's
activations are set to zero at every layer (TensorFlow's SAME padding of the whole image), so
tiles at the border are exact; inside, the halo bounds the error. The grid moves by a random
offset at each evaluation, so no seam stays in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

if __package__:  # installed as a package
    from . import memory, vgg
    from .images import Size
else:  # a checkout: the modules side by side
    import memory
    import vgg
    from images import Size

TILE_ALIGN = memory.TILE_ALIGN

OnTile = Callable[[int, int], None]  # told (tiles done, tiles in all) as an iteration goes


def layer_stride(name: str) -> int:
    """How many image pixels one position of layer name spans: 2 ** (poolings before it)."""
    index = vgg.layer_index(name)
    return 2 ** sum(1 for n in vgg.LAYERS[:index] if n.startswith("pool"))


@dataclass(frozen=True)
class Grid:
    """Square cores of tile pixels, each seen with halo pixels of context on every side."""

    tile: int
    halo: int = memory.TILE_HALO

    def __post_init__(self) -> None:
        if self.tile <= 0 or self.tile % TILE_ALIGN or self.halo < 0 or self.halo % TILE_ALIGN:
            raise ValueError(f"tile and halo must be multiples of {TILE_ALIGN}, got {self}")

    @property
    def window(self) -> int:
        """The side of a tile's network input: its core and halo."""
        return self.tile + 2 * self.halo

    def cores(self, size: Size, offset: tuple[int, int] = (0, 0)) -> list[tuple[int, int]]:
        """The top-left corners of the cores covering an image, the grid moved by offset."""

        def starts(length: int, shift: int) -> range:
            return range(shift - self.tile if shift else 0, length, self.tile)

        return [
            (y, x) for y in starts(size.height, offset[0]) for x in starts(size.width, offset[1])
        ]

    def random_offset(self, rng: np.random.Generator) -> tuple[int, int]:
        """A grid offset in [0, tile) each way, a multiple of TILE_ALIGN."""
        steps = self.tile // TILE_ALIGN
        return tuple(int(k) * TILE_ALIGN for k in rng.integers(0, steps, 2))


def cut(array: np.ndarray, y: int, x: int, side: int) -> np.ndarray:
    """The side x side square of a 1xHxWxC array from (y, x), zero where it leaves the array."""
    out = np.zeros((1, side, side, array.shape[3]), array.dtype)
    height, width = array.shape[1:3]
    top, left, bottom, right = max(y, 0), max(x, 0), min(y + side, height), min(x + side, width)
    if top < bottom and left < right:
        out[:, top - y : bottom - y, left - x : right - x] = array[:, top:bottom, left:right]
    return out


def paste_add(array: np.ndarray, square: np.ndarray, y: int, x: int) -> None:
    """Add the part of square (1xSxSxC, placed at (y, x)) that lies in array to array."""
    side = square.shape[1]
    height, width = array.shape[1:3]
    top, left, bottom, right = max(y, 0), max(x, 0), min(y + side, height), min(x + side, width)
    if top < bottom and left < right:
        array[:, top:bottom, left:right] += square[:, top - y : bottom - y, left - x : right - x]


def _valid(origin: tf.Tensor, size: tf.Tensor, stride: int, length: int) -> tf.Tensor:
    """A 1xLxLx1 boolean: which positions of a layer of this stride lie in the image.

    origin is the square's top-left corner in image pixels (a multiple of stride), size the
    image's (height, width); the layer has ceil(size / stride) positions each way.
    """
    first = origin // stride
    limit = (size + stride - 1) // stride
    rows = tf.range(length) + first[0]
    columns = tf.range(length) + first[1]
    rows_in = (rows >= 0) & (rows < limit[0])
    columns_in = (columns >= 0) & (columns < limit[1])
    return (rows_in[:, None] & columns_in[None, :])[None, :, :, None]


class TileNetwork:
    """The network run on one tile's window, giving each wanted layer's core (float32)."""

    def __init__(self, net: dict, layers: tuple[str, ...], pooling: str, grid: Grid):
        self.net, self.layers, self.pooling, self.grid = net, layers, pooling, grid
        self.strides = {name: layer_stride(name) for name in layers}

    def cores(self, window: tf.Tensor, origin: tf.Tensor, size: tf.Tensor) -> dict:
        """{layer: its core in float32, zero outside the image} of a 1xSxSx3 window whose
        top-left corner is origin (image pixels) in an image of size (height, width)."""
        features = self._extract(window, origin, size)
        grid, out = self.grid, {}
        for name, x in features.items():
            stride = self.strides[name]
            first, length = grid.halo // stride, grid.tile // stride
            core = tf.cast(x[:, first : first + length, first : first + length], tf.float32)
            inside = _valid(origin + grid.halo, size, stride, length)
            out[name] = tf.where(inside, core, 0.0)
        return out

    def _extract(self, window: tf.Tensor, origin: tf.Tensor, size: tf.Tensor) -> dict:
        """vgg.extract on a window, with every layer's activations zero outside the image."""
        wanted = set(self.layers)
        deepest = max(vgg.layer_index(name) for name in self.layers)
        out, stride = {}, 1
        x = tf.cast(window, self.net["conv1_1"][0].dtype)
        for name in vgg.LAYERS[: deepest + 1]:
            kind = name[:4]
            if kind == "conv":
                kernel, bias = self.net[name]
                x = tf.nn.bias_add(tf.nn.conv2d(x, kernel, strides=1, padding="SAME"), bias)
                # Zero outside the image: the whole image's SAME padding for the next layer
                # (a ReLU follows every convolution, so its output stays zero there).
                x = tf.where(_valid(origin, size, stride, x.shape[1]), x, tf.zeros_like(x))
            elif kind == "relu":
                x = tf.nn.relu(x)
            else:
                x = self._pool(x, origin, size, stride)
                stride *= 2
            if name in wanted:
                out[name] = x
        return out

    def _pool(self, x: tf.Tensor, origin: tf.Tensor, size: tf.Tensor, stride: int) -> tf.Tensor:
        """A 2x2 pooling as the whole image's: the window's side is even and aligned."""
        if self.pooling != "avg":
            # x >= 0 (after a ReLU) and zero outside: the same maxima as SAME's padding.
            return tf.nn.max_pool2d(x, ksize=2, strides=2, padding="VALID")
        # SAME average pooling leaves the padding out of the count: so does this.
        inside = tf.cast(_valid(origin, size, stride, x.shape[1]), x.dtype)
        total = tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="VALID")
        count = tf.nn.avg_pool2d(inside, ksize=2, strides=2, padding="VALID")
        return tf.math.divide_no_nan(total, count)


def _flat(x: tf.Tensor) -> tf.Tensor:
    """A 1xHxWxC tensor as (H*W)xC."""
    return tf.reshape(x, (-1, x.shape[-1]))


def _windows(grid: Grid, size: Size, offset: tuple[int, int]) -> list[tuple[int, int]]:
    """The top-left corners (image pixels) of the windows of the grid's cores."""
    return [(y - grid.halo, x - grid.halo) for y, x in grid.cores(size, offset)]


def _layer_shape(size: Size, stride: int) -> tuple[int, int]:
    """The height and width of a layer of this stride for an image of size."""
    return -(-size.height // stride), -(-size.width // stride)


def features(
    net: dict, image: np.ndarray, layers: tuple[str, ...], pooling: str, grid: Grid
) -> dict[str, np.ndarray]:
    """{layer: 1xhxwxC float32} of a preprocessed 1xHxWx3 image, computed tile by tile."""
    network = TileNetwork(net, layers, pooling, grid)
    run = tf.function(network.cores)
    size = Size(*image.shape[1:3])
    out = {
        name: np.zeros((1, *_layer_shape(size, stride), 0), np.float32)
        for name, stride in network.strides.items()
    }
    sizes = tf.constant(size, tf.int32)
    for y, x in _windows(grid, size, (0, 0)):
        cores = run(tf.constant(cut(image, y, x, grid.window)), tf.constant((y, x)), sizes)
        for name, core in cores.items():
            stride = network.strides[name]
            if out[name].shape[3] == 0:
                out[name] = np.zeros((*out[name].shape[:3], core.shape[3]), np.float32)
            cy, cx = (y + grid.halo) // stride, (x + grid.halo) // stride
            paste_add(out[name], core.numpy(), cy, cx)
    return out


def grams(
    net: dict, image: np.ndarray, layers: tuple[str, ...], pooling: str, grid: Grid
) -> dict[str, tf.Tensor]:
    """{layer: Gram matrix} of a preprocessed 1xHxWx3 image, summed over tiles (as gram())."""
    network = TileNetwork(net, layers, pooling, grid)
    run = tf.function(lambda *a: {n: _sum_ftf(c) for n, c in network.cores(*a).items()})
    size = Size(*image.shape[1:3])
    sums: dict[str, tf.Tensor] = {}
    sizes = tf.constant(size, tf.int32)
    for y, x in _windows(grid, size, (0, 0)):
        part = run(tf.constant(cut(image, y, x, grid.window)), tf.constant((y, x)), sizes)
        sums = {n: sums[n] + s if n in sums else s for n, s in part.items()}
    return {n: s / _positions(size, network.strides[n], s.shape[0]) for n, s in sums.items()}


def _sum_ftf(core: tf.Tensor) -> tf.Tensor:
    """F^T F of a core, in float32."""
    flat = _flat(core)
    return tf.matmul(flat, flat, transpose_a=True)


def _positions(size: Size, stride: int, channels: int) -> float:
    """The number of elements of a layer of this stride and channels, for an image of size."""
    height, width = _layer_shape(size, stride)
    return float(height * width * channels)


class TiledObjective:
    """An Objective's loss terms and gradient for one image size, computed tile by tile.

    terms(image) and terms_and_gradient(image) return what Objective's methods of those names
    return, for a 1xHxWx3 preprocessed image (tensor, variable or array) of this size.
    on_tile(done, total) is told of each tile finished.
    """

    def __init__(
        self,
        objective,  # stylize.Objective (not imported: stylize imports this module)
        net: dict,
        targets,  # stylize.Targets, its content features whole-image arrays
        grid: Grid,
        rng: np.random.Generator,
        on_tile: OnTile | None = None,
    ):
        self.objective, self.targets, self.grid, self.rng = objective, targets, grid, rng
        self.on_tile = on_tile
        self.network = TileNetwork(net, objective.layers, objective.pooling, grid)
        self.content = {name: np.asarray(p) for name, p in targets.content.items()}
        self._stats = tf.function(self._tile_stats)
        self._gradient = tf.function(self._tile_gradient)
        self._pixels = tf.function(self._pixel_terms_and_gradient)
        self.offset = (0, 0)  # the grid's offset at the last evaluation

    def _content_cores(self, y: int, x: int) -> dict[str, tf.Tensor]:
        """The content targets over the core of the window at (y, x)."""
        out = {}
        for name, target in self.content.items():
            stride = self.network.strides[name]
            top, left = (y + self.grid.halo) // stride, (x + self.grid.halo) // stride
            out[name] = tf.constant(cut(target, top, left, self.grid.tile // stride))
        return out

    def _tile_stats(self, window, origin, size, content) -> tuple[dict, dict]:
        """Pass 1 of a tile: F^T F over its core per style layer, sum((F - P)^2) per content
        layer."""
        cores = self.network.cores(window, origin, size)
        sums = {n: _sum_ftf(cores[n]) for n in self.objective.style_layers}
        squares = {n: tf.reduce_sum(tf.square(cores[n] - p)) for n, p in content.items()}
        return sums, squares

    def _tile_gradient(self, window, origin, size, content, matrices, scales) -> tf.Tensor:
        """Pass 2 of a tile: the gradient of the whole image's loss through this tile's cores.

        matrices[n] = (U + U^T) / size for the style layer n, scales[n] the content layer n's
        factor of (F - P) in dL/dF.
        """
        with tf.GradientTape() as tape:
            tape.watch(window)
            cores = self.network.cores(window, origin, size)
            parts = []
            for name, core in cores.items():
                slope = tf.zeros_like(core)
                if name in matrices:
                    slope += tf.reshape(tf.matmul(_flat(core), matrices[name]), tf.shape(core))
                if name in scales:
                    slope += scales[name] * (core - content[name])
                parts.append(tf.reduce_sum(core * tf.stop_gradient(slope)))
            surrogate = tf.add_n(parts)
        return tape.gradient(surrogate, window)

    def _pixel_terms_and_gradient(self, image: tf.Tensor, targets) -> tuple:
        """The whole image's pixel terms (tv, and a video frame's temporal) and their gradient."""
        with tf.GradientTape() as tape:
            tape.watch(image)
            terms = self.objective.pixel_terms(image, targets)
            total = tf.add_n(terms)
        return terms, tape.gradient(total, image)

    def _layout(self, image) -> tuple[np.ndarray, Size, tf.Tensor, list[tuple[int, int]]]:
        """The image as an array, its size, and the windows of this evaluation's grid."""
        array = np.asarray(image, np.float32)
        size = Size(*array.shape[1:3])
        self.offset = self.grid.random_offset(self.rng)
        return array, size, tf.constant(size, tf.int32), _windows(self.grid, size, self.offset)

    def _report(self, done: int, total: int) -> None:
        if self.on_tile is not None:
            self.on_tile(done, total)

    def _losses(self, array, size, sizes, windows, passes) -> tuple[tuple, dict, dict]:
        """Pass 1 over all tiles: the (content, style) terms, the Grams and the tape's U."""
        sums, squares = {}, {}
        for k, (y, x) in enumerate(windows):
            window = tf.constant(cut(array, y, x, self.grid.window))
            part = self._stats(window, tf.constant((y, x)), sizes, self._content_cores(y, x))
            sums = {n: sums[n] + s if n in sums else s for n, s in part[0].items()}
            squares = {n: squares[n] + s if n in squares else s for n, s in part[1].items()}
            self._report(k + 1, passes * len(windows))
        objective, targets = self.objective, self.targets
        strides = self.network.strides
        grams = {n: s / _positions(size, strides[n], s.shape[0]) for n, s in sums.items()}
        with tf.GradientTape() as tape:
            tape.watch(grams)
            style = targets.style_weight * _stylize().style_loss(
                grams, list(targets.styles), targets.blend, objective.style_layers
            )
        u = tape.gradient(style, grams)
        matrices = {n: (u[n] + tf.transpose(u[n])) / _positions(size, strides[n], g.shape[0])
                    for n, g in grams.items()}  # fmt: skip
        content, scales = [], {}
        for name, weight in objective.content_layers.items():
            elements = float(np.prod(self.content[name].shape))
            content.append(weight * squares[name] / elements)
            scales[name] = targets.content_weight * weight * 2 / elements
        return (targets.content_weight * tf.add_n(content), style), matrices, scales

    def terms(self, image) -> tuple[tf.Tensor, ...]:
        """(content, style, tv[, temporal]) of the image: pass 1 over the tiles, the whole
        image's pixel terms."""
        array, size, sizes, windows = self._layout(image)
        (content, style), _, _ = self._losses(array, size, sizes, windows, 1)
        pixels, _ = self._pixels(tf.constant(array), self.targets)
        return content, style, *pixels

    def terms_and_gradient(self, image) -> tuple[tuple[tf.Tensor, ...], tf.Tensor]:
        """The loss terms of the image and the gradient of their sum, two passes over tiles."""
        array, size, sizes, windows = self._layout(image)
        (content, style), matrices, scales = self._losses(array, size, sizes, windows, 2)
        pixels, gradient = self._pixels(tf.constant(array), self.targets)
        total = gradient.numpy()
        del gradient
        for k, (y, x) in enumerate(windows):
            window = tf.constant(cut(array, y, x, self.grid.window))
            part = self._gradient(
                window, tf.constant((y, x)), sizes, self._content_cores(y, x), matrices, scales
            )
            paste_add(total, part.numpy(), y, x)
            self._report(len(windows) + k + 1, 2 * len(windows))
        return (content, style, *pixels), tf.constant(total)


def _stylize():
    """The stylize module, where the losses are (imported late: it imports this module)."""
    if __package__:
        from . import stylize
    else:
        import stylize
    return stylize
