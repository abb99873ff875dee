"""Whether a run fits in memory: a model of its peak, fitted to measurements, and what is free."""

from __future__ import annotations

import os
import re
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
    # The tiled run's base, the smaller: a budget that a run fits in tiles must not be
    # refused for reading its small inputs.
    pixels = largest.height * largest.width * MEMORY_PER_FILE_PIXEL
    return round(TILED_MARGIN * (MEMORY_TILED_BASE + pixels))


def gigabytes(size: float) -> str:
    """Bytes as GB with one decimal."""
    return f"{size / 2**30:.1f} GB"


# --- tiles: an iteration too big for the budget is computed tile by tile (tiles.py) ---------
# Tile cores and halos are multiples of TILE_ALIGN pixels (VGG's four 2x2 poolings before
# relu5_1), so every tile's pooling grids line up with the whole image's.
TILE_ALIGN = 16
TILE_HALO = 32  # pixels of context around each tile's core (chosen in bench/README.md)
MIN_TILE = 32  # the smallest core side tried before giving up
# Bytes per pixel of a tile's window (core and halo): the forward pass kept for the backward,
# as MEMORY_PER_CONTENT_PIXEL; bfloat16 activations take about this fraction of float32's.
BFLOAT16_FRACTION = 0.7
# Fitted with a margin to two tiled runs (bench/README.md): Python, TensorFlow, the weights;
# per output pixel, what a tiled run holds whatever the tile (the image, its gradient and
# Adam's moments, the content, the best and starting images, the content targets); per style
# pixel, a style read, resized and preprocessed (its Grams are computed in tiles).
MEMORY_TILED_BASE = 700 * 2**20
MEMORY_PER_TILED_PIXEL = 220
MEMORY_PER_TILED_STYLE_PIXEL = 56
MEMORY_PER_LBFGS_PIXEL = 600  # L-BFGS's float64 iterate, gradient and 10 curvature pairs
TILED_MARGIN = 1.1


def tile_window(tile: int, size: Size | None = None) -> int:
    """The pixels of a window around a core of tile x tile pixels (in an image of size, no
    more than the image)."""
    side = tile + 2 * TILE_HALO
    if size is None:
        return side**2
    return min(side, size.height) * min(side, size.width)


def window_bytes(pixels: int, precision: str) -> float:
    """Bytes a window's forward and backward pass needs, for a window of this many pixels."""
    fraction = BFLOAT16_FRACTION if precision == "bfloat16" else 1
    return pixels * MEMORY_PER_CONTENT_PIXEL * fraction


def tiled_needed(
    output: Size, styles: list[Size], window: int, precision: str, lbfgs: bool, on_gpu: bool
) -> int:
    """Bytes a run at these sizes needs at its peak when each iteration goes through windows
    of this many pixels."""
    per_pixel = MEMORY_PER_TILED_PIXEL + (MEMORY_PER_LBFGS_PIXEL if lbfgs else 0)
    pixels = output.height * output.width * per_pixel
    pixels += sum(s.height * s.width for s in styles) * MEMORY_PER_TILED_STYLE_PIXEL
    base = MEMORY_GPU_BASE if on_gpu else MEMORY_TILED_BASE
    return round(TILED_MARGIN * (base + pixels + window_bytes(window, precision)))


def window_area(
    output: Size, styles: list[Size], budget: int, precision: str, lbfgs: bool, on_gpu: bool
) -> int | None:
    """The most pixels a window may have for a tiled run at these sizes to fit in budget
    bytes; None if not even the window of a MIN_TILE core fits."""
    fixed = tiled_needed(output, styles, 0, precision, lbfgs, on_gpu)
    area = int((budget - fixed) / TILED_MARGIN / window_bytes(1, precision))
    return area if area >= tile_window(MIN_TILE) else None


def parse_size(text: str) -> int:
    """'6GB', '512MB', '1.5G', ... as bytes (binary units); ValueError for anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMGT])i?B?\s*", text, re.IGNORECASE)
    if match and 0 < float(match[1]) < 2**60:
        size = round(float(match[1]) * 2 ** (10 * "KMGT".index(match[2].upper()) + 10))
        if size:  # 0.0001KB rounds to no bytes
            return size
    raise ValueError(f"must be a size such as 6GB or 1500MB, got '{text}'")
