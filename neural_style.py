"""neural-style: repaint a photograph in the style of one or more paintings (Gatys et al.)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off stderr
# Each run (each job of a batch) traces its own step; TensorFlow's warning that functions were
# traced again is expected then and says nothing to the user.
logging.getLogger("tensorflow").addFilter(
    lambda record: "triggered tf.function retracing" not in record.getMessage()
)
# Start-up: `import tensorflow` also imports Keras (and matplotlib), about a second and 50 MB,
# only to register Keras's optimisers; this tool never uses Keras. A None module entry makes
# that import fail, which TensorFlow ignores; the entry goes once TensorFlow is loaded.
_SKIPPED = "keras.src.optimizers"
_skip = _SKIPPED not in sys.modules and "tensorflow" not in sys.modules
if _skip:
    sys.modules[_SKIPPED] = None


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


STARTING = "while starting; nothing written (SIGINT)"  # Ctrl-C before main's handlers are set

try:  # importing TensorFlow takes seconds: a Ctrl-C then gets a line, not a traceback
    # TensorFlow 2.16+ logs a oneDNN notice to stderr while importing, before
    # TF_CPP_MIN_LOG_LEVEL applies; muted so that a failed run's stderr is just its one line.
    with muted_stderr():
        import tensorflow  # noqa: E402, F401

    import numpy as np  # noqa: E402

    if __package__:  # installed: the modules are the package neural_style_tf2
        from . import batch, colors, images, network, progress, stylize, vgg  # noqa: E402
    else:  # a checkout: the modules side by side
        import batch  # noqa: E402
        import colors  # noqa: E402
        import images  # noqa: E402
        import network  # noqa: E402
        import progress  # noqa: E402
        import stylize  # noqa: E402
        import vgg  # noqa: E402
except KeyboardInterrupt:
    print(f"interrupted {STARTING}", file=sys.stderr)
    raise SystemExit(130) from None

# Peak memory of a run (float32 on the CPU), fitted with a margin to bench/memory.py's
# measurements with a full-width VGG-19 (table in bench/README.md); update these when the
# memory use changes. The base covers a first run, which reads the uncached 510 MB .mat.
MEMORY_BASE = 1200 * 2**20  # bytes: Python, TensorFlow, the weights
MEMORY_PER_CONTENT_PIXEL = 2700  # bytes per output pixel: activations kept for the gradient
MEMORY_PER_STYLE_PIXEL = 700  # bytes per pixel of a resized style: one forward pass
MEMORY_PER_FILE_PIXEL = 56  # bytes per pixel of an input file decoded at full size (RGBA)
MEMORY_MARGIN = 1.2
MIN_SIDE = 2  # the total variation loss needs two pixels each way

INITS = ("noise", "content", "style")

if _skip:
    del sys.modules[_SKIPPED]


class UsageError(Exception):
    """A bad option or path, found before any work starts (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises UsageError instead of printing usage and exiting."""

    def error(self, message: str) -> None:
        raise UsageError(message)


def _number(
    kind: type, low: float, low_ok: bool, what: str, high: float = math.inf, high_ok: bool = True
) -> Callable:
    """An argparse type: kind, finite, above low (or equal when low_ok), up to high."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got '{text}'") from None
        if not math.isfinite(value) or value < low or (value == low and not low_ok):
            raise argparse.ArgumentTypeError(f"must be {what}, got '{text}'")
        if value > high or (value == high and not high_ok):
            raise argparse.ArgumentTypeError(f"must be {what}, got '{text}'")
        return value

    return parse


positive_int = _number(int, 0, False, "a whole number >= 1")
positive_float = _number(float, 0.0, False, "a number > 0")
weight = _number(float, 0.0, True, "a number >= 0")
fraction = _number(float, 0.0, True, "a number from 0 to 1", 1.0)
beta = _number(float, 0.0, True, "a number >= 0 and < 1", 1.0, False)
natural = _number(int, 0, True, "a whole number >= 0")


