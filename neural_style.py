"""neural-style: repaint a photograph in the style of one or more paintings (Gatys et al.)."""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from typing import TextIO

STARTING = "while starting; nothing written (SIGINT)"  # Ctrl-C before main's handlers are set


@contextlib.contextmanager
def muted_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null meanwhile (Python exceptions still show after)."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to mute
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _import_tensorflow() -> None:
    """Import TensorFlow quietly and without Keras, which this tool never uses."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    # Each job of a batch traces its own step; TensorFlow's warning that functions were
    # traced again is expected then and says nothing to the user.
    logging.getLogger("tensorflow").addFilter(
        lambda record: "triggered tf.function retracing" not in record.getMessage()
    )
    # `import tensorflow` also imports Keras (and matplotlib), about a second and 50 MB, only
    # to register Keras's optimisers. A None module entry makes that import fail, which
    # TensorFlow ignores; the entry goes once TensorFlow is loaded.
    skipped = "keras.src.optimizers"
    skip = skipped not in sys.modules and "tensorflow" not in sys.modules
    if skip:
        sys.modules[skipped] = None
    try:
        # TensorFlow logs a oneDNN notice to stderr while importing, before
        # TF_CPP_MIN_LOG_LEVEL applies; muted so that a failed run's stderr is just its line.
        with muted_stderr():
            import tensorflow

            # Finding the devices logs too (a failed CUDA probe where no GPU is), once.
            tensorflow.config.list_physical_devices()
    finally:
        if skip:
            del sys.modules[skipped]


# Python's collector went through TensorFlow's objects four times while they were imported
# (0.3 s), and again at every full collection of a run. They live as long as the process: the
# collector is off while they are imported, then they are frozen (left out of collections).
_collecting = gc.isenabled()
gc.disable()
try:  # importing TensorFlow takes seconds: a Ctrl-C then gets a line, not a traceback
    _import_tensorflow()

    if __package__:  # installed: the modules are the package neural_style_tf2
        from . import batch, hardware, inputs, job, media, network, vgg  # noqa: E402
        from . import settings as options  # noqa: E402
        from .interrupts import Interrupted, Interrupts  # noqa: E402
        from .settings import Settings, UsageError  # noqa: E402
    else:  # a checkout: the modules side by side
        import batch  # noqa: E402
        import hardware  # noqa: E402
        import inputs  # noqa: E402
        import job  # noqa: E402
        import media  # noqa: E402
        import network  # noqa: E402
        import settings as options  # noqa: E402
        import vgg  # noqa: E402
        from interrupts import Interrupted, Interrupts  # noqa: E402
        from settings import Settings, UsageError  # noqa: E402
except KeyboardInterrupt:
    with contextlib.suppress(OSError):  # `| tee log`, which the same Ctrl-C ended
        print(f"interrupted {STARTING}", file=sys.stderr)
    raise SystemExit(130) from None
finally:
    gc.freeze()
    if _collecting:
        gc.enable()


def load_network(settings: Settings) -> vgg.Network:
    """The VGG-19 weights the settings name, found (or downloaded) and loaded."""
    path = network.resolve_network(
        settings.network, download=not settings.no_download, quiet=settings.quiet
    )
    return network.load_network(path, use_cache=not settings.no_cache)


def _show_warning(message: Warning | str, *_args: object, **_kwargs: object) -> None:
    """Print a warning as one line on stderr."""
    print(f"warning: {message}", file=sys.stderr)


class _Unbroken(io.TextIOBase):
    """stderr that drops what it can no longer write. A Ctrl-C ends `| tee log` too, and a
    closed terminal sends SIGHUP: the run must still end cleanly and write its image."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.broken = stream, False

    def write(self, text: str) -> int:
        """Write text, unless the stream broke (now or before)."""
        if not self.broken:
            try:
                self.stream.write(text)
            except OSError:  # EPIPE: the reader is gone; EIO: the terminal is
                self.broken = True
        return len(text)

    def flush(self) -> None:
        """Flush the stream, unless it broke."""
        if not self.broken:
            try:
                self.stream.flush()
            except OSError:
                self.broken = True

    def isatty(self) -> bool:
        """Whether the stream is a terminal (still there)."""
        return not self.broken and self.stream.isatty()

    def fileno(self) -> int:
        """The stream's file descriptor."""
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        """The stream's encoding."""
        return self.stream.encoding


