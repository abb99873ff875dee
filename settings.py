"""A run's settings: one frozen dataclass whose fields are the command line's options.

Each field's default is the option's default (defined here only); its metadata holds the
option's help and how to parse it. build_parser() makes the command line from the fields, and
validate() checks what one option alone cannot. The loss layers and their weights live here too.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

if __package__:  # installed: the modules are the package neural_style_tf2
    from . import hardware, images, media, memory, vgg
else:  # a checkout: the modules side by side
    import hardware
    import images
    import media
    import memory
    import vgg

# Loss layers and their per-layer weights at the defaults, in one place.
CONTENT_LAYERS = {"relu4_2": 1.0}
STYLE_LAYERS = {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0, "relu5_1": 1.0}
# The pair that --content-weight-blend B weights B and 1 - B, and B when not given (the
# option's own default is None: given, it cannot go with --content-layers).
CONTENT_BLEND_LAYERS = ("relu4_2", "relu5_2")
CONTENT_BLEND = 1.0

PRECISIONS = ("auto", "float32", "bfloat16")
OPTIMIZERS = ("adam", "lbfgs")
INITS = ("noise", "content", "style")
COLOR_MODES = ("luminance", "histogram")
FRAME_INITS = ("prev-warped", "prev", "fresh")


class UsageError(Exception):
    """A bad option or path, found before any work starts (exit status 2)."""


def one_line(error: Exception | str) -> str:
    """An error's message on one line, as the command prints it after 'error: '."""
    return " ".join(str(error).splitlines())


def _number(
    kind: type, low: float, low_ok: bool, what: str, high: float = math.inf, high_ok: bool = True
) -> Callable[[str], float]:
    """An argparse type: kind, finite, above low (or equal when low_ok), up to high."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got '{text}'") from None
        too_low = value < low or (value == low and not low_ok)
        too_high = value > high or (value == high and not high_ok)
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"must be {what}, got '{text}'")
        return value

    return parse


positive_int = _number(int, 0, False, "a whole number >= 1")
positive_float = _number(float, 0.0, False, "a number > 0")
weight = _number(float, 0.0, True, "a number >= 0")
fraction = _number(float, 0.0, True, "a number from 0 to 1", 1.0)
beta = _number(float, 0.0, True, "a number >= 0 and < 1", 1.0, False)
natural = _number(int, 0, True, "a whole number >= 0")


def parse_memory(text: str) -> int:
    """An argparse type: a size such as 6GB or 1500MB, as bytes."""
    try:
        return memory.parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_tile(text: str) -> int:
    """An argparse type: a tile side, a multiple of memory.TILE_ALIGN from memory.MIN_TILE."""
    what = f"a multiple of {memory.TILE_ALIGN} from {memory.MIN_TILE}"
    value = _number(int, memory.MIN_TILE, True, what)(text)
    if value % memory.TILE_ALIGN:
        raise argparse.ArgumentTypeError(f"must be {what}, got '{text}'")
    return value


def parse_shard(text: str) -> tuple[int, int]:
    """An argparse type: 'K/N' with 0 <= K < N, as (K, N)."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not int(match[1]) < int(match[2]):
        raise argparse.ArgumentTypeError(f"must be K/N with 0 <= K < N, got '{text}'")
    return int(match[1]), int(match[2])


