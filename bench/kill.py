"""Kill -9 a seeded run at random moments, re-running the same command until it finishes.

Checks that the output is byte-identical to an uninterrupted run's and that no temporary
file is left, and counts the iterations redone after each kill. Then the same for a batch of
6 jobs run as two shards (--shard 0/2 and 1/2, at the same time), and the cost of writing
the state at 512x384. The network is a full-width VGG-19 with random weights.

    python bench/kill.py                       # 20 kills of a 256x192 run, the batch, the cost
    python bench/kill.py --kills 5 --iterations 60 --skip-batch
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402

ROOT = bench.ROOT
ITERATION = re.compile(r"^Iteration (\d+)/")
RESUMING = re.compile(r"resuming at iteration (\d+)/")


class Attempt:
    """One process of the command: the last iteration it reported, where it resumed."""

    def __init__(self, command: list[str], env: dict[str, str]):
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
        self.last, self.resumed, self.lines = 0, None, []
        self.working = threading.Event()  # set at the first iteration (or the end)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)
            if match := ITERATION.match(line):
                self.last = int(match[1])
                self.working.set()
            elif match := RESUMING.search(line):
                self.resumed = int(match[1])

    def kill_after(self, seconds: float) -> bool:
        """SIGKILL seconds after the first iteration unless it ends first; whether it was
        killed. (Kills while starting up would only measure the start-up.)"""
        while not self.working.wait(0.05) and self.process.poll() is None:
            pass
        try:
            self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.reader.join()
            return True
        self.reader.join()
        if self.process.returncode != 0:
            raise SystemExit("".join(self.lines[-5:]))
        return False


def until_done(command: list[str], env: dict, kills: int, delays: tuple[float, float], rng):
    """Run command, killing it kills times at random, then to the end; per kill (last
    iteration seen, iteration resumed from) and the number of processes."""
    history, attempts, killed = [], 0, 0
    previous = None
    while True:
        attempt = Attempt(command, env)
        attempts += 1
        was_killed = attempt.kill_after(rng.uniform(*delays) if killed < kills else 36000)
        if previous is not None:
            # Resumed from: the state's iteration, or 0 for a fresh start.
            history.append((previous.last, attempt.resumed or 0))
        if not was_killed:
            return history, attempts
        killed += 1
        previous = attempt


def leftovers(folder: Path) -> list[str]:
    """Temporary or state files left in folder."""
    return [p.name for p in folder.rglob("*") if ".tmp-" in p.name or p.name.endswith(".state")]


def redone(history: list[tuple[int, int]]) -> list[int]:
    """Iterations redone after each kill: the last reported minus where the next resumed."""
    return [max(0, last - resumed) for last, resumed in history]


def single(args, folder: Path, mat: Path, env: dict, rng: random.Random) -> None:
    """The single-run scenario."""
    width, height = args.size
    content = bench.prepare_image(bench.CONTENT, width, height, folder)
    style = bench.prepare_image(bench.STYLE, width, height, folder)
    base = [sys.executable, str(ROOT / "neural_style.py"), "--content", str(content)]
    base += ["--styles", str(style), "--network", str(mat), "--seed", "7"]
    base += ["--iterations", str(args.iterations), "--state-interval", str(args.interval)]
    started = time.monotonic()
    reference = folder / "reference.png"
    subprocess.run([*base, "--output", str(reference), "--quiet"], check=True, env=env)
    whole = time.monotonic() - started
    output = folder / "single" / "out.png"
    output.parent.mkdir(exist_ok=True)
    started = time.monotonic()
    history, attempts = until_done(
        [*base, "--output", str(output)], env, args.kills, (0.0, args.max_delay), rng
    )
    killed_time = time.monotonic() - started
    same = output.read_bytes() == reference.read_bytes()
    table(
        f"single run {width}x{height}, {args.iterations} iterations, --state-interval"
        f" {args.interval}: uninterrupted {whole:.1f} s, killed {len(history)} times"
        f" ({attempts} processes, {killed_time:.1f} s)",
        [("single", history, same, leftovers(output.parent))],
    )


def table(title: str, rows: list) -> None:
    """Print the figures: kills, iterations redone per kill, identical, files left."""
    print(title)
    print(f"{'run':<10} {'kills':>5} {'redone mean':>11} {'max':>4}  {'identical':<9} left")
    for name, history, same, left in rows:
        lost = redone(history) or [0]
        print(
            f"{name:<10} {len(history):>5} {statistics.mean(lost):>11.1f} {max(lost):>4}"
            f"  {'yes' if same else 'NO':<9} {' '.join(left) or 'none'}"
        )
    print(f"per kill, iterations redone: {redone([h for r in rows for h in r[1]])}")


def batch_file(folder: Path, name: str, images: list[Path]) -> Path:
    """A CSV of 6 jobs writing into folder/name."""
    rows = ["content,styles,output,style_weight"]
    for k in range(6):
        content, style = images[k % 2], images[2 + (k // 2) % 2]
        rows.append(f"{content},{style},{folder / name / f'{k}.png'},{50 + 25 * k}")
    path = folder / f"{name}.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def shard_runs(args, base: list[str], env: dict, rng: random.Random) -> list:
    """Both shards at once, each killed args.batch_kills times; (shard, history) each."""
    results: dict[str, tuple] = {}

    def shard(k: int, seed: int) -> None:
        command = [*base, "--shard", f"{k}/2"]
        kills = (0.0, args.max_delay)
        results[f"{k}/2"] = until_done(command, env, args.batch_kills, kills, random.Random(seed))

    threads = [threading.Thread(target=shard, args=(k, rng.random())) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [(name, history) for name, (history, _) in sorted(results.items())]


def batch(args, folder: Path, mat: Path, env: dict, rng: random.Random) -> None:
    """The batch scenario: 6 jobs, two shards, several kills each."""
    width, height = args.batch_size
    images = [
        bench.prepare_image(ROOT / "examples" / f"{n}-{kind}.jpg", width, height, folder)
        for kind in ("content", "style")
        for n in (1, 2)
    ]
    options = ["--network", str(mat), "--seed", "3", "--scales", "2"]
    options += ["--iterations", str(args.batch_iterations), "--state-interval", str(args.interval)]
    command = [sys.executable, str(ROOT / "neural_style.py"), *options]
    started = time.monotonic()
    reference = batch_file(folder, "batch-reference", images)
    subprocess.run([*command, "--batch", str(reference), "--quiet"], check=True, env=env)
    whole = time.monotonic() - started
    runs = shard_runs(
        args, [*command, "--batch", str(batch_file(folder, "batch", images))], env, rng
    )
    names = [f"{k}.png" for k in range(6)]
    out, ref = folder / "batch", folder / "batch-reference"
    same = all((out / n).read_bytes() == (ref / n).read_bytes() for n in names)
    table(
        f"batch of 6 jobs {width}x{height}, {args.batch_iterations} iterations each, two"
        f" shards at once: uninterrupted batch {whole:.1f} s; all 6 outputs identical:"
        f" {'yes' if same else 'NO'}",
        [(f"shard {name}", history, same, leftovers(out)) for name, history in runs],
    )


def cost(args, mat: Path) -> None:
    """Seconds per iteration at 512x384 and seconds to snapshot and save the state."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    import network
    import state
    import stylize
    from settings import Settings

    weights = network.load_network(mat)
    content = np.asarray(
        bench.Image.open(bench.prepare_image(bench.CONTENT, 512, 384, mat.parent)), np.float32
    )
    style = np.asarray(bench.Image.open(bench.STYLE).convert("RGB").resize((512, 384)), np.float32)
    for optimizer in ("adam", "lbfgs"):
        settings = Settings(iterations=6, seed=0, scales=1, optimizer=optimizer)
        times, saves, size = [], [], 0
        last = time.perf_counter()
        for step in stylize.stylize(weights, content, [style], settings):
            now = time.perf_counter()
            times.append(now - last)
            path = str(mat.parent / "cost.state")
            state.save(path, step.snapshot(), "x")  # untimed once: the page cache warms
            began = time.perf_counter()
            state.save(path, step.snapshot(), "x")
            saves.append(time.perf_counter() - began)
            size = os.path.getsize(path)
            last = time.perf_counter()
        per_iteration, save = statistics.median(times[2:]), statistics.median(saves[2:])
        share = save / (args.default_interval + save)
        print(
            f"cost {optimizer} 512x384: {per_iteration:.2f} s/iteration, state {size / 1e6:.1f} MB"
            f" saved in {save * 1000:.0f} ms (snapshot + write + fsync): every"
            f" {args.default_interval:g} s of work that is {100 * share:.3f}% of the run"
            f" ({100 * save / per_iteration:.1f}% of one iteration)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=300, help="of the single run")
    parser.add_argument("--size", type=bench.size, default=(256, 192))
    parser.add_argument("--interval", type=float, default=2.0, help="--state-interval")
    parser.add_argument(
        "--max-delay", type=float, default=5.0, help="longest work (s) before the -9"
    )
    parser.add_argument("--batch-kills", type=int, default=4, help="per shard")
    parser.add_argument("--batch-iterations", type=int, default=60)
    parser.add_argument("--batch-size", type=bench.size, default=(128, 96))
    parser.add_argument("--default-interval", type=float, default=120.0)
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--seed", type=int, default=1, help="of the kill moments")
    parser.add_argument("--dir", type=Path, help="folder for the network and files (kept)")
    args = parser.parse_args()

    def work(folder: Path) -> None:
        mat = bench.generated_network(folder, "kills and costs")
        env = {**os.environ, "NEURAL_STYLE_HOME": str(folder / "home")}
        env["PYTHONUNBUFFERED"] = "1"
        bench.warm_up(mat, env, folder)
        print(f"CPU: {cpu()}, {os.cpu_count()} cores")
        rng = random.Random(args.seed)
        single(args, folder, mat, env, rng)
        if not args.skip_batch:
            batch(args, folder, mat, env, rng)
        if not args.skip_cost:
            os.environ["NEURAL_STYLE_HOME"] = env["NEURAL_STYLE_HOME"]
            cost(args, mat)

    bench.in_folder(args.dir, work)


def cpu() -> str:
    """The CPU's model name."""
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    main()