def _names(layers: dict[str, float]) -> str:
    """Layer names for --help."""
    return " ".join(layers)


def build_parser() -> argparse.ArgumentParser:
    """The command line, with every default shown by --help."""
    p = _Parser(description=__doc__)  # prog: the name the user typed (argparse's default)
    p.add_argument("--content", metavar="PATH", help="content photograph (required unless --batch)")
    p.add_argument(
        "--styles",
        nargs="+",
        metavar="PATH",
        help="one or more style images (required unless --batch)",
    )
    p.add_argument(
        "--output", metavar="PATH", help="final image, .jpg, .png, ... (required unless --batch)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --output (default: that is an error); with --batch, rerun"
        " jobs whose output exists (default: skip them)",
    )
    p.add_argument(
        "--checkpoint-output",
        metavar="PATTERN",
        help="checkpoint file names, with a placeholder for the iteration: %%s, %%05d or {:05}"
        " (default: none)",
    )
    p.add_argument(
        "--checkpoint-iterations",
        type=positive_int,
        metavar="N",
        help="checkpoint every N iterations (default: none)",
    )
    p.add_argument(
        "--iterations",
        type=positive_int,
        default=stylize.ITERATIONS,
        help="optimisation steps (default: %(default)s)",
    )
    p.add_argument(
        "--width", type=positive_int, metavar="W", help="output width (default: the content's)"
    )
    p.add_argument(
        "--style-scales",
        type=positive_float,
        nargs="+",
        metavar="S",
        help="style i is resized to S_i * output width (default: 1.0 each)",
    )
    p.add_argument(
        "--network",
        metavar="PATH",
        help="VGG-19 MatConvNet weights (default: $NEURAL_STYLE_NETWORK, else "
        f"./{network.FILENAME}, else the cache folder $NEURAL_STYLE_HOME, "
        "$XDG_CACHE_HOME/neural-style or ~/.cache/neural-style, where it is downloaded "
        "when found nowhere)",
    )
    p.add_argument(
        "--no-download",
        action="store_true",
        help="never download the weights (also: NEURAL_STYLE_NO_DOWNLOAD=1)",
    )
    p.add_argument(
        "--no-cache", action="store_true", help="read the .mat itself, not the fast weight cache"
    )
    p.add_argument(
        "--download-network",
        action="store_true",
        help="download the weights into the cache folder (if not found), print the path, exit",
    )
    p.add_argument(
        "--no-memory-check",
        action="store_true",
        help="run even if the memory estimate says the sizes will not fit (e.g. on a GPU)",
    )
    p.add_argument(
        "--content-weight",
        type=weight,
        default=stylize.CONTENT_WEIGHT,
        help="content loss weight (default: %(default)s)",
    )
    p.add_argument(
        "--style-weight",
        type=weight,
        default=stylize.STYLE_WEIGHT,
        help="style loss weight (default: %(default)s)",
    )
    p.add_argument(
        "--style-blend-weights",
        type=weight,
        nargs="+",
        metavar="W",
        help="one weight per style, normalised to sum 1 (default: equal)",
    )
    p.add_argument(
        "--tv-weight",
        type=weight,
        default=stylize.TV_WEIGHT,
        help="total variation (smoothness) weight (default: %(default)s)",
    )
    p.add_argument(
        "--content-weight-blend",
        type=fraction,
        metavar="B",
        help="content layers relu4_2 weighted B and relu5_2 weighted 1-B"
        f" (default: {stylize.CONTENT_WEIGHT_BLEND})",
    )
    p.add_argument(
        "--style-layer-weight-exp",
        type=positive_float,
        default=stylize.STYLE_LAYER_WEIGHT_EXP,
        metavar="E",
        help="style layer k (0 = shallowest) weighted E**k, scaled to average 1"
        " (default: %(default)s)",
    )
    p.add_argument(
        "--content-layers",
        nargs="+",
        metavar="LAYER",
        help="VGG layers for the content loss, weighted equally"
        f" (default: {_names(stylize.CONTENT_LAYERS)})",
    )
    p.add_argument(
        "--style-layers",
        nargs="+",
        metavar="LAYER",
        help=f"VGG layers for the style loss (default: {_names(stylize.STYLE_LAYERS)})",
    )
    p.add_argument(
        "--pooling",
        choices=vgg.POOLINGS,
        default=stylize.POOLING,
        help="the network's pooling layers (default: %(default)s)",
    )
    p.add_argument(
        "--optimizer",
        choices=stylize.OPTIMIZERS,
        default=stylize.OPTIMIZER,
        help="Adam, or L-BFGS (the paper's; --iterations counts its iterations)"
        " (default: %(default)s)",
    )
    p.add_argument(
        "--learning-rate",
        type=positive_float,
        default=stylize.LEARNING_RATE,
        help="Adam step size (default: %(default)s)",
    )
    p.add_argument(
        "--beta1", type=beta, default=stylize.BETA1, help="Adam's beta1 (default: %(default)s)"
    )
    p.add_argument(
        "--beta2", type=beta, default=stylize.BETA2, help="Adam's beta2 (default: %(default)s)"
    )
    p.add_argument(
        "--epsilon",
        type=positive_float,
        default=stylize.EPSILON,
        help="Adam's epsilon (default: %(default)s)",
    )
    p.add_argument(
        "--preserve-colors",
        nargs="?",
        const="luminance",
        choices=("luminance", "histogram"),
        help="keep the content's colours: 'luminance' (the bare flag) takes only the result's"
        " luminance; 'histogram' first gives the styles the content's colour statistics"
        " (default: off)",
    )
    p.add_argument(
        "--init",
        choices=INITS,
        help="starting image: noise, the content or the first style (default: noise)",
    )
    p.add_argument("--initial", metavar="PATH", help="starting image file (default: noise)")
    p.add_argument(
        "--initial-noiseblend",
        type=fraction,
        default=stylize.INITIAL_NOISEBLEND,
        metavar="R",
        help="start from (1-R) * the starting image + R * noise; no effect when starting from"
        " noise (default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=natural,
        metavar="N",
        help="seed for the noise, making runs repeatable (default: none, random)",
    )
    p.add_argument(
        "--print-iterations",
        type=positive_int,
        metavar="N",
        help="print the losses every N iterations (default: none)",
    )
    p.add_argument("--quiet", action="store_true", help="print only errors")
    p.add_argument(
        "--progress-log",
        metavar="FILE.jsonl",
        help="append one JSON object per iteration: losses, elapsed seconds, size (default: none)",
    )
    p.add_argument(
        "--progress-plot",
        metavar="FILE.png",
        help="plot the losses against iterations (log scale), rewritten at each checkpoint"
        " and at the end (default: none)",
    )
    p.add_argument(
        "--contact-sheet",
        metavar="FILE.jpg",
        help="tile all checkpoints, each labelled with its iteration, rewritten at each"
        " checkpoint (default: none)",
    )
    p.add_argument(
        "--batch",
        metavar="FILE",
        help="run the jobs of a CSV (with a header row) or JSON Lines (.jsonl) file, one per"
        " row; columns are option names and override the command line (default: none)",
    )
    p.add_argument(
        "--shard",
        type=batch.parse_shard,
        metavar="K/N",
        help="with --batch, run only the jobs whose 0-based row index i has i %% N == K"
        " (default: all)",
    )
    p.add_argument(
        "--precision",
        choices=stylize.PRECISIONS,
        default=stylize.PRECISION,
        help="number format of the network's convolutions; Grams, losses and the image stay"
        " float32 (default: %(default)s)",
    )
    p.add_argument(
        "--scales",
        type=positive_int,
        default=stylize.SCALES,
        metavar="N",
        help="coarse to fine: optimise at up to N sizes, each twice the previous, ending at the"
        " output size; --iterations counts the steps at all sizes (default: %(default)s)",
    )
    return p


