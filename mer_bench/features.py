"""Feature specs and the operators that compute them.

A ``FeatureSpec`` is a pure, hashable description of what to compute for one clip; the
runner materializes it for every sample through the cache (``mer_bench.cache``).
Operators (functions below) are shared by every spec and every adapter: crop/resize
(frames arrive as the face region from the dataset at the spec's size), key frames
(apex, or the middle frame where the apex is missing), optical flow (Farneback, DIS,
TV-L1) and frame difference.

Units: flow is in pixels at the spec's ``size`` (channel 0 = dx, 1 = dy); image channels
are RGB scaled to [0, 1]; frame difference is apex - onset on that scale.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
import json
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import pandas as pd

from mer_bench.datasets import Dataset
from mer_bench.errors import MerBenchError
from mer_bench.samples import key_frame

FEATURE_CODE_VERSION = "1"
"""Bump when an operator's output changes: it is part of every cache key."""

FLOW_METHODS = ("farneback", "dis", "tvl1", "tvl1-fast")
CHANNELS = {"flow": 2, "diff": 3, "onset": 3, "apex": 3}


def to_gray(frame: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> uint8 (H, W)."""
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def optical_flow(first: np.ndarray, second: np.ndarray, method: str) -> np.ndarray:
    """Dense flow from ``first`` to ``second`` (uint8 RGB frames, same size).

    Returns float32 (2, H, W) in pixels. ``tvl1-fast`` is TV-L1 with warps=1,
    nscales=3, epsilon=0.05 (about 25x faster than the defaults, see offline-assets.md).
    """
    a, b = to_gray(first), to_gray(second)
    if method == "farneback":
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 9, 3, 5, 1.1, 0)
    elif method == "dis":
        flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(a, b, None)
    elif method in ("tvl1", "tvl1-fast"):
        if not hasattr(cv2, "optflow"):
            raise MerBenchError("flow 'tvl1' needs opencv-contrib (cv2.optflow); "
                                "install opencv-contrib-python-headless")
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        if method == "tvl1-fast":
            tvl1.setWarpingsNumber(1)
            tvl1.setScalesNumber(3)
            tvl1.setEpsilon(0.05)
        flow = tvl1.calc(a, b, None)
    else:
        raise MerBenchError(f"unknown flow method {method!r}; choose from {', '.join(FLOW_METHODS)}")
    return np.ascontiguousarray(flow.transpose(2, 0, 1), dtype=np.float32)


def frame_difference(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``second - first`` as float32 (3, H, W) on the [0, 1] scale."""
    return ((second.astype(np.float32) - first.astype(np.float32)) / 255.0).transpose(2, 0, 1)


def as_channels(frame: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (3, H, W) in [0, 1]."""
    return (frame.astype(np.float32) / 255.0).transpose(2, 0, 1)


@dataclass(frozen=True)
class FeatureSpec(ABC):
    """Base of all specs: hashable, JSON-describable, computes one clip's array."""

    def to_json(self) -> dict:
        return {"kind": type(self).__name__, **asdict(self)}

    @property
    def key(self) -> str:
        """Stable hash of the spec (and the feature code version)."""
        text = json.dumps(self.to_json(), sort_keys=True) + FEATURE_CODE_VERSION
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @abstractmethod
    def compute(self, dataset: Dataset, row: pd.Series) -> np.ndarray:
        """One clip's float32 array."""

    def describe(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in asdict(self).items())
        return f"{type(self).__name__}({fields})"


@dataclass(frozen=True)
class OnsetApex(FeatureSpec):
    """Two key frames of a clip — onset and apex (middle frame where the apex is not
    annotated) — turned into channels stacked in the order given.

    Output: float32 (C, size, size) with C = sum of CHANNELS[c] (flow 2, diff 3,
    onset 3, apex 3).
    """

    size: int = 112
    flow: str = "farneback"
    channels: tuple[str, ...] = ("flow",)

    def __post_init__(self):
        bad = [c for c in self.channels if c not in CHANNELS]
        if bad or not self.channels:
            raise MerBenchError(f"unknown feature channels {bad}; choose from {list(CHANNELS)}")
        if "flow" in self.channels and self.flow not in FLOW_METHODS:
            raise MerBenchError(f"unknown flow method {self.flow!r}; choose from {FLOW_METHODS}")

    @property
    def n_channels(self) -> int:
        return sum(CHANNELS[c] for c in self.channels)

    def compute(self, dataset: Dataset, row: pd.Series) -> np.ndarray:
        onset, apex = dataset.frames(row["sample_id"], np.array([row["onset"], key_frame(row)]),
                                     self.size)
        parts = {
            "flow": lambda: optical_flow(onset, apex, self.flow),
            "diff": lambda: frame_difference(onset, apex),
            "onset": lambda: as_channels(onset),
            "apex": lambda: as_channels(apex),
        }
        return np.concatenate([parts[c]() for c in self.channels], axis=0)


def onset_apex(size: int = 112, flow: str = "farneback",
               channels: tuple[str, ...] = ("flow",)) -> OnsetApex:
    """Shorthand used in DESIGN.md: ``onset_apex(flow="tvl1", size=112)``."""
    return OnsetApex(size=size, flow=flow, channels=tuple(channels))
