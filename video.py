"""Stylising a video without flicker, after Ruder, Dosovitskiy and Brox, "Artistic style
transfer for videos" (2016): each frame after the first starts from the previous output warped
along the optical flow (flow.py) and adds a temporal loss against it where the flow is
reliable (stylize.Temporal).

Clips are read and written through imageio-ffmpeg (its ffmpeg binary, frames piped raw), or as
a folder or pattern of image files. Each finished frame is kept in a hidden work folder
beside the output (`.NAME.frames`), so a run that is stopped or killed resumes at the next
frame; the output is assembled from those frames at the end, under a temporary name renamed
into place, and the work folder then removed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import functools
import glob
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import NamedTuple

import numpy as np

if __package__:  # installed: the modules are the package neural_style_tf2
    from . import flow, hardware, images, inputs, job, media, progress, state, stylize, vgg
    from . import settings as options
    from .images import Size
    from .interrupts import Interrupted, Interrupts
    from .settings import Settings, UsageError
else:  # a checkout: the modules side by side
    import flow
    import hardware
    import images
    import inputs
    import job
    import media
    import progress
    import settings as options
    import state
    import stylize
    import vgg
    from images import Size
    from interrupts import Interrupted, Interrupts
    from settings import Settings, UsageError

FRAMES_RATE = Fraction(24)  # the frame rate of a clip read from image files
FRAME_FILE = "{:06d}.png"  # a finished frame in the work folder (lossless)
OUTPUT_FRAME = "{:05d}.png"  # a frame written into an --output folder
MANIFEST = "run.json"  # in the work folder: what its frames were made from
# Options that stay with still images (a clip has no checkpoints, plot or contact sheet).
STILL_ONLY = ("checkpoint_output", "checkpoint_iterations", "progress_plot", "contact_sheet")
# Encoder, pixel format and options per output extension; others get H.264 at CRF 18.
ENCODERS = {
    ".webm": ("libvpx-vp9", "yuv420p", ["-crf", "30", "-b:v", "0"]),
    ".gif": ("gif", "rgb8", []),
    ".wmv": ("msmpeg4", "yuv420p", ["-qscale:v", "3"]),
    ".ogv": ("libtheora", "yuv420p", ["-q:v", "7"]),
    ".y4m": ("rawvideo", "yuv420p", []),
}
H264 = ("libx264", "yuv420p", ["-crf", "18"])


# --- the clip in ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Clip:
    """A readable clip: a video file, or image files in order (files)."""

    path: str
    size: Size
    count: int
    rate: Fraction
    audio: bool = False
    files: tuple[str, ...] = ()

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame in order, as float32 HxWx3 RGB in 0-255."""
        if self.files:
            for path in self.files:
                yield images.read_image(path)
            return
        meta, reader = _read(self.path)
        width, height = meta["size"]
        try:
            for data in reader:
                yield np.frombuffer(data, np.uint8).reshape(height, width, 3).astype(np.float32)
        finally:
            reader.close()