def checkpoint_name(pattern: str, iteration: int) -> str:
    """The checkpoint file name for iteration: {}-style or %-style placeholder."""
    if re.search(r"\{[^{}]*\}", pattern):
        return pattern.format(iteration)
    return pattern % iteration


def validate(options: argparse.Namespace) -> None:
    """Raise UsageError for any bad combination of options or missing path."""
    missing = [
        f"--{name}" for name in ("content", "styles", "output") if not getattr(options, name)
    ]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join(missing)}")
    if options.batch is None:  # a batch skips jobs whose output exists instead
        if options.shard is not None:
            raise UsageError("--shard goes with --batch")
        if os.path.exists(options.output) and not options.overwrite:
            raise UsageError(f"--output: {options.output} exists; pass --overwrite to replace it")
    if (options.checkpoint_output is None) != (options.checkpoint_iterations is None):
        raise UsageError("--checkpoint-output and --checkpoint-iterations go together")
    if options.checkpoint_output is not None:
        pattern = options.checkpoint_output
        try:
            distinct = checkpoint_name(pattern, 1) != checkpoint_name(pattern, 2)
        except (TypeError, ValueError, IndexError, KeyError):
            distinct = False
        if not distinct:
            raise UsageError(
                f"--checkpoint-output '{pattern}' needs one placeholder for the iteration "
                "(e.g. out%s.jpg, out%05d.jpg or out{:05}.jpg)"
            )
    count = len(options.styles)
    if options.style_scales is not None and len(options.style_scales) != count:
        raise UsageError(
            f"--style-scales has {len(options.style_scales)} values for {count} styles"
        )
    if options.init is not None and options.initial is not None:
        raise UsageError("--init and --initial both give the starting image; use one")
    if options.content_weight_blend is not None and options.content_layers is not None:
        raise UsageError("--content-weight-blend applies to relu4_2/relu5_2, not --content-layers")
    try:
        stylize.normalize_blend(options.style_blend_weights, count)
        layer_weights(options)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    inputs = [("--content", options.content)]
    inputs += [("--network", options.network)] if options.network else []
    inputs += [("--styles", path) for path in options.styles]
    inputs += [("--initial", options.initial)] if options.initial else []
    for flag, path in inputs:
        if not os.path.exists(path):
            raise UsageError(f"{flag}: {path} does not exist")
        if not os.path.isfile(path):
            raise UsageError(f"{flag}: {path} is not a file")
    outputs = [("--output", options.output)]
    if options.checkpoint_output:
        outputs.append(("--checkpoint-output", checkpoint_name(options.checkpoint_output, 1)))
    for flag, path in (
        ("--progress-plot", options.progress_plot),
        ("--contact-sheet", options.contact_sheet),
        ("--progress-log", options.progress_log),
    ):
        if path:
            outputs.append((flag, path))
    for flag, path in outputs:
        try:
            images.check_output(path, image=flag != "--progress-log")
        except ValueError as exc:
            raise UsageError(f"{flag}: {exc}") from None


