"""One job: optimise, show progress, write checkpoints and the output (single runs and batches)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
import time
import warnings
from collections.abc import Iterator

import numpy as np

if __package__:  # installed: the modules are the package neural_style_tf2
    from . import colors, hardware, images, inputs, media, network, progress, state, stylize, vgg
    from .interrupts import Interrupted, Interrupts
    from .settings import Settings, UsageError, is_checkpoint, state_path
else:  # a checkout: the modules side by side
    import colors
    import hardware
    import images
    import inputs
    import media
    import network
    import progress
    import state
    import stylize
    import vgg
    from interrupts import Interrupted, Interrupts
    from settings import Settings, UsageError, is_checkpoint, state_path

# TensorFlow's switches for deterministic ops: the public API has one for on only, none for
# off or for the state.
from tensorflow.python.framework import config as tf_config  # noqa: E402


@contextlib.contextmanager
def deterministic(on: bool) -> Iterator[None]:
    """TensorFlow's deterministic ops on or off meanwhile (a seed asks for repeatable bytes),
    as they were afterwards: one batch job's seed does not hold for the next."""
    before = tf_config.is_op_determinism_enabled()
    (tf_config.enable_op_determinism if on else tf_config.disable_op_determinism)()
    try:
        yield
    finally:
        (tf_config.enable_op_determinism if before else tf_config.disable_op_determinism)()


def as_written(image: np.ndarray, settings: Settings, content: np.ndarray) -> np.ndarray:
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
            step = dataclasses.replace(step, image=as_written(step.image, settings, content))
        yield step


def network_path(settings: Settings) -> str | None:
    """The network file the run uses (found as when it was loaded), for fingerprints."""
    try:
        return str(network.resolve_network(settings.network, download=False))
    except ValueError:
        return None


def _stale(settings: Settings, unfinished: str) -> list[str]:
    """The temporaries a killed earlier run left of any file a job writes (each through a
    temporary): output, state, checkpoints, plots and its unfinished image."""
    files = [settings.output, state_path(settings.output), unfinished]
    files += [path for path in (settings.progress_plot, settings.contact_sheet) if path]
    if settings.checkpoint_output:
        files.append(settings.checkpoint_output)  # its folder (its files: is_checkpoint)
    keys = {media.file_key(path) for path in files}
    return images.stale_temporaries(
        [os.path.dirname(path) or "." for path in files],
        lambda path: media.file_key(path) in keys or is_checkpoint(settings, path),
    )


class _Saver:
    """Keeps one job's state beside its output: loads it to resume from, saves it when due
    (checkpoints, every --state-interval seconds of work, a stop), removes it when done."""

    def __init__(self, settings: Settings):
        self.path, self.interval = state_path(settings.output), settings.state_interval
        self.settings = settings
        self.last: float | None = None  # when the state was last saved (or the work began)
        self.failed = False

    @functools.cached_property
    def fingerprint(self) -> str:
        """The run's fingerprint: taken when first needed (it reads every input file)."""
        return state.fingerprint(self.settings, network_path(self.settings))

    def check(self) -> None:
        """UsageError if the state beside the output is another run's, unless asked to replace
        it: by --restart, or by --overwrite if the output exists too."""
        # Another run's state (not a damaged one, which tells nothing) is that run's work. An
        # output beside it passed the options' check as that run's interrupted best image.
        settings = self.settings
        output = os.path.exists(settings.output)
        if settings.overwrite or (settings.restart and not output):
            return
        if not os.path.exists(self.path) or state.owner(self.path) in (None, self.fingerprint):
            return
        what = (
            f"{self.path} is another run's state (other inputs, network or options), which"
            " that run's command resumes"
        )
        if output:
            raise UsageError(
                f"--output: {settings.output} exists, and {what}; pass --overwrite to replace them"
            )
        raise UsageError(f"{what}; pass --restart to start afresh and replace it")

    def resume(self, unfinished: str, label: str) -> stylize.RunState | None:
        """The saved state to go on from, if any (not under --restart); says so in one line."""
        settings = self.settings
        # A kill mid-write leaves a temporary file behind: an earlier run's, removed here.
        for path in _stale(settings, unfinished):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        self.check()
        if settings.restart:
            return None
        found = state.load(self.path, self.fingerprint) if os.path.exists(self.path) else None
        if found is not None and not settings.quiet:
            where = f"{label}: " if label else ""
            print(
                f"{where}resuming at iteration {found.iteration}/{settings.iterations} from"
                f" {self.path}",
                file=sys.stderr,
            )
        return found

    def after(self, step: stylize.Progress, stopping: bool) -> None:
        """Save the state after a step if it is due: a checkpoint, a stop, or time."""
        now = time.monotonic()
        if self.last is None:
            self.last = now
        checkpoint = step.image is not None and not step.final
        stopped = step.final and stopping and step.iteration < step.iterations
        timed = self.interval > 0 and now - self.last >= self.interval and not step.final
        if step.snapshot is not None and (checkpoint or stopped or timed):
            # One warning if saving fails (disk full); later tries stay quiet.
            if not state.save(self.path, step.snapshot(), self.fingerprint, not self.failed):
                self.failed = True
            self.last = time.monotonic()

    def remove(self) -> None:
        """The output is written: the state is not needed any more."""
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)


