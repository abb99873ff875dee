"""Videos: a clip in, a clip out, with the temporal loss; resuming after a kill; the errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from clips import moving_squares, texture, write_frames, write_video
from conftest import ROOT
from PIL import Image

import colors
import flow
import neural_style
import video
from settings import Settings

RATE = 12


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """6 frames of 32x24 at 12 fps with a sine sound track."""
    return write_video(tmp_path / "clip.mp4", moving_squares(24, 32).frames(6), RATE)


@pytest.fixture
def style(tmp_path: Path) -> Path:
    path = tmp_path / "style.png"
    Image.fromarray(texture(40, 40, 9)).save(path)
    return path


def video_args(content, style, output, network_path, *extra) -> list[str]:
    return [
        "--content", str(content), "--styles", str(style), "--output", str(output),
        "--network", str(network_path), "--precision", "float32", "--iterations", "6",
        "--frame-iterations", "3", *extra,
    ]  # fmt: skip


def probe(path: Path) -> tuple[dict, int]:
    """A video's metadata (as ffmpeg describes it) and its frame count."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    try:
        return next(reader), imageio_ffmpeg.count_frames_and_secs(str(path))[0]
    finally:
        reader.close()


def read_frames(folder: Path, count: int) -> list[np.ndarray]:
    return [
        np.asarray(Image.open(folder / f"{k:05d}.png"), np.float32) for k in range(1, count + 1)
    ]


def test_clip_in_clip_out(clip, style, network_path, tmp_path, capsys):
    output, log = tmp_path / "out.mp4", tmp_path / "log.jsonl"
    argv = video_args(clip, style, output, network_path, "--progress-log", str(log))
    assert neural_style.main(argv) == 0
    meta, count = probe(output)
    assert count == 6 and meta["fps"] == RATE and meta["size"] == (32, 24)
    assert meta.get("audio_codec")  # the sound track came along
    assert meta["duration"] == pytest.approx(0.5, abs=0.1)
    assert not (tmp_path / ".out.mp4.frames").exists()  # the work folder goes at the end
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("Frame")] == [
        f"Frame {k}/6" for k in range(1, 7)
    ]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted({r["frame"] for r in records}) == list(range(1, 7))
    assert [r["iteration"] for r in records if r["frame"] == 1] == list(range(1, 7))
    assert [r["iteration"] for r in records if r["frame"] == 3] == [1, 2, 3]
    assert all(r["temporal"] >= 0 for r in records if r["frame"] > 1)  # 0 at the warped start
    assert any(r["temporal"] > 0 for r in records if r["frame"] > 1)
    assert all("temporal" not in r for r in records if r["frame"] == 1)


def test_frames_in_width_and_pattern_out(style, network_path, tmp_path):
    frames = write_frames(tmp_path / "in", moving_squares(24, 32).frames(4))
    output = tmp_path / "out" / "f%03d.png"
    argv = video_args(frames, style, output, network_path, "--width", "16", "--quiet")
    assert neural_style.main(argv) == 0
    names = sorted(p.name for p in output.parent.iterdir())
    assert names == ["f001.png", "f002.png", "f003.png", "f004.png"]
    assert Image.open(output.parent / "f004.png").size == (16, 12)


def test_preserve_colors_luminance_takes_each_frames_colours(style, network_path, tmp_path):
    """The frames as made, with each content frame's chroma (as a still image's output)."""
    content = moving_squares(24, 32).frames(3)
    frames = write_frames(tmp_path / "in", content)
    plain, kept = tmp_path / "plain", tmp_path / "kept"
    seed = ("--seed", "1", "--quiet")
    assert neural_style.main(video_args(frames, style, f"{plain}/", network_path, *seed)) == 0
    argv = video_args(frames, style, f"{kept}/", network_path, *seed, "--preserve-colors")
    assert neural_style.main(argv) == 0
    for made, written, frame in zip(
        read_frames(plain, 3), read_frames(kept, 3), content, strict=True
    ):
        expected = colors.preserve_luminance(made, frame.astype(np.float32))
        assert np.abs(written - expected).max() <= 1  # both rounded to 8 bits
        assert np.abs(written - made).max() > 10