def option(
    default: object,
    help: str,
    shown: str | None = None,
    *,
    batch: bool = True,
    result: bool = True,
    **argparse_options: object,
) -> object:
    """A Settings field that is a command-line option.

    help is the option's text; shown, the default as --help words it (else the value itself).
    batch=False: set for a whole batch, never by a batch file's column. result=False: it does
    not change the picture (printing, progress files). argparse_options go to add_argument.
    """
    metadata = {"help": help, "shown": shown, "batch": batch, "result": result, **argparse_options}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """Everything a run is told: its inputs, outputs and optimisation settings."""

    # fmt: off
    content: str | None = option(
        None, "content photograph, or a video: a video file, a folder of frames or a frame"
        " pattern (required unless --batch)", "none", metavar="PATH")
    styles: tuple[str, ...] | None = option(
        None, "one or more style images (required unless --batch)", "none", nargs="+",
        metavar="PATH")
    output: str | None = option(
        None, "final image, .jpg, .png, ... (required unless --batch); for a video, a video file"
        " (.mp4, .mkv, .webm, ...), a folder or a frame pattern (out/%%05d.png)", "none",
        result=False, metavar="PATH")
    overwrite: bool = option(
        False, "replace an existing --output (else that is an error), and another command's"
        " saved state or video frames beside it; with --batch, rerun jobs whose output exists"
        " (else they are skipped)", batch=False, result=False)
    checkpoint_output: str | None = option(
        None, "checkpoint file names, with a placeholder for the iteration: %%s, %%05d or"
        " {:05}", result=False, metavar="PATTERN")
    checkpoint_iterations: int | None = option(
        None, "checkpoint every N iterations", type=positive_int, metavar="N")
    state_interval: float = option(
        120.0, "save the run's state beside the output (OUTPUT.state) after every S seconds of"
        " work, as well as at checkpoints and on SIGINT/SIGTERM/SIGHUP; 0: not by time",
        batch=False, result=False, type=weight, metavar="S")
    restart: bool = option(
        False, "start afresh, replacing a saved state (or a video's finished frames) beside the"
        " output, this command's or another's",
        batch=False, result=False)
    iterations: int = option(300, "optimisation steps", type=positive_int, metavar="N")
    width: int | None = option(
        None, "output width", "the content's", type=positive_int, metavar="W")
    style_scales: tuple[float, ...] | None = option(
        None, "style i is resized to S_i * output width", "1.0 each", type=positive_float,
        nargs="+", metavar="S")
    network: str | None = option(
        None, "VGG-19 MatConvNet weights", "$NEURAL_STYLE_NETWORK, else ./"
        "imagenet-vgg-verydeep-19.mat, else the cache folder $NEURAL_STYLE_HOME,"
        " $XDG_CACHE_HOME/neural-style or ~/.cache/neural-style, where it is downloaded when"
        " found nowhere", batch=False, metavar="PATH")
    no_download: bool = option(
        False, "never download the weights (also: NEURAL_STYLE_NO_DOWNLOAD=1)", batch=False,
        result=False)
    no_cache: bool = option(
        False, "read the .mat itself, not the fast weight cache", batch=False, result=False)
    download_network: bool = option(
        False, "download the weights into the cache folder (if not found), print the path, exit",
        batch=False, result=False)
    no_memory_check: bool = option(
        False, "run even if the memory estimate says the sizes will not fit", result=False)
    max_memory: int | None = option(
        None, "memory the run may use, e.g. 6GB or 1500MB; a size whose iteration needs more is"
        " computed in tiles, as large as fit", "what is available: the RAM, or the GPU's memory",
        type=parse_memory, metavar="SIZE")
    tile_size: int | None = option(
        None, "compute every iteration in tiles of at most N x N pixels (and context around"
        " them), even when the whole image fits", "tiles only where the image does not fit",
        type=parse_tile, metavar="N")
    content_weight: float = option(5.0, "content loss weight", type=weight, metavar="W")
    style_weight: float = option(100.0, "style loss weight", type=weight, metavar="W")
    style_blend_weights: tuple[float, ...] | None = option(
        None, "one weight per style, normalised to sum 1", "equal", type=weight, nargs="+",
        metavar="W")
    tv_weight: float = option(
        100.0, "total variation (smoothness) weight", type=weight, metavar="W")
    content_weight_blend: float | None = option(
        None, "content layers relu4_2 weighted B and relu5_2 weighted 1-B", str(CONTENT_BLEND),
        type=fraction, metavar="B")
    style_layer_weight_exp: float = option(
        1.0, "style layer k (0 = shallowest) weighted E**k, scaled to average 1",
        type=positive_float, metavar="E")
    content_layers: tuple[str, ...] | None = option(
        None, "VGG layers for the content loss, weighted equally", " ".join(CONTENT_LAYERS),
        nargs="+", metavar="LAYER")
    style_layers: tuple[str, ...] | None = option(
        None, "VGG layers for the style loss", " ".join(STYLE_LAYERS), nargs="+",
        metavar="LAYER")
    pooling: str = option("max", "the network's pooling layers", choices=vgg.POOLINGS)
    optimizer: str = option(
        "adam", "Adam, or L-BFGS (the paper's; --iterations counts its iterations)",
        choices=OPTIMIZERS)
    learning_rate: float = option(20.0, "Adam's step size", type=positive_float, metavar="R")
    beta1: float = option(0.9, "Adam's beta1", type=beta, metavar="B1")
    beta2: float = option(0.999, "Adam's beta2", type=beta, metavar="B2")
    epsilon: float = option(1e-8, "Adam's epsilon", type=positive_float, metavar="EPS")
    average_decay: float = option(
        0.8, "Adam: each size's result is the moving average of its iterates with this decay"
        " (bias-corrected), when its loss is lower than the last iterate's; 0: the last"
        " iterate", type=beta, metavar="D")
    warmup: int = option(
        10, "Adam: at each size that starts from the coarser size's result, the step grows"
        " linearly to --learning-rate over the first N steps (0 or 1: full steps at once)",
        type=natural, metavar="N")
    rounding_passes: int = option(
        1, "the final image's rounding to 8 bits: from the nearest levels, N passes move pixels"
        " one level down the loss's slope where it is steep (half of the pixels, then the"
        " other half), and the version of lowest loss is written; 0: the nearest levels, as"
        " checkpoints, a run stopped before its end, a video's later frames and a run in tiles"
        " always take",
        type=natural, metavar="N")
    preserve_colors: str | None = option(
        None, "keep the content's colours: 'luminance' (the bare flag) takes only the result's"
        " luminance; 'histogram' first gives the styles the content's colour statistics", "off",
        nargs="?", const="luminance", choices=COLOR_MODES)
    init: str | None = option(
        None, "starting image: noise, the content or the first style", "noise", choices=INITS)
    initial: str | None = option(None, "starting image file", "noise", metavar="PATH")
    initial_noiseblend: float = option(
        0.0, "start from (1-R) * the starting image + R * noise; no effect when starting from"
        " noise", type=fraction, metavar="R")
    first_frame_iterations: int | None = option(
        None, "video: optimisation steps of the first frame", "--iterations", type=positive_int,
        metavar="N")
    frame_iterations: int = option(
        10, "video: optimisation steps of each later frame (at the output size only)",
        type=positive_int, metavar="N")
    frame_learning_rate: float = option(
        0.5, "video: Adam's step size for each later frame, which starts from a nearly"
        " finished image (--learning-rate's full steps would undo it)", type=positive_float,
        metavar="R")
    frame_init: str = option(
        "prev-warped", "video: each later frame starts from the previous output warped along"
        " the optical flow, from the previous output as it is, or afresh as the first frame",
        choices=FRAME_INITS)
    temporal_weight: float = option(
        1000.0, "video: weight of the temporal loss mean(mask * (x - warped previous output)**2),"
        " mask 0 where the flow is unreliable", type=weight, metavar="W")
    seed: int | None = option(
        None, "seed for the noise, making runs repeatable", "none, random", type=natural,
        metavar="N")
    print_iterations: int | None = option(
        None, "print the losses every N iterations", result=False, type=positive_int,
        metavar="N")
    quiet: bool = option(False, "print only warnings and errors", batch=False, result=False)
    progress_log: str | None = option(
        None, "append one JSON object per iteration: losses, elapsed seconds, size",
        result=False, metavar="FILE.jsonl")
    progress_plot: str | None = option(
        None, "plot the losses against iterations (log scale), rewritten at each checkpoint and"
        " at the end", result=False, metavar="FILE.png")
    contact_sheet: str | None = option(
        None, "tile all checkpoints, each labelled with its iteration, rewritten at each"
        " checkpoint", result=False, metavar="FILE.jpg")
    batch: str | None = option(
        None, "run the jobs of a CSV (with a header row) or JSON Lines file ('-': standard"
        " input), one per row; columns are option names and override the command line",
        batch=False, result=False, metavar="FILE")
    shard: tuple[int, int] | None = option(
        None, "with --batch, run only the jobs whose 0-based row index i has i %% N == K", "all",
        batch=False, result=False, type=parse_shard, metavar="K/N")
    precision: str = option(
        "auto", "number format of the network's convolutions: auto is bfloat16 where the"
        " hardware runs it natively (CPUs with AVX-512 BF16 or AMX, NVIDIA GPUs of compute"
        " capability 8.0 or more), else float32; the losses and the image stay float32",
        choices=PRECISIONS)
    scales: int = option(
        3, "coarse to fine: optimise at up to N sizes, each twice the previous, ending at the"
        " output size; --iterations counts the steps at all sizes", type=positive_int,
        metavar="N")
    # fmt: on


