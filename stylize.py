"""The losses (pure functions) and the optimisation loop: a generator that never prints."""

from __future__ import annotations

import collections
import copy
import functools
import hashlib
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import tensorflow as tf

if __package__:  # installed: the modules are the package neural_style_tf2
    from . import hardware, images, memory, tiles, vgg
    from . import settings as options
    from .images import Size
    from .settings import DEFAULTS, Settings
else:  # a checkout: the modules side by side
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
# The style images' grams a cache shared by a batch's jobs or a video's frames keeps, the
# latest used: a job with 3 sizes and 4 styles needs 12.
GRAMS_KEPT = 32


@dataclass(frozen=True)
class Losses:
    """The weighted loss terms of one image."""

    content: float
    style: float
    tv: float
    temporal: float | None = None  # a video frame's temporal term (None for a still image)

    @property
    def total(self) -> float:
        """content + style + tv (+ temporal)."""
        return self.content + self.style + self.tv + (self.temporal or 0.0)


@dataclass(frozen=True)
class Progress:
    """What one iteration reports: its number, the losses before its step, the best image."""

    iteration: int
    iterations: int
    losses: Losses
    image: np.ndarray | None = None  # best image so far (uint8 RGB), at checkpoints and the end
    final: bool = False
    size: Size = Size(0, 0)  # the size of the image this iteration optimised
    # The run's state after this iteration, to resume from (call it before the next one).
    snapshot: Callable[[], RunState] | None = None


@dataclass(frozen=True)
class RunState:
    """Where a run is after an iteration, in plain values: stylize(resume=...) goes on from it
    exactly (the same iterations, losses and best image as a run that never stopped)."""

    iteration: int  # iterations done
    size_index: int  # the size being optimised (coarsest 0)
    done: int  # iterations done at that size
    count: int  # that size's iterations (with any a coarser size left over)
    ended: bool  # that size is over (its last iteration, or L-BFGS stalled)
    start: np.ndarray  # preprocessed: the image the next size starts from, once ended
    best_image: np.ndarray | None  # the size's best image so far (preprocessed) and its loss
    best_loss: float
    losses: tuple[float, float, float]  # content, style, tv of the last iteration
    optimiser: dict[str, np.ndarray]  # Adam.state() or LBFGS.state()
    noise_seed: int  # the seed of the starting noise
    cuts_drawn: int  # tile edges drawn so far (0 for a run not in tiles)
    budget: int | None = None  # the memory (bytes) its tiles were planned for; None: unknown


class RunFailed(ValueError):
    """The run could not go on; carries the best image found before that (or None, and why)."""

    def __init__(
        self, message: str, best: np.ndarray | None, why_none: str = "there was no good one yet"
    ):
        super().__init__(message)
        self.best, self.why_none = best, why_none


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
    """Gram matrix F^T F / (H*W*N) of a 1xHxWxN activation, as float32 whatever its dtype."""
    # The product in the features' dtype: bfloat16 features are multiplied and summed in
    # float32 by oneDNN and cuBLAS alike, only the result is rounded to bfloat16. Against a
    # product in float32 (casting the features first) the default run took 3% less time at
    # 256x192 and its file's loss moved by -0.07% on average (bench/README.md).
    return tf.cast(tiles.ftf(features), tf.float32) / _size(features)


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