def _ffmpeg_reason(error: Exception) -> str:
    """The gist of an ffmpeg error: its last line that says something."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("===", "ffmpeg version", "built"))]
    return (useful or lines or [type(error).__name__])[-1]


def _read(path: str) -> tuple[dict, Iterator[bytes]]:
    """ffmpeg's description of a video file (size, fps, audio_codec...) and the generator of
    its frames as raw RGB bytes; ValueError if ffmpeg cannot read it."""
    import imageio_ffmpeg

    # imageio-ffmpeg warns when a clip's frames come turned by its rotation metadata (a phone's
    # clip), which ffmpeg applies as it should: nothing for the user to do.
    logging.getLogger("imageio_ffmpeg").setLevel(logging.ERROR)
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: file is empty")
    ffmpeg()  # its own error if there is none, not "not a video ffmpeg can read"
    reader = imageio_ffmpeg.read_frames(path, output_params=_constant_rate())
    try:
        return next(reader), reader
    # ffmpeg's header is parsed by hand: a file without a video stream (sound only, text) fails
    # there with an IndexError or an AttributeError, an unreadable one with an OSError.
    except (OSError, RuntimeError, ValueError, IndexError, AttributeError) as error:
        reader.close()
        raise ValueError(f"{path}: not a video ffmpeg can read ({_ffmpeg_reason(error)})") from None


@functools.cache
def _constant_rate() -> list[str]:
    """ffmpeg's options to give a clip's frames at its rate: a variable-rate clip's repeated
    or dropped, and a late start filled, so that they keep in time with its sound."""
    import imageio_ffmpeg

    found = re.search(r"(\d+)\.(\d+)", imageio_ffmpeg.get_ffmpeg_version())
    if found and (int(found[1]), int(found[2])) < (5, 1):  # before -fps_mode
        return ["-vsync", "cfr"]
    return ["-fps_mode", "cfr"]


def _count(path: str) -> int:
    """The number of frames _read gives: decoded at the clip's rate as it does (imageio's
    count took the frames as stored: 6 of a variable-rate clip read as 36)."""
    command = [ffmpeg(), "-i", path, "-map", "0:v:0", *_constant_rate(), "-f", "null", "-"]
    done = subprocess.run(command, capture_output=True, text=True, start_new_session=True)
    counts = re.findall(r"frame=\s*(\d+)", done.stderr)
    if done.returncode or not counts:
        raise RuntimeError(done.stderr)
    return int(counts[-1])


def frame_rate(fps: float) -> Fraction:
    """ffmpeg's rounded frames per second as an exact rate: 29.97 is 30000/1001."""
    if not fps > 0:
        return FRAMES_RATE
    ntsc = Fraction(round(fps * 1.001) * 1000, 1001)
    if fps != round(fps) and abs(float(ntsc) - fps) < 0.005:
        return ntsc
    return Fraction(fps).limit_denominator(1000)


def open_video(path: str) -> Clip:
    """A video file's size, frame count, rate and audio; ValueError if unreadable or empty."""
    meta, reader = _read(path)
    reader.close()
    try:
        count = _count(path)
    except (OSError, RuntimeError, ValueError) as error:
        raise ValueError(f"{path}: not a video ffmpeg can read ({_ffmpeg_reason(error)})") from None
    width, height = meta["size"]
    if count == 0 or not width or not height:
        raise ValueError(f"{path}: the video has no frames")
    rate = frame_rate(float(meta.get("fps") or 0))
    return Clip(path, Size(height, width), count, rate, audio=bool(meta.get("audio_codec")))


def frame_files(content: str) -> list[str]:
    """The image files of a folder (natural order) or a pattern (by frame number)."""
    if media.is_folder(content):
        names = [
            os.path.join(content, name)
            for name in os.listdir(content)
            if media.extension(name) in images.SUPPORTED_EXTENSIONS + (".gif",)
        ]
    elif media.PLACEHOLDER.search(os.path.basename(content)):
        folder = os.path.dirname(content)
        number = media.numbered_names(content)
        listed = os.listdir(folder or ".") if os.path.isdir(folder or ".") else []
        # As ffmpeg reads one: f%03d.png is f002.png, not f2.png or f0002.png.
        placeholder = media.PLACEHOLDER.search(os.path.basename(content))[0]
        names = [
            os.path.join(folder, n)
            for n in listed
            if (found := number.fullmatch(n))
            and _placeholder_text(placeholder, int(found[1])) == found[1]
        ]
    else:
        names = glob.glob(content)
    return sorted((n for n in names if os.path.isfile(n)), key=media.natural_key)


def _placeholder_text(placeholder: str, number: int) -> str:
    """A number as a %-style or {}-style placeholder writes it (%03d: 007)."""
    return placeholder % number if placeholder.startswith("%") else placeholder.format(number)


def open_frames(content: str) -> Clip:
    """A folder or pattern of frames, checked from the image headers: ValueError if there
    are none, one is unreadable or their sizes differ."""
    files = frame_files(content)
    if not files:
        raise ValueError(f"{content}: no frame images ({', '.join(images.SUPPORTED_EXTENSIONS)})")
    first = images.image_size(files[0])
    for number, path in enumerate(files[1:], start=2):
        size = images.image_size(path)
        if size != first:
            raise ValueError(
                f"{path}: frame {number} is {size}, the first frame ({files[0]}) {first}; all"
                " frames must have one size"
            )
    return Clip(content, first, len(files), FRAMES_RATE, files=tuple(files))


def open_clip(content: str) -> Clip:
    """The clip --content names (ValueError if it cannot be used)."""
    if os.path.isfile(content):
        return open_video(content)
    return open_frames(content)


# --- the clip out ---------------------------------------------------------------------------


