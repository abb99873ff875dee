"""Seconds per optimisation step: our compiled step against the same loss in a TF1 Session.

The baseline is the project's own objective (VGG-19 to relu5_1, Gram losses, total variation)
built into a `tf.compat.v1` graph with `AdamOptimizer.minimize`, as TensorFlow 1 programs did
(the weights are constants of its graph); against it, stylize's real Adam step (`stylize.Adam`:
compiled with tf.function, projected, averaged) in float32 and in bfloat16, in a process set
up as the command's is (oneDNN told that the weights never change, so that it keeps each
filter in its own layout) and, as "unfrozen", in one that is not (as when main() is called
from other code).

Each step runs in a process of its own, the processes alternating over the rounds in a
shuffled order: timings taken side by side in one process differed from those of separate
processes (see bench/README.md). The table gives the first call's seconds (tracing and
TensorFlow's work on the graph), then wall and CPU seconds (the process's, both cores) per
step, medians over the rounds, and the median of each round's ratio to the Session's. The
network is a full-width VGG-19 with random weights (tests/fake_vgg.py): speed only.

    python bench/step.py --dir /tmp/b                 # 512x384, 3 rounds
    python bench/step.py --dir /tmp/b --size 256x192 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

sys.path.insert(0, str(bench.ROOT))
import tensorflow as tf  # noqa: E402

import hardware  # noqa: E402
import images  # noqa: E402
import stylize  # noqa: E402
import vgg  # noqa: E402
from images import Size  # noqa: E402
from settings import Settings  # noqa: E402


def problem(network: vgg.Network, size: Size, precision: str) -> stylize._Run:
    """The run of the bench's content and style at size, as the CLI would set it up."""
    content = images.resize(images.read_image(str(bench.CONTENT)), *size)
    style = images.read_image(str(bench.STYLE))
    style = images.resize(style, round(style.shape[0] * size.width / style.shape[1]), size.width)
    return stylize._Run(network, content, [style], Settings(precision=precision, seed=0), None)


def ours(network: vgg.Network, size: Size, precision: str) -> Callable:
    """One step of stylize's Adam at size."""
    run = problem(network, size, precision)
    return run.optimiser(run.start_at(size, None), size).step


def session(network: vgg.Network, size: Size) -> Callable[[], object]:
    """One step of the same float32 loss in a TF1 graph and Session, with TF1's Adam."""
    run = problem(network, size, "float32")
    # The targets' fields that a still image leaves None (the temporal term) stay None.
    values = tf.nest.map_structure(
        lambda t: None if t is None else t.numpy(), (run.net, run.targets(size))
    )
    graph = tf.Graph()
    with graph.as_default():
        net, targets = tf.nest.map_structure(
            lambda v: None if v is None else tf.constant(v), values
        )
        image = tf.compat.v1.Variable(run.start_at(size, None))
        terms = run.objective.terms(image, net, targets)
        adam = tf.compat.v1.train.AdamOptimizer(20.0, 0.9, 0.999, 1e-8)
        step = adam.minimize(tf.add_n(terms), var_list=[image])
        sess = tf.compat.v1.Session(graph=graph)
        sess.run(tf.compat.v1.global_variables_initializer())
    return lambda: sess.run([step, terms])


# name: (the step, whether its process runs as the command's does, oneDNN told that the
# weights never change).
STEPS: dict[str, tuple[Callable[[vgg.Network, Size], Callable], bool]] = {
    "session float32": (session, False),
    "ours float32": (lambda network, size: ours(network, size, "float32"), True),
    "ours bfloat16": (lambda network, size: ours(network, size, "bfloat16"), True),
    "unfrozen float32": (lambda network, size: ours(network, size, "float32"), False),
    "unfrozen bfloat16": (lambda network, size: ours(network, size, "bfloat16"), False),
}
BASE = "session float32"


def main() -> None:
    """The table (or, with --one, one step's figures from this process, as JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=bench.size, default=(512, 384), metavar="WxH")
    parser.add_argument("--rounds", type=int, default=3, help="processes per step")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per process")
    parser.add_argument("--dir", type=Path, help="folder for the network (kept)")
    parser.add_argument("--one", choices=list(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--network", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args)))
    else:
        bench.in_folder(args.dir, lambda folder: measure(args, folder))


def one(args: argparse.Namespace) -> dict[str, float]:
    """The first call's seconds and the median wall and CPU seconds of one step, here."""
    step = STEPS[args.one][0](vgg.load_mat(args.network), Size(args.size[1], args.size[0]))
    started = time.perf_counter()
    step()
    first = time.perf_counter() - started
    step()  # warmed up
    wall, cpu = [], []
    for _ in range(args.steps):
        started, used = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
    return {"first": first, "wall": statistics.median(wall), "cpu": statistics.median(cpu)}


def measure(args: argparse.Namespace, folder: Path) -> None:
    """Each step in its own processes, alternating; the table."""
    network = bench.generated_network(folder, "speed only")
    width, height = args.size
    results: dict[str, list[dict]] = {name: [] for name in STEPS}
    for round_ in range(1, args.rounds + 1):
        for name in random.sample(list(STEPS), len(STEPS)):
            command = [sys.executable, __file__, "--one", name, "--network", str(network)]
            command += ["--size", f"{width}x{height}", "--steps", str(args.steps)]
            env = {**os.environ, hardware.FROZEN_WEIGHTS: "1" if STEPS[name][1] else "0"}
            done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
            results[name].append(json.loads(done.stdout.splitlines()[-1]))
            print(f"round {round_}/{args.rounds}: {name} {results[name][-1]['wall']:.3f} s")
    print(
        f"\n{width}x{height}: {args.rounds} processes of {args.steps} timed steps per step, medians"
    )
    print(f"{'step':<20}{'first s':>8}{'wall s':>8}{'cpu s':>8}{'wall ratio':>12}{'cpu ratio':>11}")
    for name, rows in results.items():
        median = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
        ratios = [
            statistics.median(r[key] / b[key] for r, b in zip(rows, results[BASE], strict=True))
            for key in ("wall", "cpu")
        ]
        print(
            f"{name:<20}{median['first']:>8.2f}{median['wall']:>8.3f}{median['cpu']:>8.3f}"
            f"{ratios[0]:>12.3f}{ratios[1]:>11.3f}"
        )


if __name__ == "__main__":
    main()
