"""What the machine runs natively (the choice of `--precision auto`), and a oneDNN setting."""

from __future__ import annotations

import functools
import sys

# CPU flags (Linux /proc/cpuinfo) of native bfloat16 arithmetic: AVX-512 BF16 (Intel since
# Cooper Lake, AMD since Zen 4) and AMX (Intel since Sapphire Rapids).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
BF16_GPU_CAPABILITY = (8, 0)  # NVIDIA Ampere and later have bfloat16 tensor cores

# Set to 1, oneDNN (TensorFlow's CPU kernels) takes every filter as never changing: each
# convolution reorders its filter once into the blocked layout it runs fastest on and keeps
# it, where otherwise it reads the filter in TensorFlow's layout at every call. A kernel keeps
# the first filter it saw, so this is right only in a process that holds one network.
FROZEN_WEIGHTS = "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"


def cpu_flags() -> set[str]:
    """The CPU's feature flags, empty where the system does not list them (macOS, Windows)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def gpu_capability() -> tuple[int, int] | None:
    """The compute capability of TensorFlow's first GPU, or None without an NVIDIA GPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
    return tuple(capability) if capability else None


def choose_precision(flags: set[str], capability: tuple[int, int] | None) -> tuple[str, str]:
    """(precision, why) for this hardware: bfloat16 where it runs natively, else float32."""
    if capability is not None:
        shown = f"{capability[0]}.{capability[1]}"
        if capability >= BF16_GPU_CAPABILITY:
            return "bfloat16", f"the GPU (compute capability {shown}) has bfloat16 tensor cores"
        return "float32", f"the GPU (compute capability {shown}) has no bfloat16 tensor cores"
    native = sorted(flags.intersection(BF16_CPU_FLAGS))
    if native:
        return "bfloat16", f"the CPU runs bfloat16 natively ({', '.join(native)})"
    return "float32", f"no native bfloat16 found on this {sys.platform} machine's CPU"


@functools.cache
def on_gpu() -> bool:
    """Whether TensorFlow runs on a GPU."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


@functools.cache
def auto_precision() -> tuple[str, str]:
    """(precision, why) that `--precision auto` takes on this machine."""
    return choose_precision(cpu_flags(), gpu_capability())


def resolve_precision(requested: str) -> tuple[str, str]:
    """The precision to run in, and why: auto's choice, or the one asked for."""
    if requested == "auto":
        return auto_precision()
    return requested, "asked for with --precision"
