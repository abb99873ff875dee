"""The losses (pure functions) and the optimisation loop: a generator that never prints."""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

if __package__:  # installed: the modules are the package neural_style_tf2
    from . import images, vgg
else:  # a checkout: the modules side by side
    import images
    import vgg

# Defaults, defined once (the CLI shows them in --help).
ITERATIONS = 100
CONTENT_WEIGHT = 5.0
STYLE_WEIGHT = 100.0
TV_WEIGHT = 100.0
LEARNING_RATE = 10.0
BETA1, BETA2, EPSILON = 0.9, 0.999, 1e-8
NOISE_SCALE = 0.256
PRECISION = "float32"
PRECISIONS = ("float32", "bfloat16")
INITIAL_NOISEBLEND = 0.0
OPTIMIZERS = ("adam", "lbfgs")
OPTIMIZER = "adam"
POOLING = "max"
CONTENT_WEIGHT_BLEND = 1.0
STYLE_LAYER_WEIGHT_EXP = 1.0
# L-BFGS: the curvature pairs it keeps (SciPy's default), the most loss evaluations of one
# iteration's line search, and that search's Wolfe constants (c1, c2).
LBFGS_HISTORY = 10
LBFGS_EVALUATIONS_PER_ITERATION = 20
ARMIJO, CURVATURE = 1e-4, 0.9
SCALES = 3
# Coarse to fine: a coarser size is only used if its shorter side has this many pixels.
MIN_SIDE = 32

# Loss layers and their per-layer weights at the defaults (the SPEC's losses), in one place.
CONTENT_LAYERS = {"relu4_2": 1.0}
STYLE_LAYERS = {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0, "relu5_1": 1.0}
# The pair that --content-weight-blend B weights B and 1 - B.
CONTENT_BLEND_LAYERS = ("relu4_2", "relu5_2")


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
    size: tuple[int, int] = (0, 0)  # (height, width) of the image this iteration optimised


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


def normalize_blend(weights: list[float] | None, count: int) -> list[float]:
    """Blend weights scaled to sum 1 (equal when None); ValueError if they cannot be."""
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise ValueError(f"--style-blend-weights has {len(weights)} values for {count} styles")
    total = float(sum(weights))
    if any(w < 0 or not np.isfinite(w) for w in weights) or total <= 0:
        raise ValueError(f"--style-blend-weights must be >= 0 with a positive sum, got {weights}")
    return [w / total for w in weights]


def _check_layer_names(names: list[str], what: str) -> list[str]:
    """names in network order; ValueError for an unknown, repeated or missing name."""
    if not names:
        raise ValueError(f"{what} needs at least one layer")
    try:
        order = {name: vgg.layer_index(name) for name in names}
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    if len(order) != len(names):
        raise ValueError(f"{what} names a layer twice: {' '.join(names)}")
    return sorted(names, key=order.get)


def content_layer_weights(
    blend: float = CONTENT_WEIGHT_BLEND, layers: list[str] | None = None
) -> dict[str, float]:
    """Content layer weights, summing to 1: relu4_2 B and relu5_2 1-B, or equal over layers."""
    if layers is not None:
        names = _check_layer_names(layers, "--content-layers")
        return {name: 1.0 / len(names) for name in names}
    if not 0 <= blend <= 1:
        raise ValueError(f"--content-weight-blend must be in [0, 1], got {blend}")
    weights = dict(zip(CONTENT_BLEND_LAYERS, (blend, 1.0 - blend), strict=True))
    return {name: w for name, w in weights.items() if w > 0}  # a zero weight needs no layer


def style_layer_weights(
    exponent: float = STYLE_LAYER_WEIGHT_EXP, layers: list[str] | None = None
) -> dict[str, float]:
    """Style layer weights E**k from the shallowest layer (k=0) down, scaled to average 1."""
    names = list(STYLE_LAYERS) if layers is None else _check_layer_names(layers, "--style-layers")
    if not (np.isfinite(exponent) and exponent > 0):
        raise ValueError(f"--style-layer-weight-exp must be > 0, got {exponent}")
    raw = [float(exponent) ** k for k in range(len(names))]
    # Departure from anishathalye's sum-1 weights: the SPEC sums the layer terms, so the
    # weights average 1 (all exactly 1.0 at E = 1) and --style-weight keeps its scale.
    total = sum(raw)
    return {name: w * len(names) / total for name, w in zip(names, raw, strict=True)}


