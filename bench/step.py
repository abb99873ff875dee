"""Seconds per optimisation step: our compiled step against the same loss in a TF1 Session.

The baseline is the project's own objective (VGG-19 to relu5_1, Gram losses, total variation)
built into a `tf.compat.v1` graph with `AdamOptimizer.minimize`, as TensorFlow 1 programs did;
against it, stylize's real Adam step (`stylize.Adam`: compiled with tf.function, projected,
averaged) in float32 and in bfloat16. All run in one process, one step of each per round in a
shuffled order, so that a busy machine slows them alike; the table gives wall and CPU seconds
(the process's, both cores) per step and their ratio to the Session's. The network is a
full-width VGG-19 with random weights (tests/fake_vgg.py): speed only.

    python bench/step.py --dir /tmp/b                 # 512x384, 12 rounds
    python bench/step.py --dir /tmp/b --size 256x192 --rounds 20
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

sys.path.insert(0, str(bench.ROOT))
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

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


def ours(network: vgg.Network, size: Size, precision: str) -> Callable[[], object]:
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


def main() -> None:
    """Build the three steps, time them interleaved, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=bench.size, default=(512, 384), metavar="WxH")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--dir", type=Path, help="folder for the network (kept)")
    args = parser.parse_args()
    bench.in_folder(args.dir, lambda folder: measure(args, folder))


def measure(args: argparse.Namespace, folder: Path) -> None:
    """The table for one size."""
    network = vgg.load_mat(str(bench.generated_network(folder, "speed only")))
    size = Size(args.size[1], args.size[0])
    steps = {
        "session float32": session(network, size),
        "ours float32": ours(network, size, "float32"),
        "ours bfloat16": ours(network, size, "bfloat16"),
    }
    for step in steps.values():  # traced and warmed up
        step(), step()
    wall: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name in random.sample(list(steps), len(steps)):
            started, used = time.perf_counter(), time.process_time()
            steps[name]()
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - used)
    base = "session float32"
    print(f"\n{size}, {args.rounds} rounds, medians (ratio: of each round's pair)")
    print(f"{'step':<18}{'wall s':>8}{'cpu s':>8}{'wall ratio':>12}{'cpu ratio':>11}")
    for name in steps:
        ratios = [np.median(np.array(x[name]) / np.array(x[base])) for x in (wall, cpu)]
        print(
            f"{name:<18}{statistics.median(wall[name]):>8.3f}{statistics.median(cpu[name]):>8.3f}"
            f"{ratios[0]:>12.3f}{ratios[1]:>11.3f}"
        )


if __name__ == "__main__":
    main()