def fit_width(size: tuple[int, int], width: int) -> tuple[int, int]:
    """(width, height) of an image of size (width, height) resized to width, same aspect."""
    return width, max(1, round(size[1] * width / size[0]))


def style_sizes(
    sizes: list[tuple[int, int]], scales: list[float] | None, width: int
) -> list[tuple[int, int]]:
    """The (width, height) each style is resized to for an output width (--style-scales)."""
    scales = scales or [1.0] * len(sizes)
    return [
        fit_width(size, max(1, round(s * width))) for size, s in zip(sizes, scales, strict=True)
    ]


def available_memory() -> int | None:
    """Bytes this process may grow to: its resident memory plus the system's (or cgroup's) free."""
    free = []
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    free.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    for limit, usage in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            with open(limit) as a, open(usage) as b:
                free.append(int(a.read()) - int(b.read()))
        except (OSError, ValueError):  # absent, or "max" (no limit)
            pass
    if not free:
        return None
    try:
        with open("/proc/self/statm") as statm:
            resident = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        resident = 0
    return max(0, min(free)) + resident


def memory_needed(output: tuple[int, int], styles: list[tuple[int, int]]) -> int:
    """Bytes a run at these sizes needs at its peak, by the MEMORY_ model with its margin."""
    pixels = output[0] * output[1] * MEMORY_PER_CONTENT_PIXEL
    pixels += sum(w * h for w, h in styles) * MEMORY_PER_STYLE_PIXEL
    return round(MEMORY_MARGIN * (MEMORY_BASE + pixels))


