"""Tiles against the whole image: how faithful (loss and gradient, by halo) and how costly.

The network is a full-width VGG-19 with random weights (tests/fake_vgg.py): the figures
measure agreement, speed and memory, never picture quality. See bench/README.md.

    python bench/tiles.py faithful --size 512x384 --tile 128 --halos 16 32 48 64
    python bench/tiles.py faithful --size 1024x768 --tile 256 --halos 32 --iterations 50
    python bench/tiles.py large --sizes 2048x1152 3840x2160 --max-memory 4GB
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

import numpy as np

import bench

ROOT = bench.ROOT


def _setup(folder: Path, width: int, height: int, precision: str, tile: int | None = None):
    """The network, content, style (same width) and Objective pieces of a problem."""
    import tensorflow as tf

    import images
    import settings as options
    import stylize
    import vgg

    mat = bench.generated_network(folder, "agreement only")
    network = vgg.load_mat(str(mat))
    content = images.read_image(str(bench.prepare_image(bench.CONTENT, width, height, folder)))
    style = images.read_image(str(bench.STYLE))
    style = images.resize(style, *images.fit_width(images.Size(*style.shape[:2]), width))
    settings = options.Settings(precision=precision, scales=1, seed=0, tile_size=tile)
    run = stylize._Run(network, content, [style], settings, None)
    size = images.Size(height, width)
    return tf, stylize, run, size


def faithful(args: argparse.Namespace, folder: Path) -> None:
    """Loss terms and gradient of one start image, whole and in tiles with each halo; then
    optionally the total loss after N Adam iterations, whole and tiled."""
    import tiles
    import vgg

    width, height = args.size
    tf, stylize, run, size = _setup(folder, width, height, args.precision)
    start = tf.constant(run.start_at(size, None))
    targets = run.targets(size)
    began = time.perf_counter()
    whole, whole_gradient = vgg.compiled(run.objective.terms_and_gradient)(start, run.net, targets)
    print(f"whole {width}x{height}: {_terms(whole)} ({time.perf_counter() - began:.1f} s)")
    g = whole_gradient.numpy().ravel()
    print(f"{'halo':>5}{'content':>10}{'style':>10}{'total':>10}{'grad cos':>10}{'grad err':>10}")
    for halo in args.halos:
        grid = tiles.plan(size, max_side=args.tile + 2 * halo, halo=halo)
        tiled = tiles.TiledObjective(
            run.objective, run.net, targets, grid, functools.partial(np.random.default_rng, 0)
        )
        terms, gradient = tiled.terms_and_gradient(start)
        t = gradient.numpy().ravel()
        rel = [float(a) / float(b) - 1 for a, b in zip(terms, whole, strict=True)]
        total = float(tf.add_n(terms)) / float(tf.add_n(whole)) - 1
        print(
            f"{halo:>5}{rel[0]:>+10.2%}{rel[1]:>+10.2%}{total:>+10.2%}"
            f"{t @ g / np.linalg.norm(t) / np.linalg.norm(g):>10.5f}"
            f"{np.linalg.norm(t - g) / np.linalg.norm(g):>10.2%}",
            flush=True,
        )
    if args.iterations:
        iterate(args, folder, run, size, start)


def _terms(terms) -> str:
    return ", ".join(f"{float(t):.6g}" for t in terms)


def iterate(args: argparse.Namespace, folder: Path, run, size, start) -> None:
    """The total loss after N steps of the default Adam from the same start, whole and in
    tiles of --tile pixels (the default halo, as the command runs them)."""
    tiled = _setup(folder, *args.size, args.precision, args.tile)[2]
    n = args.iterations
    results = {}
    for name, each in (("whole", run), ("tiles", tiled)):
        optimiser = each.optimiser(start.numpy(), size)
        began = time.perf_counter()
        for _ in range(n):
            optimiser.step()
        seconds = (time.perf_counter() - began) / n
        results[name] = optimiser.candidates()[-1][1]  # the last iterate's loss
        change = results[name] / results["whole"] - 1
        print(
            f"{name}: total loss after {n} iterations {results[name]:.6g} ({change:+.2%}), "
            f"{seconds:.2f} s/iteration",
            flush=True,
        )


def chosen_grid(width: int, height: int, budget: int, precision: str):
    """The tiles the command picks for a same-width style under budget (None: whole)."""
    import tiles
    from images import Size

    styles = [bench_style_size(width)]
    return tiles.for_budget(Size(height, width), styles, budget, precision, False, False)


def bench_style_size(width: int):
    """The size of the bench's style resized to width."""
    from PIL import Image

    import images

    with Image.open(bench.STYLE) as image:
        return images.fit_width(images.Size(image.height, image.width), width)


