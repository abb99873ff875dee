"""A run's progress: a bar or plain lines, the JSONL log, the loss plot, the contact sheet."""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

import numpy as np
from PIL import Image, ImageDraw

if __package__:  # installed: the modules are the package neural_style_tf2
    from . import images
else:  # a checkout: the modules side by side
    import images

if TYPE_CHECKING:  # annotations only: importing stylize would load TensorFlow
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    import stylize

PLOT_SIZE = (8, 5)  # inches, at PLOT_DPI: an 800x500 image
PLOT_DPI = 100
THUMB_WIDTH = 160  # contact sheet tile width; the height keeps the aspect ratio
LABEL_HEIGHT = 16  # the strip under each tile holding "iteration N"


def loss_lines(losses: stylize.Losses) -> str:
    """The four loss lines (a fifth, temporal, for a video frame), labels right-aligned so
    that the colons line up."""
    return "\n".join(
        f"{label:>14}: {value:g}"
        for label, value in (
            ("content loss", losses.content),
            ("style loss", losses.style),
            ("tv loss", losses.tv),
            *([("temporal loss", losses.temporal)] if losses.temporal is not None else []),
            ("total loss", losses.total),
        )
    )


def size_runs(records: list[dict]) -> list[list[dict]]:
    """records split into runs of consecutive records of one size ("size", [height, width])."""
    runs: list[list[dict]] = []
    for record in records:
        if runs and runs[-1][-1].get("size") == record.get("size"):
            runs[-1].append(record)
        else:
            runs.append([record])
    return runs


def loss_figure(records: list[dict]) -> Figure:
    """The loss terms against iterations on a log scale, one line per size and term.

    The sizes of --scales are not joined: each size's run of iterations is a line of its own
    (in its term's colour), and a dashed vertical line labelled with the new size marks where
    the size changes.
    """
    from matplotlib.figure import Figure  # deferred: slow to import

    figure = Figure(figsize=PLOT_SIZE, dpi=PLOT_DPI)
    axes = figure.add_subplot()
    runs = size_runs(records)
    terms = [t for t in ("content", "style", "tv", "total") if any(r[t] > 0 for r in records)]
    for k, term in enumerate(terms):
        _plot_term(axes, runs, term, f"C{k}")  # the colour cycle's k-th colour
    for before, run in zip(runs, runs[1:], strict=False):
        x = (before[-1]["iteration"] + run[0]["iteration"]) / 2
        axes.axvline(x, color="grey", linestyle="--", linewidth=1)
        axes.text(
            x, 0.98, f" {images.Size(*run[0]['size'])}", transform=axes.get_xaxis_transform(),
            rotation=90, ha="left", va="top", fontsize="small", color="grey",
        )  # fmt: skip
    if terms:  # a log axis needs a positive value; zero terms (weight 0) are left out
        axes.set_yscale("log", nonpositive="mask")
        axes.legend()
    axes.set_xlabel("iteration")
    axes.set_ylabel("loss")
    axes.grid(True, which="both", alpha=0.3)
    return figure


def _plot_term(axes: Axes, runs: list[list[dict]], term: str, colour: str) -> None:
    """One loss term, a line per run of one size; the longest one carries the legend entry."""
    longest = max(runs, key=len)
    for run in runs:
        marker = "." if len(run) == 1 else None  # a line of one point would not show
        axes.plot(
            [r["iteration"] for r in run], [r[term] for r in run], color=colour, marker=marker,
            label=term if run is longest else "_" + term,  # "_": left out of the legend
        )  # fmt: skip


