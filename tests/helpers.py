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


PLANTED_AUS = ("12", "4+7", "1+2")
"""Action units written for planted class 0, 1, 2 (methods that read AU text)."""


def planted_sets(specs, n: int = 48, n_subjects: int = 6, strength: float = 1.0, seed: int = 0,
                 growing: bool = False):
    """(train, sealed copy of train) whose class (3) is a brighter horizontal band in one
    of three places of every channel of each input, under unit Gaussian noise; subjects,
    source dataset and per-class action units filled in. One array per spec, each
    (n, *spec.shape) float32. With ``growing``, in a frame sequence (``FrameSequence``:
    channels, frames, H, W) the band grows from 0 at the onset frame to ``strength`` at
    the last, so an input taken relative to the onset (LightmanNet's) still carries it;
    ``seed`` draws another set of the same classes (held-out clips)."""
    import pandas as pd

    from mer_bench.data.samples import SampleSet
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    features = []
    for spec in specs:
        x = rng.normal(0, 1, (n, *spec.shape)).astype(np.float32)
        band = spec.shape[-2] // 3
        growth = (np.linspace(0, 1, spec.shape[1])[:, None, None]
                  if growing and type(spec).__name__ == "FrameSequence" else 1.0)
        for c in range(3):
            x[labels == c, ..., c * band:(c + 1) * band, :] += strength * growth
        features.append(x)
    rows = pd.DataFrame({"sample_id": [f"c{i:03d}" for i in range(n)],
                         "dataset": "synth-casme2", "subject": [f"s{i % n_subjects}" for i in range(n)],
                         "label": labels, "aus": [PLANTED_AUS[c] for c in labels]})
    classes = ("happiness", "disgust", "surprise")
    return (SampleSet.build(rows, tuple(features), classes, hide_labels=False),
            SampleSet.build(rows, tuple(features), classes, hide_labels=True))
