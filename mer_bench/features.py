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


def resample_frames(frames: np.ndarray, length: int) -> np.ndarray:
    """(n, H, W, 3) uint8 -> (length, H, W, 3): frames at ``length`` evenly spaced
    positions in [0, n - 1], linearly interpolated between the two neighbours where a
    position falls between frames (so fewer than ``length`` frames are upsampled)."""
    positions = np.linspace(0, len(frames) - 1, length)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, len(frames) - 1)
    weight = (positions - low)[:, None, None, None].astype(np.float32)
    mixed = frames[low].astype(np.float32) * (1 - weight) + frames[high].astype(np.float32) * weight
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def warp_backward(frame: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """``frame`` moved by ``displacement`` (2, H, W) px: out(y) = frame(y - d(y))."""
    h, w = frame.shape[:2]
    grid_y, grid_x = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(frame, grid_x - displacement[0], grid_y - displacement[1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def synthesize_frames(onset: np.ndarray, apex: np.ndarray, length: int, method: str) -> np.ndarray:
    """``length`` frames from onset to apex made from those two frames alone: the onset
    warped along the onset -> apex flow by fractions 0, 1/(length-1), ..., 1 (a classic,
    flow-based stand-in for a learned frame interpolator)."""
    flow = optical_flow(onset, apex, method)
    return np.stack([warp_backward(onset, flow * (t / (length - 1))) for t in range(length)])


def magnify_frames(frames: np.ndarray, phi: float, method: str) -> np.ndarray:
    """Flow-based motion magnification ``I(x + (1 + phi) * delta_t(x))`` (Wu et al.):
    delta_t is the flow from the first frame to frame t; every frame is re-rendered from
    the first one displaced by (1 + phi) * delta_t. ``phi = 0`` re-renders the motion as
    estimated. (n, H, W, 3) uint8 in and out."""
    first = frames[0]
    out = [first]
    for frame in frames[1:]:
        out.append(warp_backward(first, (1 + phi) * optical_flow(first, frame, method)))
    return np.stack(out)


def sequence_channels(frames: np.ndarray, channels: tuple[str, ...], method: str) -> np.ndarray:
    """Per consecutive pair of (L, H, W, 3) frames: flow (2 ch, px) and/or absolute frame
    difference (3 ch, [0, 1]), stacked as float32 (C, L - 1, H, W)."""
    steps = []
    for a, b in zip(frames[:-1], frames[1:]):
        parts = []
        if "flow" in channels:
            parts.append(optical_flow(a, b, method))
        if "diff" in channels:
            parts.append(np.abs(frame_difference(a, b)))
        steps.append(np.concatenate(parts, axis=0))
    return np.stack(steps, axis=1)


@dataclass(frozen=True)
class OnsetApexSequence(FeatureSpec):
    """The onset -> apex stretch normalized to ``length`` frames, then flow and absolute
    frame difference between consecutive frames (MPFNet's input).

    ``interpolation``: ``resample`` takes the clip's real frames from onset to apex (the
    middle frame where the apex is missing) at ``length`` evenly spaced positions,
    interpolating between neighbours when fewer exist; ``flow-synthesis`` builds the
    frames from onset and apex only (closer to the paper's learned interpolator).
    ``magnification`` phi > 0 magnifies the motion first (``magnify_frames``).
    ``compute_size`` (default: ``size``) is the resolution frames are read and flow is
    estimated at; the result is then area-resized to ``size`` with flow rescaled to
    pixels at ``size`` (small inputs keep sub-pixel motion that flow at the small size
    would lose). Output: float32 (C, length - 1, size, size), C = 2 (flow) + 3 (diff).
    """

    length: int = 11
    size: int = 128
    flow: str = "farneback"
    channels: tuple[str, ...] = ("flow", "diff")
    interpolation: str = "resample"
    magnification: float = 0.0
    compute_size: int | None = None

    def __post_init__(self):
        bad = [c for c in self.channels if c not in ("flow", "diff")]
        if bad or not self.channels:
            raise MerBenchError(f"unknown sequence channels {bad}; choose from flow, diff")
        if self.interpolation not in ("resample", "flow-synthesis"):
            raise MerBenchError(f"unknown interpolation {self.interpolation!r}; choose from "
                                f"resample, flow-synthesis")
        if self.flow not in FLOW_METHODS:
            raise MerBenchError(f"unknown flow method {self.flow!r}; choose from {FLOW_METHODS}")

    @property
    def n_channels(self) -> int:
        return sum(CHANNELS[c] for c in self.channels)

    def compute(self, dataset: Dataset, row: pd.Series) -> np.ndarray:
        onset, apex = int(row["onset"]), key_frame(row)
        size = self.compute_size or self.size
        if self.interpolation == "resample":
            frames = resample_frames(dataset.frames(row["sample_id"], np.arange(onset, apex + 1),
                                                    size), self.length)
        else:
            pair = dataset.frames(row["sample_id"], np.array([onset, apex]), size)
            frames = synthesize_frames(pair[0], pair[1], self.length, self.flow)
        if self.magnification:
            frames = magnify_frames(frames, self.magnification, self.flow)
        out = sequence_channels(frames, self.channels, self.flow)
        return out if size == self.size else resize_channels(out, self.size, self.channels)


def resize_channels(x: np.ndarray, size: int, channels: tuple[str, ...]) -> np.ndarray:
    """Area-resize (C, T, H, W) maps to (C, T, size, size); flow channels are rescaled
    to pixels at the new size."""
    c, t, h, _ = x.shape
    planes = [cv2.resize(plane, (size, size), interpolation=cv2.INTER_AREA)
              for plane in x.reshape(c * t, h, h)]
    out = np.stack(planes).reshape(c, t, size, size)
    if "flow" in channels:
        out[:2] *= size / h
    return out