def encoder(extension: str, size: Size) -> tuple[str, str, list[str]]:
    """The encoder, pixel format and options for an output extension and frame size."""
    codec, pixels, params = ENCODERS.get(extension, H264)
    if pixels == "yuv420p" and (size.width % 2 or size.height % 2):
        pixels = "yuv444p"  # 4:2:0 needs even sides
    return codec, pixels, params


def ffmpeg() -> str:
    """The ffmpeg binary that imageio-ffmpeg brings (or finds); ValueError if there is none."""
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # no binary for this platform in the wheel, and none installed
        raise ValueError(
            "ffmpeg was not found: install it, or set IMAGEIO_FFMPEG_EXE to its path"
        ) from None


@functools.cache
def can_write(extension: str) -> str | None:
    """None if ffmpeg writes a tiny clip to a file with this extension, else its reason."""
    codec, pixels, params = encoder(extension, Size(16, 16))
    with tempfile.TemporaryDirectory() as folder:
        command = [ffmpeg(), "-v", "error", "-f", "lavfi", "-i", "color=c=gray:s=16x16:r=1:d=1"]
        command += ["-frames:v", "1", "-c:v", codec, "-pix_fmt", pixels, *params]
        command += [os.path.join(folder, "probe" + extension)]
        done = subprocess.run(command, capture_output=True, text=True, start_new_session=True)
    if done.returncode == 0:
        return None
    return _ffmpeg_reason(Exception(done.stderr)) if done.stderr.strip() else "ffmpeg failed"


def check_output(output: str, overwrite: bool) -> str:
    """UsageError unless a clip can be written to output; returns output's kind."""
    kind = media.output_kind(output)
    first = output if kind == "video" else os.path.join(output, OUTPUT_FRAME.format(1))
    if kind == "pattern":
        try:
            first = media.numbered(output, 1)
        except ValueError:
            raise UsageError(
                f"--output: {output}: a frame pattern has one placeholder for the frame number"
                " (e.g. out/%05d.png or out/{:05}.png)"
            ) from None
    extension = media.extension(output)
    if kind == "video" and extension in images.SUPPORTED_EXTENSIONS:
        raise UsageError(
            f"--output: {output}: a video's output is a video file (.mp4, .mkv, .webm, ...), a"
            " folder or a frame pattern (out/%05d.png), not an image"
        )
    try:
        images.check_output(first, image=kind != "video")
    except ValueError as exc:
        raise UsageError(f"--output: {exc}") from None
    if kind == "video":
        try:
            reason = can_write(extension)
        except ValueError as exc:
            raise UsageError(f"--output: {exc}") from None
        if reason is not None:
            what = f"{extension} files" if extension else "a file without an extension"
            raise UsageError(f"--output: {output}: ffmpeg cannot write {what} ({reason})")
    # Beside an unfinished run's work folder, the output is that run's (killed while writing
    # it): run() lets only that run's command replace it, once it knows the run's key.
    if _exists(output, kind) and not (overwrite or os.path.isdir(work_folder(output))):
        raise UsageError(f"--output: {output} exists; pass --overwrite to replace it")
    return kind


def _exists(output: str, kind: str) -> bool:
    """Whether an output is there already (a folder of frames: with anything in it)."""
    if kind == "folder":
        return os.path.isdir(output) and bool(os.listdir(output))
    return os.path.exists(output if kind == "video" else media.numbered(output, 1))


def _mux_audio(silent: str, source: str, target: str, output: str) -> None:
    """silent's video with source's audio tracks into target: copied, else re-encoded for
    target's container, else none (with a warning)."""
    command = [ffmpeg(), "-v", "error", "-y", "-i", silent, "-i", source]
    command += ["-map", "0:v:0", "-map", "1:a?", "-c:v", "copy"]
    reason = ""
    for audio in (["-c:a", "copy"], []):
        done = subprocess.run(
            [*command, *audio, target], capture_output=True, text=True, start_new_session=True
        )
        if done.returncode == 0:
            return
        reason = _ffmpeg_reason(Exception(done.stderr or "ffmpeg failed"))
    warnings.warn(
        f"{output}: {source}'s audio could not be copied or converted into it ({reason});"
        " the video has no sound",
        stacklevel=2,
    )
    os.replace(silent, target)


