"""``flow-svm``: onset -> apex optical flow pooled on a grid, standardized, linear SVM.

Features: Farneback flow (dx, dy) between the onset and apex frames (middle frame where
the apex is missing), averaged over ``grid`` x ``grid`` cells, plus the mean flow
magnitude per cell: 3 * grid^2 numbers per clip. A ``StandardScaler`` and a
class-balanced ``LinearSVC`` follow. Scores are the SVM decision values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from mer_bench.features import onset_apex
from mer_bench.method import (
    Method,
    MethodConfig,
    Prediction,
    register_method,
    restrict_to_support,
)


@dataclass(frozen=True)
class FlowSVMConfig(MethodConfig):
    size: int = 112
    flow: str = "farneback"
    grid: int = 8
    C: float = 0.05
    PRESETS = {"fast": {"size": 64}, "smoke": {"size": 32, "grid": 4}}
    RANGES = {"size": (8, None), "grid": (1, None), "C": (1e-12, None)}


def grid_pool(flow: np.ndarray, grid: int) -> np.ndarray:
    """(n, 2, H, W) flow -> (n, 3 * grid^2): per cell mean dx, mean dy, mean |flow|."""
    n, _, h, w = flow.shape
    magnitude = np.sqrt((flow ** 2).sum(1, keepdims=True))
    stacked = np.concatenate([flow, magnitude], axis=1)
    cells = stacked[:, :, : h - h % grid, : w - w % grid].reshape(
        n, 3, grid, h // grid, grid, w // grid)
    return cells.mean((3, 5)).reshape(n, -1)


@register_method("flow-svm")
class FlowSVM(Method):
    Config = FlowSVMConfig

    @property
    def inputs(self):
        return onset_apex(size=self.config.size, flow=self.config.flow, channels=("flow",))

    def fit(self, train, ctx):
        self.n_classes = train.n_classes
        self.model = make_pipeline(
            StandardScaler(),
            LinearSVC(C=self.config.C, class_weight="balanced", max_iter=20000,
                      random_state=ctx.seed))
        self.model.fit(grid_pool(train.x, self.config.grid), train.labels)

    def predict(self, test, support=None):
        decision = self.model.decision_function(grid_pool(test.x, self.config.grid))
        scores = np.full((len(test), self.n_classes), -np.inf)
        known = self.model.classes_
        if decision.ndim == 1:  # two classes seen in training
            decision = np.stack([-decision, decision], axis=1)
        scores[:, known] = decision
        return Prediction(restrict_to_support(scores, support), scores)

    def parameter_count(self) -> int:
        svm = self.model[-1]
        return int(svm.coef_.size + svm.intercept_.size)
