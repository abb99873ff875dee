"""Run state on disk: a stopped or killed run resumes and ends with the same bytes."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, cli_args, run_stylize, save, smooth_image
from test_batch import stop_at, temporaries, write_csv
from test_stylize import BIG_CONTENT, BIG_STYLE

import neural_style
import settings
import state
import stylize

SMALL = (smooth_image(24, 32, 1), [smooth_image(40, 40, 2)])
CASES = {
    "adam": (SMALL, dict(iterations=8, scales=1)),
    "lbfgs": (SMALL, dict(iterations=8, scales=1, optimizer="lbfgs", checkpoint_iterations=3)),
    "coarse-to-fine": ((BIG_CONTENT, [BIG_STYLE]), dict(iterations=8, scales=2)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_resume_from_any_iteration_gives_the_same_run(network, case, tmp_path):
    (content, styles), options = CASES[case]
    whole = list(run_stylize(network, content, styles, seed=0, **options))
    for cut in (1, 3, 4, 7, 8):  # 4: the coarse size's end; 8: the run's last iteration
        steps = run_stylize(network, content, styles, seed=0, **options)
        snapshot = next(s for s in steps if s.iteration == cut).snapshot()
        steps.close()
        # Through the file, as the CLI does, then on from it.
        path = str(tmp_path / f"{cut}.state")
        assert state.save(path, snapshot, "f")
        resumed = list(
            run_stylize(network, content, styles, seed=0, resume=state.load(path, "f"), **options)
        )
        rest = whole[cut:] or whole[-1:]
        assert [s.iteration for s in resumed] == [s.iteration for s in rest]
        assert [s.losses for s in resumed] == [s.losses for s in rest]
        np.testing.assert_array_equal(resumed[-1].image, whole[-1].image)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_a_resumed_tiled_run_cuts_the_same_tiles(network, tmp_path, optimizer):
    # The tiles' edges are drawn at random at each evaluation; a resumed run goes on drawing
    # what the unbroken run drew.
    content, styles = smooth_image(144, 176, 1), [smooth_image(70, 90, 2)]
    options = dict(iterations=4, scales=1, tile_size=32, seed=0, optimizer=optimizer)
    whole = list(run_stylize(network, content, styles, **options))
    steps = run_stylize(network, content, styles, **options)
    snapshot = next(s for s in steps if s.iteration == 2).snapshot()
    steps.close()
    path = str(tmp_path / "tiled.state")
    assert state.save(path, snapshot, "f")
    resumed = list(run_stylize(network, content, styles, resume=state.load(path, "f"), **options))
    assert [s.losses for s in resumed] == [s.losses for s in whole[2:]]
    np.testing.assert_array_equal(resumed[-1].image, whole[-1].image)


def test_a_tiled_run_stopped_by_a_signal_resumes_to_the_same_bytes(network):
    # The stop's candidates (shown, not kept) draw tile edges that the run would not have.
    content, styles = smooth_image(144, 176, 1), [smooth_image(70, 90, 2)]
    options = dict(iterations=4, scales=1, tile_size=32, seed=0)
    whole = list(run_stylize(network, content, styles, **options))
    asked = iter([False, True])
    stopped = list(run_stylize(network, content, styles, stop=lambda: next(asked), **options))
    assert stopped[-1].iteration == 2
    resumed = list(run_stylize(network, content, styles, resume=stopped[-1].snapshot(), **options))
    assert [s.losses for s in resumed] == [s.losses for s in whole[2:]]
    np.testing.assert_array_equal(resumed[-1].image, whole[-1].image)


def test_a_stop_does_not_change_the_best_image_of_the_resumed_run(network):
    # Stopped at 5: the image there is shown as the best so far, but the resumed run keeps
    # to the rule of an uninterrupted one (candidates at checkpoints and the end only).
    content, styles = SMALL
    options = dict(iterations=9, seed=0, checkpoint_iterations=4, learning_rate=40.0)
    whole = list(run_stylize(network, content, styles, **options))
    steps = list(run_stylize(network, content, styles, stop=lambda: True, **options))
    resumed = list(run_stylize(network, content, styles, resume=steps[0].snapshot(), **options))
    np.testing.assert_array_equal(resumed[-1].image, whole[-1].image)


def args(inputs, network_path, output, *extra):
    return cli_args(inputs, network_path, output, "--seed", "1", "--iterations", "6", *extra)


def test_stopped_run_resumes_to_the_same_bytes(inputs, network_path, tmp_path, capsys, monkeypatch):
    reference = tmp_path / "reference.png"
    assert neural_style.main(args(inputs, network_path, reference, "--quiet")) == 0
    output = tmp_path / "out.png"
    stop_at(monkeypatch, 2)
    assert neural_style.main(args(inputs, network_path, output)) == 143
    capsys.readouterr()
    saved = Path(settings.state_path(str(output)))
    assert saved.exists() and output.exists()  # the best image so far, and the state
    monkeypatch.undo()
    # Options that do not change the picture do not count: the same run.
    extra = ("--print-iterations", "1", "--progress-log", str(tmp_path / "p.jsonl"))
    assert neural_style.main(args(inputs, network_path, output, *extra)) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"resuming at iteration 3/6 from {saved}\nIteration 4/6\n")
    assert output.read_bytes() == reference.read_bytes()
    assert not saved.exists() and temporaries(tmp_path) == []


def test_a_stop_at_the_last_iteration_writes_the_runs_output(
    inputs, network_path, tmp_path, monkeypatch
):
    reference = tmp_path / "reference.png"
    assert neural_style.main(args(inputs, network_path, reference, "--quiet")) == 0
    output = tmp_path / "out.png"
    stop_at(monkeypatch, 5)  # so the run stops at its last iteration, 6
    assert neural_style.main(args(inputs, network_path, output, "--quiet")) == 143
    assert output.read_bytes() == reference.read_bytes()  # rounded by its loss, as without


def test_a_stop_at_a_checkpoint_writes_it(inputs, network_path, tmp_path, monkeypatch):
    def checkpoints(folder: Path, *extra: str) -> dict[str, bytes]:
        folder.mkdir()
        pattern = ("--checkpoint-output", str(folder / "c%s.png"), "--checkpoint-iterations")
        argv = args(inputs, network_path, folder / "out.png", "--quiet", *pattern, "2", *extra)
        while (status := neural_style.main(argv)) == 143:
            monkeypatch.undo()
        assert status == 0
        return {path.name: path.read_bytes() for path in sorted(folder.glob("c*.png"))}

    reference = checkpoints(tmp_path / "whole")
    assert list(reference) == ["c2.png", "c4.png"]
    saved = state.save

    def save(path, run, fingerprint, warn=True):  # a checkpoint is on disk before its state
        assert run.iteration % 2 or (tmp_path / "stopped" / f"c{run.iteration}.png").exists()
        return saved(path, run, fingerprint, warn)

    monkeypatch.setattr(state, "save", save)
    stop_at(monkeypatch, 4)
    assert checkpoints(tmp_path / "stopped", "--state-interval", "0") == reference


def test_state_at_checkpoints_and_by_time(inputs, network_path, tmp_path, monkeypatch):
    output = tmp_path / "out.png"
    saves = []
    monkeypatch.setattr(state, "save", lambda path, run, f, warn=True: saves.append(run.iteration))
    checkpoints = ("--checkpoint-output", str(tmp_path / "c%s.png"), "--checkpoint-iterations", "2")
    argv = args(inputs, network_path, output, "--quiet", "--state-interval", "0")
    assert neural_style.main([*argv, *checkpoints]) == 0
    assert saves == [2, 4]  # not at the end: the output is written then
    saves.clear()
    assert neural_style.main([*argv[:-1], "1e-9", "--overwrite"]) == 0
    assert saves == [2, 3, 4, 5]  # the first iteration starts the clock


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[: len(b) // 2], "damaged run state"),
        (lambda b: b"not a zip file", "damaged run state"),
        (lambda b: b"", "damaged run state"),
        (None, f"run state of format 0, not {state.VERSION}; starting afresh"),
    ],
)
def test_damaged_state_warns_once_and_starts_afresh(
    inputs, network_path, tmp_path, capsys, monkeypatch, damage, message
):
    output = tmp_path / "out.png"
    reference = tmp_path / "reference.png"
    assert neural_style.main(args(inputs, network_path, reference, "--quiet")) == 0
    stop_at(monkeypatch, 3)
    assert neural_style.main(args(inputs, network_path, output, "--quiet")) == 143
    monkeypatch.undo()
    saved = Path(settings.state_path(str(output)))
    if damage is None:  # a well-formed file of another format version
        with np.load(saved) as data:
            arrays = dict(data)
        arrays["version"] = np.array(0)
        with open(saved, "wb") as file:
            np.savez(file, **arrays)
    else:
        saved.write_bytes(damage(saved.read_bytes()))
    capsys.readouterr()
    assert neural_style.main(args(inputs, network_path, output)) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("Iteration")]
    assert len(lines) == 1 and lines[0].startswith(f"warning: {saved}: ")
    assert message in lines[0] and "starting afresh" in lines[0]
    assert "Iteration 1/6" in err
    assert output.read_bytes() == reference.read_bytes() and not saved.exists()


def a_state(cuts_drawn: int = 0) -> stylize.RunState:
    """A small run state, as after iteration 3 of 8."""
    return stylize.RunState(3, 0, 3, 8, False, np.zeros((1, 4, 4, 3), np.float32), None, 0.0,
                            (1.0, 2.0, 3.0), {}, 7, cuts_drawn)  # fmt: skip


def test_a_state_keeps_the_tiles_budget(tmp_path):
    path = str(tmp_path / "out.png.state")
    planned = dataclasses.replace(a_state(), budget=3 * 2**30)
    assert state.save(path, planned, "f") and state.load(path, "f").budget == 3 * 2**30
    assert state.save(path, a_state(), "f") and state.load(path, "f").budget is None
    with np.load(path) as data:  # a file without it: planned by what is free
        arrays = {name: data[name] for name in data.files if name != "budget"}
    with open(path, "wb") as file:
        np.savez(file, **arrays)
    assert state.load(path, "f").budget is None


def test_a_state_of_the_format_before_goes_on_drawing_no_tiles(tmp_path):
    path = str(tmp_path / "out.png.state")
    assert state.save(path, a_state(5), "f") and state.load(path, "f").cuts_drawn == 5
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files if name != "cuts_drawn"}
    with open(path, "wb") as file:
        np.savez(file, **{**arrays, "version": np.array(1)})
    loaded = state.load(path, "f")
    assert (loaded.cuts_drawn, loaded.iteration, loaded.noise_seed) == (0, 3, 7)


def test_too_little_memory_to_read_a_state_keeps_it(tmp_path, monkeypatch):
    path = str(tmp_path / "out.png.state")
    assert state.save(path, a_state(), "f") and state.load(path, "f").noise_seed == 7

    def short_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(state.np, "load", short_of_memory)
    with pytest.raises(MemoryError):
        state.load(path, "f")
    assert os.path.exists(path)


def test_another_runs_state_and_restart(inputs, network_path, tmp_path, capsys, monkeypatch):
    output = tmp_path / "out.png"
    stop_at(monkeypatch, 3)
    assert neural_style.main(args(inputs, network_path, output, "--quiet")) == 143
    monkeypatch.undo()
    saved = Path(settings.state_path(str(output)))
    # Another style weight: another run, which may not take the output without --overwrite.
    kept = output.read_bytes()
    other = args(inputs, network_path, output, "--style-weight", "50")
    assert neural_style.main(other) == 2
    assert "another run's state" in capsys.readouterr().err and output.read_bytes() == kept
    # With it, the state is not used, and is replaced.
    stop_at(monkeypatch, 2)
    other.append("--overwrite")
    assert neural_style.main(other) == 143
    err = capsys.readouterr().err
    assert f"warning: {saved} belongs to another run" in err and "Iteration 1/6" in err
    monkeypatch.undo()
    assert neural_style.main([*other, "--restart"]) == 0  # its own state, ignored on purpose
    err = capsys.readouterr().err
    assert "resuming" not in err and "warning" not in err and "Iteration 1/6" in err
    assert not saved.exists()


def test_another_runs_state_without_its_output_is_kept(
    inputs, network_path, tmp_path, capsys, monkeypatch
):
    """As after a SIGKILL: a state and no output. Another command does not replace it but
    under --restart."""
    output = tmp_path / "out.png"
    stop_at(monkeypatch, 3)
    assert neural_style.main(args(inputs, network_path, output, "--quiet")) == 143
    monkeypatch.undo()
    output.unlink()
    saved = Path(settings.state_path(str(output)))
    kept = saved.read_bytes()
    other = args(inputs, network_path, output, "--style-weight", "50")
    with monkeypatch.context() as patched:  # said before the network is loaded
        patched.setattr(neural_style, "load_network", lambda settings: pytest.fail("loaded"))
        assert neural_style.main(other) == 2
    err = capsys.readouterr().err
    assert f"error: {saved} is another run's state" in err and "pass --restart" in err
    assert saved.read_bytes() == kept and not output.exists()
    assert neural_style.main(args(inputs, network_path, output)) == 0  # its own command
    assert "resuming at iteration" in capsys.readouterr().err
    output.unlink()
    saved.write_bytes(kept)
    assert neural_style.main([*other, "--restart"]) == 0
    err = capsys.readouterr().err
    assert "resuming" not in err and output.is_file() and not saved.exists()


def test_a_run_reads_its_inputs_once_for_its_fingerprint(
    inputs, network_path, tmp_path, monkeypatch
):
    hashed = []
    real = state.network.sha256_file
    monkeypatch.setattr(state.network, "sha256_file", lambda p: hashed.append(p) or real(p))
    output = tmp_path / "out.png"
    argv = args(inputs, network_path, output, "--quiet", "--state-interval", "1e-9")
    assert neural_style.main(argv) == 0
    assert sorted(hashed) == sorted([str(inputs["content"]), str(inputs["style1"])])


def test_fingerprint_counts_what_changes_the_result(inputs, network_path, tmp_path):
    base = settings.from_namespace(
        settings.build_parser().parse_args(args(inputs, network_path, tmp_path / "o.png"))
    )
    same = state.fingerprint(base, str(network_path))
    replace = __import__("dataclasses").replace
    unchanged = dict(quiet=True, print_iterations=3, output="x.png", state_interval=1.0)
    assert state.fingerprint(replace(base, **unchanged), str(network_path)) == same
    copy = save(tmp_path / "copy.png", smooth_image(24, 32, 1))  # same bytes, other path
    assert state.fingerprint(replace(base, content=str(copy)), str(network_path)) == same
    for changed in (dict(seed=2), dict(precision="bfloat16"), dict(width=16)):
        assert state.fingerprint(replace(base, **changed), str(network_path)) != same
    other = save(tmp_path / "other.png", smooth_image(24, 32, 7))
    assert state.fingerprint(replace(base, content=str(other)), str(network_path)) != same
    assert state.fingerprint(base, str(copy)) != same  # another network file


def test_disk_full_warns_once_and_the_run_goes_on(
    inputs, network_path, tmp_path, capsys, monkeypatch
):
    real = np.savez

    def full(file, *args, **kwargs):
        if str(getattr(file, "name", "")).endswith(".state"):  # not the network's cache
            raise OSError(28, "No space left on device")
        return real(file, *args, **kwargs)

    monkeypatch.setattr(np, "savez", full)
    output = tmp_path / "out.png"
    argv = args(inputs, network_path, output, "--quiet", "--state-interval", "1e-9")
    assert neural_style.main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "(No space left on device); the run goes on" in err
    assert output.exists() and temporaries(tmp_path) == []


def test_batch_jobs_resume_each_from_its_state(inputs, network_path, tmp_path, monkeypatch):
    out = tmp_path / "out"
    rows = [f"{inputs['content']},{inputs[s]},{out}/{k}.png" for k, s in enumerate(["style1"] * 3)]
    manifest = write_csv(tmp_path / "jobs.csv", "content,styles,output", *rows)
    argv = ["--batch", str(manifest), "--network", str(network_path), "--seed", "4", "--quiet"]
    argv += ["--iterations", "5"]
    reference = tmp_path / "reference"
    assert neural_style.main([*argv, "--shard", "1/3"]) == 0  # job 2 only: its whole run
    os.rename(out, reference)
    stop_at(monkeypatch, 3, signal.SIGINT)
    assert neural_style.main([*argv, "--shard", "1/3"]) == 130
    assert sorted(p.name for p in out.iterdir()) == ["1.interrupted.png", "1.png.state"]
    monkeypatch.undo()
    assert neural_style.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "1.png", "2.png"]
    assert (out / "1.png").read_bytes() == (reference / "1.png").read_bytes()


def test_a_killed_process_resumes_to_the_same_bytes(inputs, network_path, tmp_path, capsys):
    """SIGKILL, then the same command again: the output an uninterrupted run writes."""
    reference, output = tmp_path / "reference.png", tmp_path / "out.png"
    many = ("--iterations", "400", "--scales", "2", "--seed", "5")
    assert neural_style.main([*cli_args(inputs, network_path, reference, *many), "--quiet"]) == 0
    argv = cli_args(inputs, network_path, output, *many, "--state-interval", "0.05")
    saved = Path(settings.state_path(str(output)))
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "neural_style.py"), *argv],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        for line in process.stderr:
            if line.startswith("Iteration ") and saved.exists():
                break
        time.sleep(0.2)
        process.kill()
        process.wait(timeout=60)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGKILL and not output.exists()
    with zipfile.ZipFile(saved) as archive:  # the state is whole
        assert archive.testzip() is None
    capsys.readouterr()
    assert neural_style.main(argv) == 0
    assert capsys.readouterr().err.startswith("resuming at iteration ")
    assert output.read_bytes() == reference.read_bytes()
    assert not saved.exists() and temporaries(tmp_path) == []


def test_a_killed_writes_temporaries_are_removed(inputs, network_path, tmp_path):
    # Of every file the run writes: output, state, checkpoints, plots, unfinished image.
    output = tmp_path / "out.png"
    left = [".out.png.tmp-0123abcd.state", ".out.tmp-89abcdef.png", ".c-4.tmp-00000000.png"]
    left += [".plot.tmp-11111111.png", ".sheet.tmp-22222222.png", ".out.tmp-33333333.png"]
    other = tmp_path / ".c-5.tmp-44444444.png"  # no checkpoint of the run has this name
    for name in left:
        (tmp_path / name).write_bytes(b"half")
    other.write_bytes(b"someone else's")
    extra = ["--checkpoint-iterations", "2", "--checkpoint-output", str(tmp_path / "c-%s.png")]
    extra += ["--progress-plot", str(tmp_path / "plot.png")]
    extra += ["--contact-sheet", str(tmp_path / "sheet.png"), "--quiet"]
    assert neural_style.main(args(inputs, network_path, output, *extra)) == 0
    assert temporaries(tmp_path) == [other]


def test_a_resumed_size_keeps_its_best_image_so_far(network):
    # Steps too large: the loss rises after the first checkpoint, whose image stays the best;
    # resumed after it, the run must still end with that image.
    content, styles = SMALL
    options = dict(iterations=10, seed=0, scales=1, checkpoint_iterations=2, average_decay=0)
    options.update(learning_rate=300.0, rounding_passes=0)  # the final image as a checkpoint's
    whole = list(run_stylize(network, content, styles, **options))
    early = next(s.image for s in whole if s.image is not None)
    np.testing.assert_array_equal(whole[-1].image, early)  # the first checkpoint's is the best
    steps = run_stylize(network, content, styles, **options)
    snapshot = next(s for s in steps if s.iteration == 5).snapshot()
    steps.close()
    resumed = list(run_stylize(network, content, styles, resume=snapshot, **options))
    np.testing.assert_array_equal(resumed[-1].image, whole[-1].image)
