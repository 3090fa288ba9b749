"""Hand-crafted clip descriptors of the MEGC2019 baselines: LBP-TOP (appearance
dynamics on three orthogonal planes) and Bi-WOOF (bi-weighted oriented optical flow).
Both are pure functions of arrays; the specs in ``mer_bench.features.specs`` feed them
frames and flow and cache the result."""

from __future__ import annotations

import numpy as np

from mer_bench.features.operators import optical_strain

LBP_POINTS = 8
LBP_BINS = LBP_POINTS * (LBP_POINTS - 1) + 3
"""59: the uniform patterns of 8 neighbours (58) plus one bin for all non-uniform ones."""


def _uniform_lbp(images: np.ndarray) -> np.ndarray:
    """Uniform LBP codes (0..58, radius 1, 8 neighbours) of a stack of images (n, H, W):
    scikit-image's ``nri_uniform`` mapping, one call per image (no per-pixel loop)."""
    from skimage.feature import local_binary_pattern  # imported where used (~0.3 s)
    return np.stack([local_binary_pattern(image, LBP_POINTS, 1, method="nri_uniform")
                     for image in images]).astype(np.int64)


def block_index(height: int, width: int, grid: int) -> np.ndarray:
    """int (H, W): the row-major index of the ``grid`` x ``grid`` block of every pixel
    (blocks as even as integer division allows)."""
    rows = np.minimum(np.arange(height) * grid // height, grid - 1)
    cols = np.minimum(np.arange(width) * grid // width, grid - 1)
    return rows[:, None] * grid + cols[None, :]


def lbp_top(volume: np.ndarray, grid: int) -> np.ndarray:
    """LBP-TOP of a gray clip (T, H, W), values 0..255: uniform LBP codes on every XY,
    XT and YT plane (radius 1 in space and time, 8 neighbours), histogrammed over the
    interior voxels (those whose every neighbour exists: 1 <= t <= T-2, likewise y, x)
    per block of a ``grid`` x ``grid`` partition of the face and per plane, each
    histogram normalized to sum 1. Returns float32 (grid², 3, 59): [block, plane (XY,
    XT, YT), pattern]."""
    volume = np.clip(np.rint(volume), 0, 255).astype(np.uint8)
    t, h, w = volume.shape
    codes = (_uniform_lbp(volume),                                          # (T, H, W)
             _uniform_lbp(volume.transpose(1, 0, 2)).transpose(1, 0, 2),     # XT per row
             _uniform_lbp(volume.transpose(2, 0, 1)).transpose(1, 2, 0))     # YT per column
    inner = (slice(1, t - 1), slice(1, h - 1), slice(1, w - 1))
    blocks = np.broadcast_to(block_index(h, w, grid), (t, h, w))[inner].ravel()
    out = np.empty((grid * grid, 3, LBP_BINS), np.float32)
    for plane, code in enumerate(codes):
        counts = np.bincount(blocks * LBP_BINS + code[inner].ravel(),
                             minlength=grid * grid * LBP_BINS)
        counts = counts.reshape(grid * grid, LBP_BINS).astype(np.float64)
        out[:, plane] = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    return out


def orientation_histograms(flow: np.ndarray, weights: np.ndarray, grid: int,
                           bins: int) -> np.ndarray:
    """Per block of a ``grid`` x ``grid`` partition, the histogram of flow orientations
    (``bins`` equal sectors of [−π, π), bin 0 starting at angle −π; angle of (dx, dy) in
    image coordinates) with each pixel counted with its ``weights`` value.
    ``flow`` (2, H, W), ``weights`` (H, W). Returns float64 (grid², bins)."""
    _, h, w = flow.shape
    angle = np.arctan2(flow[1], flow[0])
    sector = np.minimum(((angle + np.pi) / (2 * np.pi) * bins).astype(np.int64), bins - 1)
    index = block_index(h, w, grid) * bins + sector
    return np.bincount(index.ravel(), weights.ravel().astype(np.float64),
                       minlength=grid * grid * bins).reshape(grid * grid, bins)


def bi_woof(flow: np.ndarray, grid: int, bins: int) -> np.ndarray:
    """Bi-Weighted Oriented Optical Flow of the onset -> apex flow (2, H, W) px (Liong
    et al. 2018): per block, the orientation histogram with every pixel weighted by its
    flow magnitude (local weight), the block's histogram normalized to sum 1 and then
    multiplied by the block's mean optical strain (global weight: blocks that deform
    more count more); the concatenation is then L2-normalized per clip, as the authors'
    ``biwoof.m`` ends (a clip without motion stays all zeros). Returns float32
    (grid² · bins,)."""
    magnitude = np.sqrt((flow.astype(np.float64) ** 2).sum(0))
    local = orientation_histograms(flow, magnitude, grid, bins)
    local /= np.maximum(local.sum(1, keepdims=True), 1e-12)
    strain = optical_strain(flow)
    _, h, w = flow.shape
    blocks = block_index(h, w, grid).ravel()
    mean_strain = np.bincount(blocks, strain.ravel(), grid * grid) / np.bincount(blocks,
                                                                                  minlength=grid * grid)
    feature = (local * mean_strain[:, None]).ravel()
    return (feature / max(np.linalg.norm(feature), 1e-12)).astype(np.float32)
