"""Speed and memory benchmark of the CLI: seconds per iteration, peak RSS, start-up, loss.

The network is a full-width VGG-19 with random weights (tests/fake_vgg.py): the figures
measure speed and memory only, never picture quality. Each configuration runs the real
command (`python neural_style.py ...`) in a fresh process; see bench/README.md.

    python bench/bench.py                                  # the full table
    python bench/bench.py --sizes 512x384 --configs float32 --iterations 12
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import fake_vgg  # noqa: E402
from PIL import Image  # noqa: E402

# Configurations: extra CLI options on top of the fixed ones.
CONFIGS = {
    "float32": ["--precision", "float32", "--scales", "1"],
    "bfloat16": ["--precision", "bfloat16", "--scales", "1"],
    "default": [],
    "default-bf16": ["--precision", "bfloat16"],
}
SIZES = ("256x192", "512x384", "1024x768")
ITERATIONS = 10  # per timed run: WARMUP, then the median of the rest
WARMUP = 3
CONTENT = ROOT / "examples" / "1-content.jpg"
STYLE = ROOT / "examples" / "1-style.jpg"

# Runs the CLI, then prints the process's peak resident memory (VmHWM) to stdout. Read in
# the process itself: a child's ru_maxrss on Linux can include its parent's memory.
WRAPPER = """
import atexit, runpy, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print("peak-kb", line.split()[1], flush=True)
atexit.register(peak)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@dataclass
class Run:
    """One CLI run: when each line of stderr arrived, the losses printed, peak memory."""

    started: float
    ended: float = 0.0
    iterations: dict[int, float] = field(default_factory=dict)  # i -> arrival of "Iteration i/"
    totals: dict[int, float] = field(default_factory=dict)  # i -> total loss printed at i
    peak_kb: int = 0
    stderr: list[str] = field(default_factory=list)

    def seconds_per_iteration(self, first: int = WARMUP + 1) -> float:
        """Median time between consecutive "Iteration" lines, for iterations after first."""
        gaps = [t - self.iterations[i - 1] for i, t in self.iterations.items() if i > first]
        return statistics.median(gaps) if gaps else float("nan")

    @property
    def startup(self) -> float:
        """Process start to the end of the first iteration (its "Iteration 1/" line)."""
        return self.iterations[min(self.iterations)] - self.started


def run_cli(args: list[str], env: dict[str, str]) -> Run:
    """Run neural_style.py with args, time-stamping each stderr line as it arrives."""
    command = [sys.executable, "-c", WRAPPER, str(ROOT / "neural_style.py"), *args]
    Path(args[args.index("--output") + 1]).unlink(missing_ok=True)
    run = Run(started=time.perf_counter())
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(process.stdout), daemon=True)
    reader.start()
    last = 0
    for line in process.stderr:
        now = time.perf_counter()
        run.stderr.append(line.rstrip("\n"))
        if match := re.match(r"Iteration (\d+)/", line):
            last = int(match.group(1))
            run.iterations[last] = now
        elif match := re.match(r"\s*total loss: (\S+)", line):
            run.totals[last] = float(match.group(1))
    status = process.wait()
    run.ended = time.perf_counter()
    reader.join()
    for line in out:
        if line.startswith("peak-kb"):
            run.peak_kb = int(line.split()[1])
    if status != 0:
        tail = "\n".join(run.stderr[-5:])
        raise RuntimeError(f"neural_style.py {' '.join(args)} failed ({status}):\n{tail}")
    return run