@pytest.mark.parametrize(
    ("source", "output"), [(".m4v", ".gif"), (".ts", ".mkv"), (".mp4", ".ogv"), (".mp4", ".y4m")]
)
def test_containers_by_extension(style, network_path, tmp_path, source, output):
    """Extensions that ffmpeg handles but imageio's ffmpeg plugin refused by name."""
    content = write_video(tmp_path / f"in{source}", moving_squares(24, 32).frames(3), RATE, False)
    out = tmp_path / f"out{output}"
    assert neural_style.main(video_args(content, style, out, network_path, "--quiet")) == 0
    meta, count = probe(out)
    assert count == 3 and meta["size"] == (32, 24)


def temporal_error(scene, outputs: list[np.ndarray]) -> float:
    """Mean absolute difference between each output and the previous output moved by the
    true motion, over the pixels that motion defines (not disoccluded)."""
    errors = []
    for t in range(1, len(outputs)):
        warped, valid = scene.true_warp(outputs[t - 1], t)
        errors.append(np.abs(outputs[t] - warped)[valid].mean())
    return float(np.mean(errors))


def test_temporal_error_half_of_independent_frames(style, network_path, tmp_path):
    scene = moving_squares(32, 48)
    frames = write_frames(tmp_path / "in", scene.frames(6))
    common = ("--iterations", "30", "--seed", "3", "--quiet")
    video = tmp_path / "video"
    assert neural_style.main(video_args(frames, style, f"{video}/", network_path, *common)) == 0
    alone = tmp_path / "alone"
    independent = ("--frame-init", "fresh", "--temporal-weight", "0", "--frame-iterations", "30")
    argv = video_args(frames, style, f"{alone}/", network_path, *common, *independent)
    assert neural_style.main(argv) == 0
    with_flow = temporal_error(scene, read_frames(video, 6))
    independent_error = temporal_error(scene, read_frames(alone, 6))
    assert with_flow <= 0.5 * independent_error, (with_flow, independent_error)


@pytest.mark.parametrize("init", ["prev-warped", "fresh"])
def test_later_frames_round_to_the_nearest_levels(init):
    frames = SimpleNamespace(
        settings=Settings(rounding_passes=2, frame_iterations=7, frame_init=init)
    )
    first, later = (video._Frames.frame_settings(frames, number) for number in (1, 2))
    assert first.rounding_passes == 2
    assert later.rounding_passes == 0 and later.iterations == 7


def test_flow_and_mask_follow_a_known_motion():
    scene = moving_squares(48, 64)
    before, now = (frame.astype(np.float32) for frame in scene.frames(2))
    warped, mask = flow.warp_previous(before, now, before)
    _, valid = scene.true_warp(before, 1)
    assert np.abs(warped - now)[valid & (mask > 0)].mean() < 2.0
    assert mask[~valid].mean() < 0.5  # the disoccluded pixels are mostly masked out
    assert 0.5 < mask.mean() < 1.0


def cli(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "neural_style.py"), *args]


