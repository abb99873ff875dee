"""Adam against L-BFGS: the total loss after N iterations, same network, inputs and start.

The network is a full-width VGG-19 with random weights (tests/fake_vgg.py): the figures
compare how far each optimiser gets on the same loss, never what a picture looks like.
Each run is the real command in a fresh process; see bench/README.md.

    python bench/optimizers.py                              # both example pairs, 3 settings
    python bench/optimizers.py --pairs 1 --settings default --iterations 50
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (run_cli, prepare_image, in_folder, ...)

# Settings: CLI options on top of the fixed ones, the same for both optimisers.
SETTINGS = {
    "default": [],
    "avg-pooling": ["--pooling", "avg"],
    "init-content": ["--init", "content"],
}
OPTIMIZERS = ("adam", "lbfgs")
EXAMPLES = bench.ROOT / "examples"


def main() -> None:
    """Parse the options, write the network, print one row per pair and setting."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=["1", "2"], help="examples/N-*.jpg")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--iterations", type=int, default=100, help="compared after this many")
    parser.add_argument("--size", type=bench.size, default=(256, 256), metavar="WxH")
    parser.add_argument("--seed", type=int, default=0, help="the noise start of every run")
    parser.add_argument("--dir", type=Path, help="folder for the network and inputs (kept)")
    args = parser.parse_args()
    bench.in_folder(args.dir, lambda folder: compare(args, folder))


def compare(args: argparse.Namespace, folder: Path) -> None:
    """Run both optimisers for every pair and setting; print the table."""
    mat = bench.generated_network(folder, "loss only")
    env = {**os.environ, "NEURAL_STYLE_HOME": str(folder / "cache")}
    bench.warm_up(mat, env, folder)
    width, height = args.size
    # The loss printed at iteration N + 1 is that of the image after N iterations.
    shown = str(args.iterations + 1)
    header = (
        f"{'pair':<6}{'setting':<14}{'adam':>12}{'lbfgs':>12}{'lbfgs/adam':>12}"
        f"{'adam s':>9}{'lbfgs s':>9}"
    )
    print(f"{args.iterations} iterations at {width}x{height}, --seed {args.seed}\n\n{header}")
    for pair in args.pairs:
        content, style = (
            bench.prepare_image(EXAMPLES / f"{pair}-{kind}.jpg", width, height, folder)
            for kind in ("content", "style")
        )
        for setting in args.settings:
            loss, seconds = {}, {}
            for optimizer in OPTIMIZERS:
                run = bench.run_cli(
                    ["--content", str(content), "--styles", str(style), "--network", str(mat)]
                    + ["--output", str(folder / "out.png"), "--seed", str(args.seed)]
                    + ["--iterations", shown, "--print-iterations", shown]
                    + ["--optimizer", optimizer, *SETTINGS[setting]],
                    env,
                )
                # An L-BFGS run that could no longer move ends early: its last loss, marked.
                last = max(run.totals)
                loss[optimizer] = run.totals[last]
                if last < int(shown):
                    print(f"{optimizer} ended at iteration {last} (could not move)", flush=True)
                seconds[optimizer] = run.ended - run.started
            print(
                f"{pair:<6}{setting:<14}{loss['adam']:>12.6g}{loss['lbfgs']:>12.6g}"
                f"{loss['lbfgs'] / loss['adam']:>12.3f}"
                f"{seconds['adam']:>9.1f}{seconds['lbfgs']:>9.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