DEFAULTS = Settings()
FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
# The options a batch file's column may set.
JOB_OPTIONS = tuple(name for name, f in FIELDS.items() if f.metadata["batch"])


def flag(name: str) -> str:
    """The command-line flag of a Settings field: style_weight -> --style-weight."""
    return "--" + name.replace("_", "-")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises UsageError instead of printing usage and exiting."""

    def error(self, message: str) -> None:
        """Raise the message as a UsageError (main prints it as one line)."""
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The command line, one option per Settings field, every default shown by --help."""
    parser = _Parser(description="Repaint a photograph in the style of paintings.")
    for name, f in FIELDS.items():
        extra = {
            k: v for k, v in f.metadata.items() if k not in ("help", "shown", "batch", "result")
        }
        if f.type == "bool":
            shown, extra["action"] = "off", "store_true"
        elif name == "precision":
            chosen, why = hardware.auto_precision()
            shown = f"auto: here {chosen}, as {why}"
        else:
            shown = f.metadata["shown"] or ("none" if f.default is None else "%(default)s")
        parser.add_argument(
            flag(name), default=f.default, help=f"{f.metadata['help']} (default: {shown})", **extra
        )
    return parser


def from_namespace(namespace: argparse.Namespace) -> Settings:
    """The Settings of parsed options (lists become tuples)."""
    values = {name: getattr(namespace, name) for name in FIELDS}
    return Settings(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def state_path(output: str) -> str:
    """Where a run keeps its state to resume from: OUTPUT.state beside the output."""
    return output + ".state"


def interrupted_path(output: str) -> str:
    """Where a batch job's unfinished best image goes: NAME.interrupted.EXT beside output."""
    name, extension = os.path.splitext(output)
    return f"{name}.interrupted{extension}"


# --- layer and blend weights ----------------------------------------------------------------


def normalize_blend(weights: tuple[float, ...] | None, count: int) -> list[float]:
    """Blend weights scaled to sum 1 (equal when None); ValueError if they cannot be."""
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise ValueError(f"--style-blend-weights has {len(weights)} values for {count} styles")
    total = float(sum(weights))
    if any(w < 0 or not np.isfinite(w) for w in weights) or total <= 0:
        raise ValueError(
            f"--style-blend-weights must be >= 0 with a positive sum, got {list(weights)}"
        )
    return [w / total for w in weights]


def _check_layer_names(names: tuple[str, ...], what: str) -> list[str]:
    """names in network order; ValueError for an unknown, repeated or missing name."""
    if not names:
        raise ValueError(f"{what} needs at least one layer")
    try:
        order = {name: vgg.layer_index(name) for name in names}
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    if len(order) != len(names):
        raise ValueError(f"{what} names a layer twice: {' '.join(names)}")
    return sorted(names, key=order.get)


def content_layer_weights(
    blend: float | None = None, layers: tuple[str, ...] | None = None
) -> dict[str, float]:
    """Content layer weights, summing to 1: relu4_2 B and relu5_2 1-B, or equal over layers."""
    if layers is not None:
        names = _check_layer_names(layers, "--content-layers")
        return {name: 1.0 / len(names) for name in names}
    blend = CONTENT_BLEND if blend is None else blend
    if not 0 <= blend <= 1:
        raise ValueError(f"--content-weight-blend must be in [0, 1], got {blend}")
    weights = dict(zip(CONTENT_BLEND_LAYERS, (blend, 1.0 - blend), strict=True))
    return {name: w for name, w in weights.items() if w > 0}  # a zero weight needs no layer


def style_layer_weights(
    exponent: float = DEFAULTS.style_layer_weight_exp, layers: tuple[str, ...] | None = None
) -> dict[str, float]:
    """Style layer weights E**k from the shallowest layer (k=0) down, scaled to average 1."""
    names = list(STYLE_LAYERS) if layers is None else _check_layer_names(layers, "--style-layers")
    if not (np.isfinite(exponent) and exponent > 0):
        raise ValueError(f"--style-layer-weight-exp must be > 0, got {exponent}")
    raw = [float(exponent) ** k for k in range(len(names))]
    # Departure from anishathalye's sum-1 weights: the style loss sums the layer terms, so the
    # weights average 1 (all exactly 1.0 at E = 1) and --style-weight keeps its scale.
    total = sum(raw)
    return {name: w * len(names) / total for name, w in zip(names, raw, strict=True)}


def layer_weights(settings: Settings) -> tuple[dict[str, float], dict[str, float]]:
    """The content and style layer weights that the settings give (ValueError if bad)."""
    content = content_layer_weights(settings.content_weight_blend, settings.content_layers)
    style = style_layer_weights(settings.style_layer_weight_exp, settings.style_layers)
    return content, style


# --- checks of the whole command line -------------------------------------------------------


def validate(settings: Settings) -> None:
    """Raise UsageError for any bad combination of options or missing path."""
    missing = [
        flag(name) for name in ("content", "styles", "output") if not getattr(settings, name)
    ]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join(missing)}")
    video = media.is_video(settings.content)  # the video's own paths: video.check()
    _check_checkpoints(settings)
    _check_distinct(settings, video)  # before the output's existence: --overwrite won't do
    if settings.batch is None:  # a batch skips jobs whose output exists instead
        if settings.shard is not None:
            raise UsageError("--shard goes with --batch")
        # An output beside a saved state is an interrupted run's: the same command resumes it.
        # (A folder is an error of its own, below.)
        resumable = os.path.exists(state_path(settings.output))
        taken = os.path.isfile(settings.output)
        if taken and not (settings.overwrite or resumable or video):
            raise UsageError(f"--output: {settings.output} exists; pass --overwrite to replace it")
    _check_combinations(settings)
    _check_paths(settings, video)