def wait_for(path: Path, count: int, process: subprocess.Popen) -> None:
    """Wait until the work folder holds count finished frames."""
    deadline = time.monotonic() + 300
    while len(list(path.glob("0*.png"))) < count:
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_killed_run_resumes_at_the_next_frame(style, network_path, tmp_path):
    frames = write_frames(tmp_path / "in", moving_squares(24, 32).frames(8))
    output, log = tmp_path / "out", tmp_path / "log.jsonl"
    argv = video_args(frames, style, f"{output}/", network_path, "--seed", "1", "--quiet")
    work = tmp_path / ".out.frames"
    process = subprocess.Popen(cli(*argv), stderr=subprocess.PIPE, text=True)
    wait_for(work, 2, process)
    process.kill()
    process.wait()
    done = 0
    while (work / f"{done + 1:06d}.png").exists():
        done += 1
    assert 2 <= done < 8 and not output.exists()
    rerun = subprocess.run(
        cli(*argv[:-1], "--progress-log", str(log)), capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming at frame {done + 1}/8: {done} frames done" in rerun.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted({r["frame"] for r in records}) == list(range(done + 1, 9))
    assert not work.exists()
    # The same frames as a run never stopped.
    whole = tmp_path / "whole"
    assert neural_style.main([*argv[:5], f"{whole}/", *argv[6:]]) == 0
    for resumed, straight in zip(read_frames(output, 8), read_frames(whole, 8), strict=True):
        assert np.array_equal(resumed, straight)


def test_a_run_that_ended_while_assembling_resumes_at_the_output(
    clip, style, network_path, tmp_path, capsys, monkeypatch
):
    def full(*args):
        raise ValueError("no space left")

    output = tmp_path / "out.mp4"
    argv = video_args(clip, style, output, network_path)
    monkeypatch.setattr(video, "assemble", full)
    assert neural_style.main(argv) == 1
    monkeypatch.undo()
    capsys.readouterr()
    assert neural_style.main(argv) == 0 and output.is_file()
    assert "resuming at the output: 6 frames done in" in capsys.readouterr().err


def test_a_variable_rate_clip_gives_as_many_frames_as_counted(tmp_path):
    """At its nominal rate, in time with its sound: 6 frames stored over 2.6 s are read as 36
    at 24 fps, and counted so (imageio's count said 6)."""
    path = tmp_path / "vfr.mp4"
    times = "setpts='if(lt(N,3),N*0.04,0.12+(N-3)*0.5)/TB'"
    command = [video.ffmpeg(), "-v", "error", "-f", "lavfi"]
    command += ["-i", "testsrc2=size=32x24:rate=24:duration=0.25", "-vf", times]
    command += ["-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(command, check=True, capture_output=True)
    clip = video.open_video(str(path))
    assert clip.count == len(list(clip.frames())) > 6
    # A picture that starts 0.5 s after its sound: its first frame fills the gap.
    late = tmp_path / "late.mp4"
    command = [video.ffmpeg(), "-v", "error", "-f", "lavfi", "-i", "sine=d=1", "-itsoffset", "0.5"]
    command += [
        "-i",
        str(write_video(tmp_path / "clip.mp4", moving_squares(24, 32).frames(6), RATE)),
    ]
    command += ["-map", "1:v", "-map", "0:a", "-c:v", "copy", "-c:a", "aac", str(late)]
    subprocess.run(command, check=True, capture_output=True)
    clip = video.open_video(str(late))
    assert clip.count == len(list(clip.frames())) == 6 + RATE // 2


def test_a_frame_pattern_takes_its_own_padding(tmp_path):
    for name in ("f001.png", "f002.png", "f2.png", "f0002.png", "f003.png", "f04.png"):
        (tmp_path / name).write_bytes(b"")
    names = [os.path.basename(p) for p in video.frame_files(str(tmp_path / "f%03d.png"))]
    assert names == ["f001.png", "f002.png", "f003.png"]
    names = [os.path.basename(p) for p in video.frame_files(str(tmp_path / "f{}.png"))]
    assert names == ["f2.png"]
    (tmp_path / "x{b}_007.png").write_bytes(b"")  # braces that are no placeholder
    names = [os.path.basename(p) for p in video.frame_files(str(tmp_path / "x{b}_%03d.png"))]
    assert names == ["x{b}_007.png"]


def test_frames_too_small_for_the_flow_unless_there_is_one(style, network_path, tmp_path, capsys):
    for count in (2, 1):
        frames = write_frames(tmp_path / f"in{count}", moving_squares(24, 32).frames(count))
        output = f"{tmp_path}/out{count}/"
        argv = video_args(frames, style, output, network_path, "--width", "10", "--quiet")
        assert neural_style.main(argv) == (1 if count == 2 else 0)
    assert "frames of 10x8 are too small for the optical flow" in capsys.readouterr().err
    assert os.listdir(tmp_path / "out1") == ["00001.png"] and not (tmp_path / "out2").exists()


def test_another_commands_frames_are_kept_without_overwrite(
    clip, style, network_path, tmp_path, capsys
):
    output = tmp_path / "out.mp4"
    work = video.Work(str(output), "another command's key")
    work.save(1, np.zeros((4, 6, 3), np.float32))
    argv = video_args(clip, style, output, network_path)
    assert neural_style.main(argv) == 2
    err = capsys.readouterr().err
    assert f"{work.path} holds another command's finished frames" in err
    assert os.path.isfile(work.frame(1)) and not output.exists()
    assert neural_style.main([*argv, "--restart"]) == 0
    assert output.is_file() and not os.path.exists(work.path)


def test_the_work_folder_resumes_its_own_frames_unless_restarted(tmp_path):
    output = str(tmp_path / "out.mp4")
    work = video.Work(output, "key")
    for number in (1, 2, 4):
        work.save(number, np.zeros((4, 6, 3), np.float32))
    assert work.resume() == 2  # from 1 on, without a gap
    with pytest.warns(UserWarning, match="holds another run's frames.*starting over"):
        assert video.Work(output, "other key").resume() == 0 and not os.path.isdir(work.path)
    for number in (1, 2):
        work.save(number, np.zeros((4, 6, 3), np.float32))
    assert work.resume(restart=True) == 0 and not os.path.exists(work.path)


def test_the_frames_key_follows_the_network_file(tmp_path, monkeypatch):
    # Frames made with other weights are not reused, though the command names no network.
    net, clip_file, style = (tmp_path / name for name in ("net.mat", "in.mp4", "s.png"))
    for path in (net, clip_file, style):
        path.write_bytes(b"x")
    monkeypatch.setenv("NEURAL_STYLE_NETWORK", str(net))
    settings = Settings(content=str(clip_file), styles=(str(style),), output="out.mp4")
    clip = SimpleNamespace(path=str(clip_file), files=None)
    key = video.run_key(settings, clip)
    assert video.run_key(settings, clip) == key
    os.utime(net, ns=(0, 10**9))  # the file replaced in place
    assert video.run_key(settings, clip) != key


def test_the_frames_key_counts_a_style_by_its_bytes_and_the_clip_by_its_identity(tmp_path):
    # As a still image's state: a style touched keeps the frames, a style changed does not.
    clip_file, style = tmp_path / "in.mp4", tmp_path / "s.png"
    for path in (clip_file, style):
        path.write_bytes(b"x")
    settings = Settings(content=str(clip_file), styles=(str(style),), output="out.mp4")
    clip = SimpleNamespace(path=str(clip_file), files=None)
    key = video.run_key(settings, clip)
    os.utime(style, ns=(0, 10**9))
    assert video.run_key(settings, clip) == key
    style.write_bytes(b"y")
    changed = video.run_key(settings, clip)
    assert changed != key
    os.utime(clip_file, ns=(0, 10**9))  # a clip is known by its path, size and time
    assert video.run_key(settings, clip) != changed


def test_the_frames_key_is_taken_once_the_network_is_found(
    style, network_path, tmp_path, monkeypatch
):
    # A first run downloads the weights: the key must name the file, as later runs will.
    calls = []

    def loading(settings):
        calls.append("network")
        raise ValueError("stop here")

    monkeypatch.setattr(neural_style, "load_network", loading)
    monkeypatch.setattr(video, "run_key", lambda *args: calls.append("key") or "key")
    frames = write_frames(tmp_path / "in", moving_squares(24, 32).frames(2))
    assert neural_style.main(video_args(frames, style, f"{tmp_path}/o/", network_path)) == 1
    assert calls == ["network"]


def test_sigterm_keeps_the_finished_frames(style, network_path, tmp_path):
    frames = write_frames(tmp_path / "in", moving_squares(24, 32).frames(8))
    argv = video_args(frames, style, tmp_path / "out.mp4", network_path, "--quiet")
    process = subprocess.Popen(cli(*argv), stderr=subprocess.PIPE, text=True)
    work = tmp_path / ".out.mp4.frames"
    wait_for(work, 1, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 143
    assert err.startswith("interrupted ") and err.count("\n") == 1
    assert "run the same command again to resume (SIGTERM)" in err
    assert not (tmp_path / "out.mp4").exists() and list(work.glob("0*.png"))


@pytest.mark.parametrize(
    ("content", "output", "status"), [("clip.mp4", "frames/", 1), ("f", "o.mp4", 2)]
)
def test_no_ffmpeg(style, network_path, tmp_path, capsys, monkeypatch, content, output, status):
    import imageio_ffmpeg

    write_video(tmp_path / "clip.mp4", moving_squares(24, 32).frames(2), RATE, audio=False)
    write_frames(tmp_path / "f", moving_squares(24, 32).frames(2))

    def nowhere() -> str:
        raise RuntimeError("No ffmpeg exe could be found. Install ffmpeg on your system.")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", nowhere)
    video.can_write.cache_clear()  # what an earlier test found out
    before = set(os.listdir(tmp_path))
    argv = video_args(tmp_path / content, style, f"{tmp_path}/{output}", network_path)
    assert neural_style.main(argv) == status
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "ffmpeg was not found" in err
    assert set(os.listdir(tmp_path)) == before
    video.can_write.cache_clear()


OVER = "would be written over the input"
AMONG = "would write frames among the input frames"


@pytest.mark.parametrize(
    ("content", "output", "words"),
    [
        ("f", "f/frame%d.png", f"{OVER} {{}}/f/frame1.png"),  # over the input frames' names
        ("f/frame%d.png", "f/frame{}.png", f"{OVER} {{}}/f/frame1.png"),
        ("clip.mp4", "clip.mp4", f"{OVER} {{}}/clip.mp4"),
        ("f", "f/", AMONG),  # beside them, 00001.png: the next run would read them too
        ("f/*.png", "f/out%d.png", AMONG),
        ("f/frame*.png", "f/out%d.png", None),  # allowed: the glob takes none of them
        ("f/*[2-9].png", "f/o%d.png", AMONG),  # frame2 and frame3 in; o1, and o2 among them
        ("link/*.png", "f/o%d.png", AMONG),  # the same folder through a link
        ("f/*.png", "f/sub/", None),  # glob's * stops at a folder
        ("f/*.png", "f/.o%d.png", None),  # nor does it take hidden names
        ("f/frame%d.png", "f/", None),  # so does a pattern
    ],
)
def test_an_output_over_the_input(style, network_path, tmp_path, capsys, content, output, words):
    write_video(tmp_path / "clip.mp4", moving_squares(24, 32).frames(2), RATE, audio=False)
    write_frames(tmp_path / "f", moving_squares(24, 32).frames(3))
    (tmp_path / "link").symlink_to(tmp_path / "f")
    argv = video_args(f"{tmp_path}/{content}", style, f"{tmp_path}/{output}", network_path)
    if words is None:
        assert neural_style.main([*argv, "--overwrite"]) == 0
        return
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert neural_style.main([*argv, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert words.format(tmp_path) in err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    ("make", "output", "extra", "status", "words"),
    [
        ("text", "out.mp4", (), 1, "not a video ffmpeg can read"),
        ("empty", "out.mp4", (), 1, "file is empty"),
        ("sizes", "out.mp4", (), 1, "all frames must have one size"),
        ("nothing", "out.mp4", (), 1, "no frame images"),
        ("missing", "out.mp4", (), 2, "does not exist"),
        ("clip", "out.xyz", (), 2, "ffmpeg cannot write .xyz files"),
        ("clip", "out.png", (), 2, "a video's output is a video file"),
        ("clip", "out.mp4", ("--width", "11"), 1, "longer side must be at least 12 pixels"),
        ("wide", "out.mp4", ("--width", "64"), 1, "shorter at least 8"),
        ("wider", "out.mp4", ("--width", "3000"), 1, "shorter at least 16"),
        ("clip", "o/%d_%d.png", (), 2, "one placeholder for the frame number"),
        ("clip", "o/{}_{}.png", (), 2, "one placeholder for the frame number"),
        ("clip", "o/{x}%d.png", (), 2, "one placeholder for the frame number"),
        ("clip", "out.mp4", ("--checkpoint-iterations", "2"), 2, "applies to still images"),
    ],
)
def test_errors(style, network_path, tmp_path, capsys, make, output, extra, status, words):
    content = {
        "text": tmp_path / "notes.mp4",
        "empty": tmp_path / "empty.mkv",
        "sizes": tmp_path / "frames",
        "nothing": tmp_path / "none",
        "missing": tmp_path / "missing.mp4",
        "clip": tmp_path / "clip.mp4",
        "wide": tmp_path / "wide",
        "wider": tmp_path / "wider",
    }[make]
    if make == "text":
        content.write_text("not a video\n")
    elif make == "empty":
        content.touch()
    elif make == "sizes":
        write_frames(content, moving_squares(24, 32).frames(2))
        Image.fromarray(texture(20, 30, 1)).save(content / "frame3.png")
    elif make == "nothing":
        content.mkdir()
    elif make == "clip":
        write_video(content, moving_squares(24, 32).frames(2), RATE, audio=False)
    elif make in ("wide", "wider"):  # 64x7; 3000x15, over 256x144 pixels (DIS at half size)
        shape = {"wide": (7, 64), "wider": (15, 3000)}[make]
        write_frames(content, moving_squares(*shape).frames(2))
    before = set(os.listdir(tmp_path))
    argv = video_args(content, style, tmp_path / output, network_path, *extra)
    assert neural_style.main(argv) == status
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err, err
    assert set(os.listdir(tmp_path)) == before  # nothing written


@pytest.mark.parametrize(
    ("output", "there", "after"),
    [  # a longer clip's frames, and files not of the naming
        ("out/", ["00001.png", "00005.png", "notes.txt"], ["00001.png", "00002.png", "00003.png"]),
        ("out/f%02d.png", ["f05.png", "f5.png", "f9x.png"], ["f01.png", "f02.png", "f03.png"]),
    ],
)
def test_overwrite_replaces_the_frames(style, network_path, tmp_path, output, there, after):
    frames = write_frames(tmp_path / "in", moving_squares(24, 32).frames(3))
    out = tmp_path / "out"
    out.mkdir()
    for name in there:
        (out / name).write_bytes(b"x")
    argv = video_args(frames, style, f"{tmp_path}/{output}", network_path, "--quiet", "--overwrite")
    assert neural_style.main(argv) == 0
    kept = [name for name in there if name not in ("00005.png", "f05.png")]
    assert sorted(os.listdir(out)) == sorted(set(after + kept))


def test_another_commands_unfinished_run_does_not_free_the_output(
    clip, style, network_path, tmp_path, capsys
):
    (tmp_path / "out.mp4").write_bytes(b"a finished video")
    work = tmp_path / ".out.mp4.frames"
    work.mkdir()
    (work / video.MANIFEST).write_text('{"key": "another run"}')
    assert neural_style.main(video_args(clip, style, tmp_path / "out.mp4", network_path)) == 2
    assert "is another command's; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "out.mp4").read_bytes() == b"a finished video"
    assert (work / video.MANIFEST).exists()


@pytest.mark.parametrize(
    ("output", "temporary"),
    [
        ("out/", "out/.00002.tmp-0123abcd.png"),
        ("out/f%02d.png", "out/.f02.tmp-0123abcd.png"),
        ("out.mp4", ".out.tmp-0123abcd.mp4"),
    ],
)
def test_a_run_killed_while_writing_its_output_finishes(
    style, network_path, tmp_path, monkeypatch, output, temporary
):
    frames = write_frames(tmp_path / "in", moving_squares(24, 32).frames(3))
    argv = video_args(frames, style, f"{tmp_path}/{output}", network_path, "--quiet")
    write_image = video.images.write_image

    def killed(path, image):  # at the output's second frame
        if ".frames" not in path and path.endswith("2.png"):
            raise KeyboardInterrupt
        write_image(path, image)

    def killed_encoding(path, frames, rate):
        raise KeyboardInterrupt

    monkeypatch.setattr(video.images, "write_image", killed)
    monkeypatch.setattr(video, "_encode", killed_encoding)
    assert neural_style.main(argv) != 0
    monkeypatch.undo()
    (tmp_path / temporary).write_bytes(b"x")  # what a kill -9 in the middle of a write leaves
    assert neural_style.main(argv) == 0
    assert not (tmp_path / temporary).exists()
    if output == "out.mp4":
        assert probe(tmp_path / output)[1] == 3
    else:
        assert len(os.listdir(tmp_path / "out")) == 3
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".frames")]


def test_existing_output_needs_overwrite(clip, style, network_path, tmp_path, capsys):
    (tmp_path / "out.mp4").write_bytes(b"x")
    assert neural_style.main(video_args(clip, style, tmp_path / "out.mp4", network_path)) == 2
    assert "pass --overwrite" in capsys.readouterr().err
