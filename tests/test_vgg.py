"""vgg.py: both MatConvNet layouts, kernel orientation, the extractor, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import tensorflow as tf
from fake_vgg import TINY_WIDTHS, write_vgg_mat

import vgg


def test_both_layouts_give_identical_features(tmp_path):
    old, new = tmp_path / "old.mat", tmp_path / "new.mat"
    write_vgg_mat(str(old), "old", seed=5)
    write_vgg_mat(str(new), "new", seed=5)
    a, b = vgg.load_mat(str(old)), vgg.load_mat(str(new))
    np.testing.assert_allclose(a.mean_pixel, [123.68, 116.779, 103.939], rtol=1e-6)
    np.testing.assert_array_equal(a.mean_pixel, b.mean_pixel)
    image = tf.random.normal((1, 20, 20, 3), seed=1) * 50
    fa = vgg.extract(vgg.constants(a), image, ("relu5_1", "relu4_2"))
    fb = vgg.extract(vgg.constants(b), image, ("relu5_1", "relu4_2"))
    assert set(fa) == {"relu5_1", "relu4_2"}
    for name in fa:
        np.testing.assert_array_equal(fa[name].numpy(), fb[name].numpy())
    assert fa["relu5_1"].shape == (1, 2, 2, TINY_WIDTHS[4])


def test_mean_pixel_is_the_average_image_mean(tmp_path):
    average = np.zeros((2, 2, 3), np.float32)
    average[0, 0] = [4, 8, 12]  # mean over H and W: [1, 2, 3]
    path = tmp_path / "net.mat"
    write_vgg_mat(str(path), "old")
    data = scipy.io.loadmat(str(path))
    data["normalization"] = {"averageImage": average}
    scipy.io.savemat(str(path), {k: v for k, v in data.items() if not k.startswith("__")})
    network = vgg.load_mat(str(path))
    np.testing.assert_allclose(network.mean_pixel, [1, 2, 3])


def test_kernel_is_transposed_from_width_height(tmp_path):
    """An asymmetric [w, h, in, out] kernel: a vertical-only difference stays vertical."""
    path = tmp_path / "net.mat"
    write_vgg_mat(str(path), "new")
    data = scipy.io.loadmat(str(path))
    kernel = np.zeros((3, 3, 3, 4), np.float32)  # MatConvNet order [w, h, in, out]
    kernel[1, 2, 0, 0] = 1.0  # x offset 0, y offset +1: picks the pixel below
    data["layers"][0, 0][0, 0]["weights"][0, 0] = kernel
    data["layers"][0, 0][0, 0]["weights"][0, 1] = np.zeros((1, 4), np.float32)
    network = vgg.parse_mat(data)
    image = np.zeros((1, 5, 5, 3), np.float32)
    image[0, 3, 2, 0] = 7.0  # row 3, column 2
    out = vgg.extract(vgg.constants(network), tf.constant(image), ("conv1_1",))["conv1_1"]
    channel = out.numpy()[0, :, :, 0]
    assert channel[2, 2] == 7.0  # the pixel below (2, 2) is (3, 2)
    assert np.count_nonzero(channel) == 1


def test_extractor_stops_at_the_deepest_layer(network):
    image = tf.zeros((1, 8, 8, 3))
    assert set(vgg.extract(vgg.constants(network), image, ("relu1_1",))) == {"relu1_1"}


def test_avg_and_max_pooling_differ(network):
    image = tf.random.normal((1, 8, 8, 3), seed=2) * 50
    weights = vgg.constants(network)
    mx = vgg.extract(weights, image, ("pool1",), "max")["pool1"].numpy()
    av = vgg.extract(weights, image, ("pool1",), "avg")["pool1"].numpy()
    relu = vgg.extract(weights, image, ("relu1_2",))["relu1_2"].numpy()
    np.testing.assert_allclose(mx[0, 0, 0], relu[0, :2, :2].max(axis=(0, 1)), rtol=1e-6)
    np.testing.assert_allclose(av[0, 0, 0], relu[0, :2, :2].mean(axis=(0, 1)), rtol=1e-5)


def test_gradient_is_that_of_the_plain_network(network):
    # extract() writes its convolutions' input gradient by hand; autodiff through
    # tf.nn.conv2d, layer by layer, is the reference.
    image = tf.random.normal((1, 13, 10, 3), seed=3) * 50
    layers = ("relu1_1", "conv2_1", "relu3_1")
    rng = np.random.default_rng(4)
    mix = {}

    def total(features: dict) -> tf.Tensor:
        for name, x in features.items():
            mix.setdefault(name, tf.constant(rng.standard_normal(x.shape), tf.float32))
        return tf.add_n([tf.reduce_sum(features[n] * mix[n]) for n in layers])

    def plain(x: tf.Tensor) -> dict:
        out = {}
        for name in vgg.LAYERS[: vgg.layer_index("relu3_1") + 1]:
            if name.startswith("conv"):
                kernel, bias = network.weights[name]
                x = tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "SAME"), bias)
            elif name.startswith("relu"):
                x = tf.nn.relu(x)
            else:
                x = tf.nn.max_pool2d(x, 2, 2, "SAME")
            out[name] = x
        return {n: out[n] for n in layers}

    gradients = []
    for features in (plain, lambda x: vgg.extract(vgg.constants(network), x, layers)):
        with tf.GradientTape() as tape:
            tape.watch(image)
            loss = total(features(image))
        gradients.append(tape.gradient(loss, image).numpy())
    assert np.abs(gradients[0]).max() > 0
    np.testing.assert_allclose(
        gradients[1], gradients[0], rtol=1e-4, atol=1e-4 * np.abs(gradients[0]).max()
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("layers"), "no 'layers'"),
        (lambda d: d.pop("meta"), "no 'normalization' or 'meta'"),
    ],
)
def test_not_a_vgg_file(tmp_path, change, message):
    path = tmp_path / "net.mat"
    write_vgg_mat(str(path), "new")
    data = scipy.io.loadmat(str(path))
    change(data)
    with pytest.raises(ValueError, match=message):
        vgg.parse_mat(data)


def test_conv_layer_without_weights(tmp_path):
    path = tmp_path / "net.mat"
    write_vgg_mat(str(path), "new")
    data = scipy.io.loadmat(str(path))
    layer = data["layers"][0, 0]
    stripped = {name: layer[0, 0][name] for name in layer.dtype.names if name != "weights"}
    data["layers"][0, 0] = stripped
    scipy.io.savemat(str(path), {k: v for k, v in data.items() if not k.startswith("__")})
    with pytest.raises(ValueError, match="conv1_1 has no field 'weights'"):
        vgg.load_mat(str(path))


def test_missing_layer_is_named(tmp_path):
    path = tmp_path / "net.mat"
    write_vgg_mat(str(path), "new", drop=("conv4_2",))
    network = vgg.load_mat(str(path))
    with pytest.raises(ValueError, match="lacks layer 'conv4_2'"):
        vgg.check_layers(network, ["relu4_2"])
    vgg.check_layers(network, ["relu3_1"])  # shallower layers are still usable
    with pytest.raises(ValueError, match="unknown layer 'relu9_9'"):
        vgg.check_layers(network, ["relu9_9"])


def test_garbage_and_truncated_files(tmp_path, network_path):
    text = tmp_path / "net.mat"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not a readable MATLAB"):
        vgg.load_mat(str(text))
    cut = tmp_path / "cut.mat"
    cut.write_bytes(network_path.read_bytes()[:5000])
    with pytest.raises(ValueError, match=str(cut)):
        vgg.load_mat(str(cut))


def test_a_file_that_cannot_be_opened_is_named_as_it_is(tmp_path):
    # (scipy would try NAME.mat, and report that it does not exist)
    folder = tmp_path / "weights.bin"
    folder.mkdir()
    with pytest.raises(ValueError, match="not a readable MATLAB") as caught:
        vgg.load_mat(str(folder))
    assert "weights.bin.mat" not in str(caught.value)


def test_too_little_memory_is_not_a_damaged_file(network_path, monkeypatch):
    def short_of_memory(path, **options):
        raise MemoryError

    monkeypatch.setattr(vgg.scipy.io, "loadmat", short_of_memory)
    with pytest.raises(MemoryError):
        vgg.load_mat(str(network_path))
