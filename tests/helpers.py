"""Helpers shared by several test modules."""

import cv2
import numpy as np


def shifted_pair(dx: float, dy: float, size: int = 64):
    """Two RGB frames of a smooth random texture, the second shifted by (dx, dy) px."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.normal(128, 40, (size, size)).astype(np.float32), (0, 0), 1.5)
    grid_y, grid_x = np.mgrid[0:size, 0:size].astype(np.float32)
    moved = cv2.remap(texture, grid_x - dx, grid_y - dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return to_rgb(texture), to_rgb(moved)


def to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(gray, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