def _encode(path: str, frames: Iterator[np.ndarray], rate: Fraction) -> None:
    """Encode frames into a video file without audio (the encoder from path's extension)."""
    import imageio_ffmpeg

    writer = None
    try:
        for frame in frames:
            if writer is None:
                size = Size(*frame.shape[:2])
                codec, pixels, params = encoder(media.extension(path), size)
                # The rate again as ffmpeg's own input option, which comes later and wins:
                # older imageio-ffmpeg releases write fps with two decimals (29.97, not
                # 30000/1001).
                writer = imageio_ffmpeg.write_frames(
                    path, (size.width, size.height), fps=float(rate), codec=codec, quality=None,
                    pix_fmt_out=pixels, macro_block_size=1, output_params=list(params),
                    input_params=["-r", f"{rate.numerator}/{rate.denominator}"],
                    ffmpeg_log_level="error",
                )  # fmt: skip
                writer.send(None)  # starts ffmpeg
            writer.send(images.to_uint8(frame).tobytes())
    finally:
        if writer is not None:
            writer.close()


def write_video(output: str, frames: Iterator[np.ndarray], clip: Clip, work: str) -> None:
    """Encode frames to output at the clip's rate, with its audio; atomically."""
    silent = os.path.join(work, "video" + media.extension(output))
    try:
        with images.atomic_output(output) as temporary:
            _encode(silent, frames, clip.rate)
            if clip.audio:
                _mux_audio(silent, clip.path, temporary, output)
            else:
                os.replace(silent, temporary)
    except (OSError, RuntimeError) as error:
        raise ValueError(f"{output}: ffmpeg could not write it ({_ffmpeg_reason(error)})") from None


# --- the work folder ------------------------------------------------------------------------


def work_folder(output: str) -> str:
    """The hidden folder beside output that keeps its finished frames."""
    folder, name = os.path.split(output.rstrip("/" + os.sep))
    return os.path.join(folder, "." + re.sub(r"[%{}:*?\[\]]", "_", name) + ".frames")


def run_key(settings: Settings, clip: Clip) -> str:
    """A digest of everything the frames depend on: a still image's state fingerprint, with
    the clip's files instead of the content."""
    files = [clip.path] if not clip.files else list(clip.files)
    return state.fingerprint(settings, job.network_path(settings), files)


class Work:
    """The finished frames of one clip's run, numbered from 1, in the work folder."""

    def __init__(self, output: str, key: str):
        self.path, self.key = work_folder(output), key

    def frame(self, number: int) -> str:
        """The file of a finished frame."""
        return os.path.join(self.path, FRAME_FILE.format(number))

    def resume(self, restart: bool = False) -> int:
        """How many frames an earlier run with the same settings and inputs finished (from
        1 on, without a gap); a work folder of other settings or inputs, or any under
        restart, is emptied."""
        if restart or not self.owned():
            if os.path.isdir(self.path):
                if not restart:
                    warnings.warn(
                        f"{self.path} holds another run's frames (its inputs, network or options"
                        " differ); starting over and replacing them",
                        stacklevel=2,
                    )
                shutil.rmtree(self.path)
            return 0
        done = 0
        while os.path.isfile(self.frame(done + 1)):
            done += 1
        return done

    def owned(self) -> bool:
        """Whether the work folder is this run's (its manifest has the run's key)."""
        try:
            with open(os.path.join(self.path, MANIFEST), encoding="utf-8") as file:
                return json.load(file).get("key") == self.key
        except (OSError, ValueError, AttributeError):  # none, damaged, or not a JSON object
            return False

    def save(self, number: int, image: np.ndarray) -> None:
        """Keep a finished frame (atomically), first noting what the frames are made from."""
        manifest = os.path.join(self.path, MANIFEST)
        if not os.path.exists(manifest):
            os.makedirs(self.path, exist_ok=True)
            with images.atomic_output(manifest) as temporary:
                with open(temporary, "w", encoding="utf-8") as file:
                    json.dump({"key": self.key}, file)
        images.write_image(self.frame(number), image)

    def load(self, number: int) -> np.ndarray:
        """A finished frame, as float32 RGB."""
        return images.read_image(self.frame(number))

    def remove(self) -> None:
        """Delete the work folder."""
        shutil.rmtree(self.path, ignore_errors=True)


# --- the run --------------------------------------------------------------------------------


def output_size(settings: Settings, clip: Clip) -> Size:
    """The size of the output frames: the clip's, or scaled to --width."""
    return clip.size if settings.width is None else images.fit_width(clip.size, settings.width)