class _Objective:
    """The loss of an image against fixed targets; holds only static configuration."""

    def __init__(
        self, content_layers: dict[str, float], style_layers: dict[str, float], pooling: str
    ):
        self.content_layers = content_layers
        self.style_layers = style_layers
        self.pooling = pooling
        self.layers = tuple(dict.fromkeys([*content_layers, *style_layers]))

    def terms(self, image: tf.Tensor, net: dict, targets: dict) -> tuple[tf.Tensor, ...]:
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
        coefficients = targets["coefficients"]
        return (
            coefficients[0] * content_loss(content, targets["content"], self.content_layers),
            coefficients[1]
            * style_loss(grams, targets["styles"], targets["blend"], self.style_layers),
            coefficients[2] * tv_loss(image),
        )

    def adam_step(self, image, m, v, t, net, targets, hyper) -> tuple[tf.Tensor, ...]:
        """One Adam step on image in place; returns the loss terms before the step."""
        terms, grad = self.terms_and_gradient(image, net, targets)
        learning_rate, beta1, beta2, epsilon = hyper[0], hyper[1], hyper[2], hyper[3]
        t.assign_add(1.0)
        m.assign(beta1 * m + (1 - beta1) * grad)
        v.assign(beta2 * v + (1 - beta2) * tf.square(grad))
        # TF1's AdamOptimizer form: bias correction folded into the step size.
        step_size = learning_rate * tf.sqrt(1 - beta2**t) / (1 - beta1**t)
        image.assign_sub(step_size * m / (tf.sqrt(v) + epsilon))
        return terms

    def terms_and_gradient(self, image, net, targets) -> tuple[tuple[tf.Tensor, ...], tf.Tensor]:
        """The loss terms of image and the gradient of their sum."""
        with tf.GradientTape() as tape:
            tape.watch(image)
            terms = self.terms(image, net, targets)
            total = tf.add_n(terms)
        return terms, tape.gradient(total, image)


# One optimiser iteration, as the loop in stylize() sees it: the losses before the step, a
# function giving the image after it (preprocessed) with its total loss, and whether the
# optimiser could not go on (the step made no move and the run must end here).
_Step = tuple[Losses, Callable[[], tuple[np.ndarray, float]], bool]


def _losses(terms: tuple[tf.Tensor, ...]) -> Losses:
    """Losses from the (content, style, tv) tensors."""
    return Losses(*(float(x) for x in terms))


def _adam_steps(
    objective: _Objective, start: np.ndarray, net: dict, targets: dict, hyper: tf.Tensor
) -> Iterator[_Step]:
    """Adam from start, one step per item, without end."""
    image = tf.Variable(start)
    m, v = tf.Variable(tf.zeros(start.shape)), tf.Variable(tf.zeros(start.shape))
    t = tf.Variable(0.0)
    step = tf.function(objective.adam_step)

    def after() -> tuple[np.ndarray, float]:
        # Eager: called at checkpoints and a size's end only, tracing it would cost more.
        return image.numpy(), _losses(objective.terms(image, net, targets)).total

    while True:
        yield _losses(step(image, m, v, t, net, targets, hyper)), after, False


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


def _lbfgs_steps(
    objective: _Objective, start: np.ndarray, net: dict, targets: dict
) -> Iterator[_Step]:
    """L-BFGS from start, one item per iteration, its history kept for the whole run; the
    losses "before" iteration i are those of the iterate after i - 1. Ends (stalled) when no
    step along its direction lowers the loss."""
    shape = start.shape
    compute = tf.function(objective.terms_and_gradient)

    def evaluate(x: np.ndarray) -> tuple[Losses, np.ndarray]:
        terms, gradient = compute(tf.constant(x.reshape(shape), tf.float32), net, targets)
        return _losses(terms), gradient.numpy().astype(np.float64).ravel()

    def known(x: np.ndarray, losses: Losses) -> Callable[[], tuple[np.ndarray, float]]:
        return lambda: (x.reshape(shape).astype(np.float32), losses.total)

    # The iterate and history are float64; TensorFlow's loss and gradient float32. Written
    # here rather than SciPy's L-BFGS-B: it reached the same losses, and L-BFGS-B's own work
    # took 40 ms per iteration at 256x256 (a tenth of the iteration) against this one's 10.
    x = start.astype(np.float64).ravel()
    losses, gradient = evaluate(x)
    pairs: collections.deque = collections.deque(maxlen=LBFGS_HISTORY)
    while True:
        direction = lbfgs_direction(gradient, pairs)
        slope = gradient.dot(direction)
        if pairs and not slope < 0:  # not a descent direction: forget the history
            pairs.clear()
            direction = -gradient
            slope = gradient.dot(direction)
        # The first step has length 1 (pixels, in all), as L-BFGS-B's; later ones start at 1.
        step = 1.0 if pairs else 1.0 / np.sqrt(max(-slope, np.finfo(float).tiny))
        found = _wolfe_search(evaluate, x, losses.total, slope, direction, step)
        if found is None and pairs:  # the history misleads: try again along -gradient
            pairs.clear()
            continue
        if found is None:
            yield losses, known(x, losses), True  # no step lowers the loss: this is the end
            return
        trial, trial_losses, trial_gradient = found
        yield losses, known(trial, trial_losses), False
        s, y = trial - x, trial_gradient - gradient
        if s.dot(y) > 1e-10 * y.dot(y):  # only curvature that keeps H positive definite
            pairs.append((s, y, 1.0 / s.dot(y)))
        x, losses, gradient = trial, trial_losses, trial_gradient


