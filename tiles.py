"""Iterations computed tile by tile, for pictures whose untiled iteration exceeds the memory.

Each axis of the image is cut into cores (their edges multiples of memory.TILE_ALIGN pixels in
the whole image's coordinates, so that every layer's positions split cleanly between cores);
each core is seen through a window of one fixed shape that holds it and a halo of context
around it. Windows lie inside the image and start at multiples of TILE_ALIGN, so every
window's poolings line up with the whole image's and its borders on the image's edges are
the whole image's: no position outside the image is ever computed. Each feature position
belongs to exactly one core, so:

1. a forward pass per window sums F^T F over its core at each style layer, and the content
   term over its core; together they are the whole image's Grams and content loss;
2. the whole image's losses, and U = dL/dG, follow from those sums;
3. a pass per window with a tape takes the gradient of sum(F_core * dL/dF_core), with
   dL/dF = F (U + U^T) / size for style and the content term's own; the windows' gradients
   (halo pixels included) are added up into the image's gradient.

The last window skips step 1: its forward pass with a tape adds its own sums to the other
windows', and the gradient of the losses of those sums is its part of the whole gradient.

The total variation term (and a video frame's temporal term) and its gradient are the whole
image's, computed band by band of rows. The cores' edges move at random at each evaluation, so
no seam stays in one place.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

if __package__:  # installed as a package
    from . import memory, vgg
    from .images import Size
else:  # a checkout: the modules side by side
    import memory
    import vgg
    from images import Size
if TYPE_CHECKING:  # for the hints only: stylize imports this module
    if __package__:
        from .stylize import Objective, Targets
    else:
        from stylize import Objective, Targets

ALIGN = memory.TILE_ALIGN
# Units of ALIGN pixels that the cores of an axis may shift by between evaluations, at least:
# windows are made that much larger than the fewest pixels that would cover the axis.
JITTER = 3

# Rows of the image per band of the pixel terms: at once, those of a 3840x2160 image and their
# gradient took 950 MB beyond the image, band by band 150 (bench/README.md).
PIXEL_BAND = 256

OnTile = Callable[[int, int], None]  # told (tiles done, tiles in all) as an iteration goes
# A window's top-left corner (image pixels) and its core's (top, left, bottom, right) in it.
Cut = tuple[tuple[int, int], tuple[int, int, int, int]]


def layer_stride(name: str) -> int:
    """How many image pixels one position of layer name spans: 2 ** (poolings before it)."""
    index = vgg.layer_index(name)
    return 2 ** sum(1 for n in vgg.LAYERS[:index] if n.startswith("pool"))


@dataclass(frozen=True)
class Axis:
    """One axis of length pixels seen through count windows of window pixels each."""

    length: int
    count: int
    window: int
    halo: int

    @staticmethod
    def split(length: int, count: int, halo: int) -> Axis | None:
        """The smallest windows that cut length into count cores with JITTER units to spare;
        None if count windows would not be shorter than the axis, or count cores of a unit
        or more would not fit in it."""
        if count == 1:
            return Axis(length, 1, length, halo)
        units, rest, halo_units = length // ALIGN, length % ALIGN, halo // ALIGN
        # The cores' capacity in units: the two end ones window - halo, the others window -
        # 2 halo (rest: the last core takes the pixels after the last whole unit too).
        per = -(-(units + JITTER + 2 * halo_units * (count - 1)) // count)
        if per >= units or per <= 2 * halo_units or count > units:
            return None
        return Axis(length, count, rest + ALIGN * per, halo)

    def capacities(self) -> list[int]:
        """Each core's largest length in units (the last core has length % ALIGN more)."""
        end = (self.window - self.halo) // ALIGN
        return [end, *[(self.window - 2 * self.halo) // ALIGN] * (self.count - 2), end]

    def cuts(self, rng: np.random.Generator | None) -> list[tuple[int, int, int]]:
        """(window start, core start, core end) of each window: core edges drawn by rng, or
        in the middle of their ranges without one."""
        if self.count == 1:
            return [(0, 0, self.length)]
        units, caps = self.length // ALIGN, self.capacities()
        edges = [0]
        for i in range(self.count - 1):
            low = max(edges[-1] + 1, units - sum(caps[i + 1 :]))
            high = min(edges[-1] + caps[i], units - (self.count - 1 - i))
            edges.append(int(rng.integers(low, high + 1)) if rng else (low + high) // 2)
        pixels = [ALIGN * e for e in edges] + [self.length]
        last = self.length - self.window
        return [
            (min(max(start - self.halo, 0), last), start, end)
            for start, end in itertools.pairwise(pixels)
        ]


@dataclass(frozen=True)
class Grid:
    """An image cut into windows of one shape, each holding one core and its context."""

    rows: Axis
    columns: Axis

    @property
    def window(self) -> Size:
        """The shape of every window."""
        return Size(self.rows.window, self.columns.window)

    @property
    def size(self) -> Size:
        """The size of the image cut."""
        return Size(self.rows.length, self.columns.length)

    @property
    def count(self) -> int:
        """How many windows an evaluation runs."""
        return self.rows.count * self.columns.count

    def work(self) -> float:
        """Window pixels run through the network per image pixel."""
        window = self.window
        return self.count * window.height * window.width / (self.rows.length * self.columns.length)

    def fitted(self, size: Size) -> Grid:
        """This grid, or for an image of another size one whose windows are no larger."""
        if size == self.size:
            return self
        window = self.window
        return plan(size, window.height * window.width, max(window), self.rows.halo)

    def cuts(self, rng: np.random.Generator | None = None) -> list[Cut]:
        """Every window's corner and core (window coordinates), core edges drawn by rng."""
        return [
            ((y, x), (top - y, left - x, bottom - y, right - x))
            for (y, top, bottom), (x, left, right) in itertools.product(
                self.rows.cuts(rng), self.columns.cuts(rng)
            )
        ]


def plan(
    size: Size,
    max_area: int | None = None,
    max_side: int | None = None,
    halo: int = memory.TILE_HALO,
) -> Grid:
    """The grid of least work (then fewest windows) whose windows have at most max_area
    pixels and sides of at most max_side; the whole image in one window if none has."""
    if halo < 0 or halo % ALIGN:
        raise ValueError(f"the halo must be a multiple of {ALIGN} pixels, got {halo}")

    def axes(length: int) -> list[Axis]:
        found = (Axis.split(length, count, halo) for count in range(1, length // ALIGN + 2))
        return [a for a in found if a and (max_side is None or a.window <= max_side)]

    grids = [
        Grid(rows, columns)
        for rows, columns in itertools.product(axes(size.height), axes(size.width))
        if max_area is None or rows.window * columns.window <= max_area
    ]
    if not grids:
        return Grid(Axis(size.height, 1, size.height, halo), Axis(size.width, 1, size.width, halo))
    return min(grids, key=lambda grid: (round(grid.work(), 3), grid.count))


def for_budget(
    size: Size, styles: list[Size], budget: int, precision: str, lbfgs: bool, on_gpu: bool
) -> Grid | None:
    """The grid of least work whose run fits in budget bytes, if the whole image's does not
    (None if it does); the smallest windows if none fits."""
    if budget >= memory.needed(size, styles, on_gpu):
        return None
    area = memory.window_area(size, styles, budget, precision, lbfgs, on_gpu)
    return plan(size, max_area=area or memory.tile_window(memory.MIN_TILE))


def _window_cores(
    net: vgg.Weights, layers: tuple[str, ...], pooling: str, window: tf.Tensor, core: tf.Tensor
) -> dict[str, tf.Tensor]:
    """{layer: its features in float32, zero outside the core} of a window (see _in_core)."""
    found = vgg.extract(net, window, layers, pooling)
    return {name: tf.cast(x, tf.float32) * _in_core(x, core, name) for name, x in found.items()}


def _in_core(x: tf.Tensor, core: tf.Tensor, layer: str) -> tf.Tensor:
    """1 at the positions of a window's layer that are in the core, else 0 (1xhxwx1).

    core is (top, left, bottom, right) in window pixels, multiples of every layer's stride
    but where it meets the image's edge (which the window shares, so rounding up keeps the
    image's last positions). A mask, not a slice: a slice's shape changes with the core, and
    computing on unknown shapes made a window's gradient pass 25% slower (1088x1152 window,
    bfloat16).
    """
    top, left, bottom, right = _positions_of(core, layer_stride(layer))
    rows, columns = tf.range(x.shape[1]), tf.range(x.shape[2])
    inside = ((rows >= top) & (rows < bottom))[:, None] & ((columns >= left) & (columns < right))
    return tf.cast(inside, tf.float32)[None, :, :, None]


def _positions_of(core, stride: int) -> tuple:
    """The core's (top, left, bottom, right) in positions of a layer of this stride."""
    return core[0] // stride, core[1] // stride, -(-core[2] // stride), -(-core[3] // stride)


def _flat(x: tf.Tensor) -> tf.Tensor:
    """A 1xHxWxC tensor as (H*W)xC."""
    return tf.reshape(x, (-1, x.shape[-1]))


def ftf(features: tf.Tensor) -> tf.Tensor:
    """F^T F of a 1xHxWxC activation (or a core of one), CxC in its dtype."""
    flat = _flat(features)
    return tf.matmul(flat, flat, transpose_a=True)


def _layer_shape(size: Size, stride: int) -> tuple[int, int]:
    """The height and width of a layer of this stride for an image of size."""
    return -(-size.height // stride), -(-size.width // stride)


def _elements(size: Size, stride: int, channels: int) -> float:
    """The number of elements of a layer of this stride and channels, for an image of size."""
    height, width = _layer_shape(size, stride)
    return float(height * width * channels)


def _grams_from_sums(sums: dict, size: Size) -> dict:
    """The Gram matrices of an image of size from its tiles' sums of F^T F."""
    return {n: s / _elements(size, layer_stride(n), s.shape[0]) for n, s in sums.items()}


def _window(array: np.ndarray, corner: tuple[int, int], shape: Size) -> tf.Tensor:
    """The window of shape at corner of a 1xHxWxC array, as a tensor."""
    y, x = corner
    return tf.constant(array[:, y : y + shape.height, x : x + shape.width])


def _window_sums(
    net: vgg.Weights, layers: tuple[str, ...], pooling: str, window: tf.Tensor, core: tf.Tensor
) -> dict[str, tf.Tensor]:
    """{layer: F^T F over the core} of a window."""
    return {name: ftf(x) for name, x in _window_cores(net, layers, pooling, window, core).items()}


# Compiled once for the process, traced once per window shape, layers and pooling: a tiled
# video's frames each take their content targets through them.
_compiled_cores = vgg.compiled(_window_cores)
_compiled_sums = vgg.compiled(_window_sums)


def features(
    net: vgg.Weights, image: np.ndarray, layers: tuple[str, ...], pooling: str, grid: Grid
) -> dict[str, np.ndarray]:
    """{layer: 1xhxwxC float32} of a preprocessed 1xHxWx3 image, computed tile by tile."""
    size, out = Size(*image.shape[1:3]), {}
    grid = grid.fitted(size)
    for (y, x), core in grid.cuts():
        window = _window(image, (y, x), grid.window)
        for name, found in _compiled_cores(net, layers, pooling, window, tf.constant(core)).items():
            stride = layer_stride(name)
            if name not in out:
                out[name] = np.zeros((1, *_layer_shape(size, stride), found.shape[3]), np.float32)
            top, left, bottom, right = _positions_of(core, stride)
            part = found.numpy()[:, top:bottom, left:right]
            top, left = top + y // stride, left + x // stride
            out[name][:, top : top + part.shape[1], left : left + part.shape[2]] = part
    return out


def grams(
    net: vgg.Weights, image: np.ndarray, layers: tuple[str, ...], pooling: str, grid: Grid
) -> dict[str, tf.Tensor]:
    """{layer: Gram matrix} of a preprocessed 1xHxWx3 image, summed over tiles (as gram())."""
    size, sums = Size(*image.shape[1:3]), {}
    grid = grid.fitted(size)
    for corner, core in grid.cuts():
        window = _window(image, corner, grid.window)
        sums = _add(sums, _compiled_sums(net, layers, pooling, window, tf.constant(core)))
    return _grams_from_sums(sums, size)


class TiledObjective:
    """An Objective's loss terms and gradient for one image size, computed tile by tile.

    terms(image) and terms_and_gradient(image) return what Objective's methods of those names
    return, for a 1xHxWx3 preprocessed image (tensor, variable or array) of this size.
    rng() gives the random source of an evaluation's tile edges; on_tile(done, total) is told
    of each tile finished.
    """

    def __init__(
        self,
        objective: Objective,
        net: vgg.Weights,
        targets: Targets,  # its content features whole-image arrays
        grid: Grid,
        rng: Callable[[], np.random.Generator],
        on_tile: OnTile | None = None,
    ):
        self.objective, self.targets, self.grid, self.rng = objective, targets, grid, rng
        self.net, self.on_tile = net, on_tile
        self.content = {name: np.asarray(p) for name, p in targets.content.items()}
        self.elements = {name: float(p.size) for name, p in self.content.items()}
        self._stats = vgg.compiled(self._window_stats)
        self._gradient = vgg.compiled(self._window_gradient)
        self._last = vgg.compiled(self._last_window)
        self._band = vgg.compiled(self._pixel_band)
        self.pixel_weights = self._pixel_weights()
        self.last_cuts: list[Cut] = []  # the windows and cores of the last evaluation

    def _cores(self, window: tf.Tensor, core: tf.Tensor) -> dict[str, tf.Tensor]:
        """{layer: its core's positions, float32} of a window, at the objective's layers."""
        objective = self.objective
        return _window_cores(self.net, objective.layers, objective.pooling, window, core)

    def _content(self, corner: tuple[int, int]) -> dict[str, tf.Tensor]:
        """The content targets over the window at corner."""
        out = {}
        for name, target in self.content.items():
            stride = layer_stride(name)
            height, width = _layer_shape(self.grid.window, stride)
            top, left = corner[0] // stride, corner[1] // stride
            out[name] = tf.constant(target[:, top : top + height, left : left + width])
        return out

    def _window_stats(self, window, core, content) -> tuple[dict, dict]:
        """The forward pass of a window: F^T F over its core per style layer, and
        sum((F - P)^2) over it per content layer."""
        cores = self._cores(window, core)
        sums = {n: ftf(cores[n]) for n in self.objective.style_layers}
        squares = {
            n: tf.reduce_sum(tf.square(cores[n] - p * _in_core(p, core, n)))
            for n, p in content.items()
        }
        return sums, squares

    def _window_gradient(self, window, core, content, matrices, scales) -> tf.Tensor:
        """A window's part of the image's gradient.

        matrices[n] = (U + U^T) / size for the style layer n, scales[n] the content layer n's
        factor of (F - P) in dL/dF.
        """
        with tf.GradientTape() as tape:
            tape.watch(window)
            cores = self._cores(window, core)
            parts = []
            for name, x in cores.items():
                slope = tf.zeros_like(x)
                if name in matrices:
                    slope += tf.reshape(tf.matmul(_flat(x), matrices[name]), tf.shape(x))
                if name in scales:
                    target = content[name] * _in_core(content[name], core, name)
                    slope += scales[name] * (x - target)
                parts.append(tf.reduce_sum(x * tf.stop_gradient(slope)))
            surrogate = tf.add_n(parts)
        return tape.gradient(surrogate, window)

    def _pixel_weights(self) -> tf.Tensor:
        """The factors of the pixel terms' sums: each term's weight over its count (tv's
        vertical and horizontal differences, a video frame's temporal elements)."""
        (height, width), targets = self.grid.size, self.targets
        temporal = 0.0 if targets.temporal is None else targets.temporal.weight
        counts = ((height - 1) * width * 3, height * (width - 1) * 3, height * width * 3)
        weights = (targets.tv_weight, targets.tv_weight, temporal)
        return tf.stack([tf.cast(w, tf.float32) / n for w, n in zip(weights, counts, strict=True)])

    def _pixel_band(self, band, rows: int, weights, temporal) -> tuple:
        """A band's part of the pixel terms (as Objective.pixel_terms) and of their gradient.

        band holds its own rows and, but at the image's bottom, the next row (for its last
        vertical differences); temporal is None or the band's (warped image, mask).
        """
        with tf.GradientTape() as tape:
            tape.watch(band)
            dy, dx = _stylize().differences(band, rows)
            terms = [weights[0] * tf.reduce_sum(dy**2) + weights[1] * tf.reduce_sum(dx**2)]
            if temporal is not None:
                warped, mask = temporal
                terms.append(weights[2] * _stylize().temporal_sum(band[:, :rows], warped, mask))
            total = tf.add_n(terms)
        return terms, tape.gradient(total, band)

    def _pixel_pass(self, array: np.ndarray) -> tuple[list[tf.Tensor], np.ndarray]:
        """The whole image's pixel terms (tv, and a video frame's temporal) and their
        gradient, band by band of rows (at once, their differences would take several
        images' memory)."""
        height, temporal = array.shape[1], self.targets.temporal
        terms, gradient = [], np.zeros_like(array)
        for top in range(0, height, PIXEL_BAND):
            rows = min(PIXEL_BAND, height - top)
            band = tf.constant(array[:, top : top + rows + 1])
            frame = None  # a video frame's temporal target over the band's own rows
            if temporal is not None:
                frame = (temporal.image[:, top : top + rows], temporal.mask[:, top : top + rows])
            part, slope = self._band(band, rows, self.pixel_weights, frame)
            terms = [a + b for a, b in zip(terms, part, strict=True)] if terms else part
            gradient[:, top : top + band.shape[1]] += slope.numpy()
        return terms, gradient

    def _report(self, done: int, total: int) -> None:
        if self.on_tile is not None:
            self.on_tile(done, total)

    def _cut(self, image: tf.Tensor | np.ndarray) -> np.ndarray:
        """The image as an array; draws this evaluation's cores (last_cuts)."""
        self.last_cuts = self.grid.cuts(self.rng())
        return np.asarray(image, np.float32)

    def _inputs(self, array: np.ndarray, cut: Cut) -> tuple[tf.Tensor, tf.Tensor, dict]:
        """A window's pixels, its core and its content targets, as tensors (made one window
        at a time: together they would hold the image again)."""
        corner, core = cut
        return _window(array, corner, self.grid.window), tf.constant(core), self._content(corner)

    def _style(self, grams: dict) -> tf.Tensor:
        """The weighted style term of Gram matrices."""
        objective, targets = self.objective, self.targets
        return targets.style_weight * _stylize().style_loss(
            grams, list(targets.styles), targets.blend, objective.style_layers
        )

    def _terms(self, sums: dict, squares: dict) -> tuple[tf.Tensor, tf.Tensor]:
        """The (content, style) terms from the cores' sums."""
        content = [
            weight * squares[name] / self.elements[name]
            for name, weight in self.objective.content_layers.items()
        ]
        style = self._style(_grams_from_sums(sums, self.grid.size))
        return self.targets.content_weight * tf.add_n(content), style

    def _slopes(self, sums: dict) -> tuple[dict, dict]:
        """What a window's gradient pass needs: (U + U^T) / size per style layer (U = dL/dG),
        and each content layer's factor of (F - P) in dL/dF."""
        grams = _grams_from_sums(sums, self.grid.size)
        with tf.GradientTape() as tape:
            tape.watch(grams)
            style = self._style(grams)
        u = tape.gradient(style, grams)
        size = self.grid.size
        matrices = {
            n: (u[n] + tf.transpose(u[n])) / _elements(size, layer_stride(n), g.shape[0])
            for n, g in grams.items()
        }
        scales = {
            name: self.targets.content_weight * weight * 2 / self.elements[name]
            for name, weight in self.objective.content_layers.items()
        }
        return matrices, scales

    def _last_window(self, window, core, content, sums, squares) -> tuple:
        """The last window in one pass: the image's terms from its cores' sums and the other
        windows' (given), its part of their gradient, and the other windows' slopes."""
        with tf.GradientTape() as tape:
            tape.watch(window)
            own = self._window_stats(window, core, content)
            sums, squares = _add(sums, own[0]), _add(squares, own[1])
            terms = self._terms(sums, squares)
            total = tf.add_n(terms)
        gradient = tape.gradient(total, window)
        return terms, self._slopes({n: tf.stop_gradient(s) for n, s in sums.items()}), gradient

    def _stats_pass(self, array: np.ndarray, cuts: list[Cut], total: int) -> tuple[dict, dict]:
        """The forward pass over the windows of cuts: their cores' sums (_window_stats)."""
        sums, squares = {}, {}
        for k, cut in enumerate(cuts):
            part = self._stats(*self._inputs(array, cut))
            sums, squares = _add(sums, part[0]), _add(squares, part[1])
            self._report(k + 1, total)
        return sums, squares

    def terms(self, image: tf.Tensor | np.ndarray) -> tuple[tf.Tensor, ...]:
        """(content, style, tv[, temporal]) of the image: a forward pass over the windows,
        the whole image's pixel terms."""
        array = self._cut(image)
        sums, squares = self._stats_pass(array, self.last_cuts, len(self.last_cuts))
        pixels, _ = self._pixel_pass(array)
        return *self._terms(sums, squares), *pixels

    def terms_and_gradient(
        self, image: tf.Tensor | np.ndarray
    ) -> tuple[tuple[tf.Tensor, ...], tf.Tensor]:
        """The loss terms of the image and the gradient of their sum: a forward pass over all
        windows but the last, the last one's forward and backward (which completes the Gram
        matrices), then the others' forward and backward again."""
        array = self._cut(image)
        *others, last = self.last_cuts
        count = 2 * len(others) + 1
        sums, squares = self._stats_pass(array, others, count)
        terms, slopes, part = self._last(*self._inputs(array, last), sums, squares)
        self._report(len(others) + 1, count)
        pixels, total = self._pixel_pass(array)
        for k, cut in enumerate([last, *others]):
            if k:
                part = self._gradient(*self._inputs(array, cut), *slopes)
                self._report(len(others) + 1 + k, count)
            (y, x), _ = cut
            total[:, y : y + part.shape[1], x : x + part.shape[2]] += part.numpy()
        return (*terms, *pixels), tf.constant(total)


def _add(sums: dict, part: dict) -> dict:
    """sums with each of part's tensors added to its own (or taken, if new)."""
    return {n: sums[n] + s if n in sums else s for n, s in part.items()}


def _stylize():
    """The stylize module, where the losses are (imported late: it imports this module)."""
    if __package__:
        from . import stylize
    else:
        import stylize
    return stylize
