"""Optical flow between video frames (OpenCV's DIS), warping along it, and where to trust it.

A flow is an HxWx2 float32 array of (dx, dy) per pixel: flow(a, b) at a pixel p of frame a
says where p moved to in frame b. After Ruder, Dosovitskiy and Brox, "Artistic style transfer
for videos" (2016), section 3.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

if __package__:  # installed: the modules are the package neural_style_tf2
    from . import images
else:  # a checkout: the modules side by side
    import images

PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
# The paper's thresholds: a pixel is occluded (or disoccluded) when going back and forth along
# the flows misses it by more than OCCLUSION_RELATIVE of their lengths plus OCCLUSION_PIXELS;
# it lies on a motion boundary when the flow's gradient is steeper than BOUNDARY_RELATIVE of
# its length plus BOUNDARY_OFFSET.
OCCLUSION_RELATIVE, OCCLUSION_PIXELS = 0.01, 0.5
BOUNDARY_RELATIVE, BOUNDARY_OFFSET = 0.01, 0.002


# DIS's finest pyramid level: the full size for frames up to this many pixels (small frames
# need it to be accurate), else half the size (the preset's: fast enough for 512x288 frames).
FULL_SIZE_PIXELS = 256 * 144
# DIS refuses smaller frames (measured with OpenCV 5.0): a longer side under 12 pixels, or a
# shorter side under 8 at the full size, under 16 at half size.
MIN_LONG_SIDE, MIN_SHORT_SIDE = 12, 8


def min_short_side(height: int, width: int) -> int:
    """The shortest side DIS takes in a frame of height x width."""
    return MIN_SHORT_SIDE if height * width <= FULL_SIZE_PIXELS else 2 * MIN_SHORT_SIDE


@functools.cache
def _dis(finest_scale: int) -> cv2.DISOpticalFlow:
    """The DIS flow estimator stopping at a pyramid level, made once."""
    dis = cv2.DISOpticalFlow_create(PRESET)
    dis.setFinestScale(finest_scale)
    return dis


def grey(frame: np.ndarray) -> np.ndarray:
    """An RGB frame (0-255) as the contiguous 8-bit greyscale DIS works on."""
    pixels = images.to_uint8(frame)
    return np.ascontiguousarray(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY))


def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The flow from greyscale frame a to frame b."""
    return _dis(0 if a.size <= FULL_SIZE_PIXELS else 1).calc(a, b, None)


def sample_points(field: np.ndarray) -> np.ndarray:
    """Where each pixel p lands when moved by field: p + field(p), HxWx2 float32."""
    height, width = field.shape[:2]
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return field + np.stack([xs, ys], axis=2)


def warp(image: np.ndarray, field: np.ndarray) -> np.ndarray:
    """image sampled at p + field(p) for each pixel p (bilinear; the border repeats outside)."""
    points = sample_points(field)
    return cv2.remap(
        np.asarray(image, np.float32), points[:, :, 0], points[:, :, 1], cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip


def consistency(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Where the backward flow (frame t to t-1, on frame t) can be trusted: an HxW float32 mask,
    0 at disocclusions, motion boundaries and pixels that come from outside frame t-1, else 1.

    forward is the flow from t-1 to t (on frame t-1); followed back along backward, it should
    be backward's opposite (the forward-backward check).
    """
    there = warp(forward, backward)  # the forward flow at where each pixel came from
    miss = np.sum((there + backward) ** 2, axis=2)
    lengths = np.sum(there**2, axis=2) + np.sum(backward**2, axis=2)
    occluded = miss > OCCLUSION_RELATIVE * lengths + OCCLUSION_PIXELS
    dy, dx = np.gradient(backward, axis=(0, 1))
    steepness = np.sum(dx**2, axis=2) + np.sum(dy**2, axis=2)
    boundary = steepness > BOUNDARY_RELATIVE * np.sum(backward**2, axis=2) + BOUNDARY_OFFSET
    points = sample_points(backward)
    height, width = backward.shape[:2]
    outside = (points[:, :, 0] < 0) | (points[:, :, 0] > width - 1)
    outside |= (points[:, :, 1] < 0) | (points[:, :, 1] > height - 1)
    return (~(occluded | boundary | outside)).astype(np.float32)


def warp_previous(
    previous: np.ndarray, current: np.ndarray, output: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The previous frame's output warped onto the current frame, and where to trust it.

    previous and current are the input frames (RGB 0-255), output the previous frame's result.
    """
    before, now = grey(previous), grey(current)
    backward = flow(now, before)
    forward = flow(before, now)
    return warp(output, backward), consistency(forward, backward)
