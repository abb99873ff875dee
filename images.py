"""Reading, resizing and writing image files for the neural-style CLI."""

import contextlib
import functools
import io
import os
import re
import secrets
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

if TYPE_CHECKING:  # ImageCms itself is imported only when a profile is used
    from PIL import ImageCms

if __package__:  # installed: the modules are the package neural_style_tf2
    from .media import extension
else:  # a checkout: the modules side by side
    from media import extension

SUPPORTED_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MAX_PIXELS: int = 8000 * 8000
# The longest side a written file can have: WebP's and JPEG's limits (Pillow fails on writing
# a larger one, at the end of the run); JPEG's for the others, past which no run fits anyway.
_MAX_SIDES = {".webp": 16383}
MAX_SIDE = 65500


def max_side(path: str) -> int:
    """The longest side an image written to path can have."""
    return _MAX_SIDES.get(extension(path), MAX_SIDE)


# Our own size check in _open replaces Pillow's decompression-bomb warning/error, so the
# user gets a message that names the file and its size.
Image.MAX_IMAGE_PIXELS = None


class Size(NamedTuple):
    """An image's size in pixels, height first as in its array; shown as WIDTHxHEIGHT."""

    height: int
    width: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


_GREY_16BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")

# For each image mode: the ICC colour space its embedded profile must describe, and the mode
# ImageCms converts from (any alpha is split off first and put back after).
_CMS_SOURCES = {
    **dict.fromkeys(("RGB", "RGBX", "RGBA", "P", "PA"), ("RGB ", "RGB")),
    **dict.fromkeys(("1", "L", "LA"), ("GRAY", "L")),
    **dict.fromkeys(("I", "I;16", "I;16L"), ("GRAY", "I;16")),
    "I;16B": ("GRAY", "I;16B"),
    "CMYK": ("CMYK", "CMYK"),
}
# Files in these formats get an embedded sRGB profile.
_TAGGED_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp")
# atomic_output's temporary of NAME.EXT: .NAME.tmp-XXXXXXXX.EXT (8 hex digits), so many
# bytes longer than the file's name.
TEMPORARY_ADDS = len("." + ".tmp-01234567")
_TEMPORARY = re.compile(r"\.(.+)\.tmp-[0-9a-f]{8}(\.[^.]*)?")


@contextlib.contextmanager
def _open(path: str) -> Iterator[Image.Image]:
    """Open path lazily (header only), checking it is a non-empty image of acceptable size."""
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder, not an image file")
    try:
        empty = os.path.getsize(path) == 0
        image = None if empty else Image.open(path)
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot open: {error.strerror or error}") from None
    except ValueError as error:  # Pillow's limits, e.g. on a PNG's compressed text
        raise ValueError(f"{path}: cannot read it ({error})") from None
    if image is None:
        raise ValueError(f"{path}: file is empty")
    with image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ValueError(
                f"{path}: {width}x{height} pixels is too large to load "
                f"(at most {MAX_PIXELS} pixels); shrink the file first, e.g. to 1024 pixels "
                "wide (--width resizes only after reading it)"
            )
        yield image


# How to turn an image with each EXIF orientation upright, as ImageOps.exif_transpose does.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}  # fmt: skip


