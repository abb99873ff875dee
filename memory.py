"""Whether a run fits in memory: a model of its peak, fitted to measurements, and what is free."""

from __future__ import annotations

import os
import shutil
import subprocess

if __package__:  # installed: the modules are the package neural_style_tf2
    from .images import Size
else:  # a checkout: the modules side by side
    from images import Size

# Peak memory of a run (float32 on the CPU), fitted with a margin to bench/memory.py's
# measurements with a full-width VGG-19 (table in bench/README.md); update these when the
# memory use changes. The base covers a first run, which reads the uncached 510 MB .mat.
MEMORY_BASE = 1200 * 2**20  # bytes: Python, TensorFlow, the weights
MEMORY_GPU_BASE = 600 * 2**20  # bytes on a GPU: the weights and TensorFlow's own buffers
MEMORY_PER_CONTENT_PIXEL = 2700  # bytes per output pixel: activations kept for the gradient
MEMORY_PER_STYLE_PIXEL = 700  # bytes per pixel of a resized style: one forward pass
MEMORY_PER_FILE_PIXEL = 56  # bytes per pixel of an input file decoded at full size (RGBA)
MEMORY_MARGIN = 1.2


def _host_available() -> int | None:
    """Bytes this process may grow to: its resident memory plus the system's (or cgroup's) free."""
    free = []
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    free.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    for limit, usage in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            with open(limit) as a, open(usage) as b:
                free.append(int(a.read()) - int(b.read()))
        except (OSError, ValueError):  # absent, or "max" (no limit)
            pass
    if not free:
        return None
    try:
        with open("/proc/self/statm") as statm:
            resident = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        resident = 0
    return max(0, min(free)) + resident


def _gpu_available() -> int | None:
    """Free bytes of the first NVIDIA GPU (nvidia-smi), or None where there is none to ask."""
    command = shutil.which("nvidia-smi")
    if command is None:
        return None
    query = [command, "--query-gpu=memory.free", "--format=csv,noheader,nounits", "--id=0"]
    try:
        text = subprocess.run(query, capture_output=True, text=True, timeout=10, check=True).stdout
        return int(text.split()[0]) * 2**20  # MiB
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def available(on_gpu: bool) -> int | None:
    """The memory a run may use: the GPU's free memory on a GPU, else the host's."""
    return _gpu_available() if on_gpu else _host_available()


def needed(output: Size, styles: list[Size], on_gpu: bool = False) -> int:
    """Bytes a run at these sizes needs at its peak, by the model above with its margin."""
    pixels = output.height * output.width * MEMORY_PER_CONTENT_PIXEL
    pixels += sum(s.height * s.width for s in styles) * MEMORY_PER_STYLE_PIXEL
    return round(MEMORY_MARGIN * ((MEMORY_GPU_BASE if on_gpu else MEMORY_BASE) + pixels))


def reading(largest: Size) -> int:
    """Bytes that decoding an input file of this size needs at its peak."""
    return round(
        MEMORY_MARGIN * (MEMORY_BASE + largest.height * largest.width * MEMORY_PER_FILE_PIXEL)
    )


def gigabytes(size: float) -> str:
    """Bytes as GB with one decimal."""
    return f"{size / 2**30:.1f} GB"