def _gb(size: float) -> str:
    """Bytes as GB with one decimal."""
    return f"{size / 2**30:.1f} GB"


def check_memory(
    options: argparse.Namespace,
    content: tuple[int, int],
    styles: list[tuple[int, int]],
    initial: tuple[int, int] | None = None,
) -> None:
    """ValueError if reading the inputs or the run at the output width would not fit in memory.

    content, styles and initial are the files' (width, height); the error names the size and
    the largest --width that fits.
    """
    available = available_memory()
    if options.no_memory_check or available is None:
        return

    def needed(width: int) -> int:
        return memory_needed(
            fit_width(content, width), style_sizes(styles, options.style_scales, width)
        )

    width = options.width or content[0]
    need = needed(width)
    if need > available:
        low, high = 0, width  # the largest width that fits: needed() grows with the width
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if needed(middle) <= available else (low, middle - 1)
        output = fit_width(content, width)
        what = f"a {output[0]}x{output[1]} output"
        resized = style_sizes(styles, options.style_scales, width)
        if sum(w * h for w, h in resized) * MEMORY_PER_STYLE_PIXEL > need / 2:
            what += f" with styles resized to {', '.join(f'{w}x{h}' for w, h in resized)}"
        advice = f"use --width {low} or less" if low >= MIN_SIDE else "even a tiny one does not fit"
        raise ValueError(
            f"{what} needs about {_gb(need)} of memory, {_gb(available)} is "
            f"available; {advice} (or --no-memory-check to try anyway)"
        )
    files = [content, *styles, *([initial] if initial else [])]
    largest = max(files, key=lambda size: size[0] * size[1])
    reading = MEMORY_MARGIN * (MEMORY_BASE + largest[0] * largest[1] * MEMORY_PER_FILE_PIXEL)
    if reading > available:
        raise ValueError(
            f"reading a {largest[0]}x{largest[1]} input image needs about {_gb(reading)} of "
            f"memory, {_gb(available)} is available; shrink that file first"
        )


def check_inputs(options: argparse.Namespace) -> None:
    """ValueError for an input that exists but cannot be used, from the image headers only.

    Runs before any image is decoded or the network loaded: unreadable or oversized images,
    an output too small, a run too big for the memory.
    """
    content = images.image_size(options.content)
    styles = [images.image_size(path) for path in options.styles]
    initial = images.image_size(options.initial) if options.initial else None
    output = content if options.width is None else fit_width(content, options.width)
    if min(output) < MIN_SIDE:
        raise ValueError(
            f"the output would be {output[0]}x{output[1]} pixels (content {options.content} is "
            f"{content[0]}x{content[1]}); it must be at least {MIN_SIDE} pixels each way"
        )
    check_memory(options, content, styles, initial)


def layer_weights(options: argparse.Namespace) -> tuple[dict[str, float], dict[str, float]]:
    """The content and style layer weights that the options give (ValueError if bad)."""
    blend = options.content_weight_blend
    content = stylize.content_layer_weights(
        stylize.CONTENT_WEIGHT_BLEND if blend is None else blend, options.content_layers
    )
    style = stylize.style_layer_weights(options.style_layer_weight_exp, options.style_layers)
    return content, style


