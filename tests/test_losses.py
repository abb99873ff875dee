"""The loss formulas against numbers worked out by hand with numpy."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import settings
import stylize

RNG = np.random.default_rng(0)


def test_l2_matches_tf():
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    assert stylize.l2(tf.constant(x)).numpy() == pytest.approx(np.sum(x**2) / 2, rel=1e-6)


def test_gram_by_hand():
    # 1x1x2x2: pixels (1, 2) and (3, 4); F^T F = [[10, 14], [14, 20]]; H*W*N = 4.
    features = np.array([[[[1, 2], [3, 4]]]], np.float32)
    np.testing.assert_allclose(stylize.gram(tf.constant(features)), [[2.5, 3.5], [3.5, 5.0]])


def test_content_loss_by_hand():
    f = RNG.standard_normal((1, 3, 4, 5)).astype(np.float32)
    p = RNG.standard_normal((1, 3, 4, 5)).astype(np.float32)
    expected = 2 * (np.sum((f - p) ** 2) / 2) / p.size
    got = stylize.content_loss({"a": tf.constant(f)}, {"a": tf.constant(p)}, {"a": 1.0})
    assert got.numpy() == pytest.approx(expected, rel=1e-5)
    # Layer weights scale each layer's term.
    two = stylize.content_loss(
        {"a": tf.constant(f), "b": tf.constant(f)},
        {"a": tf.constant(p), "b": tf.constant(f)},
        {"a": 0.25, "b": 0.75},
    )
    assert two.numpy() == pytest.approx(0.25 * expected, rel=1e-5)


def _gram_np(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    return flat.T @ flat / x.size


def test_with_gram_gradient_by_hand():
    # L = sum(V * x) + sum(W * G) for (x, G) = with_gram(F): dL/dF = V + F (W + W^T) / size.
    f = RNG.standard_normal((1, 3, 4, 5)).astype(np.float32)
    v = RNG.standard_normal((1, 3, 4, 5)).astype(np.float32)
    w = RNG.standard_normal((5, 5)).astype(np.float32)
    x = tf.constant(f)
    with tf.GradientTape() as tape:
        tape.watch(x)
        same, g = stylize.with_gram(x)
        loss = tf.reduce_sum(v * same) + tf.reduce_sum(w * g)
    np.testing.assert_array_equal(same.numpy(), f)
    np.testing.assert_allclose(g.numpy(), _gram_np(f), rtol=1e-5)
    flat = f.reshape(-1, 5).astype(np.float64)
    expected = v + (flat @ (w + w.T) / f.size).reshape(f.shape)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_gram_of_bfloat16_features_is_float32():
    f = tf.cast(RNG.standard_normal((1, 6, 6, 4)), tf.bfloat16)
    g = stylize.gram(f)
    assert g.dtype == tf.float32
    # Products and sums in float32 (exact for these values), the sum rounded to bfloat16 once.
    flat = tf.cast(f, tf.float64).numpy().reshape(-1, 4)
    rounded = tf.cast(tf.cast(flat.T @ flat, tf.bfloat16), tf.float64).numpy()
    np.testing.assert_allclose(g.numpy(), rounded / f.shape.num_elements(), rtol=1e-6)


def test_style_loss_by_hand_with_blend():
    f1 = RNG.standard_normal((1, 4, 4, 3)).astype(np.float32)
    f2 = RNG.standard_normal((1, 2, 2, 6)).astype(np.float32)
    styles = [
        {"x": RNG.standard_normal((3, 3)), "y": RNG.standard_normal((6, 6))},
        {"x": RNG.standard_normal((3, 3)), "y": RNG.standard_normal((6, 6))},
    ]
    blend = [0.25, 0.75]
    expected = 0.0
    for b, a in zip(blend, styles, strict=True):
        term = np.sum((_gram_np(f1) - a["x"]) ** 2) / 9 + np.sum((_gram_np(f2) - a["y"]) ** 2) / 36
        expected += b * term
    tf_styles = [{k: tf.constant(v, tf.float32) for k, v in s.items()} for s in styles]
    grams = {"x": stylize.gram(tf.constant(f1)), "y": stylize.gram(tf.constant(f2))}
    got = stylize.style_loss(grams, tf_styles, blend, {"x": 1.0, "y": 1.0})
    assert got.numpy() == pytest.approx(expected, rel=1e-5)


def test_tv_loss_by_hand():
    image = RNG.standard_normal((1, 5, 7, 3)).astype(np.float32)
    dy = image[:, 1:] - image[:, :-1]
    dx = image[:, :, 1:] - image[:, :, :-1]
    expected = 2 * (np.sum(dy**2) / 2 / dy.size + np.sum(dx**2) / 2 / dx.size)
    assert stylize.tv_loss(tf.constant(image)).numpy() == pytest.approx(expected, rel=1e-5)
    assert stylize.tv_loss(tf.ones((1, 4, 4, 3))).numpy() == 0


@pytest.mark.parametrize("rows", [None, 3, 4, 5])
def test_differences_gradient_by_finite_differences(rows):
    # A weighted sum of the differences, so that each has its own upstream gradient; rows=4 is
    # a band holding the next band's first row, rows=3 two more, rows=5 a last band.
    image = RNG.standard_normal((1, 5, 4, 3))
    weights = [RNG.standard_normal(shape) for shape in ((1, 4, 4, 3), (1, rows or 5, 3, 3))]

    def loss(x: tf.Tensor) -> tf.Tensor:
        dy, dx = stylize.differences(x, rows)
        return tf.reduce_sum(weights[0] * dy**2) + tf.reduce_sum(weights[1] * dx**2)

    x = tf.constant(image)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = loss(x)
    got = tape.gradient(value, x).numpy()
    expected, h = np.zeros_like(image), 1e-6
    for index in np.ndindex(image.shape):
        step = np.zeros_like(image)
        step[index] = h
        expected[index] = (
            (loss(tf.constant(image + step)) - loss(tf.constant(image - step))) / 2 / h
        )
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_tv_curvature_is_the_second_difference_of_the_tv_loss():
    # tv_loss is quadratic: moving one value by 1 each way gives its second derivative exactly.
    height, width, weight = 5, 7, 3.0
    x = RNG.standard_normal((1, height, width, 3))
    curvature = stylize.tv_curvature(height, width, weight)
    assert curvature.shape == (height, width, 1)

    def tv(y: np.ndarray) -> float:
        return weight * float(stylize.tv_loss(tf.constant(y, tf.float32)))

    for i, j, c in [(0, 0, 0), (0, 3, 1), (2, 0, 2), (2, 3, 0), (4, 6, 1)]:
        step = np.zeros_like(x)
        step[0, i, j, c] = 1.0
        second = tv(x + step) - 2 * tv(x) + tv(x - step)
        assert curvature[i, j, 0] == pytest.approx(second, rel=1e-3)


def test_blend_weights_normalised():
    assert settings.normalize_blend(None, 4) == [0.25] * 4
    assert settings.normalize_blend([1.0, 3.0], 2) == [0.25, 0.75]
    for bad in ([0.0, 0.0], [-1.0, 2.0], [float("nan"), 1.0]):
        with pytest.raises(ValueError, match="--style-blend-weights"):
            settings.normalize_blend(bad, 2)
    with pytest.raises(ValueError, match="2 values for 3 styles"):
        settings.normalize_blend([1.0, 1.0], 3)
