"""Progress: the JSONL log, the loss plot, the contact sheet, --quiet and the terminal bar."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from conftest import Terminal
from conftest import tmp_cli_args as args
from PIL import Image

import neural_style
import progress
import stylize


def test_log_plot_and_sheet(inputs, network_path, tmp_path, capsys):
    log, plot, sheet = tmp_path / "logs/run.jsonl", tmp_path / "loss.png", tmp_path / "sheet.jpg"
    argv = args(
        inputs, network_path, tmp_path, "--iterations", "5", "--checkpoint-iterations", "2",
        "--checkpoint-output", str(tmp_path / "ck%s.jpg"), "--progress-log", str(log),
        "--progress-plot", str(plot), "--contact-sheet", str(sheet), "--print-iterations", "1",
    )  # fmt: skip
    assert neural_style.main(argv) == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["iteration"] for r in records] == [1, 2, 3, 4, 5]
    assert all(r["size"] == [24, 32] and r["output"] == str(tmp_path / "out.jpg") for r in records)
    elapsed = [r["elapsed"] for r in records]
    assert elapsed == sorted(elapsed) and elapsed[0] >= 0
    # The log holds the printed losses.
    printed = [float(line.split(":")[1]) for line in capsys.readouterr().err.splitlines()
               if "total loss:" in line]  # fmt: skip
    assert [r["total"] for r in records] == pytest.approx(printed, rel=1e-5)
    for r in records:
        assert r["total"] == pytest.approx(r["content"] + r["style"] + r["tv"], rel=1e-6)
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size == (800, 500)
    # Checkpoints 2 and 4 and the end (5): three tiles on a 2x2 grid of 160x120 thumbnails.
    with Image.open(sheet) as image:
        assert image.format == "JPEG" and image.size == (2 * 160, 2 * (120 + 16))
    # Appended, not rewritten: a second run adds its records.
    assert neural_style.main([*argv, "--overwrite", "--iterations", "2"]) == 0
    assert len(log.read_text().splitlines()) == 7


def test_contact_sheet_labels_each_tile_in_order():
    tiles = [(k, np.full((12, 16, 3), 4 * k, np.uint8)) for k in (10, 20, 30, 40, 50)]
    sheet = progress.contact_sheet([(k, progress.thumbnail(t)) for k, t in tiles])
    assert sheet.shape == (2 * (120 + 16), 3 * 160, 3)
    for n, (k, _) in enumerate(tiles):
        x, y = (n % 3) * 160, (n // 3) * 136
        assert (
            abs(sheet[y + 60, x + 80].astype(int) - 4 * k) <= 1
        ).all()  # tile n holds checkpoint n
        label = sheet[y + 120 : y + 136, x : x + 160]
        assert (label < 128).any()  # dark text on the white strip
    assert (sheet[136 + 125, 2 * 160 :] == 255).all()  # the empty sixth cell stays white


def test_plot_leaves_out_zero_terms_without_warnings(recwarn):
    records = [
        {"iteration": i, "content": 10.0 / i, "style": 0.0, "tv": 0.0, "total": 10.0 / i}
        for i in range(1, 4)
    ]
    assert progress.plot(records).shape == (500, 800, 3)
    assert not recwarn.list


def records_at(sizes: list[list[int]]) -> list[dict]:
    """Progress log records, one per iteration from 1, at the given sizes."""
    return [
        {"iteration": i, "content": 9.0 / i, "style": 8.0 / i, "tv": 1.0, "total": 18.0 / i + 1,
         "size": size}
        for i, size in enumerate(sizes, start=1)
    ]  # fmt: skip


def test_plot_draws_each_size_apart_and_marks_the_changes():
    # As a --scales 2 run logs them: iteration 1 is the start at the output size, 2-4 the
    # coarse size, 5-7 the output size again.
    out, coarse = [24, 32], [12, 16]
    scaled = records_at([out] + [coarse] * 3 + [out] * 3)
    axes = progress.loss_figure(scaled).axes[0]
    solid = [line for line in axes.lines if line.get_linestyle() == "-"]
    # Four terms, each a line per run of one size: no line joins two sizes.
    assert sorted(tuple(line.get_xdata()) for line in solid) == sorted(
        [(1,), (2, 3, 4), (5, 6, 7)] * 4
    )
    for term in ("content", "style", "tv", "total"):  # one colour per term
        colours = {line.get_color() for line in solid if line.get_label().strip("_") == term}
        assert len(colours) == 1, term
    assert [text.get_text() for text in axes.get_legend().get_texts()] == [
        "content", "style", "tv", "total",
    ]  # fmt: skip
    # A dashed vertical line between the sizes at each change, labelled with the new size.
    dashed = [line for line in axes.lines if line.get_linestyle() == "--"]
    assert [tuple(line.get_xdata()) for line in dashed] == [(1.5, 1.5), (4.5, 4.5)]
    assert [text.get_text().strip() for text in axes.texts] == ["16x12", "32x24"]
    assert [text.get_position()[0] for text in axes.texts] == [1.5, 4.5]
    # One size: one line per term, no marks.
    single = progress.loss_figure(records_at([out] * 7)).axes[0]
    assert [tuple(line.get_xdata()) for line in single.lines] == [tuple(range(1, 8))] * 4
    assert not single.texts
    assert progress.plot(scaled).shape == (500, 800, 3)
    assert (progress.plot(scaled) != progress.plot(records_at([out] * 7))).any()


def test_quiet_prints_nothing_but_errors(inputs, network_path, tmp_path, capsys):
    argv = args(inputs, network_path, tmp_path, "--iterations", "2", "--quiet")
    assert neural_style.main([*argv, "--print-iterations", "1"]) == 0
    assert capsys.readouterr().err == ""
    assert neural_style.main(argv) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_a_terminal_gets_a_bar_instead_of_lines():
    losses = stylize.Losses(1.0, 2.0, 3.0)
    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        reporter = progress.Reporter(stream, "out.jpg")
        for i in (1, 2, 3):
            reporter.step(stylize.Progress(i, 3, losses))
        reporter.close()
    assert "3/3" in terminal.getvalue() and "total 6" in terminal.getvalue()
    assert "Iteration" not in terminal.getvalue()
    assert pipe.getvalue() == "Iteration 1/3\nIteration 2/3\nIteration 3/3\n"


def test_on_a_terminal_each_loss_block_says_its_iteration():
    """The bar replaces the Iteration lines, so each loss block gets its own above it."""
    terminal = Terminal()
    reporter = progress.Reporter(terminal, "out.jpg", print_every=2)
    for i in (1, 2, 3, 4):
        reporter.step(stylize.Progress(i, 4, stylize.Losses(float(i), 2.0, 3.0), final=i == 4))
    reporter.close()
    # Blocks at iterations 1 and 3 ((i - 1) % 2 == 0) and 4 (the last), each under its line.
    lines = terminal.getvalue().replace("\r", "\n").splitlines()
    headed = [
        (lines[k], float(lines[k + 1].split(":")[1]))
        for k in range(len(lines) - 1)
        if lines[k + 1].startswith("  content loss:")
    ]
    assert headed == [("Iteration 1/4", 1.0), ("Iteration 3/4", 3.0), ("Iteration 4/4", 4.0)]
    assert terminal.getvalue().count("Iteration") == 3  # none without a block
