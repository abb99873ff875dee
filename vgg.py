"""VGG-19 weights from MatConvNet .mat files, the feature extractor, pre/post-processing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.io
import tensorflow as tf

# The layers of VGG-19 that the tool can use, in network order (nothing past relu5_4).
LAYERS = (
    "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1",
    "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
    "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4", "pool3",
    "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "conv4_4", "relu4_4", "pool4",
    "conv5_1", "relu5_1", "conv5_2", "relu5_2", "conv5_3", "relu5_3", "conv5_4", "relu5_4",
)  # fmt: skip
CONV_LAYERS = tuple(name for name in LAYERS if name.startswith("conv"))
POOLINGS = ("max", "avg")


@dataclass(frozen=True)
class Network:
    """Convolution weights {conv name: (kernel hwio, bias)}, the mean pixel (RGB), the file."""

    weights: dict[str, tuple[np.ndarray, np.ndarray]]
    mean_pixel: np.ndarray
    source: str = "network file"  # where the weights came from, for error messages


def _unwrap(value: object) -> object:
    """Strip the 1x1 array wrappers that loadmat puts around structs, cells and strings."""
    while isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, np.ndarray) and value.dtype.names and value.size == 1:
        value = value.reshape(-1)[0]
    return value


def _field(struct: object, name: str, where: str) -> object:
    """The field name of a loadmat struct, or a ValueError naming where it is missing."""
    struct = _unwrap(struct)
    names = getattr(getattr(struct, "dtype", None), "names", None) or ()
    if name not in names:
        raise ValueError(f"{where} has no field '{name}'")
    return _unwrap(struct[name])


def _text(value: object) -> str:
    """A MATLAB char array as a Python string."""
    value = _unwrap(value)
    if isinstance(value, np.ndarray):
        return "".join(str(v) for v in value.reshape(-1))
    return str(value)


def parse_mat(data: dict, source: str = "network file") -> Network:
    """Read the conv weights and mean pixel from a loadmat dict (either layout), by field name."""
    if "layers" not in data:
        raise ValueError(f"{source} is not a MatConvNet VGG file: no 'layers' variable")
    if "meta" in data:  # new layout: meta.normalization.averageImage is the mean pixel
        normalization = _field(data["meta"], "normalization", f"{source}: meta")
    elif "normalization" in data:  # old layout: an average image, averaged here
        normalization = data["normalization"]
    else:
        raise ValueError(f"{source} is not a MatConvNet VGG file: no 'normalization' or 'meta'")
    average = np.asarray(_field(normalization, "averageImage", f"{source}: normalization"))
    if average.size % 3 or average.size == 0:
        raise ValueError(f"{source}: averageImage has {average.size} values, not RGB")
    mean_pixel = average.reshape(-1, 3).astype(np.float64).mean(axis=0).astype(np.float32)

    weights = {}
    for index, layer in enumerate(np.asarray(data["layers"]).reshape(-1)):
        name = _text(_field(layer, "name", f"{source}: layer {index + 1}"))
        if name not in CONV_LAYERS:
            continue
        where = f"{source}: layer {name}"
        cell = np.asarray(_field(layer, "weights", where), dtype=object).reshape(-1)
        if cell.size != 2:
            raise ValueError(f"{where} has {cell.size} weight arrays, expected kernel and bias")
        kernel, bias = (np.asarray(cell[0], np.float32), np.asarray(cell[1], np.float32))
        if kernel.ndim != 4 or bias.size != kernel.shape[3]:
            raise ValueError(f"{where} has kernel {kernel.shape} and bias {bias.shape}")
        # MatConvNet stores [width, height, in, out]; TensorFlow wants [height, width, in, out].
        weights[name] = (np.ascontiguousarray(kernel.transpose(1, 0, 2, 3)), bias.reshape(-1))
    return Network(weights=weights, mean_pixel=mean_pixel, source=source)


def load_mat(path: str) -> Network:
    """Read a MatConvNet VGG-19 .mat file; ValueError if it is not one."""
    try:
        data = scipy.io.loadmat(path, appendmat=False)  # the file named, not NAME.mat
    except MemoryError:  # a sound file too big for the memory left: not a damaged one
        raise
    except Exception as exc:  # scipy raises many kinds for damaged files; all mean unusable
        raise ValueError(f"{path} is not a readable MATLAB .mat file ({exc})") from None
    return parse_mat(data, path)


def layer_index(name: str) -> int:
    """The position of name in LAYERS; ValueError listing the valid names."""
    if name not in LAYERS:
        raise ValueError(f"unknown layer '{name}'; valid layers: {' '.join(LAYERS)}")
    return LAYERS.index(name)


def check_layers(network: Network, layers: list[str]) -> None:
    """ValueError (naming the network's file) unless its conv layers up to layers' chain up."""
    deepest = max(layer_index(name) for name in layers)
    channels, previous = 3, "the RGB image"
    for name in LAYERS[: deepest + 1]:
        if name not in CONV_LAYERS:
            continue
        if name not in network.weights:
            raise ValueError(f"{network.source} lacks layer '{name}', needed for {LAYERS[deepest]}")
        kernel = network.weights[name][0]
        if kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:  # see _conv's gradient
            raise ValueError(
                f"{network.source}: layer '{name}' has an even-sized {kernel.shape[0]}x"
                f"{kernel.shape[1]} kernel; not a VGG-19 file"
            )
        if kernel.shape[2] != channels:
            raise ValueError(
                f"{network.source}: layer '{name}' takes {kernel.shape[2]} channels but "
                f"{previous} gives {channels}; not a VGG-19 file"
            )
        channels, previous = kernel.shape[3], name


def preprocess(image: np.ndarray, mean_pixel: np.ndarray) -> np.ndarray:
    """RGB 0-255 to network input: minus the mean pixel."""
    return (image - mean_pixel).astype(np.float32)


def unprocess(image: np.ndarray, mean_pixel: np.ndarray) -> np.ndarray:
    """Network input back to RGB 0-255 (not clipped)."""
    return image + mean_pixel


Weights = dict[str, tuple[tf.Tensor, tf.Tensor, tf.Tensor]]


def constants(network: Network, dtype: tf.DType | str = tf.float32) -> Weights:
    """The network's weights as tensors of dtype, {conv name: (kernel, bias, kernel of the
    input gradient)}; the last is the kernel turned by 180 degrees, its in and out swapped."""
    return {
        name: (
            tf.constant(kernel, dtype),
            tf.constant(bias, dtype),
            tf.constant(np.ascontiguousarray(kernel[::-1, ::-1].transpose(0, 1, 3, 2)), dtype),
        )
        for name, (kernel, bias) in network.weights.items()
    }


def _conv(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor, turned: tf.Tensor) -> tf.Tensor:
    """conv2d(x, kernel) + bias (stride 1, SAME), its input gradient a convolution by turned."""

    # The gradient is written by hand, for speed: TensorFlow's (Conv2DBackpropInput) has
    # oneDNN reorder the filter at every step, while a forward convolution keeps its filter
    # reordered (TF_ONEDNN_ASSUME_FROZEN_WEIGHTS, set by the command). With a kernel of odd
    # size and SAME padding the two give the same numbers. Adam's steps took 2.5-3 ms less at
    # every size in bfloat16 (15.3 to 12.1 ms at 64x48, 96.2 to 93.8 ms at 256x192).
    @tf.custom_gradient
    def convolve(x: tf.Tensor) -> tuple[tf.Tensor, Callable]:
        def gradient(upstream: tf.Tensor) -> tf.Tensor:
            return tf.nn.conv2d(upstream, turned, strides=1, padding="SAME")

        return tf.nn.bias_add(tf.nn.conv2d(x, kernel, strides=1, padding="SAME"), bias), gradient

    return convolve(x)


def compiled(function: Callable) -> Callable:
    """function as a TensorFlow graph function, traced as plain Python (no autograph)."""
    # What the tool compiles has no control flow on tensors, so autograph's rewriting of its
    # source buys nothing; it cost 0.5 s of a run's first trace (0.77 s with it, 0.26 s
    # without, at 64x48).
    return tf.function(function, autograph=False)


def any_size(value: np.ndarray | tf.Tensor) -> tf.Variable:
    """A 1xHxWxC value as a variable whose shape leaves H and W open, so that a function
    traced with it serves every size."""
    value = tf.convert_to_tensor(value)
    shape = tf.TensorShape([value.shape[0], None, None, value.shape[-1]])
    return tf.Variable(value, shape=shape, trainable=False)


def extract(
    weights: Weights,
    image: tf.Tensor,
    layers: tuple[str, ...],
    pooling: str = "max",
    hook: Callable[[str, tf.Tensor], tf.Tensor] | None = None,
) -> dict[str, tf.Tensor]:
    """Run the network up to the deepest of layers, in the dtype of the weights.

    hook(name, x), if given, is applied to each wanted layer's output; what it returns is
    both that layer's feature and what the network goes on with.
    """
    wanted = set(layers)
    deepest = max(LAYERS.index(name) for name in layers)
    out, x = {}, tf.cast(image, weights["conv1_1"][0].dtype)
    for name in LAYERS[: deepest + 1]:
        kind = name[:4]
        if kind == "conv":
            x = _conv(x, *weights[name])
        elif kind == "relu":
            x = tf.nn.relu(x)
        elif pooling == "avg":
            x = tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="SAME")
        else:
            x = tf.nn.max_pool2d(x, ksize=2, strides=2, padding="SAME")
        if name in wanted:
            out[name] = x = x if hook is None else hook(name, x)
    return out
