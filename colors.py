"""Colour preservation (Gatys et al. 2016): luminance transfer and colour-statistics matching."""

from __future__ import annotations

import numpy as np

if __package__:  # installed: the modules are the package neural_style_tf2
    from . import images
else:  # a checkout: the modules side by side
    import images

# RGB to YCbCr, ITU-R BT.601 full range as in JPEG (JFIF): Y in 0-255, Cb/Cr centred on 128.
_YCBCR = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ]
)
_OFFSET = np.array([0.0, 128.0, 128.0])
_RGB_FROM_YCBCR = np.linalg.inv(_YCBCR)
# Covariance eigenvalues are floored here, so a style with flat or grey colours still maps.
_EIGEN_FLOOR = 1e-6


def rgb_to_ycbcr(image: np.ndarray) -> np.ndarray:
    """HxWx3 RGB (0-255) to YCbCr, as float64."""
    return np.asarray(image, np.float64) @ _YCBCR.T + _OFFSET


def ycbcr_to_rgb(image: np.ndarray) -> np.ndarray:
    """HxWx3 YCbCr to RGB, as float64 (not clipped)."""
    return (np.asarray(image, np.float64) - _OFFSET) @ _RGB_FROM_YCBCR.T


def preserve_luminance(result: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The result's luminance (Y) with the content's chroma (Cb, Cr), as 8-bit RGB."""
    if result.shape != content.shape:
        raise ValueError(f"result {result.shape} and content {content.shape} differ in size")
    ycbcr = rgb_to_ycbcr(content)
    ycbcr[..., 0] = rgb_to_ycbcr(result)[..., 0]
    return images.to_uint8(ycbcr_to_rgb(ycbcr))


def _sqrtm(covariance: np.ndarray, power: float) -> np.ndarray:
    """covariance ** power for a symmetric positive semi-definite 3x3 matrix."""
    values, vectors = np.linalg.eigh(covariance)
    return (vectors * np.maximum(values, _EIGEN_FLOOR) ** power) @ vectors.T


def match_colors(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """style's pixels mapped linearly so their RGB mean and covariance are content's (0-255)."""
    source = np.asarray(style, np.float64).reshape(-1, 3)
    target = np.asarray(content, np.float64).reshape(-1, 3)
    mean_s, mean_c = source.mean(axis=0), target.mean(axis=0)
    cov_s = np.cov(source, rowvar=False, bias=True)
    cov_c = np.cov(target, rowvar=False, bias=True)
    # The symmetric square-root form A = C_c^(1/2) C_s^(-1/2) (Gatys et al. 2016, as in
    # image analogies), so that A C_s A^T = C_c.
    transform = _sqrtm(cov_c, 0.5) @ _sqrtm(cov_s, -0.5)
    matched = (source - mean_s) @ transform.T + mean_c
    return np.clip(matched, 0, 255).reshape(np.shape(style)).astype(np.float32)
