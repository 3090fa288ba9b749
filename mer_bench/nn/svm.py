"""The one linear-SVM adapter body, shared by the descriptor baselines (flow-svm,
lbp-top, bi-woof): a subclass names its input (``inputs``, a flat descriptor per clip)
and its config (with ``C``); this class standardizes the descriptors, fits a linear SVM
and answers with its decision values. scikit-learn only: it never touches torch."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from mer_bench.method import Method, Prediction, restrict_to_support


class LinearSVMMethod(Method):
    """``StandardScaler`` + ``LinearSVC(C=config.C)`` on ``SampleSet.x`` (n, d); scores
    are the SVM decision values (n, n_classes), −inf for classes absent from training.
    ``class_weight``: ``"balanced"`` reweights classes by inverse frequency; None is the
    plain SVM of the published baselines."""

    emits_scores = True

    uses_torch = False
    class_weight: ClassVar[str | None] = "balanced"

    def fit(self, train, ctx):
        self.n_classes = train.n_classes
        self.model = make_pipeline(
            StandardScaler(),
            LinearSVC(C=self.config.C, class_weight=self.class_weight, max_iter=20000,
                      random_state=ctx.seed))
        self.model.fit(train.x.reshape(len(train), -1), train.labels)

    def predict(self, test, support=None):
        decision = self.model.decision_function(test.x.reshape(len(test), -1))
        scores = np.full((len(test), self.n_classes), -np.inf)
        if decision.ndim == 1:  # two classes seen in training
            decision = np.stack([-decision, decision], axis=1)
        scores[:, self.model.classes_] = decision
        return Prediction(restrict_to_support(scores, support), scores)

    def parameter_count(self) -> int:
        svm = self.model[-1]
        return int(svm.coef_.size + svm.intercept_.size)
