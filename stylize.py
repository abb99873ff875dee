"""The losses (pure functions) and the optimisation loop: a generator that never prints."""

from __future__ import annotations

import collections
import functools
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import tensorflow as tf

import hardware
import images
import memory
import settings as options
import tiles
import vgg
from images import Size
from settings import DEFAULTS, Settings

NOISE_SCALE = 0.256  # the starting noise: N(0, 1) * NOISE_SCALE in preprocessed space
# L-BFGS: the curvature pairs it keeps (SciPy's default), the most loss evaluations of one
# iteration's line search, and that search's Wolfe constants (c1, c2).
LBFGS_HISTORY = 10
LBFGS_EVALUATIONS_PER_ITERATION = 20
ARMIJO, CURVATURE = 1e-4, 0.9
# Coarse to fine: a coarser size is only used if its shorter side has this many pixels.
MIN_COARSE_SIDE = 32


@dataclass(frozen=True)
class Losses:
    """The weighted loss terms of one image."""

    content: float
    style: float
    tv: float

    @property
    def total(self) -> float:
        """content + style + tv."""
        return self.content + self.style + self.tv


@dataclass(frozen=True)
class Progress:
    """What one iteration reports: its number, the losses before its step, the best image."""

    iteration: int
    iterations: int
    losses: Losses
    image: np.ndarray | None = None  # best image so far (uint8 RGB), at checkpoints and the end
    final: bool = False
    size: Size = Size(0, 0)  # the size of the image this iteration optimised


class RunFailed(ValueError):
    """The run could not go on; carries the best image found before that (or None)."""

    def __init__(self, message: str, best: np.ndarray | None):
        super().__init__(message)
        self.best = best


class NonFiniteLoss(RunFailed):
    """The loss became NaN or infinite."""

    def __init__(self, iteration: int, best: np.ndarray | None):
        super().__init__(
            f"the loss became NaN or infinite at iteration {iteration}; "
            "try a lower --learning-rate or lower loss weights",
            best,
        )


def l2(x: tf.Tensor) -> tf.Tensor:
    """sum(x**2) / 2, as tf.nn.l2_loss."""
    return tf.reduce_sum(tf.square(x)) / 2


def _size(x: tf.Tensor) -> tf.Tensor:
    """The number of elements of x, as float32."""
    return tf.cast(tf.size(x), tf.float32)


def gram(features: tf.Tensor) -> tf.Tensor:
    """Gram matrix F^T F / (H*W*N) of a 1xHxWxN activation, in float32 whatever its dtype."""
    flat = tf.cast(tf.reshape(features, (-1, tf.shape(features)[-1])), tf.float32)
    return tf.matmul(flat, flat, transpose_a=True) / _size(features)


