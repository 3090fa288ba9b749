"""``flow-svm``: onset -> apex optical flow pooled on a grid, standardized, linear SVM.

Features (``FlowGrid``, cached pooled): Farneback flow (dx, dy) between the onset and
apex frames (middle frame where the apex is missing), averaged over ``grid`` x ``grid``
cells, plus the mean flow magnitude per cell: 3 * grid^2 numbers per clip. A
``StandardScaler`` and a class-balanced ``LinearSVC`` follow. Scores are the SVM decision
values. It never touches torch (``uses_torch = False``): it runs on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from mer_bench.features import FlowGrid
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


@register_method("flow-svm")
class FlowSVM(Method):
    Config = FlowSVMConfig
    uses_torch = False

    @property
    def inputs(self):
        return FlowGrid(size=self.config.size, flow=self.config.flow, grid=self.config.grid)

    def fit(self, train, ctx):
        self.n_classes = train.n_classes
        self.model = make_pipeline(
            StandardScaler(),
            LinearSVC(C=self.config.C, class_weight="balanced", max_iter=20000,
                      random_state=ctx.seed))
        self.model.fit(train.x, train.labels)

    def predict(self, test, support=None):
        decision = self.model.decision_function(test.x)
        scores = np.full((len(test), self.n_classes), -np.inf)
        known = self.model.classes_
        if decision.ndim == 1:  # two classes seen in training
            decision = np.stack([-decision, decision], axis=1)
        scores[:, known] = decision
        return Prediction(restrict_to_support(scores, support), scores)

    def parameter_count(self) -> int:
        svm = self.model[-1]
        return int(svm.coef_.size + svm.intercept_.size)
