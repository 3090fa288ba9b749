"""``majority``: always the most frequent training class (the chance-level floor).

Under pooled LOSO its UAR is exactly 1 / n_classes whenever every fold's training
majority is the same class. With a support set it answers the most frequent training
class among the support's classes.

AU task: MEB's constant baseline, every AU present for every clip (each AU's F1 is then
2p / (1 + p) at its prevalence p; answering each AU's majority, absent, would score F1 0
everywhere and say nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_bench.features import onset_apex
from mer_bench.method import (
    Method,
    MethodConfig,
    Prediction,
    au_prediction,
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
    tasks = ("emotion", "au")

    @property
    def inputs(self):
        return onset_apex(size=self.config.size, channels=("diff",))

    def fit(self, train, ctx):
        if train.task == "au":
            self.frequency = None
            self.n_aus = train.n_classes
            return
        self.frequency = np.bincount(train.labels, minlength=train.n_classes) / len(train)

    def predict(self, test, support=None):
        if self.frequency is None:
            return au_prediction(np.ones((len(test), self.n_aus)))
        scores = np.tile(self.frequency, (len(test), 1))
        return Prediction(restrict_to_support(scores, support), scores)

    def parameter_count(self) -> int:
        return 0 if self.frequency is None else int(self.frequency.size)