def scale_sizes(height: int, width: int, scales: int) -> list[tuple[int, int]]:
    """Up to scales sizes, coarsest first, each half the next, ending at (height, width)."""
    sizes = [(height, width)]
    while len(sizes) < scales:
        h, w = (max(1, round(n / 2)) for n in sizes[0])
        if min(h, w) < MIN_SIDE:
            break
        sizes.insert(0, (h, w))
    return sizes


def split_iterations(iterations: int, count: int) -> list[int]:
    """Iterations per size, coarsest first: equal shares, the remainder to the output size."""
    return [iterations // count] * (count - 1) + [iterations - iterations // count * (count - 1)]


def _upsample(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """A 1xhxwxC array resized to 1 x height x width x C (unchanged if that is its size)."""
    return images.resize(x[0], height, width)[None]


def _to_image(preprocessed: np.ndarray, mean_pixel: np.ndarray) -> np.ndarray:
    """A 1xHxWx3 preprocessed array as an 8-bit RGB image."""
    return images.to_uint8(vgg.unprocess(preprocessed[0], mean_pixel))


def stylize(
    network: vgg.Network,
    content: np.ndarray,
    styles: list[np.ndarray],
    iterations: int = ITERATIONS,
    content_weight: float = CONTENT_WEIGHT,
    style_weight: float = STYLE_WEIGHT,
    style_blend_weights: list[float] | None = None,
    tv_weight: float = TV_WEIGHT,
    learning_rate: float = LEARNING_RATE,
    initial: np.ndarray | None = None,
    checkpoint_iterations: int | None = None,
    seed: int | None = None,
    stop: Callable[[], bool] | None = None,
    style_cache: dict | None = None,
    precision: str = PRECISION,
    *,
    optimizer: str = OPTIMIZER,
    beta1: float = BETA1,
    beta2: float = BETA2,
    epsilon: float = EPSILON,
    pooling: str = POOLING,
    content_layers: dict[str, float] | None = None,
    style_layers: dict[str, float] | None = None,
    initial_noiseblend: float = INITIAL_NOISEBLEND,
    scales: int = SCALES,
) -> Iterator[Progress]:
    """Optimise an image towards content's features and styles' grams; yield each iteration.

    style_cache, if given, keeps the style grams between calls that use the same network (the
    caller keeps one per network), so a batch computes each style image's targets once.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    if scales < 1:
        raise ValueError(f"scales must be at least 1, got {scales}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got '{precision}'")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer '{optimizer}'; choose from {', '.join(OPTIMIZERS)}")
    if pooling not in vgg.POOLINGS:
        raise ValueError(f"unknown pooling '{pooling}'; choose from {', '.join(vgg.POOLINGS)}")
    if not 0 <= initial_noiseblend <= 1:
        raise ValueError(f"initial_noiseblend must be in [0, 1], got {initial_noiseblend}")
    blend = normalize_blend(style_blend_weights, len(styles))
    content_layers = CONTENT_LAYERS if content_layers is None else content_layers
    style_layers = STYLE_LAYERS if style_layers is None else style_layers
    objective = _Objective(content_layers, style_layers, pooling)
    vgg.check_layers(network, list(objective.layers))
    mean = network.mean_pixel

    def features(image: np.ndarray, layers: dict[str, float]) -> dict[str, tf.Tensor]:
        x = tf.constant(vgg.preprocess(image, mean)[None])
        return vgg.extract(net, x, tuple(layers), pooling)

    def style_grams(style: np.ndarray) -> dict[str, tf.Tensor]:
        # The key holds everything the grams depend on besides the network.
        key = (
            hashlib.sha1(style.tobytes()).hexdigest(),
            style.shape,
            tuple(style_layers),
            pooling,
            precision,
        )
        cache = {} if style_cache is None else style_cache
        if key not in cache:
            style_features = features(style, style_layers)
            cache[key] = {name: gram(style_features[name]) for name in style_layers}
        return cache[key]

    def targets_at(height: int, width: int) -> dict:
        # Targets are computed once per size, before that size's iterations.
        factor = width / content.shape[1]
        scaled = [
            images.resize(s, max(1, round(s.shape[0] * factor)), max(1, round(s.shape[1] * factor)))
            for s in styles
        ]
        return {
            "content": {
                k: tf.cast(f, tf.float32)
                for k, f in features(images.resize(content, height, width), content_layers).items()
            },
            "styles": [style_grams(style) for style in scaled],
            "blend": tf.constant(blend, tf.float32),
            "coefficients": tf.constant([content_weight, style_weight, tv_weight], tf.float32),
        }

    def start_at(height: int, width: int) -> np.ndarray:
        shape = (1, height, width, 3)
        noise = np.random.default_rng(seed).standard_normal(shape) * NOISE_SCALE
        if initial is None:
            return noise
        # initial_noiseblend R: (1 - R) * the image + R * the SPEC's noise
        image = vgg.preprocess(images.resize(initial, height, width), mean)[None]
        return (1 - initial_noiseblend) * image + initial_noiseblend * noise

    output_size = content.shape[:2]
    sizes = scale_sizes(*output_size, scales)
    counts = split_iterations(iterations, len(sizes))
    hyper = tf.constant([learning_rate, beta1, beta2, epsilon], tf.float32)

    def picture(x: np.ndarray) -> np.ndarray:
        # Images of a coarser size are shown upsampled to the output size.
        return _to_image(_upsample(x, *output_size), mean)

    targets_of = functools.cache(targets_at)  # each size's targets are computed once
    i, start, leftover, best = 0, None, 0, None
    try:
        # The network's convolutions run in precision (weights cast once, here; the functions
        # above use net only when called).
        net = {
            name: (tf.constant(k, precision), tf.constant(b, precision))
            for name, (k, b) in network.weights.items()
        }
        del network  # the caller may then free the float32 weights (bfloat16 keeps its cast)

        # With several sizes, the first losses reported are still the SPEC's: those of the starting
        # image at the output size (one extra forward pass). Later ones are their size's own.
        first = None
        if len(sizes) > 1:
            full = tf.constant(start_at(*output_size).astype(np.float32))
            first = _losses(objective.terms(full, net, targets_of(*output_size)))

        for (height, width), count in zip(sizes, counts, strict=True):
            count += leftover  # the iterations a coarser size did not use (L-BFGS stalled)
            if count == 0:
                continue
            targets = targets_of(height, width)
            # Coarse to fine: a size starts from the last image of the previous one, upsampled,
            # with a fresh optimiser (carrying Adam's moments over measured no better).
            start = start_at(height, width) if start is None else _upsample(start, height, width)
            start = start.astype(np.float32, copy=False)
            if optimizer == "adam":
                steps = _adam_steps(objective, start, net, targets, hyper)  # a trace per size
            else:
                steps = _lbfgs_steps(objective, start, net, targets)
            size, last = (height, width), (height, width) == sizes[-1]

            # Departure from the SPEC, for never losing a run: the starting image is the first
            # candidate for "best" (with the loss of iteration 1), so a run that only gets worse
            # or breaks down still has an image to give back. Each size has its own best (losses
            # at different sizes do not compare); the output is the best at the output size.
            best, best_loss = None, float("inf")
            with contextlib.closing(steps):
                for k, (losses, after, stalled) in enumerate(steps, start=1):
                    i += 1
                    if not np.isfinite(losses.total):
                        raise NonFiniteLoss(i, None if best is None else picture(best))
                    if k == 1 and losses.total < best_loss:
                        best, best_loss = start, losses.total
                    stopping = stop is not None and stop()
                    final = i == iterations or stopping or (stalled and last)
                    ends = final or stalled or k == count  # this size's last iteration
                    checkpoint = bool(checkpoint_iterations) and i % checkpoint_iterations == 0
                    if ends or checkpoint:
                        image, current = after()
                        if current < best_loss:
                            best, best_loss = image, current
                        start = image  # the next size starts from the last image
                    shown, at = (first, output_size) if i == 1 and first else (losses, size)
                    if final or checkpoint:
                        yield Progress(i, iterations, shown, picture(best), final, at)
                    else:
                        yield Progress(i, iterations, shown, size=at)
                    if final:
                        return
                    if ends:
                        leftover = count - k
                        break
    except tf.errors.ResourceExhaustedError:
        # TensorFlow could not allocate: end like a broken-down run, keeping the best image
        # (at a size's first step, the one it started from: the previous size's last).
        kept = start if best is None else best
        raise RunFailed(
            f"out of memory after {i} iterations; try a smaller --width or --precision bfloat16",
            None if kept is None else picture(kept),
        ) from None