@tf.custom_gradient
def with_gram(features: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(features, gram(features)), for a layer whose output the network also goes on with.

    The gradient is written by hand, for memory and speed: the Gram's part, F (U + U^T) / size
    for the Gram's gradient U, is one matmul (autodiff does two), in the features' dtype, and
    it waits for the gradient from the deeper layers instead of being computed at the start of
    the backward pass and held (at relu1_1 that is a whole image of 64 channels).
    """
    shape = tf.shape(features)
    flat = tf.reshape(features, (-1, shape[-1]))
    size = _size(features)

    def gradient(upstream: tf.Tensor, upstream_gram: tf.Tensor) -> tf.Tensor:
        with tf.control_dependencies([upstream]):
            both = tf.cast((upstream_gram + tf.transpose(upstream_gram)) / size, features.dtype)
        return upstream + tf.reshape(tf.matmul(flat, both), shape)

    return (tf.identity(features), gram(features)), gradient


def content_loss(
    features: dict[str, tf.Tensor],
    targets: dict[str, tf.Tensor],
    layer_weights: dict[str, float],
) -> tf.Tensor:
    """Sum over layers of weight * 2 * l2(F - P) / P.size (without content_weight)."""
    return tf.add_n(
        [w * 2 * l2(features[n] - targets[n]) / _size(targets[n]) for n, w in layer_weights.items()]
    )


def style_loss(
    grams: dict[str, tf.Tensor],
    style_grams: list[dict[str, tf.Tensor]],
    blend: list[float] | tf.Tensor,
    layer_weights: dict[str, float],
) -> tf.Tensor:
    """Sum over styles i of blend_i * sum over layers of weight * 2 * l2(G - A) / A.size."""
    per_style = [
        tf.add_n([w * 2 * l2(grams[n] - a[n]) / _size(a[n]) for n, w in layer_weights.items()])
        for a in style_grams
    ]
    return tf.reduce_sum(tf.convert_to_tensor(blend, tf.float32) * tf.stack(per_style))


def tv_loss(image: tf.Tensor) -> tf.Tensor:
    """2 * (l2(dy) / size(dy) + l2(dx) / size(dx)) over a 1xHxWxC image."""
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    return 2 * (l2(dy) / _size(dy) + l2(dx) / _size(dx))


class Targets(NamedTuple):
    """What the losses compare an image with at one size, and the weights of the terms."""

    content: dict[str, tf.Tensor]  # the content photograph's features, per content layer
    styles: tuple[dict[str, tf.Tensor], ...]  # each style image's grams, per style layer
    blend: tf.Tensor  # one weight per style, summing to 1
    content_weight: tf.Tensor
    style_weight: tf.Tensor
    tv_weight: tf.Tensor


class AdamSettings(NamedTuple):
    """Adam's settings, as tensors (so that changing one does not retrace the step)."""

    learning_rate: tf.Tensor
    beta1: tf.Tensor
    beta2: tf.Tensor
    epsilon: tf.Tensor


class Objective:
    """The loss of an image against fixed targets; holds only static configuration."""

    def __init__(
        self, content_layers: dict[str, float], style_layers: dict[str, float], pooling: str
    ):
        self.content_layers = content_layers
        self.style_layers = style_layers
        self.pooling = pooling
        self.layers = tuple(dict.fromkeys([*content_layers, *style_layers]))

    def terms(self, image: tf.Tensor, net: dict, targets: Targets) -> tuple[tf.Tensor, ...]:
        """(content, style, tv) of a preprocessed 1xHxWx3 image."""
        grams = {}

        def hook(name: str, x: tf.Tensor) -> tf.Tensor:
            if name not in self.style_layers:
                return x
            x, grams[name] = with_gram(x)
            return x

        features = vgg.extract(net, image, self.layers, self.pooling, hook)
        # Losses in float32 whatever the precision of the network (gram() returns float32).
        content = {k: tf.cast(features[k], tf.float32) for k in self.content_layers}
        return (
            targets.content_weight * content_loss(content, targets.content, self.content_layers),
            targets.style_weight
            * style_loss(grams, list(targets.styles), targets.blend, self.style_layers),
            targets.tv_weight * tv_loss(image),
        )

    def terms_and_gradient(
        self, image: tf.Tensor, net: dict, targets: Targets
    ) -> tuple[tuple[tf.Tensor, ...], tf.Tensor]:
        """The loss terms of image and the gradient of their sum."""
        with tf.GradientTape() as tape:
            tape.watch(image)
            terms = self.terms(image, net, targets)
            total = tf.add_n(terms)
        return terms, tape.gradient(total, image)

    def adam_step(
        self, image, m, v, t, net: dict, targets: Targets, adam: AdamSettings, computed=None
    ) -> tuple[tf.Tensor, ...]:
        """One Adam step on the image variable in place; returns the loss terms before it.

        computed: the (terms, gradient) of the image found outside (tiles), else found here.
        """
        terms, grad = computed or self.terms_and_gradient(image, net, targets)
        t.assign_add(1.0)
        m.assign(adam.beta1 * m + (1 - adam.beta1) * grad)
        v.assign(adam.beta2 * v + (1 - adam.beta2) * tf.square(grad))
        # TF1's AdamOptimizer form: bias correction folded into the step size.
        step_size = adam.learning_rate * tf.sqrt(1 - adam.beta2**t) / (1 - adam.beta1**t)
        image.assign_sub(step_size * m / (tf.sqrt(v) + adam.epsilon))
        return terms


def _losses(terms: tuple[tf.Tensor, ...]) -> Losses:
    """Losses from the (content, style, tv) tensors."""
    return Losses(*(float(x) for x in terms))


class Adam:
    """Adam over the pixels of one size, its state in TensorFlow variables."""

    def __init__(
        self,
        objective: Objective,
        start: np.ndarray,
        net: dict,
        targets: Targets,
        adam: AdamSettings,
        tiled: tiles.TiledObjective | None = None,
    ):
        self.objective, self.net, self.targets, self.adam = objective, net, targets, adam
        self.tiled = tiled  # computes the terms and gradient tile by tile, if given
        self.image = tf.Variable(start)
        self.m, self.v = tf.Variable(tf.zeros(start.shape)), tf.Variable(tf.zeros(start.shape))
        self.t = tf.Variable(0.0)
        self._step = tf.function(objective.adam_step)  # one trace per size

    def step(self) -> tuple[Losses, bool]:
        """One step: the losses before it, and False (Adam can always go on)."""
        computed = None if self.tiled is None else self.tiled.terms_and_gradient(self.image)
        terms = self._step(
            self.image, self.m, self.v, self.t, self.net, self.targets, self.adam, computed
        )
        return _losses(terms), False

    def current(self) -> tuple[np.ndarray, float]:
        """The image now (preprocessed) and its total loss."""
        # Eager: called at checkpoints and a size's end only, tracing it would cost more.
        if self.tiled is None:
            terms = self.objective.terms(self.image, self.net, self.targets)
        else:
            terms = self.tiled.terms(self.image)
        return self.image.numpy(), _losses(terms).total


def lbfgs_direction(gradient: np.ndarray, pairs: Sequence[tuple]) -> np.ndarray:
    """-H gradient, H the L-BFGS inverse Hessian of the (s, y, 1 / s.y) pairs, oldest first.

    The two-loop recursion (Nocedal & Wright, Algorithm 7.4), starting from H0 = (s.y / y.y) I
    of the newest pair (their 7.20), or the identity with no pairs.
    """
    q = -gradient
    alphas = []
    for s, y, rho in reversed(pairs):
        alpha = rho * s.dot(q)
        q -= alpha * y
        alphas.append(alpha)
    if pairs:
        s, y, _ = pairs[-1]
        q *= s.dot(y) / y.dot(y)
    for (s, y, rho), alpha in zip(pairs, reversed(alphas), strict=True):
        q += (alpha - rho * y.dot(q)) * s
    return q


def _wolfe_search(
    evaluate: Callable, x: np.ndarray, loss: float, slope: float, direction: np.ndarray, step: float
) -> tuple[np.ndarray, Losses, np.ndarray] | None:
    """A point x + t * direction meeting the weak Wolfe conditions, found by doubling and
    bisecting t from step (Lewis & Overton); the last point that lowered the loss enough if
    the tries run out; None if none did."""
    low, high, found = 0.0, np.inf, None
    for _ in range(LBFGS_EVALUATIONS_PER_ITERATION if slope < 0 else 0):
        trial = x + step * direction
        losses, gradient = evaluate(trial)
        if not losses.total <= loss + ARMIJO * step * slope:  # too far (or NaN): shorter
            high = step
        else:
            found = trial, losses, gradient
            if gradient.dot(direction) >= CURVATURE * slope:
                break
            low = step  # still going down steeply: longer
        step = 2 * low if high == np.inf else (low + high) / 2
    return found


class LBFGS:
    """L-BFGS over the pixels of one size, its history kept for all of that size's iterations.

    The iterate and history are float64; TensorFlow's loss and gradient float32. Written here
    rather than SciPy's L-BFGS-B: it reached the same losses, and L-BFGS-B's own work took
    40 ms per iteration at 256x256 (a tenth of the iteration) against this one's 10.
    """

    def __init__(
        self,
        objective: Objective,
        start: np.ndarray,
        net: dict,
        targets: Targets,
        tiled: tiles.TiledObjective | None = None,
    ):
        self.shape, self.net, self.targets = start.shape, net, targets
        self._compute = tf.function(objective.terms_and_gradient)
        if tiled is not None:  # tile by tile
            self._compute = lambda image, net, targets: tiled.terms_and_gradient(image)
        self.x = start.astype(np.float64).ravel()
        self.losses, self.gradient = self.evaluate(self.x)
        self.pairs: collections.deque = collections.deque(maxlen=LBFGS_HISTORY)

    def evaluate(self, x: np.ndarray) -> tuple[Losses, np.ndarray]:
        """The losses at x and their gradient (float64, flat)."""
        image = tf.constant(x.reshape(self.shape), tf.float32)
        terms, gradient = self._compute(image, self.net, self.targets)
        return _losses(terms), gradient.numpy().astype(np.float64).ravel()

    def step(self) -> tuple[Losses, bool]:
        """One iteration: the losses before it, and whether no step lowered the loss (stalled)."""
        before = self.losses
        found = self._search()
        if found is None:
            return before, True
        trial, trial_losses, trial_gradient = found
        s, y = trial - self.x, trial_gradient - self.gradient
        if s.dot(y) > 1e-10 * y.dot(y):  # only curvature that keeps H positive definite
            self.pairs.append((s, y, 1.0 / s.dot(y)))
        self.x, self.losses, self.gradient = trial, trial_losses, trial_gradient
        return before, False

    def _search(self) -> tuple[np.ndarray, Losses, np.ndarray] | None:
        """The next iterate by a line search along the L-BFGS direction, else along -gradient."""
        while True:
            direction = lbfgs_direction(self.gradient, self.pairs)
            slope = self.gradient.dot(direction)
            if self.pairs and not slope < 0:  # not a descent direction: forget the history
                self.pairs.clear()
                continue
            # The first step has length 1 (pixels, in all), as L-BFGS-B's; later ones start at 1.
            step = 1.0 if self.pairs else 1.0 / np.sqrt(max(-slope, np.finfo(float).tiny))
            found = _wolfe_search(self.evaluate, self.x, self.losses.total, slope, direction, step)
            if found is None and self.pairs:  # the history misleads: try again along -gradient
                self.pairs.clear()
                continue
            return found

    def current(self) -> tuple[np.ndarray, float]:
        """The image now (preprocessed) and its total loss."""
        return self.x.reshape(self.shape).astype(np.float32), self.losses.total


def scale_sizes(size: Size, scales: int) -> list[Size]:
    """Up to scales sizes, coarsest first, each half the next, ending at size."""
    sizes = [size]
    while len(sizes) < scales:
        half = Size(*(max(1, round(n / 2)) for n in sizes[0]))
        if min(half) < MIN_COARSE_SIDE:
            break
        sizes.insert(0, half)
    return sizes


def split_iterations(iterations: int, count: int) -> list[int]:
    """Iterations per size, coarsest first: equal shares, the remainder to the output size."""
    return [iterations // count] * (count - 1) + [iterations - iterations // count * (count - 1)]


def _upsample(x: np.ndarray, size: Size) -> np.ndarray:
    """A 1xhxwxC array resized to 1 x size x C (unchanged if that is its size)."""
    return images.resize(x[0], *size)[None]


def check_settings(settings: Settings, style_count: int) -> None:
    """ValueError naming the first setting that stylize() cannot use."""
    if settings.iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {settings.iterations}")
    if settings.scales < 1:
        raise ValueError(f"scales must be at least 1, got {settings.scales}")
    for name, allowed in (
        ("precision", options.PRECISIONS),
        ("optimizer", options.OPTIMIZERS),
        ("pooling", vgg.POOLINGS),
    ):
        value = getattr(settings, name)
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}, got '{value}'")
    if not 0 <= settings.initial_noiseblend <= 1:
        raise ValueError(f"initial_noiseblend must be in [0, 1], got {settings.initial_noiseblend}")
    options.normalize_blend(settings.style_blend_weights, style_count)


class _Best:
    """The best image of one size so far (lowest loss) among the candidates offered."""

    def __init__(self) -> None:
        self.image: np.ndarray | None = None
        self.loss = float("inf")

    def offer(self, image: np.ndarray, loss: float) -> None:
        """Keep image if its loss is the lowest so far."""
        if loss < self.loss:
            self.image, self.loss = image, loss


class _Run:
    """One stylize() call: the problem at each size, the iteration count, the best image."""

    def __init__(
        self,
        network: vgg.Network,
        content: np.ndarray,
        styles: list[np.ndarray],
        settings: Settings,
        style_cache: dict | None,
        on_tile: tiles.OnTile | None = None,
    ):
        self.settings, self.content, self.styles = settings, content, styles
        self.on_tile = on_tile
        self.style_cache = {} if style_cache is None else style_cache
        content_layers, style_layers = options.layer_weights(settings)
        self.objective = Objective(content_layers, style_layers, settings.pooling)
        vgg.check_layers(network, list(self.objective.layers))
        self.mean = network.mean_pixel
        # The network's convolutions run in the run's precision (weights cast once, here).
        self.precision = precision = hardware.resolve_precision(settings.precision)[0]
        self.net = {
            name: (tf.constant(k, precision), tf.constant(b, precision))
            for name, (k, b) in network.weights.items()
        }
        self.output_size = Size(*content.shape[:2])
        self.sizes = scale_sizes(self.output_size, settings.scales)
        self.counts = split_iterations(settings.iterations, len(self.sizes))
        self.targets = functools.cache(self._targets)  # each size's targets are computed once
        self.grid = functools.cache(self._grid)
        self.tiled = functools.cache(self._tiled)
        self.budget = settings.max_memory or memory.available(_on_gpu())
        # The tile grid's offsets: seeded apart from the starting noise.
        self.grid_rng = np.random.default_rng(None if settings.seed is None else [settings.seed, 1])
        self.iteration, self.leftover = 0, 0
        self.best, self.start = _Best(), None

    def _features(
        self, image: np.ndarray, layers: dict[str, float], grid: tiles.Grid | None = None
    ) -> dict[str, tf.Tensor]:
        """The network's features of an RGB image at the given layers (tile by tile with a
        grid)."""
        x = vgg.preprocess(image, self.mean)[None]
        if grid is not None:
            found = tiles.features(self.net, x, tuple(layers), self.settings.pooling, grid)
            return {name: tf.constant(f) for name, f in found.items()}
        return vgg.extract(self.net, tf.constant(x), tuple(layers), self.settings.pooling)

    def _style_grams(self, style: np.ndarray, grid: tiles.Grid | None) -> dict[str, tf.Tensor]:
        """A style image's grams, from the cache when an earlier call computed them."""
        style_layers = self.objective.style_layers
        # The key holds everything the grams depend on besides the network.
        digest = hashlib.sha1(style.tobytes()).hexdigest()
        key = (digest, style.shape, tuple(style_layers), self.settings.pooling)
        key += (self.precision, grid)
        if key not in self.style_cache and grid is not None:
            x = vgg.preprocess(style, self.mean)[None]
            pooling = self.settings.pooling
            self.style_cache[key] = tiles.grams(self.net, x, tuple(style_layers), pooling, grid)
        elif key not in self.style_cache:
            features = self._features(style, style_layers)
            self.style_cache[key] = {name: gram(features[name]) for name in style_layers}
        return self.style_cache[key]

    def _style_sizes(self, size: Size) -> list[Size]:
        """The size of each style at a size of the output: scaled as the content."""
        factor = size.width / self.content.shape[1]
        return [
            Size(max(1, round(s.shape[0] * factor)), max(1, round(s.shape[1] * factor)))
            for s in self.styles
        ]

    def _grid(self, size: Size) -> tiles.Grid | None:
        """The tiles of an iteration at a size: --tile-size, else the largest that fits the
        memory budget if the whole image does not; None: the image whole."""
        settings = self.settings
        if settings.tile_size:
            return tiles.Grid(settings.tile_size)
        on_gpu, precision = _on_gpu(), self.precision
        if self.budget is None or self.budget >= memory.needed(
            size, self._style_sizes(size), on_gpu
        ):
            return None
        lbfgs = settings.optimizer == "lbfgs"
        styles = self._style_sizes(size)
        tile = memory.choose_tile(size, styles, self.budget, precision, lbfgs, on_gpu)
        return tiles.Grid(tile or memory.MIN_TILE)  # too big even so: try the smallest

    def _tiled(self, size: Size) -> tiles.TiledObjective | None:
        """The loss computed tile by tile at a size, or None if that size is not tiled."""
        grid = self.grid(size)
        if grid is None:
            return None
        objective, targets = self.objective, self.targets(size)
        return tiles.TiledObjective(objective, self.net, targets, grid, self.grid_rng, self.on_tile)

    def _targets(self, size: Size) -> Targets:
        """The targets at one size: the content resized to it, the styles scaled alike."""
        styles = [
            images.resize(s, *z) for s, z in zip(self.styles, self._style_sizes(size), strict=True)
        ]
        grid = self.grid(size)
        content = self._features(
            images.resize(self.content, *size), self.objective.content_layers, grid
        )
        settings = self.settings
        return Targets(
            content={k: tf.cast(f, tf.float32) for k, f in content.items()},
            styles=tuple(self._style_grams(style, grid) for style in styles),
            blend=tf.constant(options.normalize_blend(settings.style_blend_weights, len(styles))),
            content_weight=tf.constant(settings.content_weight, tf.float32),
            style_weight=tf.constant(settings.style_weight, tf.float32),
            tv_weight=tf.constant(settings.tv_weight, tf.float32),
        )

    def start_at(self, size: Size, initial: np.ndarray | None) -> np.ndarray:
        """The starting image at a size: noise, or initial blended with noise."""
        settings = self.settings
        noise = np.random.default_rng(settings.seed).standard_normal((1, *size, 3)) * NOISE_SCALE
        if initial is None:
            return noise.astype(np.float32)
        image = vgg.preprocess(images.resize(initial, *size), self.mean)[None]
        blend = settings.initial_noiseblend
        return ((1 - blend) * image + blend * noise).astype(np.float32)

    def optimiser(self, start: np.ndarray, size: Size) -> Adam | LBFGS:
        """A fresh optimiser at a size, from start."""
        settings = self.settings
        if settings.optimizer == "lbfgs":
            return LBFGS(self.objective, start, self.net, self.targets(size), self.tiled(size))
        adam = AdamSettings(
            *(
                tf.constant(value, tf.float32)
                for value in (
                    settings.learning_rate,
                    settings.beta1,
                    settings.beta2,
                    settings.epsilon,
                )
            )
        )
        return Adam(self.objective, start, self.net, self.targets(size), adam, self.tiled(size))

    def picture(self, x: np.ndarray | None) -> np.ndarray | None:
        """A preprocessed 1xhxwx3 array as an 8-bit RGB image at the output size."""
        if x is None:
            return None
        return images.to_uint8(vgg.unprocess(_upsample(x, self.output_size)[0], self.mean))

    def first_losses(self, initial: np.ndarray | None) -> Losses | None:
        """With several sizes, the losses of the starting image at the output size."""
        if len(self.sizes) == 1:
            return None
        start = tf.constant(self.start_at(self.output_size, initial))
        tiled = self.tiled(self.output_size)
        if tiled is not None:
            return _losses(tiled.terms(start))
        return _losses(self.objective.terms(start, self.net, self.targets(self.output_size)))

    def iterations(
        self, initial: np.ndarray | None, stop: Callable[[], bool] | None
    ) -> Iterator[Progress]:
        """Every iteration of the run, size after size, coarsest first."""
        first = self.first_losses(initial)
        for index, (size, count) in enumerate(zip(self.sizes, self.counts, strict=True)):
            count += self.leftover  # the iterations a coarser size did not use (L-BFGS stalled)
            if count == 0:
                continue
            # Coarse to fine: a size starts from the last image of the previous one, upsampled,
            # with a fresh optimiser (carrying Adam's moments over measured no better).
            if self.start is None:
                self.start = self.start_at(size, initial)
            else:
                self.start = _upsample(self.start, size)
            last = index == len(self.sizes) - 1
            yield from self.at_size(size, count, last, first, stop)
            if self.start is None:  # the run ended
                return

    def at_size(
        self, size: Size, count: int, last: bool, first: Losses | None, stop: Callable | None
    ) -> Iterator[Progress]:
        """The iterations at one size; self.start becomes the image the next size starts from,
        or None when the run ended here."""
        start, settings = self.start, self.settings
        optimiser = self.optimiser(start, size)
        # Departure from the paper, for never losing a run: the starting image is the first
        # candidate for "best" (with the loss of iteration 1), so a run that only gets worse
        # or breaks down still has an image to give back. Each size has its own best (losses
        # at different sizes do not compare); the output is the best at the output size.
        self.best = _Best()
        for k in range(1, count + 1):
            losses, stalled = optimiser.step()
            self.iteration += 1
            i = self.iteration
            if not np.isfinite(losses.total):
                raise NonFiniteLoss(i, self.picture(self.best.image))
            if k == 1:
                self.best.offer(start, losses.total)
            final = i == settings.iterations or (stop is not None and stop()) or (stalled and last)
            ends = final or stalled or k == count  # this size's last iteration
            every = settings.checkpoint_iterations
            checkpoint = bool(every) and i % every == 0
            if ends or checkpoint:
                image, loss = optimiser.current()
                self.best.offer(image, loss)
                self.start = image  # the next size starts from the last image
            shown, at = (first, self.output_size) if i == 1 and first else (losses, size)
            picture = self.picture(self.best.image) if final or checkpoint else None
            yield Progress(i, settings.iterations, shown, picture, final, at)
            if final:
                self.start = None
                return
            if ends:
                self.leftover = count - k
                return


def _on_gpu() -> bool:
    """Whether TensorFlow runs on a GPU."""
    return bool(tf.config.list_physical_devices("GPU"))


def stylize(
    network: vgg.Network,
    content: np.ndarray,
    styles: list[np.ndarray],
    settings: Settings = DEFAULTS,
    *,
    initial: np.ndarray | None = None,
    stop: Callable[[], bool] | None = None,
    style_cache: dict | None = None,
    on_tile: tiles.OnTile | None = None,
) -> Iterator[Progress]:
    """Optimise an image towards content's features and styles' grams; yield each iteration.

    content, styles and initial are RGB arrays (0-255) at the sizes to use. stop() is asked at
    each iteration whether to end there. style_cache, if given, keeps the style grams between
    calls that use the same network (the caller keeps one per network), so a batch computes
    each style image's targets once. on_tile(done, total), if given, is told of each tile of
    an iteration computed tile by tile (one that does not fit in memory whole).
    """
    check_settings(settings, len(styles))
    run = _Run(network, content, styles, settings, style_cache, on_tile)
    del network  # the caller may then free the float32 weights (bfloat16 keeps its cast)
    try:
        yield from run.iterations(initial, stop)
    except tf.errors.ResourceExhaustedError:
        # TensorFlow could not allocate: end like a broken-down run, keeping the best image
        # (at a size's first step, the one it started from: the previous size's last).
        kept = run.start if run.best.image is None else run.best.image
        raise RunFailed(
            f"out of memory after {run.iteration} iterations; try a smaller --width or"
            " --max-memory, or --precision bfloat16",
            run.picture(kept),
        ) from None