def plot(records: list[dict]) -> np.ndarray:
    """The loss figure of records as an 8-bit RGB image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # deferred: slow to import

    canvas = FigureCanvasAgg(loss_figure(records))
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


def thumbnail(image: np.ndarray) -> np.ndarray:
    """image resized to THUMB_WIDTH wide, keeping its aspect ratio."""
    height = max(1, round(image.shape[0] * THUMB_WIDTH / image.shape[1]))
    return np.asarray(
        Image.fromarray(image).resize((THUMB_WIDTH, height), Image.Resampling.LANCZOS)
    )


def contact_sheet(tiles: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """Thumbnails tiled left to right, top to bottom, each labelled with its iteration."""
    columns = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    height = max(tile.shape[0] for _, tile in tiles) + LABEL_HEIGHT
    sheet = Image.new("RGB", (columns * THUMB_WIDTH, rows * height), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (iteration, tile) in enumerate(tiles):
        x, y = (k % columns) * THUMB_WIDTH, (k // columns) * height
        sheet.paste(Image.fromarray(tile), (x, y))
        draw.text((x + 3, y + tile.shape[0] + 2), f"iteration {iteration}", fill="black")
    return np.asarray(sheet)


class Reporter:
    """Shows one run's progress and writes its log, plot and contact sheet as it goes.

    Unless quiet (then it prints nothing): on a terminal a tqdm bar, otherwise an
    `Iteration i/N` line per iteration; with print_every, the loss block of every
    print_every-th iteration from the first and of the last (on a terminal under its own
    `Iteration i/N` line). elapsed in the log counts seconds from the reporter's creation.
    """

    def __init__(
        self,
        stream: TextIO,
        output: str,
        print_every: int | None = None,
        quiet: bool = False,
        log: str | None = None,
        plot: str | None = None,
        sheet: str | None = None,
        label: str = "",
        context: dict | None = None,
    ):
        self.stream, self.output = stream, output
        self.print_every, self.quiet, self.label = print_every, quiet, label
        self.log_path, self.plot_path, self.sheet_path = log, plot, sheet
        self.started = time.monotonic()
        self.bar = None
        self.tty = stream.isatty()
        self.log = None
        self.records: list[dict] = []
        self.tiles: list[tuple[int, np.ndarray]] = []
        self.context = context or {}  # what holds for the whole run, in every log record
        self.failed: set[str] = set()  # the files that could not be written, warned of once

    def _print(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream)

    def _show(self, step: stylize.Progress) -> None:
        """The bar's update, or the plain lines of one iteration."""
        if self.quiet:
            return
        losses = step.losses
        self._open_bar(step.iterations, step.iteration - 1)  # a resumed run's starts where it was
        if self.bar is not None:
            self.bar.set_description_str(self.label or None, refresh=False)  # no tile count
            self.bar.set_postfix_str(
                f"content {losses.content:.3g}, style {losses.style:.3g}, "
                f"tv {losses.tv:.3g}, total {losses.total:.3g}",
                refresh=False,
            )
            self.bar.update(1)
        else:
            print(f"Iteration {step.iteration}/{step.iterations}", file=self.stream)
        every = self.print_every
        if every and ((step.iteration - 1) % every == 0 or step.final):
            block = loss_lines(losses)
            if self.bar is not None:  # the bar has no Iteration lines: the block names its own
                block = f"Iteration {step.iteration}/{step.iterations}\n{block}"
            self._print(block)

    def _open_bar(self, iterations: int, done: int) -> None:
        """The bar, on a terminal, if there is none yet."""
        if self.bar is None and self.tty:
            from tqdm import tqdm

            self.bar = tqdm(
                total=iterations,
                initial=done,
                file=self.stream,
                desc=self.label or None,
                unit="it",
                leave=None,  # kept at the end unless under another bar (a video's frames)
            )

    def tile(self, done: int, total: int, iterations: int, start: int = 0) -> None:
        """Show that done of an iteration's total tiles are computed (on the bar only); start:
        the iterations done before (a resumed run's)."""
        if self.quiet:
            return
        self._open_bar(iterations, start)
        if self.bar is not None:
            label = f"{self.label} " if self.label else ""
            self.bar.set_description_str(f"{label}tile {done}/{total}")

    def step(self, step: stylize.Progress) -> None:
        """Report one iteration; at checkpoints and the end, rewrite the plot and sheet."""
        self._show(step)
        losses = step.losses
        record = {
            "iteration": step.iteration,
            "content": losses.content,
            "style": losses.style,
            "tv": losses.tv,
            "total": losses.total,
            **({} if losses.temporal is None else {"temporal": losses.temporal}),  # video
            "elapsed": round(time.monotonic() - self.started, 3),
            "size": list(step.size),  # the size optimised at this iteration (--scales)
            "output": self.output,
            **self.context,
        }
        self.records.append(record)
        if self.log_path:
            self._save(self.log_path, lambda: self._log(record))
        if step.image is None:
            return
        if self.plot_path:
            self._save(
                self.plot_path, lambda: images.write_image(self.plot_path, plot(self.records))
            )
        if self.sheet_path:
            self.tiles.append((step.iteration, thumbnail(step.image)))
            sheet = contact_sheet(self.tiles)
            self._save(self.sheet_path, lambda: images.write_image(self.sheet_path, sheet))

    def _log(self, record: dict) -> None:
        """Append record to the log, opening it the first time."""
        try:
            if self.log is None:
                os.makedirs(os.path.dirname(self.log_path) or ".", exist_ok=True)
                self.log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115
            self.log.write(json.dumps(record) + "\n")
            self.log.flush()
        except OSError as error:
            raise ValueError(f"{self.log_path}: cannot write: {error.strerror or error}") from None

    def _save(self, path: str, write: Callable[[], None]) -> None:
        """Write the log, plot or sheet at path. A failure (a full disk, a folder of that name)
        must not end the run before its image and state are written: it is one warning per
        file, and the run goes on (later writes are tried again)."""
        try:
            write()
        except ValueError as exc:
            if path not in self.failed:
                self.failed.add(path)
                warnings.warn(f"{exc}; the run goes on", stacklevel=1)

    def close(self) -> None:
        """Close the bar and the log."""
        if self.bar is not None:
            self.bar.close()
        if self.log is not None:
            # A write that failed (warned of) leaves the line in the buffer: close flushes it.
            with contextlib.suppress(OSError):
                self.log.close()
