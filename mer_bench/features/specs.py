"""Feature specs: pure, hashable descriptions of what to compute for one clip.

The runner materializes a spec for every sample through the cache
(``mer_bench.features.cache``); the computation is done by the shared operators of
``mer_bench.features.operators``. Frames arrive as the face region from the dataset at
the spec's size; key frames are onset and apex (the middle frame where the apex is
missing).

Units: flow is in pixels at the spec's ``size`` (channel 0 = dx, 1 = dy); image channels
are RGB scaled to [0, 1]; frame difference is apex - onset on that scale.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from mer_bench.data.registry import Dataset
from mer_bench.data.samples import key_frame
from mer_bench.errors import MerBenchError
from mer_bench.features.operators import (
    CHANNELS,
    FLOW_METHODS,
    as_channels,
    frame_difference,
    grid_pool,
    magnify_frames,
    needed_frames,
    optical_flow,
    optical_strain,
    resample_frames,
    resize_channels,
    sequence_channels,
    synthesize_frames,
    to_gray,
)


@dataclass(frozen=True)
class FeatureSpec(ABC):
    """Base of all specs: hashable, JSON-describable, computes one clip's array."""

    def to_json(self) -> dict:
        return {"kind": type(self).__name__, **asdict(self)}

    @property
    def key(self) -> str:
        """Stable hash of the spec's description."""
        text = json.dumps(self.to_json(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @abstractmethod
    def compute(self, dataset: Dataset, row: pd.Series) -> np.ndarray:
        """One clip's float32 array."""

    @property
    def shape(self) -> tuple[int, ...] | None:
        """One clip's array shape, checked on every cache read (None: not declared)."""
        return None

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

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n_channels, self.size, self.size)

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


@dataclass(frozen=True)
class FlowGrid(FeatureSpec):
    """Onset -> apex optical flow at ``size`` summarized on a ``grid`` x ``grid``
    partition (``operators.grid_pool``): per cell mean dx, mean dy and mean |flow|.
    Cached pooled, so a classifier on it recomputes nothing per fold or per call.

    Output: float32 (3 * grid^2,), pixels at ``size``.
    """

    size: int = 112
    flow: str = "farneback"
    grid: int = 8

    def __post_init__(self):
        if self.grid < 1 or self.grid > self.size:
            raise MerBenchError(f"grid {self.grid} must be between 1 and the size {self.size}")
        OnsetApex(self.size, self.flow)  # checks the flow method

    @property
    def shape(self) -> tuple[int, ...]:
        return (3 * self.grid ** 2,)

    def compute(self, dataset: Dataset, row: pd.Series) -> np.ndarray:
        return grid_pool(OnsetApex(self.size, self.flow).compute(dataset, row), self.grid)


MAP_CHANNELS = ("u", "v", "strain")
"""Maps of the onset -> apex flow: horizontal and vertical flow (px) and optical strain."""


@dataclass(frozen=True)
class FlowStrainMaps(FeatureSpec):
    """Onset -> apex optical flow estimated at ``compute_size`` (where the face's motion
    is still a few pixels), then the maps ``channels`` — ``u``, ``v`` (flow rescaled to
    pixels at ``size``) and ``strain`` (``operators.optical_strain`` of the full-size
    flow) — area-resized to ``size`` x ``size``: the 28 x 28 inputs of OFF-ApexNet
    (u, v) and STSTNet (u, v, strain). Output: float32 (len(channels), size, size)."""

    size: int = 28
    compute_size: int = 128
    flow: str = "tvl1"
    channels: tuple[str, ...] = MAP_CHANNELS

    def __post_init__(self):
        bad = [c for c in self.channels if c not in MAP_CHANNELS]
        if bad or not self.channels:
            raise MerBenchError(f"unknown map channels {bad}; choose from {list(MAP_CHANNELS)}")
        OnsetApex(self.compute_size, self.flow)  # checks the flow method

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.channels), self.size, self.size)

    def compute(self, dataset: Dataset, row: pd.Series) -> np.ndarray:
        flow = OnsetApex(self.compute_size, self.flow).compute(dataset, row)
        maps = {"u": lambda: flow[0], "v": lambda: flow[1], "strain": lambda: optical_strain(flow)}
        stacked = np.stack([maps[c]() for c in self.channels])[:, None]   # (C, 1, H, W)
        out = resize_channels(stacked, self.size, ())[:, 0]
        for i, c in enumerate(self.channels):
            if c in ("u", "v"):  # flow in pixels at the new size
                out[i] *= self.size / self.compute_size
        return out