def differences(image: tf.Tensor, rows: int | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """(dy, dx) of a 1xHxWxC image: vertical neighbours' differences over all of it,
    horizontal ones over its first rows (all by default; a band of a larger image holds the
    row after its own for its last vertical differences)."""

    # The gradient is written by hand: autodiff's gradient of the slices (StridedSliceGrad)
    # made the total variation with its gradient take 10.8 ms at 512x384, this 1.5 ms.
    @tf.custom_gradient
    def cut(x: tf.Tensor) -> tuple[tuple[tf.Tensor, tf.Tensor], Callable]:
        own = x if rows is None else x[:, :rows]

        def gradient(upstream_dy: tf.Tensor, upstream_dx: tf.Tensor) -> tf.Tensor:
            row, column = tf.zeros_like(x[:, :1]), tf.zeros_like(own[:, :, :1])
            vertical = tf.concat([-upstream_dy, row], 1) + tf.concat([row, upstream_dy], 1)
            horizontal = tf.concat([-upstream_dx, column], 2) + tf.concat([column, upstream_dx], 2)
            if rows is not None:  # the rows after the band's own have no horizontal part
                horizontal = tf.concat([horizontal, tf.zeros_like(x[:, rows:])], 1)
            return vertical + horizontal

        return (x[:, 1:] - x[:, :-1], own[:, :, 1:] - own[:, :, :-1]), gradient

    return cut(image)


def tv_loss(image: tf.Tensor) -> tf.Tensor:
    """2 * (l2(dy) / size(dy) + l2(dx) / size(dx)) over a 1xHxWxC image."""
    dy, dx = differences(image)
    return 2 * (l2(dy) / _size(dy) + l2(dx) / _size(dx))


def temporal_sum(image: tf.Tensor, warped: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """sum(mask * (image - warped)**2) over all pixels and channels."""
    return tf.reduce_sum(mask * tf.square(image - warped))


def temporal_loss(image: tf.Tensor, warped: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """mean(mask * (image - warped)**2) over all pixels and channels (without the weight)."""
    return temporal_sum(image, warped, mask) / _size(image)


class Temporal(NamedTuple):
    """A video frame's temporal target (Ruder et al. 2016): the previous frame's output warped
    onto this frame, where that warp can be trusted (mask), and the term's weight.

    stylize() takes it as arrays at the output size (image RGB 0-255, HxWx3; mask HxW in
    [0, 1]); Targets hold it as tensors at one size (image preprocessed, mask 1xHxWx1).
    """

    image: np.ndarray | tf.Tensor
    mask: np.ndarray | tf.Tensor
    weight: float | tf.Tensor


class Targets(NamedTuple):
    """What the losses compare an image with at one size, and the weights of the terms."""

    content: dict[str, tf.Tensor]  # the content photograph's features, per content layer
    styles: tuple[dict[str, tf.Tensor], ...]  # each style image's grams, per style layer
    blend: tf.Tensor  # one weight per style, summing to 1
    temporal: Temporal | None  # a video frame's temporal target, or None (a 4th loss term)
    content_weight: tf.Tensor
    style_weight: tf.Tensor
    tv_weight: tf.Tensor
    pixel_min: tf.Tensor  # the preprocessed values of RGB 0 and 255: the image stays between
    pixel_max: tf.Tensor


class AdamSettings(NamedTuple):
    """Adam's settings, as tensors (so that changing one does not retrace the step)."""

    learning_rate: tf.Tensor
    beta1: tf.Tensor
    beta2: tf.Tensor
    epsilon: tf.Tensor
    average_decay: tf.Tensor
    warmup: tf.Tensor


class AdamState(NamedTuple):
    """Adam's variables: the image, the moments, the step count, the iterates' moving average."""

    image: tf.Variable
    m: tf.Variable
    v: tf.Variable
    t: tf.Variable
    average: tf.Variable


class Objective:
    """The loss of an image against fixed targets; holds only static configuration."""

    def __init__(
        self, content_layers: dict[str, float], style_layers: dict[str, float], pooling: str
    ):
        self.content_layers = content_layers
        self.style_layers = style_layers
        self.pooling = pooling
        self.layers = tuple(dict.fromkeys([*content_layers, *style_layers]))
        # Traced once for every size of a run: what changes with the size reaches it as
        # variables of open height and width (vgg.any_size). A trace per size would cost the
        # first step at 128x96 and 256x192 of a default run about 0.3 s more each.
        self.compiled_adam_step = vgg.compiled(self.adam_step)
        # L-BFGS's evaluations and the rounding by the loss. Eager, the rounding's gradients
        # at 1024x1024 took 7 s more and 1.2 GB more memory than the run without them.
        self.compiled_terms_and_gradient = vgg.compiled(self.terms_and_gradient)

    def terms(self, image: tf.Tensor, net: vgg.Weights, targets: Targets) -> tuple[tf.Tensor, ...]:
        """(content, style, tv) of a preprocessed 1xHxWx3 image, and temporal for a video frame
        with a temporal target."""
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
            *self.pixel_terms(image, targets),
        )

    @staticmethod
    def pixel_terms(image: tf.Tensor, targets: Targets) -> tuple[tf.Tensor, ...]:
        """The terms of the image's pixels, not its features: (tv,) for a still image, and
        (tv, temporal) for a video frame."""
        tv = targets.tv_weight * tv_loss(image)
        if targets.temporal is None:
            return (tv,)
        warped, mask, weight = targets.temporal
        return tv, weight * temporal_loss(image, warped, mask)

    def terms_and_gradient(
        self, image: tf.Tensor, net: vgg.Weights, targets: Targets
    ) -> tuple[tuple[tf.Tensor, ...], tf.Tensor]:
        """The loss terms of image and the gradient of their sum."""
        with tf.GradientTape() as tape:
            tape.watch(image)
            terms = self.terms(image, net, targets)
            total = tf.add_n(terms)
        return terms, tape.gradient(total, image)

    def adam_step(
        self,
        state: AdamState,
        net: vgg.Weights,
        targets: Targets,
        adam: AdamSettings,
        computed: tuple | None = None,
    ) -> tuple[tf.Tensor, ...]:
        """One Adam step on the state's variables in place; returns the loss terms before it.

        computed: the (terms, gradient) of the image found outside (tiles), else found here.
        """
        image, m, v, t = state.image, state.m, state.v, state.t
        terms, grad = computed or self.terms_and_gradient(image, net, targets)
        t.assign_add(1.0)
        m.assign(adam.beta1 * m + (1 - adam.beta1) * grad)
        v.assign(adam.beta2 * v + (1 - adam.beta2) * tf.square(grad))
        # Departure from the paper: the step grows linearly over the first `warmup` steps.
        # Adam's first steps move every pixel by a full step whatever its gradient: from an
        # image upsampled from a coarser size, that noise tripled the loss, which took about 30
        # steps to come back. The ramp is 1 from the first step when warmup is 0 or 1.
        ramp = tf.minimum(1.0, t / tf.maximum(adam.warmup, 1.0))
        # TF1's AdamOptimizer form: bias correction folded into the step size.
        step_size = adam.learning_rate * ramp * tf.sqrt(1 - adam.beta2**t) / (1 - adam.beta1**t)
        moved = image - step_size * m / (tf.sqrt(v) + adam.epsilon)
        # Departure from the paper: projected onto the displayable range, so that the loss
        # printed is that of the file written (which is clipped to 0-255 and rounded).
        image.assign(tf.clip_by_value(moved, targets.pixel_min, targets.pixel_max))
        # Departure too: a constant step leaves the iterates noisy around the minimum; their
        # moving average (bias-corrected when read) is smoother and lower.
        decay = adam.average_decay
        state.average.assign(decay * state.average + (1 - decay) * image)
        return terms


def _losses(terms: tuple[tf.Tensor, ...]) -> Losses:
    """Losses from the (content, style, tv[, temporal]) tensors."""
    return Losses(*(float(x) for x in terms))


class Adam:
    """Adam over the pixels of one size, its state in TensorFlow variables."""

    def __init__(
        self,
        objective: Objective,
        start: np.ndarray,
        net: vgg.Weights,
        targets: Targets,
        adam: AdamSettings,
        tiled: tiles.TiledObjective | None = None,
    ):
        self.objective, self.net, self.targets, self.adam = objective, net, targets, adam
        self.tiled = tiled  # computes the terms and gradient tile by tile, if given
        zeros = np.zeros(start.shape, np.float32)
        image, m, v, average = (vgg.any_size(x) for x in (start, zeros, zeros, zeros))
        self.variables = AdamState(image, m, v, tf.Variable(0.0), average)
        self._step = objective.compiled_adam_step

    def step(self) -> tuple[Losses, bool]:
        """One step: the losses before it, and False (Adam can always go on)."""
        image = self.variables.image
        computed = None if self.tiled is None else self.tiled.terms_and_gradient(image)
        terms = self._step(self.variables, self.net, self.targets, self.adam, computed)
        return _losses(terms), False

    def state(self) -> dict[str, np.ndarray]:
        """The values of the optimiser's variables, by name."""
        return {k: v.numpy() for k, v in self.variables._asdict().items()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Set the variables to a state() (ValueError if it does not fit)."""
        _check_state(self.state(), state)
        for name, value in state.items():
            getattr(self.variables, name).assign(value)

    def _loss(self, image: tf.Tensor) -> float:
        """The total loss of an image."""
        # Eager: called at checkpoints and a size's end only, tracing it would cost more.
        if self.tiled is None:
            return _losses(self.objective.terms(image, self.net, self.targets)).total
        return _losses(self.tiled.terms(image)).total

    def candidates(self) -> list[tuple[np.ndarray, float]]:
        """The images now that may be the best, with their total losses: the iterates' average
        (bias-corrected, when averaging) and the last iterate."""
        iterates = [self.variables.image]
        decay = float(self.adam.average_decay)
        if decay > 0:
            iterates.insert(0, self.variables.average / (1 - decay ** float(self.variables.t)))
        return [(np.asarray(x), self._loss(x)) for x in iterates]

    def last(self) -> np.ndarray:
        """The last iterate, where a finer size goes on from."""
        return self.variables.image.numpy()


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
    evaluate: Callable,
    project: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    loss: float,
    gradient: np.ndarray,
    direction: np.ndarray,
    step: float,
) -> tuple[np.ndarray, Losses, np.ndarray] | None:
    """A point project(x + t * direction) meeting the weak Wolfe conditions along the move it
    makes, found by doubling and bisecting t from step (Lewis & Overton); the last point that
    lowered the loss enough if the tries run out; None if none did."""
    low, high, found = 0.0, np.inf, None
    for _ in range(LBFGS_EVALUATIONS_PER_ITERATION if gradient.dot(direction) < 0 else 0):
        unbounded = x + step * direction
        trial = project(unbounded)
        moved = trial - x
        slope = gradient.dot(moved)  # the first-order change of the loss along the move
        losses, trial_gradient = evaluate(trial)
        if not (slope < 0 and losses.total <= loss + ARMIJO * slope):  # too far (or NaN)
            high = step
        else:
            found = trial, losses, trial_gradient
            # At the range's edge a longer step would move no further.
            if trial_gradient.dot(moved) >= CURVATURE * slope or trial is not unbounded:
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
        net: vgg.Weights,
        targets: Targets,
        bounds: tuple[np.ndarray, np.ndarray],
        tiled: tiles.TiledObjective | None = None,
    ):
        self.shape, self.net, self.targets, self.bounds = start.shape, net, targets, bounds
        self._compute = objective.compiled_terms_and_gradient
        if tiled is not None:  # tile by tile
            self._compute = lambda image, net, targets: tiled.terms_and_gradient(image)
        self.x = self.project(start.astype(np.float64).ravel())
        self.losses, self.gradient = self.evaluate(self.x)
        self.pairs: collections.deque = collections.deque(maxlen=LBFGS_HISTORY)

    def evaluate(self, x: np.ndarray) -> tuple[Losses, np.ndarray]:
        """The losses at x and their gradient (float64, flat)."""
        image = tf.constant(x.reshape(self.shape), tf.float32)
        terms, gradient = self._compute(image, self.net, self.targets)
        return _losses(terms), gradient.numpy().astype(np.float64).ravel()

    def project(self, x: np.ndarray) -> np.ndarray:
        """x with every pixel within the bounds (each channel's own), or x itself if inside."""
        low, high = self.bounds
        pixels = x.reshape(-1, low.size)
        if ((pixels >= low) & (pixels <= high)).all():
            return x
        return np.clip(pixels, low, high).ravel()

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
            found = _wolfe_search(
                self.evaluate,
                self.project,
                self.x,
                self.losses.total,
                self.gradient,
                direction,
                step,
            )
            if found is None and self.pairs:  # the history misleads: try again along -gradient
                self.pairs.clear()
                continue
            return found

    def last(self) -> np.ndarray:
        """The iterate now (preprocessed), where a finer size goes on from."""
        return self.x.reshape(self.shape).astype(np.float32)

    def candidates(self) -> list[tuple[np.ndarray, float]]:
        """The image now with its total loss."""
        return [(self.last(), self.losses.total)]

    def state(self) -> dict[str, np.ndarray]:
        """The iterate, its losses and gradient, and the curvature pairs (oldest first)."""
        s, y, rho = zip(*self.pairs, strict=True) if self.pairs else ((), (), ())
        empty = np.zeros((0, self.x.size))
        return {
            "x": self.x.copy(),
            "losses": np.array([self.losses.content, self.losses.style, self.losses.tv]),
            "gradient": self.gradient.copy(),
            "s": np.stack(s) if s else empty,
            "y": np.stack(y) if y else empty,
            "rho": np.array(rho, np.float64),
        }

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Go on from a state() (ValueError if it does not fit)."""
        _check_state(self.state(), state, ("s", "y", "rho"))
        self.x, self.gradient = state["x"].copy(), state["gradient"].copy()
        self.losses = Losses(*(float(v) for v in state["losses"]))
        self.pairs.clear()
        self.pairs.extend(
            zip(state["s"], state["y"], (float(r) for r in state["rho"]), strict=True)
        )


def _check_state(own: dict, state: dict, any_length: tuple[str, ...] = ()) -> None:
    """ValueError unless state has own's arrays with their shapes (any first axis if listed)."""
    if set(own) != set(state):
        raise ValueError(f"optimiser state has {sorted(state)}, not {sorted(own)}")
    for name, value in own.items():
        shape, saved = value.shape, np.shape(state[name])
        if name in any_length:
            shape, saved = shape[1:], saved[1:]
        if shape != saved:
            raise ValueError(f"optimiser state: {name} is {saved}, not {shape}")


def scale_sizes(size: Size, scales: int) -> list[Size]:
    """Up to scales sizes, coarsest first, each half the next, ending at size."""
    sizes = [size]
    while len(sizes) < scales:
        half = Size(*(max(1, round(n / 2)) for n in sizes[0]))
        if min(half) < MIN_COARSE_SIDE:
            break
        sizes.insert(0, half)
    return sizes


def tv_curvature(height: int, width: int, tv_weight: float) -> np.ndarray:
    """The second derivative of tv_weight * tv_loss by each pixel value of a 1xHxWx3 image
    (HxWx1): 2 * tv_weight * (vertical neighbours / size(dy) + horizontal / size(dx))."""
    rows, columns = np.arange(height)[:, None], np.arange(width)[None, :]
    vertical = 2.0 - (rows == 0) - (rows == height - 1)
    horizontal = 2.0 - (columns == 0) - (columns == width - 1)
    sizes = max(height - 1, 1) * width * 3, height * max(width - 1, 1) * 3
    return (2 * tv_weight * (vertical / sizes[0] + horizontal / sizes[1]))[..., None]


def round_by_loss(
    levels: np.ndarray,
    passes: int,
    curvature: np.ndarray,
    loss: Callable[[np.ndarray], float],
    loss_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]],
) -> np.ndarray:
    """8-bit levels (1xHxWx3, 0-255 whole numbers, as floats) moved one level at a time down
    the loss's slope: in each pass one half of the pixels (a checkerboard), then the other,
    each value where its slope is steeper than curvature; the version of lowest loss.

    loss(levels) is the total loss; loss_and_gradient(levels) also its gradient by the levels.
    """
    # Departure from the paper: the file holds whole levels, and rounding each value to the
    # nearest one adds noise that the total variation counts (0.23-0.37% of a default run's
    # loss at 256x192). A level's move changes the loss by about slope + curvature / 2;
    # requiring the slope to pass the total variation's curvature (twice the need) leaves
    # room for the other terms' curvature, which this does not know. The pixels of one
    # checkerboard colour have no neighbour in common, so their moves add up in the total
    # variation. The version of lowest loss is kept: never worse than the nearest levels.
    if not passes:
        return levels
    height, width = levels.shape[1:3]
    half = ((np.arange(height)[:, None] + np.arange(width)[None, :]) % 2)[..., None]
    versions = []
    for colour in [0, 1] * passes:
        total, gradient = loss_and_gradient(levels)
        versions.append((total, levels))
        move = (np.abs(gradient) > curvature) & (half == colour)
        levels = np.clip(levels - np.where(move, np.sign(gradient), 0), 0, 255)
    versions.append((loss(levels), levels))
    return min(versions, key=lambda version: version[0])[1]


def split_iterations(iterations: int, count: int) -> list[int]:
    """Iterations per size, coarsest first: equal shares, the remainder to the output size."""
    return [iterations // count] * (count - 1) + [iterations - iterations // count * (count - 1)]


def _upsample(x: np.ndarray, size: Size) -> np.ndarray:
    """A 1xhxwxC array resized to 1 x size x C (unchanged if that is its size)."""
    return images.resize(x[0], *size)[None]


def check_settings(settings: Settings, style_count: int) -> None:
    """ValueError naming the first setting that stylize() cannot use."""
    if style_count < 1:
        raise ValueError("styles: at least one style image is needed, got none")
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
        cache: dict | None,
        temporal: Temporal | None = None,
        on_tile: tiles.OnTile | None = None,
    ):
        self.settings, self.content, self.styles = settings, content, styles
        self.temporal, self.on_tile = temporal, on_tile
        self.cache = {} if cache is None else cache
        content_layers, style_layers = options.layer_weights(settings)
        layers = tuple(tuple(weights.items()) for weights in (content_layers, style_layers))
        self.objective = self.cached(
            ("objective", *layers, settings.pooling),
            lambda: Objective(content_layers, style_layers, settings.pooling),
        )
        vgg.check_layers(network, list(self.objective.layers))
        self.mean = network.mean_pixel
        self.bounds = (
            vgg.preprocess(np.zeros(3), self.mean),
            vgg.preprocess(np.full(3, 255.0), self.mean),
        )
        # The network's convolutions run in the run's precision (weights cast once, here).
        self.precision = precision = hardware.resolve_precision(settings.precision)[0]
        self.net = self.cached(("network", precision), lambda: vgg.constants(network, precision))
        self.output_size = Size(*content.shape[:2])
        self.sizes = scale_sizes(self.output_size, settings.scales)
        self.counts = split_iterations(settings.iterations, len(self.sizes))
        # The first size that runs starts from noise or --initial, the later ones from the
        # previous size's result.
        self.first_index = next(i for i, count in enumerate(self.counts) if count)
        self.targets = functools.cache(self._targets)  # each size's targets are computed once
        self.grid = functools.cache(self._grid)
        self.tiled = functools.cache(self._tiled)
        self.iteration, self.leftover, self.cuts_drawn = 0, 0, 0
        self.budget: int | None = None  # _budget()'s
        self.budget_checked = False
        self.best, self.start = _Best(), None
        # The starting noise's seed, kept so that a resumed run has the same random state.
        self.noise_seed = secrets.randbits(63) if settings.seed is None else settings.seed

    def cached(self, key: tuple, make: Callable[[], object]) -> object:
        """The cache's value for key, made (and kept) if it has none."""
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

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
        key = ("grams", digest, style.shape, tuple(style_layers), self.settings.pooling)
        key += (self.precision, grid)

        def grams() -> dict[str, tf.Tensor]:
            if grid is not None:
                x = vgg.preprocess(style, self.mean)[None]
                return tiles.grams(self.net, x, tuple(style_layers), self.settings.pooling, grid)
            features = self._features(style, style_layers)
            return {name: gram(features[name]) for name in style_layers}

        # The latest used last; the oldest go beyond GRAMS_KEPT (a batch over hundreds of
        # styles would otherwise hold them all, 2.4 MB each at the network's full width).
        found = self.cache.pop(key, None)
        self.cache[key] = grams() if found is None else found
        for old in [k for k in self.cache if k[0] == "grams"][:-GRAMS_KEPT]:
            del self.cache[old]
        return self.cache[key]

    def _style_sizes(self, size: Size) -> list[Size]:
        """The size of each style at a size of the output: scaled as the content."""
        factor = size.width / self.content.shape[1]
        return [
            Size(max(1, round(s.shape[0] * factor)), max(1, round(s.shape[1] * factor)))
            for s in self.styles
        ]

    def _grid(self, size: Size) -> tiles.Grid | None:
        """The tiles of an iteration at a size: at most --tile-size, else the least work that
        fits the memory budget if the whole image does not, in windows no larger than the
        output size's where it can be cut so small; None: the image whole."""
        settings = self.settings
        if settings.tile_size:
            return tiles.plan(size, max_side=settings.tile_size + 2 * memory.TILE_HALO)
        on_gpu, lbfgs = hardware.on_gpu(), settings.optimizer == "lbfgs"
        budget = self._budget(on_gpu)
        if budget is None:
            return None
        styles = self._style_sizes(size)
        grid = tiles.for_budget(size, styles, budget, self.precision, lbfgs, on_gpu)
        finest = None if size == self.output_size else self.grid(self.output_size)
        if finest is None or finest.count == 1:
            return grid
        # A coarser size's windows are no larger than the output size's: TensorFlow's CPU
        # memory pool keeps the most that any pass held, and the output size runs after.
        # (fitted() gives one window when none so small cuts the size: then its own tiles.)
        shape = size if grid is None else grid.window
        if shape.height * shape.width <= finest.window.height * finest.window.width:
            return grid
        capped = finest.fitted(size)
        return grid if capped.count == 1 else capped

    def _budget(self, on_gpu: bool) -> int | None:
        """The memory the run's tiles are planned for: --max-memory, else what is free when
        first asked, the same for every size. A resumed run keeps the budget of the run it
        goes on from, so that it cuts the same tiles (and writes the same bytes), unless less
        memory is free now."""
        if self.settings.max_memory:
            self.budget = self.settings.max_memory
        elif not self.budget_checked:
            self.budget_checked = True
            free = memory.available(on_gpu)
            if self.budget is None or (free is not None and free < self.budget):
                self.budget = free
        return self.budget

    def _tiled(self, size: Size) -> tiles.TiledObjective | None:
        """The loss computed tile by tile at a size, or None if that size is not tiled."""
        grid = self.grid(size)
        if grid is None or grid.count == 1:  # one window: the whole image, in one pass
            return None
        objective, targets = self.objective, self.targets(size)
        return tiles.TiledObjective(
            objective, self.net, targets, grid, self._cuts_rng, self.on_tile
        )

    def _cuts_rng(self) -> np.random.Generator:
        """The random source of one evaluation's tile edges: seeded apart from the starting
        noise, and by the number of draws, which a saved state keeps."""
        self.cuts_drawn += 1
        return np.random.default_rng([self.noise_seed, 1, self.cuts_drawn])

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
            content={k: vgg.any_size(tf.cast(f, tf.float32)) for k, f in content.items()},
            styles=tuple(self._style_grams(style, grid) for style in styles),
            blend=tf.constant(options.normalize_blend(settings.style_blend_weights, len(styles))),
            temporal=self._temporal(size),
            content_weight=tf.constant(settings.content_weight, tf.float32),
            style_weight=tf.constant(settings.style_weight, tf.float32),
            tv_weight=tf.constant(settings.tv_weight, tf.float32),
            pixel_min=tf.constant(self.bounds[0]),
            pixel_max=tf.constant(self.bounds[1]),
        )

    def _temporal(self, size: Size) -> Temporal | None:
        """The temporal target at one size: the warped image preprocessed, the mask resized."""
        if self.temporal is None:
            return None
        image, mask, weight = self.temporal
        warped = vgg.preprocess(images.resize(np.asarray(image, np.float32), *size), self.mean)
        mask = images.resize(np.asarray(mask, np.float32)[:, :, None], *size)
        return Temporal(
            vgg.any_size(warped[None].astype(np.float32)),
            vgg.any_size(np.clip(mask, 0, 1)[None].astype(np.float32)),
            tf.constant(weight, tf.float32),
        )

    def start_at(self, size: Size, initial: np.ndarray | None) -> np.ndarray:
        """The starting image at a size: noise, or initial blended with noise."""
        settings = self.settings
        noise = np.random.default_rng(self.noise_seed).standard_normal((1, *size, 3)) * NOISE_SCALE
        if initial is None:
            return noise.astype(np.float32)
        image = vgg.preprocess(images.resize(initial, *size), self.mean)[None]
        blend = settings.initial_noiseblend
        return ((1 - blend) * image + blend * noise).astype(np.float32)

    def optimiser(self, start: np.ndarray, size: Size, upsampled: bool = False) -> Adam | LBFGS:
        """A fresh optimiser at a size, from start (Adam warms up if start is upsampled)."""
        settings = self.settings
        if settings.optimizer == "lbfgs":
            return LBFGS(
                self.objective, start, self.net, self.targets(size), self.bounds, self.tiled(size)
            )
        names = ("learning_rate", "beta1", "beta2", "epsilon", "average_decay")
        values = [getattr(settings, n) for n in names] + [settings.warmup if upsampled else 0]
        adam = AdamSettings(*(tf.constant(v, tf.float32) for v in values))
        return Adam(self.objective, start, self.net, self.targets(size), adam, self.tiled(size))

    def picture(self, x: np.ndarray | None, final: bool = False) -> np.ndarray | None:
        """A preprocessed 1xhxwx3 array as an 8-bit RGB image at the output size; a final one
        at that size rounded by its loss (--rounding-passes; not in tiles)."""
        if x is None:
            return None
        if x.shape[1:3] != self.output_size:
            x = _upsample(x, self.output_size)
        elif final and self.settings.rounding_passes and self.tiled(self.output_size) is None:
            return self.rounded(x)
        return images.to_uint8(vgg.unprocess(x[0], self.mean))

    def rounded(self, x: np.ndarray) -> np.ndarray:
        """A preprocessed 1xHxWx3 image at the output size as 8-bit RGB, rounded by its loss."""
        targets = self.targets(self.output_size)

        def loss(levels: np.ndarray) -> float:
            image = tf.constant(vgg.preprocess(levels, self.mean))
            return _losses(self.objective.terms(image, self.net, targets)).total

        levels = images.to_uint8(vgg.unprocess(x, self.mean)).astype(np.float32)
        variable = vgg.any_size(vgg.preprocess(levels, self.mean))  # one trace for every size

        def loss_and_gradient(levels: np.ndarray) -> tuple[float, np.ndarray]:
            variable.assign(vgg.preprocess(levels, self.mean))
            compiled = self.objective.compiled_terms_and_gradient
            terms, gradient = compiled(variable, self.net, targets)
            return _losses(terms).total, gradient.numpy()

        curvature = tv_curvature(*self.output_size, self.settings.tv_weight)
        passes = self.settings.rounding_passes
        levels = round_by_loss(levels, passes, curvature, loss, loss_and_gradient)
        return levels[0].astype(np.uint8)

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
        self, initial: np.ndarray | None, stop: Callable[[], bool] | None, resume: RunState | None
    ) -> Iterator[Progress]:
        """Every iteration of the run, size after size, coarsest first (after resume's)."""
        first, begin = (
            (None, self.resume_from(resume)) if resume else (self.first_losses(initial), 0)
        )
        if resume and begin == len(self.sizes) or resume and resume.iteration >= self.total:
            yield self.resumed_end(resume)  # the state was taken at the run's last iteration
            return
        for index in range(begin, len(self.sizes)):
            size, count = self.sizes[index], self.counts[index] + self.leftover
            # leftover: the iterations a coarser size did not use (L-BFGS stalled)
            within = resume if resume and index == resume.size_index else None
            if within:
                count = within.count
            elif count == 0:
                continue
            # Coarse to fine: a size starts from the last image of the previous one, upsampled,
            # with a fresh optimiser (carrying Adam's moments over measured no better).
            elif self.start is None:
                self.start = self.start_at(size, initial)
            else:
                # Lanczos overshoots at edges: back within the displayable range.
                self.start = np.clip(_upsample(self.start, size), *self.bounds)
            yield from self.at_size(index, count, first, stop, within)
            if self.start is None:  # the run ended
                return

    def at_size(
        self,
        index: int,
        count: int,
        first: Losses | None,
        stop: Callable | None,
        resume: RunState | None = None,
    ) -> Iterator[Progress]:
        """The iterations at one size; self.start becomes the image the next size starts from,
        or None when the run ended here."""
        size, last = self.sizes[index], index == len(self.sizes) - 1
        start, settings = self.start, self.settings
        optimiser = self.optimiser(start, size, upsampled=index > self.first_index)
        # Departure from the paper, for never losing a run: the starting image is the first
        # candidate for "best" (with the loss of iteration 1), so a run that only gets worse
        # or breaks down still has an image to give back. Each size has its own best (losses
        # at different sizes do not compare); the output is the best at the output size.
        if resume is None:  # a resumed size has its best so far from the state
            self.best = _Best()
        done = self.restore(optimiser, resume)
        for k in range(done + 1, count + 1):
            losses, stalled = optimiser.step()
            self.iteration += 1
            i = self.iteration
            if not np.isfinite(losses.total):
                raise NonFiniteLoss(i, self.picture(self.best.image))
            if k == 1:
                self.best.offer(start, losses.total)
            stopped = stop is not None and stop()
            finished = i == self.total or (stalled and last)  # the run's own end
            final = finished or stopped
            ends = final or stalled or k == count  # this size's last iteration
            every = settings.checkpoint_iterations
            checkpoint = bool(every) and i % every == 0
            # A stop's candidate is shown, never kept: a resumed run goes on as if none came.
            only_stop = not (checkpoint or stalled or k == count or i == self.total)
            best = copy.copy(self.best) if only_stop else self.best
            if ends or checkpoint:
                drawn = self.cuts_drawn
                for image, loss in optimiser.candidates():
                    best.offer(image, loss)
                if only_stop:  # nor the tile edges its candidates' losses drew
                    self.cuts_drawn = drawn
                self.start = optimiser.last()  # the next size starts from the last iterate
            shown, at = (first, self.output_size) if i == 1 and first else (losses, size)
            # A run stopped before its end has its image rounded to the nearest levels: a
            # signal's sender waits for the exit, and rounding by the loss costs two gradients
            # and a loss. At its end it is the run's output, the same as without the signal.
            picture = self.picture(best.image, finished) if final or checkpoint else None
            snapshot = self.snapshot(index, k, count, stalled or k == count, losses, optimiser)
            yield Progress(i, self.total, shown, picture, final, at, snapshot)
            if final:
                self.start = None
                return
            if ends:
                self.leftover = count - k
                return

    @property
    def total(self) -> int:
        """The run's iterations."""
        return self.settings.iterations

    def snapshot(
        self, index: int, k: int, count: int, ended: bool, losses: Losses, optimiser: Adam | LBFGS
    ) -> Callable[[], RunState]:
        """A function giving the run's state after its k-th iteration at size index. It holds
        this moment's images and counts; the optimiser's state it reads when called (so: call
        it before the next iteration)."""
        now = (self.iteration, index, k, count, ended, self.start, self.best.image)
        now += (self.best.loss, (losses.content, losses.style, losses.tv))
        kept = (self.noise_seed, self.cuts_drawn, self.budget)
        return lambda: RunState(*now, optimiser.state(), *kept)

    def resume_from(self, state: RunState) -> int:
        """Take a state's counts and images; the index of the first size still to start."""
        self.iteration, self.start, self.noise_seed = state.iteration, state.start, state.noise_seed
        self.cuts_drawn, self.budget = state.cuts_drawn, state.budget
        self.best = _Best()
        self.best.image, self.best.loss = state.best_image, state.best_loss
        if state.ended:  # the next size starts from state.start, with what this one left over
            self.leftover = state.count - state.done
            return state.size_index + 1
        return state.size_index

    def restore(self, optimiser: Adam | LBFGS, state: RunState | None) -> int:
        """Put a resumed size's optimiser back (resume_from took its best image); the
        iterations it had done."""
        if state is None:
            return 0
        optimiser.restore(state.optimiser)
        # L-BFGS evaluated its start when made, drawing tile edges that the state replaces.
        self.cuts_drawn = state.cuts_drawn
        return state.done

    def resumed_end(self, state: RunState) -> Progress:
        """The last iteration again, for a state taken at it: its losses and the best image."""
        size = self.sizes[state.size_index]
        picture = self.picture(self.best.image, final=True)
        return Progress(state.iteration, self.total, Losses(*state.losses), picture, True, size)