def large(args: argparse.Namespace, folder: Path) -> None:
    """Seconds per iteration, peak RSS and the tile chosen at large sizes, by the CLI."""
    import memory

    mat = bench.generated_network(folder, "speed and memory only")
    env = {**bench.os.environ, "NEURAL_STYLE_HOME": str(folder / "cache")}
    bench.warm_up(mat, env, folder)
    budget = memory.parse_size(args.max_memory)
    available = memory.available(False)
    print(f"--max-memory {args.max_memory}; {memory.gigabytes(available)} available")
    print(
        f"{'size':>10}{'precision':>10}{'windows':>18}{'work':>6}{'s/iter':>9}{'us/px/it':>10}"
        f"{'peak MB':>9}"
    )
    for width, height in args.sizes:
        content = bench.prepare_image(bench.CONTENT, width, height, folder)
        common = ["--content", str(content), "--styles", str(bench.STYLE), "--network", str(mat)]
        common += ["--output", str(folder / "out.png"), "--iterations", str(args.iterations)]
        common += ["--scales", "1", "--seed", "0"]
        for precision in args.precisions:
            rows = [(args.max_memory, chosen_grid(width, height, budget, precision))]
            whole = memory.needed(images_size(width, height), [bench_style_size(width)])
            if args.whole and whole <= available:
                rows.append((None, None))  # the command's default: no budget, so no tiles
            for limit, grid in rows:
                options = [*common, "--precision", precision]
                options += ["--max-memory", limit] if limit else []
                run = bench.run_cli(options, env)
                seconds = run.seconds_per_iteration(1)
                print(
                    f"{f'{width}x{height}':>10}{precision:>10}{_windows(grid):>18}"
                    f"{grid.work() if grid else 1:>6.2f}"
                    f"{seconds:>9.2f}{seconds / width / height * 1e6:>10.3f}"
                    f"{run.peak_kb / 1024:>9.0f}",
                    flush=True,
                )


def _windows(grid) -> str:
    """'rows x columns of HxW' (window pixels), or 'whole'."""
    if grid is None or grid.count == 1:
        return "whole"
    window = grid.window
    return f"{grid.rows.count}x{grid.columns.count} of {window.width}x{window.height}"


def images_size(width: int, height: int):
    """images.Size(height, width)."""
    from images import Size

    return Size(height, width)


def main() -> None:
    """Parse the command and run it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="folder for the network and inputs (kept)")
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("faithful")
    one.add_argument("--size", type=bench.size, default=bench.size("512x384"))
    one.add_argument("--tile", type=int, default=128)
    one.add_argument("--halos", type=int, nargs="+", default=[16, 32, 48, 64])
    one.add_argument("--precision", default="float32")
    one.add_argument("--iterations", type=int, default=0, help="also compare after N")
    two = commands.add_parser("large")
    two.add_argument("--sizes", type=bench.size, nargs="+", default=[bench.size("2048x1152")])
    two.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"])
    two.add_argument("--max-memory", default="4GB")
    two.add_argument("--iterations", type=int, default=4)
    two.add_argument("--whole", action="store_true", help="also untiled where it fits")
    args = parser.parse_args()
    work = faithful if args.command == "faithful" else large
    bench.in_folder(args.dir, lambda folder: work(args, folder))


if __name__ == "__main__":
    main()
