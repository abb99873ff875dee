"""A run's input images: checked from their headers before any work, then read and resized."""

from __future__ import annotations

import numpy as np

if __package__:  # installed: the modules are the package neural_style_tf2
    from . import colors, hardware, images, media, memory
    from .images import Size
    from .settings import Settings
else:  # a checkout: the modules side by side
    import colors
    import hardware
    import images
    import media
    import memory
    from images import Size
    from settings import Settings

MIN_OUTPUT_SIDE = 2  # the total variation loss needs two pixels each way


def style_sizes(sizes: list[Size], scales: tuple[float, ...] | None, width: int) -> list[Size]:
    """The size each style is resized to for an output width (--style-scales)."""
    scales = scales or (1.0,) * len(sizes)
    return [
        images.fit_width(size, max(1, round(s * width)))
        for size, s in zip(sizes, scales, strict=True)
    ]


def check_memory(
    settings: Settings, content: Size, styles: list[Size], on_gpu: bool, initial: Size | None
) -> None:
    """ValueError if reading the inputs or the run at the output width would not fit in memory,
    whole or in tiles (the memory budget: --max-memory, else what is available).

    The error names the size and the largest --width that fits.
    """
    available = settings.max_memory or memory.available(on_gpu)
    if settings.no_memory_check or available is None:
        return
    precision = hardware.resolve_precision(settings.precision)[0]
    lbfgs = settings.optimizer == "lbfgs"
    tile = settings.tile_size or memory.MIN_TILE

    def needed(width: int) -> tuple[int, int]:
        """(whole, tiled): what a run at width needs whole and in the smallest tiles."""
        scaled = style_sizes(styles, settings.style_scales, width)
        output = images.fit_width(content, width)
        window = memory.tile_window(tile, output)
        tiled = memory.tiled_needed(output, scaled, window, precision, lbfgs, on_gpu)
        return (tiled if settings.tile_size else memory.needed(output, scaled, on_gpu)), tiled

    width = settings.width or content.width
    whole, tiled = needed(width)
    if min(whole, tiled) > available:
        _too_big(settings, content, styles, width, tiled, available, on_gpu, needed)
    if on_gpu:  # the files are decoded in the host's memory, which this did not look at
        return
    _check_reading(content, styles, initial, available)


def _check_reading(content: Size, styles: list[Size], initial: Size | None, available: int):
    """ValueError if decoding the largest input file would not fit in memory."""
    largest = max([content, *styles, *([initial] if initial else [])], key=lambda s: s[0] * s[1])
    reading = memory.reading(largest)
    if reading > available:
        raise ValueError(
            f"reading a {largest} input image needs about {memory.gigabytes(reading)} of "
            f"memory, {memory.gigabytes(available)} is available; shrink that file first"
        )


def _too_big(settings, content, styles, width, need, available, on_gpu, needed) -> None:
    """The ValueError of a run that does not fit even in tiles: the size, the largest --width
    that fits."""
    low, high = 0, width  # the largest width that fits: needed() grows with the width
    while low < high:
        middle = (low + high + 1) // 2
        fits = min(needed(middle)) <= available
        low, high = (middle, high) if fits else (low, middle - 1)
    what = f"a {images.fit_width(content, width)} output"
    resized = style_sizes(styles, settings.style_scales, width)
    if sum(s.width * s.height for s in resized) * memory.MEMORY_PER_TILED_STYLE_PIXEL > need / 2:
        what += f" with styles resized to {', '.join(str(s) for s in resized)}"
    fits = low >= MIN_OUTPUT_SIDE
    advice = f"use --width {low} or less" if fits else "even a tiny one does not fit"
    where = "GPU memory" if on_gpu else "memory"
    limit = "allowed by --max-memory" if settings.max_memory else "available"
    tile = settings.tile_size or memory.MIN_TILE
    raise ValueError(
        f"{what} needs about {memory.gigabytes(need)} of {where} even computed in tiles of"
        f" {tile}x{tile} pixels, {memory.gigabytes(available)} is {limit}; {advice} (or"
        " --no-memory-check to try anyway)"
    )


def check_inputs(settings: Settings, on_gpu: bool = False) -> None:
    """ValueError for an input that exists but cannot be used, from the image headers only.

    Runs before any image is decoded or the network loaded: unreadable or oversized images,
    an output too small, a run too big for the memory.
    """
    if media.is_video(settings.content):  # reached in a batch only
        raise ValueError(f"{settings.content}: a video runs on its own, not in a batch")
    content = images.image_size(settings.content)
    check_sizes(settings, content, f"content {settings.content}", on_gpu)


def check_sizes(settings: Settings, content: Size, what: str, on_gpu: bool) -> None:
    """ValueError if the output at content's size (what names it) would be too small, or the
    run too big for the memory, from the style and initial images' headers."""
    output = content if settings.width is None else images.fit_width(content, settings.width)
    if min(output) < MIN_OUTPUT_SIDE:
        raise ValueError(
            f"the output would be {output} pixels ({what} is {content}); it must be at least"
            f" {MIN_OUTPUT_SIDE} pixels each way"
        )
    for option_flag, path in (
        ("--output", settings.output),
        ("--checkpoint-output", settings.checkpoint_output),
    ):
        limit = images.max_side(path) if path else None
        if limit and max(output) > limit:
            raise ValueError(
                f"{option_flag}: {path}: the output would be {output} pixels, more than the"
                f" {limit} a side that such a file holds (see --width)"
            )
    styles = [images.image_size(path) for path in settings.styles]
    initial = images.image_size(settings.initial) if settings.initial else None
    check_memory(settings, content, styles, on_gpu, initial)


def load_inputs(settings: Settings) -> tuple[np.ndarray, list[np.ndarray], np.ndarray | None]:
    """The content, styles and starting image, read and resized as the settings say."""
    content = images.read_image(settings.content)
    if settings.width is not None:
        size = images.fit_width(Size(*content.shape[:2]), settings.width)
        content = images.resize(content, *size)
    return (content, *load_styles(settings, content))


def load_styles(
    settings: Settings, content: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray | None]:
    """The style images sized for content (given its colours under --preserve-colors
    histogram), and the starting image that --initial or --init give, at content's size."""
    styles = [images.read_image(path) for path in settings.styles]
    sizes = style_sizes(
        [Size(*s.shape[:2]) for s in styles], settings.style_scales, content.shape[1]
    )
    styles = [images.resize(s, *size) for s, size in zip(styles, sizes, strict=True)]
    if settings.preserve_colors == "histogram":
        styles = [colors.match_colors(style, content) for style in styles]
    initial = None
    if settings.initial:
        initial = images.read_image(settings.initial)
    elif settings.init == "content":
        initial = content
    elif settings.init == "style":
        initial = styles[0]
    if initial is not None:
        initial = images.resize(initial, *content.shape[:2])
    return styles, initial