@dataclass(frozen=True)
class BiWOOFDescriptor(FeatureSpec):
    """Bi-WOOF of a clip (``descriptors.bi_woof``): onset -> apex flow at ``size``,
    orientation histograms of ``bins`` sectors in a ``grid`` x ``grid`` block partition,
    locally weighted by flow magnitude and globally by each block's mean optical strain.
    Output: float32 (grid² · bins,)."""

    size: int = 128
    flow: str = "tvl1"
    grid: int = 5
    bins: int = 8

    def __post_init__(self):
        if not 1 <= self.grid <= self.size or self.bins < 2:
            raise MerBenchError(f"Bi-WOOF needs 1 <= grid <= size and bins >= 2; got grid "
                                f"{self.grid}, bins {self.bins}")
        OnsetApex(self.size, self.flow)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.grid ** 2 * self.bins,)

    def compute(self, dataset: Dataset, row: pd.Series) -> np.ndarray:
        from mer_bench.features.descriptors import bi_woof
        return bi_woof(OnsetApex(self.size, self.flow).compute(dataset, row), self.grid, self.bins)


@dataclass(frozen=True)
class LBPTopDescriptor(FeatureSpec):
    """LBP-TOP of a clip (``descriptors.lbp_top``): the onset -> offset stretch resampled
    to ``length`` gray frames at ``size`` (a temporal interpolation to a fixed length, as
    the baselines' TIM does), uniform LBP on XY, XT and YT planes, histograms per block
    of a ``grid`` x ``grid`` partition. Output: float32 (grid² · 3 · 59,)."""

    size: int = 64
    length: int = 10
    grid: int = 5

    def __post_init__(self):
        if self.length < 3 or not 1 <= self.grid <= self.size:
            raise MerBenchError(f"LBP-TOP needs length >= 3 and 1 <= grid <= size; got length "
                                f"{self.length}, grid {self.grid}")

    @property
    def shape(self) -> tuple[int, ...]:
        from mer_bench.features.descriptors import LBP_BINS
        return (self.grid ** 2 * 3 * LBP_BINS,)

    def compute(self, dataset: Dataset, row: pd.Series) -> np.ndarray:
        from mer_bench.features.descriptors import lbp_top
        frames = onset_apex_frames(dataset, row, self.length, self.size, "resample", "farneback",
                                   span="offset")
        return lbp_top(np.stack([to_gray(f) for f in frames]), self.grid).ravel()


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
    would lose). ``span="offset"`` normalizes the whole clip, onset -> offset, instead.
    Output: float32 (C, length - 1, size, size), C = 2 (flow) + 3 (diff).
    """

    length: int = 11
    size: int = 128
    flow: str = "farneback"
    channels: tuple[str, ...] = ("flow", "diff")
    interpolation: str = "resample"
    magnification: float = 0.0
    compute_size: int | None = None
    span: str = "apex"

    def __post_init__(self):
        bad = [c for c in self.channels if c not in ("flow", "diff")]
        if bad or not self.channels:
            raise MerBenchError(f"unknown sequence channels {bad}; choose from flow, diff")
        check_sequence_options(self.interpolation, self.span)
        if self.flow not in FLOW_METHODS:
            raise MerBenchError(f"unknown flow method {self.flow!r}; choose from {FLOW_METHODS}")

    @property
    def n_channels(self) -> int:
        return sum(CHANNELS[c] for c in self.channels)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n_channels, self.length - 1, self.size, self.size)

    def compute(self, dataset: Dataset, row: pd.Series) -> np.ndarray:
        size = self.compute_size or self.size
        frames = onset_apex_frames(dataset, row, self.length, size, self.interpolation, self.flow,
                                   self.span)
        if self.magnification:
            frames = magnify_frames(frames, self.magnification, self.flow)
        out = sequence_channels(frames, self.channels, self.flow)
        return out if size == self.size else resize_channels(out, self.size, self.channels)


SPANS = ("apex", "offset")
"""How far a frame sequence runs from the onset: to the apex, or through the whole clip
to the offset."""


def onset_apex_frames(dataset: Dataset, row: pd.Series, length: int, size: int,
                      interpolation: str, flow: str, span: str = "apex") -> np.ndarray:
    """The onset -> apex stretch of a clip (onset -> offset with ``span="offset"``) as
    ``length`` uint8 (H, W, 3) frames: ``resample`` takes the real frames at evenly
    spaced positions (interpolating between neighbours where fewer exist),
    ``flow-synthesis`` warps the onset along the flow to the last frame. The apex is the
    middle frame where it is not annotated. Only the frames the resampling reads are
    asked of the dataset (at most ``2 * length``, whatever the clip's length)."""
    onset = int(row["onset"])
    end = key_frame(row) if span == "apex" else int(row["offset"])
    if interpolation == "resample":
        n = end - onset + 1
        read = dataset.frames(row["sample_id"], onset + needed_frames(n, length), size)
        return resample_frames(read, length, n)
    pair = dataset.frames(row["sample_id"], np.array([onset, end]), size)
    return synthesize_frames(pair[0], pair[1], length, flow)


def check_sequence_options(interpolation: str, span: str) -> None:
    """Refuse an unknown ``interpolation`` or ``span`` with the valid choices."""
    if interpolation not in ("resample", "flow-synthesis"):
        raise MerBenchError(f"unknown interpolation {interpolation!r}; choose from "
                            f"resample, flow-synthesis")
    if span not in SPANS:
        raise MerBenchError(f"unknown span {span!r}; choose from {', '.join(SPANS)}")


@dataclass(frozen=True)
class FrameSequence(FeatureSpec):
    """The onset -> apex stretch as ``length`` RGB frames (LightmanNet's M-frame input),
    taken as in ``OnsetApexSequence`` (``onset_apex_frames``; ``span="offset"``: the whole
    clip). Output: float32
    (3, length, size, size), RGB in [0, 1]."""

    length: int = 8
    size: int = 84
    interpolation: str = "resample"
    flow: str = "farneback"
    span: str = "apex"

    def __post_init__(self):
        check_sequence_options(self.interpolation, self.span)
        if self.length < 2:
            raise MerBenchError(f"a frame sequence needs length >= 2; got {self.length}")

    @property
    def shape(self) -> tuple[int, ...]:
        return (3, self.length, self.size, self.size)

    def compute(self, dataset: Dataset, row: pd.Series) -> np.ndarray:
        frames = onset_apex_frames(dataset, row, self.length, self.size, self.interpolation,
                                   self.flow, self.span)
        return np.ascontiguousarray((frames.astype(np.float32) / 255.0).transpose(3, 0, 1, 2))


@dataclass(frozen=True)
class FramePairs(FeatureSpec):
    """``pairs`` frame pairs (I_t, I_{t+delta}) of a clip for future-frame pre-training
    (MA2MI): t uniform over the clip, delta uniform in [min_delta, max_delta] (capped
    at what the clip allows, at least 1), both drawn from a generator seeded by the
    clip's id and ``seed``, so the pairs are the same in every run. Clips are read
    whole (frame 0 to n_frames - 1), not only the annotated stretch.
    Output: float32 (pairs, 2, 3, size, size), RGB in [0, 1]."""

    size: int = 64
    pairs: int = 4
    min_delta: int = 3
    max_delta: int = 8
    seed: int = 0

    def __post_init__(self):
        if not 1 <= self.min_delta <= self.max_delta:
            raise MerBenchError(f"frame pairs need 1 <= min_delta <= max_delta; got "
                                f"[{self.min_delta}, {self.max_delta}]")

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.pairs, 2, 3, self.size, self.size)

    def positions(self, sample_id: str, n_frames: int) -> np.ndarray:
        """int (pairs, 2): the frame indices (t, t + delta) of every pair."""
        rng = np.random.default_rng(int(hashlib.sha256(f"{sample_id}:{self.seed}".encode())
                                        .hexdigest()[:12], 16))
        high = max(1, min(self.max_delta, n_frames - 1))
        delta = rng.integers(min(self.min_delta, high), high + 1, size=self.pairs)
        start = (rng.random(self.pairs) * (n_frames - delta)).astype(int)
        return np.stack([start, start + delta], axis=1)

    def compute(self, dataset: Dataset, row: pd.Series) -> np.ndarray:
        index = self.positions(row["sample_id"], int(row["n_frames"]))
        frames = dataset.frames(row["sample_id"], index.ravel(), self.size)
        out = frames.reshape(self.pairs, 2, self.size, self.size, 3).transpose(0, 1, 4, 2, 3)
        return np.ascontiguousarray(out.astype(np.float32) / 255.0)