def main(argv: list[str] | None = None) -> int:
    """Run the command line; errors become one line on stderr and an exit status."""
    if sys.stderr is None:  # closed (2>&-) or none (pythonw): what would go there is dropped
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (for the rest of the process)
    stderr = sys.stderr
    sys.stderr = unbroken = stderr if isinstance(stderr, _Unbroken) else _Unbroken(stderr)
    try:
        return _main_reporting(argv)
    finally:
        if not unbroken.broken:  # else kept: Python flushes sys.stderr as the process ends
            sys.stderr = stderr


def _main_reporting(argv: list[str] | None) -> int:
    """main() once stderr is safe to write to."""
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return _main(argv)
        except Interrupted as exc:
            print(f"interrupted {exc}", file=sys.stderr)
            return exc.status
        except KeyboardInterrupt:  # before the handlers were set
            print(f"interrupted {STARTING}", file=sys.stderr)
            return 130
        except UsageError as exc:
            _print_error(exc)
            return 2
        except (ValueError, OSError) as exc:
            _print_error(exc)
            return 1
        except MemoryError:
            _print_error("out of memory; try a smaller --width")
            return 1


def _main(argv: list[str] | None) -> int:
    """main() without the error handling."""
    parser = options.build_parser()
    settings = options.from_namespace(parser.parse_args(argv))
    if settings.download_network:
        print(
            network.resolve_network(None, download=not settings.no_download, quiet=settings.quiet)
        )
        return 0
    gpu = hardware.on_gpu()
    with Interrupts() as interrupts:
        if settings.batch is not None:
            return batch.run_batch(
                parser, settings, interrupts, lambda: load_network(settings), gpu
            )
        if media.is_video(settings.content):
            _run_video(settings, interrupts, gpu)
        else:
            options.validate(settings)
            inputs.check_inputs(settings, gpu)
            loaded = inputs.load_inputs(settings)  # a damaged image is found before the network
            job.check_state(settings)
            job.run(settings, load_network(settings), interrupts, settings.output, loaded=loaded)
        if interrupts.stop():  # the signal came during the last iteration or the writing
            raise Interrupted(interrupts.signum, f"after the run; {settings.output} is done")
    return 0


def _run_video(settings: Settings, interrupts: Interrupts, gpu: bool) -> None:
    """A clip in, a clip out (video.py: its checks, the frame loop, the assembly)."""
    # OpenCV and imageio-ffmpeg, loaded for videos only
    if __package__:
        from . import video
    else:
        import video

    video.run(settings, lambda: load_network(settings), interrupts, gpu)


def _print_error(error: Exception | str) -> None:
    """The error as the one line 'error: ...' on stderr."""
    print(f"error: {options.one_line(error)}", file=sys.stderr)


def script() -> int:
    """The command itself (`python neural_style.py`, `neural-style-tf2`): main() in its process."""
    # The command's process holds one network (a batch's jobs share it), so oneDNN may keep
    # its filters reordered: a float32 step took 0.684 s instead of 0.724 at 512x384 and
    # 0.181 instead of 0.202 at 256x192 (bench/step.py, AMD EPYC), level with a TF1 Session
    # holding the weights as constants; the files are the same bit for bit. Not for main()
    # called from other code, which may run another network of the same shapes in its process.
    os.environ.setdefault(hardware.FROZEN_WEIGHTS, "1")
    try:
        return main()
    finally:
        # As the interpreter shuts down, Python's collector goes through every object not
        # frozen. The import's are frozen already (above); this leaves those the run made to
        # the system too. Every file is closed by then.
        gc.freeze()


if __name__ == "__main__":
    sys.exit(script())