def _check_distinct(settings: Settings, video: bool) -> None:
    """UsageError if two of a run's files have one name: an output would overwrite an input
    or another output. (A video's output and frames: video.check().)"""
    inputs, files = _inputs(settings, video), _outputs(settings, video)
    if not video:  # written at checkpoints, and removed at the end
        files.append(("the run's state file", state_path(settings.output)))
    read = {media.file_key(path): option_flag for option_flag, path in inputs}
    named: dict[str, str] = {}
    for option_flag, path in files:
        key = media.file_key(path)
        if key in read:
            raise UsageError(
                f"{option_flag}: {path} is the {read[key]} file, which the run would overwrite:"
                " give it another name"
            )
        first = named.setdefault(key, option_flag)
        if first != option_flag:
            raise UsageError(f"{first} and {option_flag} both name {path}: give each its own")
    for option_flag, path in inputs + files:
        if is_checkpoint(settings, path):
            raise UsageError(
                f"--checkpoint-output {settings.checkpoint_output} names {path}, the"
                f" {option_flag} file, which the run would overwrite: give it another name"
            )


def is_checkpoint(settings: Settings, path: str) -> bool:
    """Whether path names one of the run's checkpoint files (found by its name: a run may
    have a million of them)."""
    pattern, every = settings.checkpoint_output, settings.checkpoint_iterations
    if not pattern or not every:
        return False
    number = media.number_of(pattern, os.path.basename(path))
    if number is None or not 0 < number <= settings.iterations or number % every:
        return False
    return media.file_key(os.path.dirname(path) or ".") == media.file_key(
        os.path.dirname(pattern) or "."
    )


