"""The one linear-SVM adapter body, shared by the descriptor baselines (flow-svm,
lbp-top, bi-woof): a subclass names its input (``inputs``, a flat descriptor per clip)
and its config (with ``C``); this class standardizes the descriptors, fits a linear SVM
and answers with its decision values. scikit-learn only: it never touches torch.

AU task: one standardized linear SVM per AU (0/1 target, same ``C`` and class
weighting), AU present where its decision value is > 0, as MEB's SVM baselines
(``MultiOutputClassifier``); an AU the training clips never (or always) show gets the
constant score -1 (+1)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from mer_bench.method import Method, Prediction, au_prediction, restrict_to_support


class LinearSVMMethod(Method):
    """``StandardScaler`` + ``LinearSVC(C=config.C)`` on ``SampleSet.x`` (n, d); scores
    are the SVM decision values (n, n_classes), −inf for classes absent from training.
    ``class_weight``: ``"balanced"`` reweights classes by inverse frequency; None is the
    plain SVM of the published baselines."""

    emits_scores = True
    tasks = ("emotion", "au")

    uses_torch = False
    class_weight: ClassVar[str | None] = "balanced"

    def _svm(self, seed: int):
        return make_pipeline(StandardScaler(), LinearSVC(
            C=self.config.C, class_weight=self.class_weight, max_iter=20000, random_state=seed))

    def fit(self, train, ctx):
        self.n_classes = train.n_classes
        x = train.x.reshape(len(train), -1)
        if train.task == "au":
            self.model = [self._svm(ctx.seed).fit(x, column) if 0 < column.sum() < len(column)
                          else 2.0 * column.max() - 1.0 for column in train.au_targets.T]
            return
        self.model = self._svm(ctx.seed).fit(x, train.labels)

    def predict(self, test, support=None):
        x = test.x.reshape(len(test), -1)
        if isinstance(self.model, list):
            return au_prediction(np.stack([
                np.full(len(test), m) if isinstance(m, float) else m.decision_function(x)
                for m in self.model], axis=1))
        decision = self.model.decision_function(x)
        scores = np.full((len(test), self.n_classes), -np.inf)
        if decision.ndim == 1:  # two classes seen in training
            decision = np.stack([-decision, decision], axis=1)
        scores[:, self.model.classes_] = decision
        return Prediction(restrict_to_support(scores, support), scores)

    def parameter_count(self) -> int:
        models = self.model if isinstance(self.model, list) else [self.model]
        return sum(int(m[-1].coef_.size + m[-1].intercept_.size) for m in models
                   if not isinstance(m, float))