def load_inputs(options: argparse.Namespace) -> tuple:
    """Read and resize the content, styles and initial image as the options say."""
    content = images.read_image(options.content)
    if options.width is not None:
        width, height = fit_width((content.shape[1], content.shape[0]), options.width)
        content = images.resize(content, height, width)
    height, width = content.shape[:2]
    styles = [images.read_image(path) for path in options.styles]
    sizes = style_sizes([(s.shape[1], s.shape[0]) for s in styles], options.style_scales, width)
    styles = [images.resize(s, h, w) for s, (w, h) in zip(styles, sizes, strict=True)]
    if options.preserve_colors == "histogram":
        styles = [colors.match_colors(style, content) for style in styles]
    initial = None
    if options.initial:
        initial = images.resize(images.read_image(options.initial), height, width)
    elif options.init == "content":
        initial = content
    elif options.init == "style":
        initial = images.resize(styles[0], height, width)
    return content, styles, initial


def load_network(options: argparse.Namespace) -> vgg.Network:
    """The VGG-19 weights the options name, found (or downloaded) and loaded."""
    path = network.resolve_network(options.network, download=not options.no_download)
    return network.load_network(path, use_cache=not options.no_cache)


def run(
    options: argparse.Namespace,
    weights: vgg.Network,
    interrupts: batch.Interrupts,
    unfinished: str,
    label: str = "",
    style_cache: dict | None = None,
    inputs: tuple | None = None,
) -> None:
    """Optimise, show progress and write checkpoints and the output.

    inputs are load_inputs(options), when already loaded. A run cut short (signal, or a NaN
    loss) writes its best image to unfinished instead.
    """
    content, styles, initial = inputs or load_inputs(options)
    content_layers, style_layers = layer_weights(options)
    if options.seed is not None:
        tensorflow.config.experimental.enable_op_determinism()  # same seed, same bytes
    steps = stylize.stylize(
        weights,
        content,
        styles,
        iterations=options.iterations,
        content_weight=options.content_weight,
        style_weight=options.style_weight,
        style_blend_weights=options.style_blend_weights,
        tv_weight=options.tv_weight,
        learning_rate=options.learning_rate,
        initial=initial,
        checkpoint_iterations=options.checkpoint_iterations,
        seed=options.seed,
        stop=interrupts.stop,
        style_cache=style_cache,
        precision=options.precision,
        optimizer=options.optimizer,
        beta1=options.beta1,
        beta2=options.beta2,
        epsilon=options.epsilon,
        pooling=options.pooling,
        content_layers=content_layers,
        style_layers=style_layers,
        initial_noiseblend=options.initial_noiseblend,
        scales=options.scales,
    )
    del weights  # a single run's float32 weights can go once cast (a batch keeps its own)

    def finish(image: np.ndarray) -> np.ndarray:
        # Colour preservation by luminance is a post-processing of every written image.
        if options.preserve_colors == "luminance":
            return colors.preserve_luminance(image, content)
        return image

    report = progress.Reporter(
        sys.stderr,
        options.output,
        print_every=options.print_iterations,
        quiet=options.quiet,
        log=options.progress_log,
        plot=options.progress_plot,
        sheet=options.contact_sheet,
        label=label,
    )
    try:
        for step in steps:
            interrupts.running = True  # from the first iteration on, a signal only sets a flag
            report.step(step)
            if step.image is None:
                continue
            cut = step.final and interrupts.stop() and step.iteration < step.iterations
            if cut:
                images.write_image(unfinished, finish(step.image))
                where = f" of {label}" if label else ""
                raise batch.Interrupted(
                    interrupts.signum,
                    f"at iteration {step.iteration}/{step.iterations}{where}: "
                    f"best image so far written to {unfinished}",
                )
            if step.final:
                images.write_image(options.output, finish(step.image))
            elif options.checkpoint_output:
                images.write_image(
                    checkpoint_name(options.checkpoint_output, step.iteration), finish(step.image)
                )
    except stylize.RunFailed as exc:
        if exc.best is None:
            raise ValueError(f"{exc} (no image written: there was no good one yet)") from None
        images.write_image(unfinished, finish(exc.best))
        raise ValueError(f"{exc} (best image so far written to {unfinished})") from None
    finally:
        interrupts.running = False
        report.close()


