"""The losses (pure functions) and the optimisation loop: a generator that never prints."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

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

# Loss layers and their per-layer weights, in one place.
CONTENT_LAYERS = {"relu4_2": 1.0}
STYLE_LAYERS = {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0, "relu5_1": 1.0}


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


class NonFiniteLoss(ValueError):
    """The loss became NaN or infinite; carries the best image found before that."""

    def __init__(self, iteration: int, best: np.ndarray | None):
        super().__init__(
            f"the loss became NaN or infinite at iteration {iteration}; "
            "try a lower --learning-rate or lower loss weights"
        )
        self.iteration = iteration
        self.best = best


def l2(x: tf.Tensor) -> tf.Tensor:
    """sum(x**2) / 2, as tf.nn.l2_loss."""
    return tf.reduce_sum(tf.square(x)) / 2


def _size(x: tf.Tensor) -> tf.Tensor:
    """The number of elements of x, as float32."""
    return tf.cast(tf.size(x), tf.float32)


@tf.custom_gradient
def gram(features: tf.Tensor) -> tf.Tensor:
    """Gram matrix F^T F / (H*W*N) of a 1xHxWxN activation, in float32 whatever its dtype."""
    shape = tf.shape(features)
    flat = tf.reshape(features, (-1, shape[-1]))
    size = _size(features)
    flat32 = tf.cast(flat, tf.float32)
    value = tf.matmul(flat32, flat32, transpose_a=True) / size

    def gradient(upstream: tf.Tensor) -> tf.Tensor:
        # dG/dF applied to U is F (U + U^T) / size: one matmul where autodiff does two, and
        # in the features' dtype (bfloat16 like the convolutions' gradients, when they are).
        both = tf.cast((upstream + tf.transpose(upstream)) / size, features.dtype)
        return tf.reshape(tf.matmul(flat, both), shape)

    return value, gradient


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
    features: dict[str, tf.Tensor],
    style_grams: list[dict[str, tf.Tensor]],
    blend: list[float] | tf.Tensor,
    layer_weights: dict[str, float],
) -> tf.Tensor:
    """Sum over styles i of blend_i * sum over layers of weight * 2 * l2(G - A) / A.size."""
    grams = {name: gram(features[name]) for name in layer_weights}
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


class _Objective:
    """The loss of an image against fixed targets; holds only static configuration."""

    def __init__(self, content_layers: dict[str, float], style_layers: dict[str, float]):
        self.content_layers = content_layers
        self.style_layers = style_layers
        self.layers = tuple(dict.fromkeys([*content_layers, *style_layers]))

    def terms(self, image: tf.Tensor, net: dict, targets: dict) -> tuple[tf.Tensor, ...]:
        """(content, style, tv) of a preprocessed 1xHxWx3 image."""
        features = vgg.extract(net, image, self.layers)
        # Losses in float32 whatever the precision of the network (gram() returns float32).
        content = {k: tf.cast(features[k], tf.float32) for k in self.content_layers}
        coefficients = targets["coefficients"]
        return (
            coefficients[0] * content_loss(content, targets["content"], self.content_layers),
            coefficients[1]
            * style_loss(features, targets["styles"], targets["blend"], self.style_layers),
            coefficients[2] * tv_loss(image),
        )

    def adam_step(self, image, m, v, t, net, targets, hyper) -> tuple[tf.Tensor, ...]:
        """One Adam step on image in place; returns the loss terms before the step."""
        with tf.GradientTape() as tape:
            terms = self.terms(image, net, targets)
            total = tf.add_n(terms)
        grad = tape.gradient(total, image)
        learning_rate, beta1, beta2, epsilon = hyper[0], hyper[1], hyper[2], hyper[3]
        t.assign_add(1.0)
        m.assign(beta1 * m + (1 - beta1) * grad)
        v.assign(beta2 * v + (1 - beta2) * tf.square(grad))
        # TF1's AdamOptimizer form: bias correction folded into the step size.
        step_size = learning_rate * tf.sqrt(1 - beta2**t) / (1 - beta1**t)
        image.assign_sub(step_size * m / (tf.sqrt(v) + epsilon))
        return terms


def _to_image(preprocessed: np.ndarray, mean_pixel: np.ndarray) -> np.ndarray:
    """A 1xHxWx3 preprocessed array as an 8-bit RGB image."""
    pixels = vgg.unprocess(preprocessed[0], mean_pixel)
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


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
) -> Iterator[Progress]:
    """Optimise an image towards content's features and styles' grams; yield each iteration.

    style_cache, if given, keeps the style grams between calls that use the same network (the
    caller keeps one per network), so a batch computes each style image's targets once.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got '{precision}'")
    blend = normalize_blend(style_blend_weights, len(styles))
    objective = _Objective(CONTENT_LAYERS, STYLE_LAYERS)
    vgg.check_layers(network, list(objective.layers))
    mean = network.mean_pixel
    # The network's convolutions run in precision (weights cast once, here).
    net = {
        name: (tf.constant(k, precision), tf.constant(b, precision))
        for name, (k, b) in network.weights.items()
    }

    def features(image: np.ndarray, layers: dict[str, float]) -> dict[str, tf.Tensor]:
        return vgg.extract(net, tf.constant(vgg.preprocess(image, mean)[None]), tuple(layers))

    def style_grams(style: np.ndarray) -> dict[str, tf.Tensor]:
        # The key holds everything the grams depend on besides the network.
        key = (
            hashlib.sha1(style.tobytes()).hexdigest(),
            style.shape,
            tuple(STYLE_LAYERS),
            precision,
        )
        cache = {} if style_cache is None else style_cache
        if key not in cache:
            style_features = features(style, STYLE_LAYERS)
            cache[key] = {name: gram(style_features[name]) for name in STYLE_LAYERS}
        return cache[key]

    # Targets are computed once, before the loop.
    targets = {
        "content": {
            k: tf.cast(f, tf.float32) for k, f in features(content, CONTENT_LAYERS).items()
        },
        "styles": [style_grams(style) for style in styles],
        "blend": tf.constant(blend, tf.float32),
        "coefficients": tf.constant([content_weight, style_weight, tv_weight], tf.float32),
    }

    shape = (1, *content.shape[:2], 3)
    if initial is None:
        start = np.random.default_rng(seed).standard_normal(shape) * NOISE_SCALE
    else:
        start = vgg.preprocess(initial, mean)[None]
    image = tf.Variable(start.astype(np.float32))
    m, v = tf.Variable(tf.zeros(shape)), tf.Variable(tf.zeros(shape))
    t = tf.Variable(0.0)
    hyper = tf.constant([learning_rate, BETA1, BETA2, EPSILON], tf.float32)
    step = tf.function(objective.adam_step)
    evaluate = tf.function(objective.terms)

    # Departure from the SPEC, for never losing a run: the starting image is the first
    # candidate for "best" (with the loss of iteration 1), so a run that only gets worse
    # or breaks down still has an image to give back.
    best, best_loss = None, float("inf")
    for i in range(1, iterations + 1):
        before = image.numpy() if i == 1 else None
        losses = Losses(*(float(x) for x in step(image, m, v, t, net, targets, hyper)))
        if not np.isfinite(losses.total):
            raise NonFiniteLoss(i, None if best is None else _to_image(best, mean))
        if before is not None and losses.total < best_loss:
            best, best_loss = before, losses.total
        stopping = stop is not None and stop()
        final = i == iterations or stopping
        if final or (checkpoint_iterations and i % checkpoint_iterations == 0):
            current = Losses(*(float(x) for x in evaluate(image, net, targets))).total
            if current < best_loss:
                best, best_loss = image.numpy(), current
            yield Progress(i, iterations, losses, _to_image(best, mean), final)
        else:
            yield Progress(i, iterations, losses)
        if stopping:
            return