def _orientation(exif: Callable[[], Image.Exif]) -> int | None:
    """The EXIF orientation that exif() gives (1: upright); None if it cannot be read."""
    try:
        return int(exif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # Pillow raises many kinds for damaged EXIF (struct.error, SyntaxError...)
        return None


def image_size(path: str) -> Size:
    """The size of the image at path as displayed, reading only its header."""
    with _open(path) as image:
        width, height = image.size
        if image.format == "TIFF":  # Pillow already reports (and loads) TIFFs upright
            return Size(height, width)
        # The base-class getexif reads only header metadata; PNG's override would decode.
        orientation = _orientation(lambda: Image.Image.getexif(image))
    return Size(width, height) if orientation in (5, 6, 7, 8) else Size(height, width)


@functools.cache
def _srgb_profile() -> "ImageCms.ImageCmsProfile":
    """The sRGB profile, made once."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def _srgb_icc() -> bytes:
    """The sRGB profile as ICC bytes to embed in written files, the same on every run."""
    icc = bytearray(_srgb_profile().tobytes())
    # The header's creation time would make two runs' files differ: zeroed, and with it the
    # profile ID (an MD5 over the header), whose zero means "not computed".
    icc[24:36] = bytes(12)
    icc[84:100] = bytes(16)
    return bytes(icc)


def _to_srgb(image: Image.Image, path: str) -> Image.Image:
    """image converted from its embedded ICC profile to sRGB, as an RGB or RGBA image.

    A profile that cannot be read or does not fit the image gives a warning, and the
    image is returned as it is (its values taken as sRGB).
    """
    from PIL import ImageCms

    space, mode = _CMS_SOURCES.get(image.mode, (None, image.mode))
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
        found = profile.profile.xcolor_space
        if found != space:
            raise ValueError(f"{found.strip() or 'unknown'} profile, {image.mode} image")
        # Relative colorimetric keeps colours inside sRGB exactly (an sRGB-tagged image reads
        # unchanged) and clips the rest. Phone and camera profiles (Display P3, Adobe RGB) are
        # matrix/curve ones without perceptual tables, where perceptual gives the same result;
        # with table-based CMYK profiles it would shift in-gamut colours too. 0x2000 is lcms's
        # black-point compensation (a press's deepest black becomes black), spelt as a number
        # because older Pillow lacks ImageCms.Flags.
        intent = ImageCms.Intent.RELATIVE_COLORIMETRIC
        transform = ImageCms.buildTransform(profile, _srgb_profile(), mode, "RGB", intent, 0x2000)
        source = image if image.mode == mode else image.convert(mode)
        srgb = ImageCms.applyTransform(source, transform)
        if image.mode in _ALPHA_MODES or "transparency" in image.info:
            srgb.putalpha(image.convert("RGBA").getchannel("A"))
    except (OSError, ValueError, ImageCms.PyCMSError) as error:
        warnings.warn(
            f"{path}: its ICC profile is unusable ({error}); colours are taken as sRGB",
            stacklevel=3,
        )
        return image
    return srgb


def read_image(path: str) -> np.ndarray:
    """Read any image as float32 H×W×3 sRGB in 0–255, upright, with alpha composited on white.

    An image with an embedded ICC profile (a phone's Display P3 photo, an Adobe RGB scan) is
    converted to sRGB.
    """
    with _open(path) as image:
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as error:
            raise ValueError(f"{path}: image file is truncated or corrupt ({error})") from None
        # Turned by hand, not by ImageOps.exif_transpose, which also rewrites the EXIF data and
        # fails where a tag is damaged (a camera's or an editor's fault; the pixels are sound).
        orientation = _orientation(image.getexif)
        if orientation is None:
            warnings.warn(f"{path}: its EXIF data is damaged; taken as upright", stacklevel=2)
        elif orientation in _UPRIGHT:
            image = image.transpose(_UPRIGHT[orientation])
        if image.info.get("icc_profile"):
            image = _to_srgb(image, path)
        if image.mode in _GREY_16BIT_MODES or image.mode == "F":
            grey = np.asarray(image, dtype=np.float32)
            if image.mode != "F":
                grey = grey / 257
            return np.repeat(np.clip(grey, 0, 255)[:, :, None], 3, axis=2)
        if image.mode in _ALPHA_MODES or "transparency" in image.info:
            rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
            alpha = rgba[:, :, 3:] / 255
            return rgba[:, :, :3] * alpha + 255 * (1 - alpha)
        return np.asarray(image.convert("RGB"), dtype=np.float32)


def fit_width(size: Size, width: int) -> Size:
    """size scaled to width, keeping its aspect ratio."""
    return Size(max(1, round(size.height * width / size.width)), width)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a float32 H×W×3 image with Lanczos filtering, keeping float precision."""
    if image.shape[:2] == (height, width):
        return image.astype(np.float32, copy=True)
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[:, :, c], dtype=np.float32)).resize(
                (width, height), Image.Resampling.LANCZOS
            )
        )
        for c in range(image.shape[2])
    ]
    return np.stack(channels, axis=2)  # float32: Pillow's mode "F"


