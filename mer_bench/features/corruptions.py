"""Test-clip corruptions for the robustness track (LightmanNet §5.3): random occluding
patches (``mask``), regional Gaussian noise (``noise``) and ``grayscale``.

The paper corrupts a share p ∈ {10, 30, 50} % of the samples and gives no further
parameters; ours, fixed here and part of every cache key through the dataset
fingerprint:
- which clips: exactly round(p · n) of the run's clips, drawn by a seeded permutation of
  their sorted ids (``corruption seed``, 0 by default, so every method sees the same
  corrupted clips); every frame of a chosen clip is corrupted, the others are untouched;
- ``mask``: 1–3 black rectangles, each side 15–30 % of the frame side, at positions
  fixed for the whole clip (an occluder does not jump between frames);
- ``noise``: one square region, side 30–50 % of the frame, fixed for the clip, with
  additive Gaussian noise of sd 25 (on 0..255) drawn anew for every frame (sensor noise);
- ``grayscale``: luminance (ITU-R BT.601) copied to the three channels.
Patch geometry is in fractions of the frame, so every feature size sees the same region.
Only test clips are read through the corrupted dataset: training (and few-shot support)
data stay clean.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd

from mer_bench.data.registry import Dataset
from mer_bench.errors import MerBenchError
from mer_bench.seeding import stable_seed

CORRUPTIONS = ("mask", "noise", "grayscale")


@dataclass(frozen=True)
class Corruption:
    """``kind`` (mask, noise, grayscale), the ``share`` of clips corrupted (0 < share <= 1)
    and the ``seed`` of the clip selection and patch geometry."""

    kind: str
    share: float
    seed: int = 0

    def __post_init__(self):
        if self.kind not in CORRUPTIONS:
            raise MerBenchError(f"unknown corruption {self.kind!r}; choose from "
                                f"{', '.join(CORRUPTIONS)}")
        if not 0 < self.share <= 1:
            raise MerBenchError(f"--corrupt-share {self.share} is not in (0, 1]")

    @property
    def tag(self) -> str:
        """``noise30`` (for run ids)."""
        return f"{self.kind}{self.share * 100:g}"

    def chosen(self, sample_ids: pd.Series) -> np.ndarray:
        """Boolean mask over ``sample_ids``: the round(share · n) corrupted clips."""
        ordered = np.sort(sample_ids.to_numpy().astype(str))
        n = int(round(self.share * len(ordered)))
        picked = np.random.default_rng(stable_seed("corrupt", self.seed)).permutation(ordered)[:n]
        return sample_ids.isin(set(picked)).to_numpy()

    def apply(self, frames: np.ndarray, sample_id: str) -> np.ndarray:
        """Corrupted copy of one clip's uint8 (T, H, W, 3) frames (geometry seeded by the
        clip's id, so any subset of frame indices sees the same patches)."""
        rng = np.random.default_rng(stable_seed("corrupt-geometry", self.kind, self.seed, sample_id))
        if self.kind == "grayscale":
            gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
            return np.repeat(gray[..., None], 3, axis=3)
        out = frames.copy()
        h, w = frames.shape[1:3]
        if self.kind == "mask":
            for _ in range(int(rng.integers(1, 4))):
                y0, x0, y1, x1 = _box(rng, h, w, 0.15, 0.30)
                out[:, y0:y1, x0:x1] = 0
            return out
        y0, x0, y1, x1 = _box(rng, h, w, 0.30, 0.50)
        noise = np.random.default_rng(stable_seed("corrupt-noise", self.seed, sample_id)).normal(
            0, 25, out[:, y0:y1, x0:x1].shape)
        out[:, y0:y1, x0:x1] = np.clip(out[:, y0:y1, x0:x1] + noise, 0, 255).astype(np.uint8)
        return out

    def to_json(self) -> dict:
        return {"kind": self.kind, "share": self.share, "seed": self.seed}


def _box(rng: np.random.Generator, h: int, w: int, low: float, high: float
         ) -> tuple[int, int, int, int]:
    """A rectangle (y0, x0, y1, x1) with sides in [low, high] of the frame's, inside it."""
    bh, bw = (max(1, int(round(rng.uniform(low, high) * side))) for side in (h, w))
    y0, x0 = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    return y0, x0, y0 + bh, x0 + bw


class CorruptedDataset(Dataset):
    """``base`` with ``corruption`` applied to the frames of every clip asked for (the
    runner asks only for the chosen ones); same samples, name and problems, its own
    fingerprint, so cached features never mix. A clip's corruption does not depend on
    the share, so its cached features serve every share."""

    def __init__(self, base: Dataset, corruption: Corruption):
        self.base, self.corruption = base, corruption
        self.name, self.synthetic = base.name, base.synthetic
        self.samples, self.problems = base.samples, base.problems
        self.fingerprint = f"{base.fingerprint}|corrupt:{corruption.kind}:{corruption.seed}"

    def frames(self, sample_id: str, indices: np.ndarray, size: int) -> np.ndarray:
        return self.corruption.apply(self.base.frames(sample_id, indices, size), sample_id)

    def clip_fingerprint(self, sample_id: str) -> str:
        return self.base.clip_fingerprint(sample_id)

    def reader_classes(self) -> tuple[type, ...]:
        return (type(self), *self.base.reader_classes())
