"""What a --content or --output path names: an image, a video file, or a folder or pattern of
frames. Tests of the path alone (nothing is decoded), so option checks can use them early."""

from __future__ import annotations

import os
import re

# Video files by extension: the containers ffmpeg reads and writes most often. Any other
# extension is taken as an image (Pillow's to read, the image list's to write).
VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
    ".flv", ".wmv", ".ogv", ".3gp", ".mxf", ".nut", ".y4m",
)  # fmt: skip
# A frame number's placeholder in a pattern: printf's %d / %05d or format's {} / {:05}.
PLACEHOLDER = re.compile(r"%0?\d*d|\{(?::0?\d*d?)?\}")
GLOB = re.compile(r"[*?[]")


def extension(path: str) -> str:
    """The lower-case extension of path, with its dot ('' if none)."""
    return os.path.splitext(path)[1].lower()


def is_pattern(path: str) -> bool:
    """Whether path's file name has a frame-number placeholder or a wildcard."""
    name = os.path.basename(path)
    return bool(PLACEHOLDER.search(name) or GLOB.search(name))


def is_folder(path: str) -> bool:
    """Whether path names a folder: one that exists, or a path ending in a separator."""
    return os.path.isdir(path) or path.endswith(("/", os.sep))


def is_video(content: str | None) -> bool:
    """Whether --content names a clip: a video file, or a folder or pattern of frames.

    Anything else is a still image (a .gif too: Pillow reads its first frame).
    """
    if not content:
        return False
    if is_folder(content) or (not os.path.isfile(content) and is_pattern(content)):
        return True
    return extension(content) in VIDEO_EXTENSIONS


def output_kind(output: str) -> str:
    """What a clip's --output is: 'folder' of frames, frame 'pattern', or a 'video' file."""
    if is_folder(output):
        return "folder"
    if PLACEHOLDER.search(os.path.basename(output)):
        return "pattern"
    return "video"


def numbered(pattern: str, number: int) -> str:
    """The path of a checkpoint or frame number under a pattern whose file name has a
    {}-style or %-style placeholder; ValueError if the file name cannot take one number."""
    folder, name = os.path.split(pattern)
    try:
        name = name.format(number) if re.search(r"\{[^{}]*\}", name) else name % number
    except (TypeError, ValueError, IndexError, KeyError, OverflowError):  # %c: Overflow
        raise ValueError(f"{pattern}: not one placeholder for a number") from None
    return os.path.join(folder, name)


def number_parts(pattern: str) -> tuple[str, str]:
    """The text of a pattern's file name before and after its number, in the file system's
    case; ValueError if the pattern cannot take a number."""
    # Where the names of two long numbers (never padded) differ.
    names = [os.path.basename(numbered(pattern, n)) for n in (111111111111, 222222222222)]
    start = len(os.path.commonprefix(names))
    end = len(names[0]) - len(os.path.commonprefix([n[::-1] for n in names]))
    return os.path.normcase(names[0][:start]), os.path.normcase(names[0][end:])


def number_of(pattern: str, name: str) -> int | None:
    """The number whose file name under pattern is name, or None if name is none of the
    pattern's; ValueError if the pattern cannot take a number."""
    prefix, suffix = number_parts(pattern)
    name = os.path.normcase(name)
    digits = name[len(prefix) : len(name) - len(suffix)]
    fits = name.startswith(prefix) and name.endswith(suffix)
    if not fits or len(name) <= len(prefix) + len(suffix) or not re.fullmatch("[0-9]+", digits):
        return None
    number = int(digits)
    return number if os.path.normcase(os.path.basename(numbered(pattern, number))) == name else None


def file_key(path: str) -> str:
    """What two names of one file have in common: the path resolved (links followed), in the
    file system's case."""
    return os.path.normcase(os.path.realpath(path))


def numbered_names(pattern: str) -> re.Pattern:
    """The file names a pattern's file name gives (its placeholder any number of digits, the
    match's group 1)."""
    parts = PLACEHOLDER.split(os.path.basename(pattern))
    return re.compile("(\\d+)".join(re.escape(part) for part in parts))


def natural_key(name: str) -> list:
    """A sort key under which frame2.png comes before frame10.png."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
