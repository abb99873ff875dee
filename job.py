"""One job: optimise, show progress, write checkpoints and the output (single runs and batches)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator

import numpy as np
import tensorflow as tf

import colors
import hardware
import images
import inputs
import progress
import stylize
import vgg
from interrupts import Interrupted, Interrupts
from settings import Settings, checkpoint_name

try:  # TensorFlow has no public switch back once op determinism is on
    from tensorflow.python.framework.config import disable_op_determinism
except ImportError:  # pragma: no cover - a TensorFlow without it
    disable_op_determinism = None


def _deterministic(on: bool) -> None:
    """TensorFlow's deterministic ops on or off for this job (a seed asks for repeatable bytes)."""
    if on:
        tf.config.experimental.enable_op_determinism()
    elif disable_op_determinism is not None:
        disable_op_determinism()


def _as_written(image: np.ndarray, settings: Settings, content: np.ndarray) -> np.ndarray:
    """An image as it is written: with the content's colours under --preserve-colors luminance."""
    if settings.preserve_colors == "luminance":
        return colors.preserve_luminance(image, content)
    return image


def _finished(
    steps: Iterator[stylize.Progress], settings: Settings, content: np.ndarray
) -> Iterator[stylize.Progress]:
    """The steps with their images as written, for every file and the contact sheet alike."""
    for step in steps:
        if step.image is not None:
            step = dataclasses.replace(step, image=_as_written(step.image, settings, content))
        yield step


def run(
    settings: Settings,
    weights: vgg.Network,
    interrupts: Interrupts,
    unfinished: str,
    label: str = "",
    style_cache: dict | None = None,
    loaded: tuple | None = None,
) -> None:
    """Optimise, show progress and write checkpoints and the output.

    loaded is inputs.load_inputs(settings), when already loaded. A run cut short (signal, or a
    NaN loss) writes its best image to unfinished instead.
    """
    content, styles, initial = loaded or inputs.load_inputs(settings)
    _deterministic(settings.seed is not None)  # same seed, same bytes
    precision = hardware.resolve_precision(settings.precision)
    steps = stylize.stylize(
        weights, content, styles, settings, initial=initial, stop=interrupts.stop,
        style_cache=style_cache,
        on_tile=lambda done, total: report.tile(done, total, settings.iterations),
    )  # fmt: skip
    del weights  # a single run's float32 weights can go once cast (a batch keeps its own)
    report = progress.Reporter(
        sys.stderr,
        settings.output,
        print_every=settings.print_iterations,
        quiet=settings.quiet,
        log=settings.progress_log,
        plot=settings.progress_plot,
        sheet=settings.contact_sheet,
        label=label,
        context=dict(zip(("precision", "precision_reason"), precision, strict=True)),
    )
    try:
        for step in _finished(steps, settings, content):
            interrupts.running = True  # from the first iteration on, a signal only sets a flag
            report.step(step)
            if step.image is not None:
                _write(step, settings, interrupts, unfinished, label)
    except stylize.RunFailed as exc:
        if exc.best is None:
            raise ValueError(f"{exc} (no image written: there was no good one yet)") from None
        images.write_image(unfinished, _as_written(exc.best, settings, content))
        raise ValueError(f"{exc} (best image so far written to {unfinished})") from None
    finally:
        interrupts.running = False
        report.close()


def _write(
    step: stylize.Progress, settings: Settings, interrupts: Interrupts, unfinished: str, label: str
) -> None:
    """Write a step's image: the output, a checkpoint, or (cut short) the unfinished file."""
    if step.final and interrupts.stop() and step.iteration < step.iterations:
        images.write_image(unfinished, step.image)
        where = f" of {label}" if label else ""
        raise Interrupted(
            interrupts.signum,
            f"at iteration {step.iteration}/{step.iterations}{where}: "
            f"best image so far written to {unfinished}",
        )
    if step.final:
        images.write_image(settings.output, step.image)
    elif settings.checkpoint_output:
        images.write_image(checkpoint_name(settings.checkpoint_output, step.iteration), step.image)
