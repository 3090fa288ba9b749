"""``lbp-top``: the MEGC2019 hand-crafted baseline — LBP-TOP + linear SVM.

Follows the baseline as the MEGC2019 challenge and the CASME II / SMIC / SAMM baseline
papers describe it (Zhao & Pietikäinen 2007; Yan et al. 2014): the onset -> offset
stretch of each clip normalized to a fixed number of frames, uniform LBP codes (8
neighbours, 59 patterns) on the XY, XT and YT planes, one histogram per plane and per
block of a 5 x 5 face grid (``LBPTopDescriptor``, 5·5·3·59 = 4,425 numbers per clip), a
linear SVM (``mer_bench.nn.svm``, plain: no class reweighting, as published).

Choices and deviations, stated:
- radius 1 in space and in time (the CASME II baseline also tried time radii up to 4,
  which need more frames than a normalized clip holds); the clip is resampled to
  ``length`` = 10 frames by linear interpolation between real frames, in place of the
  temporal interpolation model (TIM) the SMIC baseline used;
- descriptors standardized per dimension before the SVM (LinearSVC converges; the
  published baselines do not say);
- C = 1 was not tuned: no recipe choice was made on any reported fold.
The published numbers (MEGC2019 composite) are in ``mer_bench.report.reported``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mer_bench.features import LBPTopDescriptor
from mer_bench.method import MethodConfig, register_method
from mer_bench.nn.svm import LinearSVMMethod


@dataclass(frozen=True)
class LBPTopConfig(MethodConfig):
    size: int = 128
    length: int = 10
    grid: int = 5
    C: float = 1.0
    PRESETS = {"fast": {"size": 64}, "smoke": {"size": 32, "length": 5, "grid": 2}}
    RANGES = {"size": (8, None), "length": (3, None), "grid": (1, None), "C": (1e-12, None)}


@register_method("lbp-top")
class LBPTop(LinearSVMMethod):
    Config = LBPTopConfig
    class_weight = None

    @property
    def inputs(self):
        return LBPTopDescriptor(size=self.config.size, length=self.config.length,
                                grid=self.config.grid)
