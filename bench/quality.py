"""A good picture sooner: the default command against the classic 1000-iteration run.

For each pair and size: the classic reference run (one size, float32, Adam with step 10 and
no averaging, 1000 iterations, the best of its checkpoints every 50, rounded to the nearest
levels), then the default command
(content, styles, output and width only) with growing --iterations until the file it writes
has an objective at or below the reference's. The objective of a file is the first total loss
that `--initial FILE --scales 1 --iterations 1 --print-iterations 1 --precision float32`
prints. Times are process start to exit. The network is a full-width VGG-19 with random
weights (tests/fake_vgg.py): the figures compare losses and times, never how a picture looks.

    python bench/quality.py --dir /tmp/q                     # both example pairs, both sizes
    python bench/quality.py --dir /tmp/q --sizes 256x192 --pairs 1 --paintings PATH/TO/images

A reference takes minutes (1000 float32 iterations): its result is kept in --dir and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (run_cli, prepare_image, in_folder, generated_network, warm_up)

sys.path.insert(0, str(bench.ROOT))
from settings import DEFAULTS  # noqa: E402

EXAMPLES = bench.ROOT / "examples"
CLASSIC = ["--scales", "1", "--precision", "float32", "--learning-rate", "10"]
CLASSIC += ["--average-decay", "0", "--rounding-passes", "0", "--checkpoint-iterations", "50"]
SIZES = ("256x192", "512x384")
GROWTH = 1.5  # each try's --iterations is this times the last one's


def pairs(args: argparse.Namespace) -> dict[str, tuple[Path, Path]]:
    """{name: (content, style)}: the example pairs, and photos with paintings if given."""
    found = {n: (EXAMPLES / f"{n}-content.jpg", EXAMPLES / f"{n}-style.jpg") for n in ("1", "2")}
    if args.paintings:
        found["1+starry"] = (EXAMPLES / "1-content.jpg", args.paintings / "starry_night.jpg")
        found["2+scream"] = (EXAMPLES / "2-content.jpg", args.paintings / "the_scream.jpg")
    return {name: found[name] for name in args.pairs or found}


class Bench:
    """The runs of one folder: the network, its cache, the inputs."""

    def __init__(self, folder: Path, reference_iterations: int):
        self.folder, self.reference_iterations = folder, reference_iterations
        self.mat = bench.generated_network(folder, "loss and time only")
        self.env = {**os.environ, "NEURAL_STYLE_HOME": str(folder / "cache")}
        bench.warm_up(self.mat, self.env, folder)

    def run(self, content: Path, style: Path, output: Path, *extra: str, seed: int = 0) -> float:
        """Seconds of one run of the command (process start to exit) writing output."""
        inputs = ["--content", str(content), "--styles", str(style), "--output", str(output)]
        inputs += ["--network", str(self.mat), "--seed", str(seed)]
        run = bench.run_cli([*inputs, *extra], self.env)
        return run.ended - run.started

    def objective(self, content: Path, style: Path, written: Path) -> float:
        """The float32 loss of a written file, as the first total loss printed from it."""
        inputs = ["--content", str(content), "--styles", str(style), "--initial", str(written)]
        run = bench.run_cli(
            [*inputs, "--network", str(self.mat), "--output", str(self.folder / "probe.png")]
            + ["--scales", "1", "--iterations", "1", "--print-iterations", "1"]
            + ["--precision", "float32"],
            self.env,
        )
        return run.totals[1]

    def reference(self, content: Path, style: Path) -> tuple[float, float]:
        """(objective, seconds) of the classic run, from an earlier bench of this folder if any."""
        kept = (
            self.folder / f"reference-{content.stem}-{style.stem}-{self.reference_iterations}.json"
        )
        if kept.is_file():
            return tuple(json.loads(kept.read_text()))
        output = self.folder / f"reference-{content.stem}-{style.stem}.png"
        pattern = str(self.folder / f"ck-{content.stem}-{style.stem}-%d.png")
        extra = [*CLASSIC, "--iterations", str(self.reference_iterations)]
        seconds = self.run(content, style, output, *extra, "--checkpoint-output", pattern)
        result = (self.objective(content, style, output), seconds)
        kept.write_text(json.dumps(result))
        return result


def ours(
    runs: Bench, content: Path, style: Path, width: int, iterations: int, seed: int = 0
) -> tuple:
    """(objective, seconds) of the default command with --iterations."""
    output = runs.folder / f"ours-{iterations}.png"
    extra = ("--width", str(width), "--iterations", str(iterations))
    seconds = runs.run(content, style, output, *extra, seed=seed)
    return runs.objective(content, style, output), seconds


def compare(args: argparse.Namespace, folder: Path) -> None:
    """For every pair and size, the reference, then tries of the default command; the table."""
    runs = Bench(folder, args.reference_iterations)
    print(
        f"\n{'pair':<10}{'size':>9}{'ref obj':>10}{'ref s':>8}{'iters':>7}{'obj':>10}{'s':>7}"
        f"{'ratio':>7}   default ({DEFAULTS.iterations} iterations, seed {args.seeds[0]}):"
        " obj, s, ratio"
    )
    for width, height in args.sizes:
        for name, (content_file, style) in pairs(args).items():
            content = bench.prepare_image(content_file, width, height, folder)
            target, reference_seconds = runs.reference(content, style)
            iterations = args.start
            while True:
                objective, seconds = ours(runs, content, style, width, iterations)
                if objective <= target or iterations >= args.most:
                    break
                iterations = round(iterations * GROWTH)
            print(
                f"{name:<10}{f'{width}x{height}':>9}{target:>10.6g}{reference_seconds:>8.1f}"
                f"{iterations:>7}{objective:>10.6g}{seconds:>7.1f}"
                f"{seconds / reference_seconds:>7.3f}   ",
                end="",
            )
            for seed in args.seeds:
                default = ours(runs, content, style, width, DEFAULTS.iterations, seed)
                print(
                    ("" if seed == args.seeds[0] else f"{f'seed {seed}':>61}   ")
                    + f"{default[0]:.6g}, {default[1]:.1f}, {default[1] / reference_seconds:.3f}"
                    + ("" if default[0] <= target else "  (default above the reference)"),
                    flush=True,
                )


def main() -> None:
    """Parse the options and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=bench.size, nargs="+", default=[bench.size(s) for s in SIZES]
    )
    parser.add_argument("--pairs", nargs="+", help="of 1 2 1+starry 2+scream (default: all)")
    parser.add_argument(
        "--paintings", type=Path, help="a folder with starry_night.jpg, the_scream.jpg"
    )
    parser.add_argument("--reference-iterations", type=int, default=1000, help="the classic's")
    parser.add_argument("--start", type=int, default=100, help="--iterations of the first try")
    parser.add_argument("--most", type=int, default=3000, help="give up past this --iterations")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="of the default command's runs"
    )
    parser.add_argument(
        "--dir", type=Path, help="folder for the network, inputs, references (kept)"
    )
    args = parser.parse_args()
    bench.in_folder(args.dir, lambda folder: compare(args, folder))


if __name__ == "__main__":
    main()
