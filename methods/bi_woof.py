"""``bi-woof``: Bi-Weighted Oriented Optical Flow + linear SVM (Liong, See, Wong & Phan,
"Less is more: micro-expression recognition from video using apex frame", Signal
Processing: Image Communication 2018), a MEGC2019 reference baseline.

Follows the paper's mechanism: optical flow between the onset and the apex frame only
(the middle frame where the apex is not annotated: SMIC), orientation histograms per
block of the face, each pixel weighted by its flow magnitude (local weight), each
block's histogram weighted by the block's mean optical strain (global weight), the
blocks' histograms concatenated and L2-normalized per clip as the authors' ``biwoof.m``
does (``BiWOOFDescriptor``; ``descriptors.bi_woof``), and a linear SVM (``mer_bench.nn.svm``, no class reweighting, as published).

Choices and deviations, stated:
- the paper finds the apex with its D&C-RoI spotter where it is not annotated; here the
  annotated apex is used, or the middle frame (the harness's rule for SMIC);
- 5 x 5 blocks and 8 orientation bins; TV-L1 flow at 128 px (``fast``: the 25x faster
  TV-L1 setting, a recorded recipe departure); histograms normalized to sum 1 before the
  strain weight;
- C = 1 was not tuned: no recipe choice was made on any reported fold.
"""

from __future__ import annotations

from dataclasses import dataclass

from mer_bench.features import BiWOOFDescriptor
from mer_bench.method import MethodConfig, register_method
from mer_bench.nn.svm import LinearSVMMethod


@dataclass(frozen=True)
class BiWOOFConfig(MethodConfig):
    size: int = 128
    flow: str = "tvl1"
    grid: int = 5
    bins: int = 8
    C: float = 1.0
    PRESETS = {"fast": {"flow": "tvl1-fast"}, "smoke": {"size": 32, "grid": 2, "flow": "farneback"}}
    RANGES = {"size": (8, None), "grid": (1, None), "bins": (2, None), "C": (1e-12, None)}


@register_method("bi-woof")
class BiWOOF(LinearSVMMethod):
    Config = BiWOOFConfig
    class_weight = None

    @property
    def inputs(self):
        return BiWOOFDescriptor(size=self.config.size, flow=self.config.flow,
                                grid=self.config.grid, bins=self.config.bins)
