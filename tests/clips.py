"""Generated clips: textured squares moving over a textured background with known motion,
written as videos (with a sine sound track) or frame files; and the true motion's warp."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image


class Square(NamedTuple):
    """A textured square: its top-left corner at frame 0, side, and motion per frame (y, x)."""

    y: int
    x: int
    side: int
    vy: int
    vx: int


def texture(height: int, width: int, seed: int) -> np.ndarray:
    """A random texture with detail at a few scales, uint8 RGB."""
    rng = np.random.default_rng(seed)
    layers = []
    for cells in (3, 6, 12):
        small = rng.uniform(0, 255, (cells, cells, 3)).astype(np.uint8)
        big = Image.fromarray(small).resize((width, height), Image.BICUBIC)
        layers.append(np.asarray(big, np.float32))
    return np.clip(np.mean(layers, axis=0), 0, 255).astype(np.uint8)


class Scene:
    """A static background with squares moving over it (later squares on top)."""

    def __init__(self, height: int, width: int, squares: list[Square], seed: int = 0):
        self.height, self.width, self.squares = height, width, squares
        self.background = texture(height, width, seed)
        self.textures = [texture(s.side, s.side, seed + 1 + k) for k, s in enumerate(squares)]

    def cover(self, t: int) -> np.ndarray:
        """Which square is on top at each pixel of frame t (-1: the background)."""
        top = np.full((self.height, self.width), -1)
        for k, s in enumerate(self.squares):
            y, x = s.y + t * s.vy, s.x + t * s.vx
            top[max(y, 0) : max(y + s.side, 0), max(x, 0) : max(x + s.side, 0)] = k
        return top

    def frame(self, t: int) -> np.ndarray:
        """Frame t (from 0), uint8 RGB."""
        image = self.background.copy()
        for s, tex in zip(self.squares, self.textures, strict=True):
            y, x = s.y + t * s.vy, s.x + t * s.vx
            canvas = np.zeros((self.height + 2 * s.side, self.width + 2 * s.side, 3), np.uint8)
            mask = np.zeros(canvas.shape[:2], bool)
            ys, xs = slice(y + s.side, y + 2 * s.side), slice(x + s.side, x + 2 * s.side)
            canvas[ys, xs], mask[ys, xs] = tex, True
            inner = (slice(s.side, s.side + self.height), slice(s.side, s.side + self.width))
            image[mask[inner]] = canvas[inner][mask[inner]]
        return image

    def frames(self, count: int) -> list[np.ndarray]:
        """The first count frames."""
        return [self.frame(t) for t in range(count)]

    def true_warp(self, image: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
        """image (frame t-1's geometry) moved by the true motion onto frame t, and where that
        is defined (not disoccluded, not from outside the frame)."""
        now, before = self.cover(t), self.cover(t - 1)
        ys, xs = np.mgrid[0 : self.height, 0 : self.width]
        vy = np.zeros_like(ys)
        vx = np.zeros_like(xs)
        for k, s in enumerate(self.squares):
            vy[now == k], vx[now == k] = s.vy, s.vx
        sy, sx = ys - vy, xs - vx
        inside = (sy >= 0) & (sy < self.height) & (sx >= 0) & (sx < self.width)
        sy, sx = np.clip(sy, 0, self.height - 1), np.clip(sx, 0, self.width - 1)
        valid = inside & (before[sy, sx] == now)
        return image[sy, sx], valid


def moving_squares(height: int = 24, width: int = 32, seed: int = 0) -> Scene:
    """Two squares moving different ways over a background."""
    side = max(6, height // 3)
    squares = [
        Square(height // 5, width // 8, side, 1, 2),
        Square(height // 2, width // 2, side, -1, -1),
    ]
    return Scene(height, width, squares, seed)


def write_sine(path: Path, seconds: float, rate: int = 8000) -> Path:
    """A mono 16-bit WAV of a 440 Hz sine."""
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        samples = (
            int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(seconds * rate))
        )
        file.writeframes(b"".join(struct.pack("<h", v) for v in samples))
    return path


def write_video(path: Path, frames: list[np.ndarray], fps: float, audio: bool = True) -> Path:
    """Encode frames (H.264, near lossless) with a sine sound track as long as the clip."""
    import imageio_ffmpeg

    extra = {}
    if audio:
        wav = write_sine(path.with_suffix(".wav"), len(frames) / fps)
        extra = {"audio_path": str(wav), "audio_codec": "aac"}
    height, width = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(
        str(path), (width, height), fps=fps, codec="libx264", quality=None,
        macro_block_size=1, output_params=["-crf", "4"], ffmpeg_log_level="error", **extra,
    )  # fmt: skip
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame, np.uint8).tobytes())
    writer.close()
    return path


def write_frames(folder: Path, frames: list[np.ndarray]) -> Path:
    """Frames as folder/frame1.png, frame2.png, ... (unpadded: natural order matters)."""
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames, start=1):
        Image.fromarray(frame).save(folder / f"frame{t}.png")
    return folder