def conv_shapes(width: int, height: int, deepest: str) -> list[tuple[int, int, int, int]]:
    """(H, W, Cin, Cout) of each conv layer run up to the layer deepest, at an image size."""
    shapes = []
    for name, kind, kernel in fake_vgg.layer_specs(fake_vgg.FULL_WIDTHS):
        if kind == "conv":
            shapes.append((height, width, kernel[2], kernel[3]))
        elif kind == "pool":  # 2x2, stride 2, SAME: ceil
            height, width = -(-height // 2), -(-width // 2)
        if name == deepest:
            break
    return shapes


def iteration_flops(width: int, height: int) -> float:
    """Convolution FLOPs of one iteration: forward plus the input-gradient backward."""
    import settings
    import vgg

    layers = [*settings.CONTENT_LAYERS, *settings.STYLE_LAYERS]
    deepest = max(layers, key=vgg.LAYERS.index)
    forward = sum(
        2 * h * w * cin * cout * 9 for h, w, cin, cout in conv_shapes(width, height, deepest)
    )
    return 2 * forward


def conv_throughput(dtype: str, repeats: int = 15) -> float:
    """GFLOP/s of a 1x128x128x256 -> 256 3x3 SAME convolution (median of repeats)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = tf.cast(rng.standard_normal((1, 128, 128, 256)), dtype)
    w = tf.cast(rng.standard_normal((3, 3, 256, 256)) * 0.02, dtype)
    conv = tf.function(
        lambda x, w: tf.reduce_sum(tf.cast(tf.nn.conv2d(x, w, 1, "SAME"), "float32"))
    )
    for _ in range(3):
        conv(x, w).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        conv(x, w).numpy()
        times.append(time.perf_counter() - start)
    return 2 * 128 * 128 * 256 * 256 * 9 / statistics.median(times) / 1e9


def prepare_image(path: Path, width: int, height: int, folder: Path) -> Path:
    """An image cropped to the aspect of width x height, resized to it, saved as PNG."""
    image = Image.open(path).convert("RGB")
    scale = min(image.width / width, image.height / height)
    w, h = round(width * scale), round(height * scale)
    left, top = (image.width - w) // 2, (image.height - h) // 2
    image = image.crop((left, top, left + w, top + h)).resize((width, height), Image.LANCZOS)
    out = folder / f"{path.stem}-{width}x{height}.png"
    image.save(out)
    return out


def size(text: str) -> tuple[int, int]:
    """'WxH' as (W, H)."""
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"size must be WxH, got '{text}'")
    return int(match.group(1)), int(match.group(2))


def main() -> None:
    """Parse the options, write the network, run every configuration at every size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=size, nargs="+", default=[size(s) for s in SIZES])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--iterations", type=int, default=ITERATIONS, help="per timed run")
    parser.add_argument("--content", type=Path, default=CONTENT)
    parser.add_argument("--style", type=Path, default=STYLE)
    parser.add_argument("--dir", type=Path, help="folder for the network and inputs (kept)")
    parser.add_argument(
        "--reach", type=size, metavar="WxH", help="also run the time-to-loss comparison at WxH"
    )
    parser.add_argument("--reach-iterations", type=int, default=1000, help="of the baselines")
    parser.add_argument("--reach-budget", type=int, default=300, help="--iterations of defaults")
    parser.add_argument("--quality", type=int, default=200, help="iteration to compare losses at")
    args = parser.parse_args()
    if args.iterations < WARMUP + 5:
        parser.error(f"--iterations must be at least {WARMUP + 5} (warm-up + 5 timed)")
    in_folder(args.dir, lambda folder: bench(args, folder))


def in_folder(folder: Path | None, work: Callable[[Path], None]) -> None:
    """work(folder), creating and keeping folder; in a temporary folder if it is None."""
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
        work(folder)
    else:
        with tempfile.TemporaryDirectory() as name:
            work(Path(name))


def generated_network(folder: Path, measures: str) -> Path:
    """The full-width random VGG-19 in folder (written if absent); says so, and the time."""
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}, load average {os.getloadavg()[0]:.2f}")
    mat = folder / "vgg19-generated.mat"
    if not mat.is_file():
        fake_vgg.write_vgg_mat(str(mat), "new", widths=fake_vgg.FULL_WIDTHS)
    print(f"network: {mat}: full-width VGG-19 with RANDOM weights ({measures}, not quality)")
    return mat


def warm_up(mat: Path, env: dict[str, str], folder: Path) -> None:
    """One untimed tiny run: it fills the weights cache and the OS's file cache."""
    small = prepare_image(CONTENT, 64, 48, folder)
    run_cli(
        ["--content", str(small), "--styles", str(small), "--network", str(mat)]
        + ["--output", str(folder / "out.png"), "--iterations", "1"],
        env,
    )