def _check_checkpoints(settings: Settings) -> None:
    """UsageError unless the checkpoint options come together with a usable pattern."""
    if (settings.checkpoint_output is None) != (settings.checkpoint_iterations is None):
        raise UsageError("--checkpoint-output and --checkpoint-iterations go together")
    pattern = settings.checkpoint_output
    if pattern is None:
        return
    # The number written in its digits, so that a checkpoint is known by its name: not %c,
    # %5s, %x or %o, whose names would hold control characters, spaces or other numbers.
    try:
        digits = all(
            media.number_of(pattern, os.path.basename(media.numbered(pattern, n))) == n
            for n in (1, 123)
        )
    except ValueError:
        digits = False
    if not digits:
        raise UsageError(
            f"--checkpoint-output '{pattern}' needs one placeholder for the iteration in digits"
            " (e.g. out%s.jpg, out%05d.jpg or out{:05}.jpg)"
        )


def _check_combinations(settings: Settings) -> None:
    """UsageError for options that contradict each other or the number of styles."""
    count = len(settings.styles)
    if settings.style_scales is not None and len(settings.style_scales) != count:
        raise UsageError(
            f"--style-scales has {len(settings.style_scales)} values for {count} styles"
        )
    if settings.init is not None and settings.initial is not None:
        raise UsageError("--init and --initial both give the starting image; use one")
    if settings.content_weight_blend is not None and settings.content_layers is not None:
        raise UsageError("--content-weight-blend applies to relu4_2/relu5_2, not --content-layers")
    try:
        normalize_blend(settings.style_blend_weights, count)
        layer_weights(settings)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def check_input(option_flag: str, path: str) -> None:
    """UsageError unless path is a file."""
    if not os.path.exists(path):
        raise UsageError(f"{option_flag}: {path} does not exist")
    if not os.path.isfile(path):
        raise UsageError(f"{option_flag}: {path} is not a file")