def _check_not_among(output: str, folder: str, names: list[str], content: str) -> None:
    """UsageError if frames written as names in folder would be among a folder's or a glob's
    input frames (all the folder's images, all the glob's matches): the next run would read
    them. A pattern takes its own names only."""
    if media.is_folder(content):
        among = media.file_key(folder or ".") == media.file_key(content)
    elif not media.PLACEHOLDER.search(os.path.basename(content)):  # a glob, as glob.glob reads
        inputs, match = os.path.split(content)
        hidden = match.startswith(".")  # else glob skips names that start with a dot
        among = media.file_key(folder or ".") == media.file_key(inputs or ".") and any(
            fnmatch.fnmatch(name, match) and (hidden or not name.startswith(".")) for name in names
        )
    else:
        among = False
    if among:
        raise UsageError(
            f"--output: {output} would write frames among the input frames ({content}), to be"
            " read as frames by the next run: give another folder"
        )


def _check_not_the_input(output: str, content: str) -> None:
    """UsageError if the output is the input clip, or would be written over its frames."""
    kind = media.output_kind(output)
    if kind == "video":
        over = [content] if media.file_key(output) == media.file_key(content) else []
    elif os.path.isfile(content):  # a video file in, image files out
        over = []
    else:
        folder, name, _ = _naming(output, kind)
        files = frame_files(content)
        try:
            names = [name(n) for n in range(1, len(files) + 1)]
        except ValueError:  # not one placeholder: check_output() says so
            return
        written = {media.file_key(os.path.join(folder, n)) for n in names}
        over = [path for path in files if media.file_key(path) in written]
        if not over:
            _check_not_among(output, folder, names, content)
    if over:
        raise UsageError(
            f"--output: {output} would be written over the input {over[0]}: give it another name"
        )


def check(settings: Settings, on_gpu: bool = False) -> tuple[Clip, str]:
    """Everything found before any work: UsageError (exit status 2) for the options and paths,
    ValueError (1) for a clip or style that cannot be used. The clip and the output's kind."""
    for name in STILL_ONLY:
        if getattr(settings, name) is not None:
            raise UsageError(f"{options.flag(name)} applies to still images, not to a video")
    options.validate(settings)
    content = settings.content
    where = (os.path.dirname(content) or ".") if media.is_pattern(content) else content
    if not os.path.exists(where):
        raise UsageError(f"--content: {content} does not exist")
    image_out = media.extension(settings.output) in images.SUPPORTED_EXTENSIONS
    if image_out and media.output_kind(settings.output) == "video" and os.path.isdir(content):
        raise UsageError(
            f"--content: {content} is not a file; a folder of frames is a video, whose --output"
            " is a video file, a folder or a frame pattern"
        )
    _check_not_the_input(settings.output, content)  # before "exists": --overwrite won't do
    kind = check_output(settings.output, settings.overwrite)
    clip = open_clip(content)
    inputs.check_sizes(settings, clip.size, "the video", on_gpu)
    size = output_size(settings, clip)
    short = flow.min_short_side(*size)
    if clip.count > 1 and (max(size) < flow.MIN_LONG_SIDE or min(size) < short):  # one: no flow
        raise ValueError(
            f"frames of {size.width}x{size.height} are too small for the optical flow between"
            f" them: the longer side must be at least {flow.MIN_LONG_SIDE} pixels and the"
            f" shorter at least {short} (see --width)"
        )
    return clip, kind


def resized(frames: Iterator[np.ndarray], size: Size) -> Iterator[np.ndarray]:
    """Each frame at size."""
    for frame in frames:
        yield images.resize(frame, *size)


class _Bar:
    """The progress over frames: a bar on a terminal, else a line per frame; none if quiet."""

    def __init__(self, settings: Settings, count: int, done: int):
        self.count, self.quiet = count, settings.quiet
        self.bar = None
        if sys.stderr.isatty() and not self.quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=count, initial=done, desc="frames", unit="frame")

    def say(self, text: str) -> None:
        """A line above the bar (unless quiet)."""
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def starting(self, number: int) -> None:
        """A frame's optimisation starts."""
        if self.bar is None:
            self.say(f"Frame {number}/{self.count}")

    def finished(self) -> None:
        """A frame is done."""
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()