def run_batch(
    parser: argparse.ArgumentParser, options: argparse.Namespace, interrupts: batch.Interrupts
) -> int:
    """Run the batch file's jobs (of this shard), skipping finished ones; 1 if any failed."""
    if not os.path.isfile(options.batch):
        raise UsageError(f"--batch: {options.batch} does not exist or is not a file")
    try:
        rows = batch.read_rows(options.batch, parser)
    except (ValueError, OSError) as exc:
        raise UsageError(f"--batch: {exc}") from None
    jobs: list[argparse.Namespace | str] = []
    for row in rows:
        try:
            jobs.append(batch.job_namespace(parser, options, row))
        except UsageError as exc:
            jobs.append(str(exc))  # this job fails with that reason; the others go on
    try:
        batch.check_distinct(jobs)
    except ValueError as exc:
        raise UsageError(f"--batch: {exc}") from None
    summary, weights, style_cache = batch.Summary(), None, {}

    def say(text: str) -> None:
        if not options.quiet:
            print(text, file=sys.stderr)

    def fail(name: str, exc: Exception) -> None:
        print(f"error: {name}: {exc}", file=sys.stderr)
        summary.failed.append(f"{name}: {exc}")

    try:
        for index, job in enumerate(jobs):
            if not batch.in_shard(index, options.shard):
                continue
            label = f"job {index + 1}/{len(jobs)}"
            output = rows[index].get("output") if isinstance(job, str) else job.output
            name = f"{label} ({output})" if output else label
            try:
                if isinstance(job, str):
                    raise UsageError(job)
                if job.output and os.path.exists(job.output) and not options.overwrite:
                    say(f"{label}: {job.output} exists, skipped")
                    summary.skipped += 1
                    continue
                validate(job)
                check_inputs(job)
            except (UsageError, ValueError, OSError) as exc:
                fail(name, exc)
                continue
            if weights is None:  # loaded once, when a job first needs it; failing ends the batch
                weights = load_network(options)
            say(f"{label}: {job.output}")
            unfinished = batch.interrupted_path(job.output)
            try:
                run(job, weights, interrupts, unfinished, label, style_cache)
                if os.path.exists(unfinished):  # an earlier run's, now superseded
                    os.remove(unfinished)
                summary.done += 1
            except (ValueError, OSError) as exc:
                fail(name, exc)
            if interrupts.stop():  # the signal came as the job finished
                raise batch.Interrupted(interrupts.signum, f"after {label}")
    finally:
        for line in summary.lines():
            say(line)
    return 1 if summary.failed else 0


def _show_warning(message: Warning | str, *_args: object, **_kwargs: object) -> None:
    """Print a warning as one line on stderr."""
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; errors become one line on stderr and an exit status."""
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    """main() without the warning set-up."""
    try:
        parser = build_parser()
        options = parser.parse_args(argv)
        if options.download_network:
            print(network.resolve_network(None, download=not options.no_download))
            return 0
        with batch.Interrupts() as interrupts:
            if options.batch is not None:
                return run_batch(parser, options, interrupts)
            validate(options)
            check_inputs(options)
            inputs = load_inputs(options)  # a damaged image is found before the network loads
            run(options, load_network(options), interrupts, options.output, inputs=inputs)
            if interrupts.stop():  # the signal came during the last iteration
                raise batch.Interrupted(
                    interrupts.signum, f"after the run; {options.output} is done"
                )
    except batch.Interrupted as exc:
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
    return 0


def _print_error(error: Exception | str) -> None:
    """The error as the one line 'error: ...' on stderr."""
    print("error: " + " ".join(str(error).splitlines()), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