def bench(args: argparse.Namespace, folder: Path) -> None:
    """Print the throughput lines and the table."""
    mat = generated_network(folder, "speed only")
    print(f"content {args.content}, style {args.style}")
    peak = {dtype: conv_throughput(dtype) for dtype in ("float32", "bfloat16")}
    for dtype, value in peak.items():
        print(f"conv throughput {dtype}: {value:.0f} GFLOP/s (1x128x128x256 -> 256, 3x3)")
    env = {**os.environ, "NEURAL_STYLE_HOME": str(folder / "cache")}
    fixed = ["--styles", str(args.style), "--network", str(mat), "--output"]

    warm_up(mat, env, folder)

    header = (
        f"{'config':<13}{'size':>10}{'s/iter':>8}{'GFLOP/it':>10}{'GFLOP/s':>9}{'of peak':>9}"
        f"{'peak RSS MB':>13}{'start-up s':>12}{'run s':>8}{'iters':>7}{'loss':>12}"
    )
    print(f"\n{header}")
    for width, height in args.sizes:
        content = prepare_image(args.content, width, height, folder)
        flops = iteration_flops(width, height) / 1e9
        for name in args.configs:
            # A coarse-to-fine run gets --iterations at the output size (and the rest before).
            iterations, output_first = output_size_iterations(
                args.iterations, height, width, CONFIGS[name]
            )
            options = ["--iterations", str(iterations), "--print-iterations", str(iterations)]
            run = run_cli(
                ["--content", str(content), *fixed, str(folder / "out.png"), *options]
                + CONFIGS[name],
                env,
            )
            seconds = run.seconds_per_iteration(output_first + WARMUP)
            dtype = "bfloat16" if "bfloat16" in CONFIGS[name] else "float32"
            print(
                f"{name:<13}{f'{width}x{height}':>10}{seconds:>8.3f}{flops:>10.1f}"
                f"{flops / seconds:>9.0f}{flops / seconds / peak[dtype]:>9.0%}"
                f"{run.peak_kb / 1024:>13.0f}{run.startup:>12.2f}{run.ended - run.started:>8.1f}"
                f"{iterations:>7}{run.totals[max(run.totals)]:>12.4g}",
                flush=True,
            )
    if args.reach:
        reach(args, folder, env, fixed)


def at_output_size(iterations: int, height: int, width: int, options: list[str]) -> int:
    """How many of iterations a configuration runs at the output size (the last ones)."""
    import settings
    import stylize
    from images import Size

    scales = int(options[options.index("--scales") + 1]) if "--scales" in options else None
    count = len(stylize.scale_sizes(Size(height, width), scales or settings.DEFAULTS.scales))
    return stylize.split_iterations(iterations, count)[-1]


def output_size_iterations(
    iterations: int, height: int, width: int, options: list[str]
) -> tuple[int, int]:
    """(total iterations, first iteration at the output size) to run iterations there."""
    total = iterations
    while at_output_size(total, height, width, options) < iterations:
        total += 1
    return total, total - iterations + 1


def reach(args: argparse.Namespace, folder: Path, env: dict, fixed: list[str]) -> None:
    """Time for the default settings to reach the loss of --scales 1 Adam after N iterations."""
    width, height = args.reach
    content = prepare_image(args.content, width, height, folder)
    # The same start for every run: the content photograph (no seed option needed).
    common = ["--content", str(content), *fixed, str(folder / "out.png")]
    common += ["--initial", str(content), "--print-iterations", "1"]
    print(f"\nreach at {width}x{height}, all runs starting from the content image")
    runs = {}
    for name, options in (
        ("float32", ["--iterations", str(args.reach_iterations), *CONFIGS["float32"]]),
        ("bfloat16", ["--iterations", str(args.reach_iterations), *CONFIGS["bfloat16"]]),
    ):
        runs[name] = run_cli(common + options, env)
    base = runs["float32"]
    target = base.totals[max(base.totals)]
    seconds = base.iterations[max(base.iterations)] - base.started
    print(
        f"float32 --scales 1: loss {target:.6g} after {max(base.iterations)} iterations, "
        f"{seconds:.1f} s from the process start"
    )
    quality = min(args.quality, max(base.totals))
    for name, run in runs.items():
        print(f"{name} --scales 1: loss at iteration {quality}: {run.totals[quality]:.6g}")
    bf16 = runs["bfloat16"].totals[quality] / base.totals[quality] - 1
    print(f"bfloat16 vs float32 at iteration {quality}: {bf16:+.2%}")
    for name in ("default", "default-bf16"):
        run = run_cli(common + ["--iterations", str(args.reach_budget), *CONFIGS[name]], env)
        first = args.reach_budget - at_output_size(args.reach_budget, height, width, CONFIGS[name])
        hits = [i for i, loss in sorted(run.totals.items()) if i > first and loss <= target]
        if hits:
            took = run.iterations[hits[0]] - run.started
            print(
                f"{name} (--iterations {args.reach_budget}): reaches {target:.6g} at iteration "
                f"{hits[0]}, {took:.1f} s from the process start ({seconds / took:.1f}x faster)"
            )
        else:
            print(
                f"{name} (--iterations {args.reach_budget}): does not reach {target:.6g} "
                f"(ends at {run.totals[max(run.totals)]:.6g})"
            )


if __name__ == "__main__":
    main()