def _inputs(settings: Settings, video: bool) -> list[tuple[str, str]]:
    """(option, path) of each file the run reads (a video's --content excepted: its own)."""
    inputs = [] if video else [("--content", settings.content)]
    inputs += [("--network", settings.network)]
    inputs += [("--styles", path) for path in settings.styles]
    inputs += [("--initial", settings.initial)]
    return [(option_flag, path) for option_flag, path in inputs if path is not None]


def _outputs(settings: Settings, video: bool) -> list[tuple[str, str]]:
    """(option, path) of each file the run writes but its checkpoints (a video's --output
    excepted: its own)."""
    outputs = [] if video else [("--output", settings.output)]
    for name in ("progress_plot", "contact_sheet", "progress_log"):
        if getattr(settings, name):
            outputs.append((flag(name), getattr(settings, name)))
    return outputs


def _added(settings: Settings, option_flag: str, path: str) -> int:
    """How many bytes longer than path's name is the longest name the run writes for it: none
    for the log (appended in place), a temporary's for the others; for --output, its state's
    temporary (or a batch job's unfinished image's)."""
    if option_flag == "--progress-log":
        return 0
    longest = path
    if option_flag == "--output":
        longest = interrupted_path(path) if settings.batch else state_path(path)
    grown = len(os.fsencode(os.path.basename(longest))) - len(os.fsencode(os.path.basename(path)))
    return grown + images.TEMPORARY_ADDS


def _check_paths(settings: Settings, video: bool) -> None:
    """UsageError for an input that does not exist or an output that cannot be written (a
    video's --content and --output excepted)."""
    for option_flag, path in _inputs(settings, video):
        check_input(option_flag, path)
    outputs = _outputs(settings, video)
    if settings.checkpoint_output:
        # the longest of their names: the last iteration's
        last = media.numbered(settings.checkpoint_output, settings.iterations)
        outputs.append(("--checkpoint-output", last))
    for option_flag, path in outputs:
        try:
            images.check_output(
                path, option_flag != "--progress-log", _added(settings, option_flag, path)
            )
        except ValueError as exc:
            raise UsageError(f"{option_flag}: {exc}") from None
    # The log is appended to, in place (the images are replaced, which needs the folder only).
    log = settings.progress_log
    if log and os.path.isfile(log) and not os.access(log, os.W_OK):
        raise UsageError(f"--progress-log: {log}: file is not writable")
