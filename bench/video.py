"""Video speed: DIS optical flow per 512x288 frame pair, the first frame's time against later
frames', and a whole 512x288 clip at 24 fps with --precision bfloat16.

The network is a full-width VGG-19 with random weights (tests/fake_vgg.py) and the clip is
generated (textured squares moving over a textured background): the figures are about speed
only, never a real stylisation. The clip runs through the real command (`python
neural_style.py ...`) in a fresh process; per-frame times come from its --progress-log (the
`elapsed` of each frame's last iteration, counted from the frame's start, flow included).

    python bench/video.py                         # flow, then a 48-frame clip (2 s at 24 fps)
    python bench/video.py --frames 4              # a shorter clip: first vs later frames only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import clips  # noqa: E402
import fake_vgg  # noqa: E402
from PIL import Image  # noqa: E402

import flow  # noqa: E402

HEIGHT, WIDTH, RATE = 288, 512, 24


def flow_time(pairs: int = 20) -> float:
    """Median seconds of DIS both ways (forward and backward) on one 512x288 frame pair."""
    frames = clips.moving_squares(HEIGHT, WIDTH).frames(pairs + 1)
    greys = [flow.grey(frame) for frame in frames]
    times = []
    for a, b in zip(greys, greys[1:], strict=False):
        start = time.perf_counter()
        flow.flow(a, b)
        flow.flow(b, a)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def frame_times(log: Path) -> dict[int, float]:
    """Each frame's seconds, from the progress log."""
    times: dict[int, float] = {}
    for line in log.read_text().splitlines():
        record = json.loads(line)
        times[record["frame"]] = record["elapsed"]
    return times


def run_clip(folder: Path, frames: int, extra: list[str]) -> tuple[float, dict[int, float]]:
    """Stylise a generated clip of frames at 512x288 (24 fps, with sound); wall seconds and
    per-frame seconds."""
    network = folder / "vgg-full.mat"
    if not network.exists():
        fake_vgg.write_vgg_mat(str(network), widths=fake_vgg.FULL_WIDTHS)
    scene = clips.moving_squares(HEIGHT, WIDTH)
    clip = clips.write_video(folder / "clip.mp4", scene.frames(frames), RATE)
    style = folder / "style.png"
    Image.fromarray(clips.texture(256, 256, 9)).save(style)
    log = folder / "log.jsonl"
    log.unlink(missing_ok=True)
    command = [
        sys.executable, str(ROOT / "neural_style.py"), "--content", str(clip), "--styles",
        str(style), "--output", str(folder / "out.mp4"), "--network", str(network),
        "--overwrite", "--quiet", "--progress-log", str(log), *extra,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start, frame_times(log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2 * RATE, help="clip length (frames)")
    parser.add_argument("--dir", help="work folder (default: a temporary one)")
    parser.add_argument("--precision", default="bfloat16")
    args = parser.parse_args()
    print(f"DIS flow, 512x288, both ways: {flow_time():.3f} s per frame pair", flush=True)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(args.dir or temporary)
        folder.mkdir(parents=True, exist_ok=True)
        wall, times = run_clip(folder, args.frames, ["--precision", args.precision])
    later = [seconds for frame, seconds in times.items() if frame > 1]
    first = times[1]
    print(f"first frame: {first:.1f} s")
    if later:
        mean = statistics.mean(later)
        ratio = mean / first
        print(f"later frames: {mean:.1f} s mean ({ratio:.2f}x the first), max {max(later):.1f} s")
    per_frame = wall / args.frames
    print(f"{args.frames} frames of 512x288: {wall:.0f} s in all, {per_frame:.1f} s per frame")


if __name__ == "__main__":
    main()