def _check_extension(path: str) -> None:
    """Raise ValueError unless path ends in one of SUPPORTED_EXTENSIONS."""
    suffix = extension(path)
    if suffix not in SUPPORTED_EXTENSIONS:
        found = f"extension {suffix}" if suffix else "no extension"
        raise ValueError(
            f"{path}: {found}; use one of {' '.join(SUPPORTED_EXTENSIONS)} to pick the format"
        )


def check_output(path: str, image: bool = True, added: int = TEMPORARY_ADDS) -> None:
    """Raise ValueError unless an image (any file if not image) can be written to path, and
    its name made longer by added bytes (its temporary's, atomic_output's) still fits.

    Folders that do not exist yet are created by atomic_output at write time, so only the
    nearest existing ancestor must be a writable folder. Missing folders are fine.
    """
    if image:
        _check_extension(path)
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder; give a file name")
    folder = os.path.dirname(path) or "."
    while not os.path.lexists(folder):
        folder = os.path.dirname(folder) or "."
    if not os.path.isdir(folder):
        raise ValueError(f"{path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{path}: folder {folder} is not writable")
    name = os.path.basename(path)
    try:
        limit, length = os.pathconf(folder, "PC_NAME_MAX"), len(os.fsencode(name))
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows): NTFS's limit,
        limit, length = 255, len(name.encode("utf-16-le")) // 2  # in UTF-16 units
    if length + added > limit:
        raise ValueError(
            f"{path}: the file name is too long ({length} long): the files written beside it"
            f" (its temporary, a run's state) need names {added} longer, and a name is at most"
            f" {limit} long here"
        )


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[str]:
    """Yield a temporary path next to path, moved onto path on success and deleted on error."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    name, suffix = os.path.splitext(os.path.basename(path))
    temporary = os.path.join(folder, f".{name}.tmp-{secrets.token_hex(4)}{suffix}")
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise


def temporary_for(name: str) -> str | None:
    """The file name that a temporary's name (atomic_output's) stands for; None if name is not
    one."""
    found = _TEMPORARY.fullmatch(name)
    return found and found[1] + (found[2] or "")


def stale_temporaries(folders: Iterable[str], wanted: Callable[[str], bool]) -> list[str]:
    """The temporaries atomic_output left in these folders when its process was killed
    mid-write, of the paths (FOLDER/NAME) that wanted() accepts."""
    found = []
    for folder in set(folders):
        listed = os.listdir(folder) if os.path.isdir(folder) else []
        for name in listed:
            stands_for = temporary_for(name)
            if stands_for is not None and wanted(os.path.join(folder, stands_for)):
                found.append(os.path.join(folder, name))
    return found


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """0-255 values rounded and clipped to 8-bit pixels."""
    rounded = np.rint(pixels)  # the one temporary: a 4K float image is 100 MB
    return np.clip(rounded, 0, 255, out=rounded).astype(np.uint8)


def write_image(path: str, image: np.ndarray) -> None:
    """Write a 0–255 H×W×3 sRGB image to path (format from the extension, JPEG quality 95).

    Formats that can hold one get an embedded sRGB profile, so viewers need not guess.
    """
    _check_extension(path)
    pixels = to_uint8(image)
    tagged = extension(path) in _TAGGED_EXTENSIONS
    options = {"icc_profile": _srgb_icc()} if tagged else {}
    try:
        with atomic_output(path) as temporary:
            Image.fromarray(pixels).save(temporary, quality=95, **options)
    except OSError as error:
        raise ValueError(f"{path}: cannot write image: {error.strerror or error}") from None
