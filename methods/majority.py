"""``majority``: always the most frequent training class (the chance-level floor).

Under pooled LOSO its UAR is exactly 1 / n_classes whenever every fold's training
majority is the same class. With a support set it answers the most frequent training
class among the support's classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_bench.features import onset_apex
from mer_bench.method import (
    Method,
    MethodConfig,
    Prediction,
    register_method,
    restrict_to_support,
)


@dataclass(frozen=True)
class MajorityConfig(MethodConfig):
    size: int = 16  # the input it ignores is kept tiny


@register_method("majority")
class Majority(Method):
    Config = MajorityConfig
    emits_scores = True
    uses_torch = False

    @property
    def inputs(self):
        return onset_apex(size=self.config.size, channels=("diff",))

    def fit(self, train, ctx):
        self.frequency = np.bincount(train.labels, minlength=train.n_classes) / len(train)

    def predict(self, test, support=None):
        scores = np.tile(self.frequency, (len(test), 1))
        return Prediction(restrict_to_support(scores, support), scores)

    def parameter_count(self) -> int:
        return int(self.frequency.size)