def check_state(settings: Settings) -> None:
    """UsageError if another run's state is beside the output: said before the network loads
    (run() checks again, for a caller that did not)."""
    _Saver(settings).check()


def run(
    settings: Settings,
    weights: vgg.Network,
    interrupts: Interrupts,
    unfinished: str,
    label: str = "",
    cache: dict | None = None,
    loaded: tuple | None = None,
) -> None:
    """Optimise, show progress and write checkpoints and the output.

    loaded is inputs.load_inputs(settings), when already loaded; cache is stylize()'s, one for
    all the jobs of a batch. A run cut short (signal, or a NaN loss) writes its best image to
    unfinished instead. The run's state goes beside the output (_Saver); a saved state of the
    same run is resumed from.
    """
    content, styles, initial = loaded or inputs.load_inputs(settings)
    precision = hardware.resolve_precision(settings.precision)
    saver = _Saver(settings)
    resume = saver.resume(unfinished, label)
    start = resume.iteration if resume else 0
    steps = stylize.stylize(
        weights, content, styles, settings, initial=initial, stop=interrupts.stop,
        cache=cache, resume=resume,
        on_tile=lambda done, total: report.tile(done, total, settings.iterations, start),
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
        with deterministic(settings.seed is not None):  # same seed, same bytes
            for step in _finished(steps, settings, content):
                interrupts.running = True  # from the first iteration, a signal only sets a flag
                report.step(step)
                stopping = interrupts.stop()
                # The checkpoint before the state: a state is taken as having written it.
                if _is_checkpoint(step, settings, stopping):
                    path = media.numbered(settings.checkpoint_output, step.iteration)
                    try:
                        images.write_image(path, step.image)
                    except ValueError as exc:  # a full disk, a folder of that name, ...
                        warnings.warn(f"{exc}; the run goes on", stacklevel=1)
                saver.after(step, stopping)
                if step.final:
                    _write(step, settings, interrupts, unfinished, label)
        saver.remove()
    except stylize.RunFailed as exc:
        if exc.best is None:
            raise ValueError(f"{exc} (no image written: {exc.why_none})") from None
        images.write_image(unfinished, as_written(exc.best, settings, content))
        raise ValueError(f"{exc} (best image so far written to {unfinished})") from None
    finally:
        interrupts.running = False
        report.close()


def _is_checkpoint(step: stylize.Progress, settings: Settings, stopping: bool) -> bool:
    """Whether a step's image is a checkpoint: every --checkpoint-iterations, a run stopped
    there by a signal too (as it would be without one), but not the run's end."""
    every = settings.checkpoint_iterations
    if not every or step.image is None or step.iteration % every:
        return False
    return not step.final or (stopping and step.iteration < step.iterations)


def _write(
    step: stylize.Progress, settings: Settings, interrupts: Interrupts, unfinished: str, label: str
) -> None:
    """Write a final step's image: the output, or (cut short) the unfinished file."""
    if interrupts.stop() and step.iteration < step.iterations:
        images.write_image(unfinished, step.image)
        where = f" of {label}" if label else ""
        raise Interrupted(
            interrupts.signum,
            f"at iteration {step.iteration}/{step.iterations}{where}: "
            f"best image so far written to {unfinished}",
        )
    images.write_image(settings.output, step.image)