class _Frames:
    """The frame loop: each frame stylised from its start, with its temporal target."""

    def __init__(self, settings: Settings, clip: Clip, network: vgg.Network, work: Work):
        self.settings, self.clip, self.network, self.work = settings, clip, network, work
        self.styles: list[np.ndarray] = []
        self.initial: np.ndarray | None = None
        self.cache: dict = {}  # what the frames share: the network, the step, the style grams
        self.precision = hardware.resolve_precision(settings.precision)
        self.bar: _Bar | None = None

    def frame_settings(self, number: int) -> Settings:
        """The first frame runs as a still image; later ones --frame-iterations steps, rounded
        to the nearest levels, at the output size only and with --frame-learning-rate unless
        they start afresh."""
        settings = self.settings
        if number == 1:
            return dataclasses.replace(
                settings, iterations=settings.first_frame_iterations or settings.iterations
            )
        # Rounding by the loss costs two gradients and a loss, about a quarter more than a
        # later frame's 10 steps; the first frame, with its hundreds, keeps it.
        later = dataclasses.replace(
            settings, iterations=settings.frame_iterations, rounding_passes=0
        )
        if settings.frame_init == "fresh":
            return later
        return dataclasses.replace(
            later, scales=1, initial_noiseblend=0.0, learning_rate=settings.frame_learning_rate
        )

    def start(
        self, frame: np.ndarray, previous: tuple[np.ndarray, np.ndarray] | None
    ) -> tuple[np.ndarray | None, stylize.Temporal | None]:
        """A frame's starting image (None: noise) and temporal target (None for the first
        frame, or with --temporal-weight 0)."""
        settings = self.settings
        fresh = frame if settings.init == "content" else self.initial
        if previous is None:
            return fresh, None
        weight, init = settings.temporal_weight, settings.frame_init
        warped, mask = None, None
        if weight > 0 or init == "prev-warped":
            warped, mask = flow.warp_previous(previous[0], frame, previous[1])
        initial = {"prev-warped": warped, "prev": previous[1], "fresh": fresh}[init]
        temporal = stylize.Temporal(warped, mask, weight) if weight > 0 else None
        return initial, temporal

    def reporter(self, number: int) -> progress.Reporter:
        """The progress of one frame (its iterations), the log's records naming the frame."""
        settings = self.settings
        context = {"frame": number, "frames": self.clip.count}
        context.update(zip(("precision", "precision_reason"), self.precision, strict=True))
        return progress.Reporter(
            sys.stderr, settings.output, print_every=settings.print_iterations,
            quiet=settings.quiet, log=settings.progress_log,
            label=f"frame {number}/{self.clip.count}", context=context,
        )  # fmt: skip

    def stylise(
        self,
        number: int,
        frame: np.ndarray,
        previous: tuple[np.ndarray, np.ndarray] | None,
        interrupts: Interrupts,
    ) -> np.ndarray:
        """One frame's output (uint8), or Interrupted / ValueError with the frames kept."""
        kept = f"the {number - 1} finished frames are kept in {self.work.path}"
        report = self.reporter(number)  # made first: its elapsed times count the flow too
        try:
            initial, temporal = self.start(frame, previous)
            steps = stylize.stylize(
                self.network, frame, self.styles, self.frame_settings(number), initial=initial,
                stop=interrupts.stop, cache=self.cache, temporal=temporal,
            )  # fmt: skip
            for step in steps:
                report.step(step)
                last = step
        except stylize.RunFailed as exc:
            raise ValueError(f"frame {number}: {exc}; {kept}") from None
        finally:
            report.close()
        if interrupts.stop() and last.iteration < last.iterations:  # cut short by a signal
            raise Interrupted(
                interrupts.signum,
                f"at frame {number}/{self.clip.count}: {kept}; run the same command again to"
                " resume",
            )
        return last.image

    def run(self, frames: Iterator[np.ndarray], done: int, interrupts: Interrupts) -> int:
        """Stylise the frames after the first done ones, keeping each; the frame count."""
        previous, count = None, 0
        for number, frame in enumerate(frames, start=1):
            count = number
            if number <= done:  # finished by an earlier run
                if number == done:
                    previous = frame, self.work.load(number)
                continue
            if interrupts.stop():
                raise Interrupted(
                    interrupts.signum,
                    f"after frame {number - 1}/{self.clip.count}: the finished frames are kept"
                    f" in {self.work.path}; run the same command again to resume",
                )
            self.bar.starting(number)
            image = self.stylise(number, frame, previous, interrupts)
            self.work.save(number, image)
            self.bar.finished()
            previous = frame, image.astype(np.float32)
        return count


