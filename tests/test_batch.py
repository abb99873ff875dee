"""Batch runs, shards, resume, --overwrite and clean stops on SIGINT/SIGTERM."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT, cli_args
from PIL import Image

import batch
import neural_style
import settings
import stylize


def write_csv(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def temporaries(folder: Path) -> list[Path]:
    """Temporary files left behind (images.atomic_output's .NAME.tmp-XXXX.EXT)."""
    return [p for p in folder.rglob("*") if ".tmp-" in p.name or p.name.endswith(".part")]


def stop_at(monkeypatch, iteration: int, signum: int = signal.SIGTERM) -> None:
    """Send this process signum after the run's iteration (of each job)."""
    real = stylize.stylize

    def stylize_with_signal(*args, **kwargs):
        for step in real(*args, **kwargs):
            if step.iteration == iteration:
                os.kill(os.getpid(), signum)
            yield step

    monkeypatch.setattr(stylize, "stylize", stylize_with_signal)


def jobs_run(err: str) -> list[int]:
    """The job numbers that started, from 'job K/N: OUTPUT' lines."""
    return [int(k) for k in re.findall(r"^job (\d+)/\d+: \S+$", err, re.M)]


def test_three_jobs_one_fails_then_resume(inputs, network_path, tmp_path, capsys):
    content, style1, style2 = inputs["content"], inputs["style1"], inputs["style2"]
    manifest = write_csv(
        tmp_path / "jobs.csv",
        "content,styles,output,width,style_blend_weights",
        f"{content},{style1},{tmp_path}/a.jpg,,",
        f"{content},{style1},{tmp_path}/b.jpg,-3,",
        f"{content},{style1};{style2},{tmp_path}/c.png,16,1;3",
    )
    argv = ["--batch", str(manifest), "--network", str(network_path), "--iterations", "2"]
    assert neural_style.main(argv) == 1
    err = capsys.readouterr().err
    reason = f"job 2/3 ({tmp_path}/b.jpg): argument --width: must be a whole number >= 1, got '-3'"
    assert f"error: {reason}\n" in err
    assert f"batch: 2 done, 0 skipped, 1 failed\n  failed: {reason}\n" in err
    # Per-job overrides: job 3's width and two styles; job 1 keeps the content's width.
    assert Image.open(tmp_path / "a.jpg").size == (32, 24)
    assert Image.open(tmp_path / "c.png").size == (16, 12)
    before = {name: (tmp_path / name).stat().st_mtime_ns for name in ("a.jpg", "c.png")}
    assert neural_style.main(argv) == 1
    err = capsys.readouterr().err
    assert "batch: 0 done, 2 skipped, 1 failed" in err and jobs_run(err) == []
    assert before == {name: (tmp_path / name).stat().st_mtime_ns for name in before}


def test_a_jobs_error_of_several_lines_is_one(inputs, network_path, tmp_path, capsys, monkeypatch):
    def failing(*args, **kwargs):
        raise ValueError("first line\nsecond line")

    monkeypatch.setattr(batch.job, "run", failing)
    out = tmp_path / "a.jpg"
    manifest = write_csv(tmp_path / "j.csv", "content,styles,output", f"{inputs['content']},"
                         f"{inputs['style1']},{out}")  # fmt: skip
    assert neural_style.main(["--batch", str(manifest), "--network", str(network_path)]) == 1
    err = capsys.readouterr().err
    reason = f"job 1/1 ({out}): first line second line"
    assert f"error: {reason}\n" in err and f"  failed: {reason}\n" in err


def test_jsonl_lists_numbers_and_flags(inputs, network_path, tmp_path, capsys):
    lines = [
        {"content": str(inputs["content"]), "styles": [str(inputs["style1"])],
         "output": str(tmp_path / "x.jpg"), "iterations": 3, "print-iterations": 1},
        {"content": str(inputs["content"]), "styles": [str(inputs["style2"])],
         "output": str(tmp_path / "y.jpg"), "width": None, "learning_rate": 1e30,
         "tv_weight": 1e37, "precision": "float32", "iterations": 4},
        {"content": str(inputs["content"]), "styles": [str(inputs["style2"])],
         "output": str(tmp_path / "z.jpg")},
    ]  # fmt: skip
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    argv = ["--batch", str(manifest), "--network", str(network_path), "--iterations", "1"]
    assert neural_style.main(argv) == 1
    err = capsys.readouterr().err
    assert "Iteration 3/3" in err and "Iteration 1/1" in err
    assert err.count("total loss:") == 3  # job 1 prints at 1, 2, 3; the others not at all
    # A job whose loss becomes NaN fails; its best image is kept aside, not as its output.
    assert "batch: 2 done, 0 skipped, 1 failed" in err
    assert re.search(r"failed: job 2/3 \(\S+y\.jpg\): the loss became NaN .*/y\.interrupted", err)
    assert not (tmp_path / "y.jpg").exists()
    Image.open(tmp_path / "y.interrupted.jpg").verify()


def test_a_batch_network_that_does_not_exist_is_one_usage_error(inputs, tmp_path, capsys):
    rows = [f"{inputs['content']},{inputs['style1']},{tmp_path}/{k}.jpg" for k in (1, 2)]
    manifest = write_csv(tmp_path / "jobs.csv", "content,styles,output", *rows)
    missing = str(tmp_path / "nope.mat")
    assert neural_style.main(["--batch", str(manifest), "--network", missing]) == 2
    assert capsys.readouterr().err == f"error: --network: {missing} does not exist\n"


def test_an_output_that_is_a_folder_is_an_error_not_done(inputs, network_path, tmp_path, capsys):
    (tmp_path / "done.jpg").mkdir()
    argv = cli_args(inputs, network_path, tmp_path / "done.jpg", "--iterations", "1")
    assert neural_style.main(argv) == 2
    assert "done.jpg: is a folder" in capsys.readouterr().err
    row = f"{inputs['content']},{inputs['style1']},{tmp_path}/done.jpg"
    manifest = write_csv(tmp_path / "jobs.csv", "content,styles,output", row)
    assert neural_style.main(["--batch", str(manifest), "--network", str(network_path)]) == 1
    err = capsys.readouterr().err
    assert "is a folder" in err and "exists, skipped" not in err and "1 failed" in err


def test_a_network_that_cannot_load_ends_the_batch(inputs, tmp_path, capsys):
    bad = tmp_path / "bad.mat"
    bad.write_text("not a network")
    rows = [f"{inputs['content']},{inputs['style1']},{tmp_path}/{k}.jpg" for k in (1, 2)]
    manifest = write_csv(tmp_path / "jobs.csv", "content,styles,output", *rows)
    assert neural_style.main(["--batch", str(manifest), "--network", str(bad), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "bad.mat" in err
    assert neural_style.main(["--batch", str(manifest), "--network", str(bad)]) == 1
    assert "batch: 0 done, 0 skipped, 0 failed, 2 not run\n" in capsys.readouterr().err


def test_job_settings_override_the_command_line():
    parser = settings.build_parser()
    base = settings.from_namespace(
        parser.parse_args(["--batch", "b.csv", "--width", "64", "--style-weight", "3"])
    )
    job = batch.job_settings(parser, base, {"width": "128", "styles": "a.jpg; b.jpg"})
    assert (job.width, job.style_weight, job.styles) == (128, 3.0, ("a.jpg", "b.jpg"))
    assert base.width == 64 and base.styles is None
    with pytest.raises(settings.UsageError, match="--iterations"):
        batch.job_settings(parser, base, {"iterations": "0"})
    # Flags: true sets, false goes back to the default even if the command line set it.
    flagged = settings.from_namespace(parser.parse_args(["--batch", "b.csv", "--no-memory-check"]))
    for value, expected in (("true", True), ("no", False), (True, True), (False, False)):
        for start in (base, flagged):
            job = batch.job_settings(parser, start, {"no_memory_check": value})
            assert job.no_memory_check is expected
    with pytest.raises(settings.UsageError, match="true or false, got 'maybe'"):
        batch.job_settings(parser, base, {"no_memory_check": "maybe"})
    # A JSON boolean is a flag's value, or the bare form of an option whose value is optional.
    assert batch.job_settings(parser, base, {"preserve_colors": True}).preserve_colors == (
        "luminance"
    )
    for name in ("iterations", "width"):
        with pytest.raises(settings.UsageError, match=f"--{name}: expected a value, got false"):
            batch.job_settings(parser, base, {name: False})
    # A CSV cell's text: true and false as JSON's; spaces after the commas are not the value's.
    coloured = settings.from_namespace(
        parser.parse_args(["--batch", "b.csv", "--preserve-colors", "histogram"])
    )
    for value, expected in ((" true", "luminance"), ("false ", None), (" histogram", "histogram")):
        assert batch.job_settings(parser, coloured, {"preserve_colors": value}).preserve_colors == (
            expected
        )
    job = batch.job_settings(parser, base, {"output": " out.jpg", "content": " c.png "})
    assert (job.output, job.content) == ("out.jpg", "c.png")


def test_read_rows_takes_a_spreadsheet_csv(tmp_path):
    manifest = tmp_path / "jobs.csv"
    manifest.write_bytes(b"\xef\xbb\xbfcontent,styles,Style-Weight\r\nc.png,a.jpg;b.jpg,7\r\n")
    rows = batch.read_rows(str(manifest), settings.build_parser())
    assert rows == [{"content": "c.png", "styles": "a.jpg;b.jpg", "style_weight": "7"}]


@pytest.mark.parametrize(("n", "count"), [(1, 5), (2, 6), (3, 7), (4, 3)])
def test_shards_cover_every_job_exactly_once(n, count):
    owners = [[k for k in range(n) if batch.in_shard(i, (k, n))] for i in range(count)]
    assert owners == [[i % n] for i in range(count)]


CHECKPOINTED = "content,styles,output,checkpoint-output,checkpoint-iterations"


@pytest.mark.parametrize(
    ("rows", "extra", "message"),
    [
        (["content,styles,output,widht", "c.png,s.jpg,o.jpg,3"], [], "unknown column 'widht'"),
        (["content,styles,output,network", "c.png,s.jpg,o.jpg,n.mat"], [], "column 'network'"),
        (["content,styles,output", "c.png,s.jpg,o.jpg", "d.png,s.jpg,o.jpg"], [], "jobs 1 and 2"),
        (
            [CHECKPOINTED, "c.png,s.jpg,a.png,k%s.png,2", "d.png,s.jpg,b.png,k%d.png,2"],
            [],
            "jobs 1 and 2 both write k2.png",
        ),
        (
            [CHECKPOINTED, "c.png,s.jpg,a.png,k%s.png,10", "d.png,s.jpg,k20.png,,"],
            [],
            "jobs 2 and 1 both write k20.png",
        ),
        (
            [CHECKPOINTED, "c.png,s.jpg,o.png,a%s.png,10", "d.png,s.jpg,p.png,a1%s.png,10"],
            [],
            "jobs 1 and 2 both write a110.png",
        ),
        (
            [CHECKPOINTED, "c.png,s.jpg,o.png,a1%s.png,10", "d.png,s.jpg,p.png,a%s.png,10"],
            [],
            "jobs 1 and 2 both write a110.png",
        ),
        (["content,styles,output"], [], "no jobs"),
        (["content,styles,output", ",,", " , ,"], [], "no jobs"),
        (["c.png,s.jpg,o.jpg"], [], "unknown column 'c.png'; the first line names the columns"),
        (['[{"content": "c.png"}]'], [], "a JSON array; give one JSON object per line"),
        (
            ["content,styles,output", "c.png,s.jpg,d.png", "d.png,s.jpg,o.jpg"],
            [],
            "job 1 writes d.png, which job 2 reads",
        ),
        (
            ["content,styles,output", "c.png,s.jpg,a.interrupted.jpg", "d.png,s.jpg,a.jpg"],
            [],
            "jobs 1 and 2 both write a.interrupted.jpg",
        ),
        (["content,styles,output", "c.png,s.jpg,o.jpg"], ["--shard", "2/2"], "--shard"),
        (["content,styles,output", "c.png,s.jpg,o.jpg"], ["--shard", "x"], "--shard"),
    ],
)
def test_batch_file_errors_stop_before_work(tmp_path, capsys, rows, extra, message):
    manifest = write_csv(tmp_path / "jobs.csv", *rows)
    assert neural_style.main(["--batch", str(manifest), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err


def test_jobs_files_compared_as_a_runs_own(tmp_path, capsys, monkeypatch):
    """Through a link to the folder, the same output; k00020.png is no k20.png."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "out")
    manifest = write_csv(
        tmp_path / "jobs.csv", "content,styles,output", "c,s,out/a.png", "d,s,link/a.png"
    )
    assert neural_style.main(["--batch", str(manifest)]) == 2
    assert "jobs 1 and 2 both write link/a.png" in capsys.readouterr().err
    rows = [CHECKPOINTED, "c.png,s.jpg,a.png,k%05d.png,10", "d.png,s.jpg,k20.png,,"]
    assert neural_style.main(["--batch", str(write_csv(tmp_path / "jobs.csv", *rows))]) == 1
    assert "c.png does not exist" in capsys.readouterr().err  # the jobs' own errors


def test_files_as_people_write_them(inputs, network_path, tmp_path, capsys, monkeypatch):
    """Quoted cells after ', ', a style named -s.jpg, blank spreadsheet rows, JSON Lines in a
    .json file and on standard input."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-s.jpg").write_bytes(inputs["style1"].read_bytes())
    manifest = write_csv(
        tmp_path / "jobs.csv",
        "content,styles,output",
        f'"{inputs["content"]}", -s.jpg, a.png',
        ",,",
    )
    argv = ["--network", str(network_path), "--iterations", "1"]
    assert neural_style.main(["--batch", str(manifest), *argv]) == 0
    assert "batch: 1 done, 0 skipped, 0 failed\n" in capsys.readouterr().err
    line = json.dumps({"content": str(inputs["content"]), "styles": ["-s.jpg"], "output": "b.png"})
    (tmp_path / "jobs.json").write_text(line + "\n{}\n")
    assert neural_style.main(["--batch", "jobs.json", *argv]) == 0
    piped = "\ufeff" + line.replace("b.png", "c\u2028é.png")  # UTF-8 whatever the locale's
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(piped.encode()), "cp1252"))
    assert neural_style.main(["--batch", "-", *argv]) == 0
    assert all((tmp_path / name).is_file() for name in ("a.png", "b.png", "c\u2028é.png"))


def test_a_single_runs_interrupted_output_is_resumed_not_skipped(
    inputs, network_path, tmp_path, capsys, monkeypatch
):
    stop_at(monkeypatch, 2, signal.SIGINT)
    output = tmp_path / "o.jpg"
    argv = ["--network", str(network_path), "--iterations", "4", "--precision", "float32"]
    assert neural_style.main(cli_args(inputs, network_path, output, "--iterations", "4")) == 130
    assert output.is_file() and (tmp_path / "o.jpg.state").is_file()
    monkeypatch.undo()
    row = f"{inputs['content']},{inputs['style1']},{output}"
    other = write_csv(tmp_path / "other.csv", "content,styles,output,tv_weight", row + ",3")
    with monkeypatch.context() as patched:  # another run's state: failed before any loading
        patched.setattr(neural_style, "load_network", lambda settings: pytest.fail("loaded"))
        assert neural_style.main(["--batch", str(other), *argv]) == 1
    assert "is another run's state" in capsys.readouterr().err
    manifest = write_csv(tmp_path / "jobs.csv", "content,styles,output", row)
    assert neural_style.main(["--batch", str(manifest), *argv]) == 0
    err = capsys.readouterr().err
    assert "resuming at iteration 3/4" in err and "batch: 1 done, 0 skipped" in err
    assert not (tmp_path / "o.jpg.state").exists()


def test_distinct_jobs_are_not_compared_pair_by_pair(monkeypatch):
    """A generated batch of 2000 jobs, each with its own checkpoint names: a checkpoint is
    tested only against the jobs whose names may meet it (2000 squared took hours)."""
    calls = []
    real = settings.is_checkpoint
    monkeypatch.setattr(settings, "is_checkpoint", lambda *a: calls.append(1) or real(*a))
    parser = settings.build_parser()
    base = settings.Settings(iterations=300)
    jobs = [
        batch.job_settings(parser, base, {
            "content": "c.png", "styles": "s.png", "output": f"out/job{k}.png",
            "checkpoint_output": f"out/job{k}_%04d.png", "checkpoint_iterations": "10",
        })
        for k in range(2000)
    ]  # fmt: skip
    batch.check_distinct(jobs)
    assert len(calls) <= 2 * len(jobs)


def test_bad_jsonl_and_missing_batch_file(tmp_path, capsys):
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text('{"content": "c.png"}\n{oops\n')
    assert neural_style.main(["--batch", str(manifest)]) == 2
    assert "line 2: not JSON" in capsys.readouterr().err
    assert neural_style.main(["--batch", str(tmp_path / "none.csv")]) == 2
    assert "none.csv does not exist" in capsys.readouterr().err


def test_single_run_output_guard_and_shard_without_batch(inputs, network_path, tmp_path, capsys):
    output = tmp_path / "out.jpg"
    argv = cli_args(inputs, network_path, output, "--iterations", "1")
    output.write_bytes(b"precious")
    assert neural_style.main(argv) == 2
    assert "out.jpg exists; pass --overwrite" in capsys.readouterr().err
    assert output.read_bytes() == b"precious"
    assert neural_style.main([*argv, "--shard", "0/2", "--overwrite"]) == 2
    assert "--shard goes with --batch" in capsys.readouterr().err
    assert neural_style.main([*argv, "--overwrite"]) == 0
    assert Image.open(output).size == (32, 24)
    assert neural_style.main(argv[4:]) == 2
    assert "required: --content, --styles" in capsys.readouterr().err


def test_six_jobs_interrupted_in_the_fourth_then_two_shards_finish(
    inputs, network_path, tmp_path, capsys, monkeypatch
):
    """Shards 0/2 and 1/2 of six jobs, SIGINT in job 4: a re-run redoes nothing."""
    out = tmp_path / "out"
    rows = [f"{inputs['content']},{inputs['style1']},{out}/{k}.jpg" for k in range(1, 7)]
    manifest = write_csv(tmp_path / "jobs.csv", "content,styles,output", *rows)
    argv = ["--batch", str(manifest), "--network", str(network_path), "--iterations", "4"]
    real, caches = stylize.stylize, []

    def stylize_with_sigint_in_job_4(*args, **kwargs):
        caches.append(kwargs["cache"])
        for step in real(*args, **kwargs):
            if len(caches) == 4 and step.iteration == 2:
                os.kill(os.getpid(), signal.SIGINT)
            yield step

    monkeypatch.setattr(stylize, "stylize", stylize_with_sigint_in_job_4)
    assert neural_style.main(argv) == 130
    err = capsys.readouterr().err
    assert jobs_run(err) == [1, 2, 3, 4]
    assert "interrupted at iteration 3/4 of job 4/6: best image so far written to" in err
    assert "batch: 3 done, 0 skipped, 0 failed, 3 not run\n" in err
    done = ["1.jpg", "2.jpg", "3.jpg", "4.interrupted.jpg", "4.jpg.state"]
    assert sorted(p.name for p in out.iterdir()) == done  # job 4 resumes from its state
    Image.open(out / "4.interrupted.jpg").verify()
    # One style at one size: its grams were computed once and shared by all jobs, as were the
    # network's tensors and the compiled step.
    assert all(cache is caches[0] for cache in caches)
    assert sorted(key[0] for key in caches[0]) == ["grams", "network", "objective"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    monkeypatch.setattr(stylize, "stylize", real)
    finished = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert neural_style.main([*argv, "--shard", "0/2"]) == 0
    err = capsys.readouterr().err
    assert jobs_run(err) == [5] and "batch: 1 done, 2 skipped, 0 failed" in err
    assert neural_style.main([*argv, "--shard", "1/2"]) == 0
    err = capsys.readouterr().err
    assert jobs_run(err) == [4, 6] and "batch: 2 done, 1 skipped, 0 failed" in err
    assert f"job 4/6: resuming at iteration 3/4 from {out}/4.jpg.state" in err
    assert sorted(p.name for p in out.iterdir()) == [f"{k}.jpg" for k in range(1, 7)]
    assert all(
        (out / n).stat().st_mtime_ns == t for n, t in finished.items() if n.startswith(("1", "2"))
    )
    assert temporaries(tmp_path) == []


def test_tensorflows_warning_of_retracing_is_not_shown(caplog):
    # A batch's jobs of other layers or tiles each trace their step: expected, not a problem.
    logger = logging.getLogger("tensorflow")
    logger.warning("5 out of the last 13 calls to <f> triggered tf.function retracing. ...")
    logger.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]


def test_signal_while_loading_writes_nothing(inputs, network_path, tmp_path, capsys, monkeypatch):
    def load_then_sigterm(path):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("the signal should have ended the run")

    monkeypatch.setattr(neural_style, "load_network", load_then_sigterm)
    argv = cli_args(inputs, network_path, tmp_path / "out.jpg")
    assert neural_style.main(argv) == 143
    err = capsys.readouterr().err
    assert err == "interrupted before the optimisation started; nothing written (SIGTERM)\n"
    assert not (tmp_path / "out.jpg").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_signal_between_jobs_says_the_finished_are_kept(
    inputs, network_path, tmp_path, capsys, monkeypatch
):
    real, calls = batch._run_job, []

    def second_gets_sigterm(*args):
        calls.append(args)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args)

    monkeypatch.setattr(batch, "_run_job", second_gets_sigterm)
    content, style = inputs["content"], inputs["style1"]
    rows = [f"{content},{style},{tmp_path}/{name}" for name in ("a.jpg", "b.jpg")]
    manifest = write_csv(tmp_path / "jobs.csv", "content,styles,output", *rows)
    argv = ["--batch", str(manifest), "--network", str(network_path), "--iterations", "2"]
    assert neural_style.main([*argv, "--quiet"]) == 143
    err = capsys.readouterr().err
    assert err == "interrupted between runs; what was finished is kept (SIGTERM)\n"
    assert (tmp_path / "a.jpg").is_file() and not (tmp_path / "b.jpg").exists()


def test_signal_in_the_last_iteration_keeps_the_output(
    inputs, network_path, tmp_path, capsys, monkeypatch
):
    real = stylize.stylize

    def sigint_at_the_end(*args, **kwargs):
        for step in real(*args, **kwargs):
            if step.final:
                os.kill(os.getpid(), signal.SIGINT)
            yield step

    monkeypatch.setattr(stylize, "stylize", sigint_at_the_end)
    output = tmp_path / "out.jpg"
    argv = cli_args(inputs, network_path, output, "--iterations", "2")
    assert neural_style.main(argv) == 130
    assert capsys.readouterr().err.endswith(
        f"interrupted after the run; {output} is done (SIGINT)\n"
    )
    Image.open(output).verify()


def test_an_ignored_sigint_stays_ignored(inputs, network_path, tmp_path, monkeypatch):
    stop_at(monkeypatch, 2, signal.SIGINT)
    argv = cli_args(inputs, network_path, tmp_path / "out.jpg", "--iterations", "4", "--quiet")
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert neural_style.main(argv) == 0
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_main_in_a_thread_runs_without_signal_handlers(tmp_path):
    import threading

    statuses = []
    thread = threading.Thread(target=lambda: statuses.append(neural_style.main(["--quiet"])))
    thread.start()
    thread.join()
    assert statuses == [2]  # a usage error, not a failure to install handlers


def test_sigint_to_a_real_process_while_it_starts(inputs, network_path, tmp_path):
    """Early (importing TensorFlow, or loading): one line, status 130, nothing written."""
    output = tmp_path / "out.png"
    command = [
        sys.executable,
        str(ROOT / "neural_style.py"),
        *cli_args(inputs, network_path, output),
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert re.fullmatch(
        r"interrupted (while starting|before the optimisation started)[^\n]*\n", err
    )
    assert not output.exists()


@pytest.mark.parametrize(
    ("signum", "reader_gone"),
    [
        (signal.SIGINT, False),
        pytest.param(
            getattr(signal, "SIGHUP", None),
            False,
            marks=pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on Windows"),
        ),
        (signal.SIGINT, True),
    ],
    ids=["sigint", "sighup", "sigint-that-also-ended-the-pipes-reader"],
)
def test_a_signal_to_a_real_process_mid_run(inputs, network_path, tmp_path, signum, reader_gone):
    # reader_gone: `... 2>&1 | tee log` and Ctrl-C, which ends tee too; a closed terminal
    # (SIGHUP) fails the writes the same way.
    output = tmp_path / "out.png"
    argv = cli_args(inputs, network_path, output, "--iterations", "100000")
    command = [sys.executable, str(ROOT / "neural_style.py"), *argv]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    silent = threading.Timer(120, process.kill)  # a hung process ends the loop below
    silent.start()
    try:
        for line in process.stderr:
            if line.startswith("Iteration 5/"):
                break
        silent.cancel()
        assert process.poll() is None, "no iteration reported"
        if reader_gone:
            process.stderr.close()
        process.send_signal(signum)
        if reader_gone:
            process.wait(timeout=60)
        else:
            _, rest = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signum
    if not reader_gone:
        found = re.search(
            r"^interrupted at iteration \d+/100000: best image so far written", rest, re.M
        )
        assert found and "Traceback" not in rest
    with Image.open(output) as image:
        image.verify()
    assert Image.open(output).size == (32, 24)
    assert temporaries(tmp_path) == []
