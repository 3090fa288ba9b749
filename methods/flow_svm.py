"""``flow-svm``: onset -> apex optical flow pooled on a grid, standardized, linear SVM.

Features (``FlowGrid``, cached pooled): Farneback flow (dx, dy) between the onset and
apex frames (middle frame where the apex is missing), averaged over ``grid`` x ``grid``
cells, plus the mean flow magnitude per cell: 3 * grid^2 numbers per clip. A
``StandardScaler`` and a class-balanced ``LinearSVC`` follow (``mer_bench.nn.svm``).
Scores are the SVM decision values. It never touches torch (``uses_torch = False``): it
runs on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from mer_bench.features import FlowGrid
from mer_bench.method import MethodConfig, register_method
from mer_bench.nn.svm import LinearSVMMethod


@dataclass(frozen=True)
class FlowSVMConfig(MethodConfig):
    size: int = 112
    flow: str = "farneback"
    grid: int = 8
    C: float = 0.05
    PRESETS = {"fast": {"size": 64}, "smoke": {"size": 32, "grid": 4}}
    RANGES = {"size": (8, None), "grid": (1, None), "C": (1e-12, None)}


@register_method("flow-svm")
class FlowSVM(LinearSVMMethod):
    Config = FlowSVMConfig

    @property
    def inputs(self):
        return FlowGrid(size=self.config.size, flow=self.config.flow, grid=self.config.grid)