class _Naming(NamedTuple):
    """How an output of frames names them: its folder, frame k's file name, all such names."""

    folder: str
    name: Callable[[int], str]
    names: re.Pattern  # the frame number is its group 1


def _naming(output: str, kind: str) -> _Naming:
    """The naming of an output folder's or pattern's frames."""
    if kind == "folder":
        return _Naming(output, OUTPUT_FRAME.format, media.numbered_names(OUTPUT_FRAME))
    name = os.path.basename(output)
    numbered = functools.partial(media.numbered, name)
    return _Naming(os.path.dirname(output) or ".", numbered, media.numbered_names(name))


def remove_stale(output: str, kind: str) -> None:
    """Remove what a killed run's assembly left of output: the temporary it was writing."""
    if kind == "video":
        folder, key = os.path.dirname(output) or ".", media.file_key(output)
        stale = images.stale_temporaries([folder], lambda path: media.file_key(path) == key)
    else:
        folder, _, names = _naming(output, kind)
        stale = images.stale_temporaries(
            [folder], lambda path: bool(names.fullmatch(os.path.basename(path)))
        )
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def assemble(settings: Settings, clip: Clip, kind: str, work: Work, count: int) -> None:
    """Write the output from the finished frames (with the content's colours under
    --preserve-colors luminance), then remove the work folder."""
    size = output_size(settings, clip)

    def finished() -> Iterator[np.ndarray]:
        contents = resized(clip.frames(), size) if settings.preserve_colors == "luminance" else None
        for number in range(1, count + 1):
            image = work.load(number)
            yield image if contents is None else job.as_written(image, settings, next(contents))

    if kind == "video":
        write_video(settings.output, finished(), clip, work.path)
    else:
        folder, name, names = _naming(settings.output, kind)
        for number, image in enumerate(finished(), start=1):
            images.write_image(os.path.join(folder, name(number)), image)
        if settings.overwrite:  # a longer clip's frames past this one's end go too
            for listed in os.listdir(folder):
                found = names.fullmatch(listed)
                if found and int(found[1]) > count and listed == name(int(found[1])):
                    os.remove(os.path.join(folder, listed))
    work.remove()


def first_frame(clip: Clip, size: Size) -> np.ndarray:
    """The clip's first frame at size."""
    frames = clip.frames()
    try:
        return images.resize(next(frames), *size)
    finally:
        frames.close()


def run(
    settings: Settings,
    load_network: Callable[[], vgg.Network],
    interrupts: Interrupts,
    on_gpu: bool = False,
) -> None:
    """Stylise the clip --content names into --output, resuming an earlier run's frames."""
    clip, kind = check(settings, on_gpu)
    size = output_size(settings, clip)
    styles, initial = inputs.load_styles(settings, first_frame(clip, size))
    network = load_network()  # first: a download makes the file that run_key names
    work = Work(settings.output, run_key(settings, clip))
    if not settings.overwrite and not work.owned():
        # Another command's output, or its finished frames: its work, which it resumes.
        if _exists(settings.output, kind):
            raise UsageError(
                f"--output: {settings.output} exists, and the unfinished run beside it"
                f" ({work.path}) is another command's; pass --overwrite to replace them"
            )
        if os.path.isfile(work.frame(1)) and not settings.restart:
            raise UsageError(
                f"{work.path} holds another command's finished frames (its inputs, network or"
                " options differ), which that command resumes; pass --restart to start afresh and"
                " replace them"
            )
    remove_stale(settings.output, kind)
    frames = _Frames(settings, clip, network, work)
    frames.styles, frames.initial = styles, initial
    done = work.resume(settings.restart)
    frames.bar = _Bar(settings, clip.count, done)
    if done:
        where = f"at frame {done + 1}/{clip.count}" if done < clip.count else "at the output"
        frames.bar.say(f"resuming {where}: {done} frames done in {work.path}")
    interrupts.running = True  # from here on a signal ends the run between iterations
    try:
        with job.deterministic(settings.seed is not None):  # same seed, same bytes
            try:
                count = frames.run(resized(clip.frames(), size), done, interrupts)
            finally:
                frames.bar.close()
        assemble(settings, clip, kind, work, count)
    finally:
        interrupts.running = False