def stylize(
    network: vgg.Network,
    content: np.ndarray,
    styles: list[np.ndarray],
    settings: Settings = DEFAULTS,
    *,
    initial: np.ndarray | None = None,
    stop: Callable[[], bool] | None = None,
    cache: dict | None = None,
    resume: RunState | None = None,
    temporal: Temporal | None = None,
    on_tile: tiles.OnTile | None = None,
) -> Iterator[Progress]:
    """Optimise an image towards content's features and styles' grams; yield each iteration.

    content, styles and initial are RGB arrays (0-255) at the sizes to use. stop() is asked at
    each iteration whether to end there. cache, if given, keeps between calls that use the
    same network (the caller keeps one per network) what they share: the network's tensors,
    the compiled step of their loss and the style images' grams, so that a batch's jobs and a
    video's frames compute each once. resume, a RunState from a Progress's snapshot() of a run
    with the same inputs and settings, goes on from there as if the run had never stopped.
    temporal, for a video frame, adds the temporal term. on_tile(done, total), if given, is
    told of each tile of an iteration computed tile by tile (one that does not fit whole).
    """
    check_settings(settings, len(styles))
    try:
        run = _Run(network, content, styles, settings, cache, temporal, on_tile)
    except (tf.errors.ResourceExhaustedError, MemoryError):  # the network's tensors (small GPU)
        message = "out of memory before the first iteration"
        if hardware.resolve_precision(settings.precision)[0] == "float32":
            message += "; try --precision bfloat16"
        raise RunFailed(message, None) from None
    del network  # the caller may then free the float32 weights (bfloat16 keeps its cast)
    try:
        yield from run.iterations(initial, stop, resume)
        return
    except (tf.errors.ResourceExhaustedError, MemoryError):
        pass  # the picture is made below, once the failed step's arrays are let go
    # TensorFlow or numpy (a tiled run's whole-image arrays) could not allocate: end like a
    # broken-down run, keeping the best image (at a size's first step, the one it started
    # from: the previous size's last), if there is memory left to make it.
    kept = run.start if run.best.image is None else run.best.image
    try:
        picture = run.picture(kept)
    except MemoryError:
        picture = None
    raise RunFailed(
        f"out of memory after {run.iteration} iterations; try a smaller --width or"
        " --max-memory, or --precision bfloat16",
        picture,
        "no memory was left to make it",
    )
