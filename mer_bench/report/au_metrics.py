"""Metrics of the AU task (multi-label detection of action units), as MEB reports them.

A prediction record's ``y_true`` / ``y_pred`` are AU bit masks (bit k: AU
``classes[k]``). For each AU the detection is a binary decision per clip, counted as
true/false positives and negatives. Two F1 scores per AU:

- ``f1``: F1 of the positive class, 2 TP / (2 TP + FP + FN) — the usual AU-detection
  F1 and MEB's ``MultiLabelF1Score(average="binary")``;
- ``f1_meb``: the mean of the positive and the negative class's F1 — MEB's default
  ``MultiLabelF1Score(average="macro")``, the figure of its paper's CD6ME tables. It
  credits answering "absent" for a rare AU, so it sits far above ``f1`` (MEB's OF + SVM:
  65.1 against 34.9).

An F1 with no true and no predicted positive is 0 (scikit-learn's value, which MEB
reports). Headline: per held-out dataset, the mean over AUs (``per_dataset``), then the
mean over datasets (``au_f1``, ``au_f1_meb``); a single-dataset protocol (``au-loso``)
has one dataset, so its headline is the macro over AUs. ``per_au`` pools every held-out
clip (MEB's per-AU row). Intervals: the studentized subject bootstrap of
``mer_bench.report.intervals`` applied to ``AUWeightedMetric`` (one person is one
cluster across seeds and AUs), its coverage measured by ``benchmarks/
interval_coverage.py --only au``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mer_bench.data.facs import mask_matrix
from mer_bench.report.intervals import (
    INTERVAL_METHOD,
    TooFewClusters,
    between_seed_se,
    studentize,
)

AU_HEADLINE = ("au_f1", "au_f1_meb")
"""The AU task's headline metrics (module docstring)."""


def au_counts(y_true: np.ndarray, y_pred: np.ndarray, n_aus: int) -> np.ndarray:
    """int64 (n, A, 4) per clip and AU: [TP, FP, FN, TN] (0/1 each) of masks (n,)."""
    truth = mask_matrix(y_true, n_aus).astype(bool)
    guess = mask_matrix(y_pred, n_aus).astype(bool)
    return np.stack([truth & guess, ~truth & guess, truth & ~guess, ~truth & ~guess],
                    axis=-1).astype(np.int64)


def f1_scores(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F1 of the positive class, MEB's two-class mean) of counts (..., 4) [TP, FP, FN, TN];
    0 where a class has no true and no predicted member."""
    tp, fp, fn, tn = (counts[..., k].astype(np.float64) for k in range(4))
    positive = _ratio(2 * tp, 2 * tp + fp + fn)
    negative = _ratio(2 * tn, 2 * tn + fn + fp)
    return positive, (positive + negative) / 2


def au_macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_aus: int) -> float:
    """Mean over AUs of the positive-class F1 of masks (n,), pooled over the clips."""
    return float(f1_scores(au_counts(y_true, y_pred, n_aus).sum(0))[0].mean())


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    return np.divide(top, bottom, out=np.zeros_like(top), where=bottom > 0)


@dataclass(frozen=True)
class AUWeightedMetric:
    """The AU headline as a function of subject weights (``intervals.studentize``).

    ``cells`` float (D, G, A, 4): [TP, FP, FN, TN] counts per dataset, subject and AU
    (a subject's clips all lie in one dataset). For weights (R, G): per dataset the
    weighted counts, F1 per AU, the mean over AUs, then the mean over the datasets
    with a weighted count (NaN if none)."""

    cells: np.ndarray

    @property
    def n_clusters(self) -> int:
        return self.cells.shape[1]

    def __call__(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        weights = np.asarray(weights, np.float64)
        n_data, n_clusters, n_aus, _ = self.cells.shape
        flat = self.cells.transpose(1, 0, 2, 3).reshape(n_clusters, -1)
        pooled = (weights @ flat).reshape(len(weights), n_data, n_aus, 4)
        return self.headline(pooled)

    @staticmethod
    def headline(pooled: np.ndarray) -> dict[str, np.ndarray]:
        """{metric: (R,)} of weighted counts (R, D, A, 4)."""
        present = pooled[..., 0, :].sum(-1) > 0
        count = present.sum(-1)
        out = {}
        n_rows = len(pooled)
        for key, values in zip(AU_HEADLINE, f1_scores(pooled)):
            per_data = values.mean(-1)
            out[key] = np.divide((per_data * present).sum(-1), count,
                                 out=np.full(n_rows, np.nan), where=count > 0)
        return out


def au_cells(predictions: pd.DataFrame, n_aus: int) -> np.ndarray:
    """float (D, G, A, 4) counts of ``predictions`` (columns dataset, subject, y_true,
    y_pred) per dataset and subject, both in sorted order."""
    _, data_index = np.unique(predictions["dataset"].astype(str).to_numpy(), return_inverse=True)
    _, subject_index = np.unique(predictions["subject"].astype(str).to_numpy(),
                                 return_inverse=True)
    counts = au_counts(predictions["y_true"].to_numpy(), predictions["y_pred"].to_numpy(), n_aus)
    cells = np.zeros((data_index.max() + 1, subject_index.max() + 1, n_aus, 4))
    np.add.at(cells, (data_index, subject_index), counts)
    return cells


def au_summary(predictions: pd.DataFrame, classes: tuple[str, ...]) -> dict:
    """The metrics block of an AU result: headline (``AU_HEADLINE``) with its subject
    bootstrap-t interval, ``per_dataset`` (macro over AUs per held-out dataset),
    ``per_au`` (pooled over every held-out clip: f1, f1_meb, positives, predicted) and
    their mean ``per_au_mean``, and ``per_seed`` with several seeds."""
    n_aus = len(classes)
    head = _statistic(predictions, n_aus)
    out = {k: float(v[0]) for k, v in head(np.ones((1, head.n_clusters))).items()}
    out["ci"], out["ci_method"] = au_intervals(predictions, n_aus)
    per_data = head.cells.sum(1)  # (D, A, 4), datasets in sorted order as au_cells
    sizes = predictions.groupby(predictions["dataset"].astype(str), sort=True).size()
    out["per_dataset"] = {}
    for (name, n), counts in zip(sizes.items(), per_data):
        f1, meb = f1_scores(counts)
        out["per_dataset"][name] = {"au_f1": float(f1.mean()), "au_f1_meb": float(meb.mean()),
                                    "n": int(n)}
    pooled = per_data.sum(0)  # (A, 4)
    f1, meb = f1_scores(pooled)
    out["per_au"] = {c: {"f1": float(f1[k]), "f1_meb": float(meb[k]),
                         "positives": int(pooled[k, 0] + pooled[k, 2]),
                         "predicted": int(pooled[k, 0] + pooled[k, 1])}
                     for k, c in enumerate(classes)}
    out["per_au_mean"] = {"f1": float(f1.mean()), "f1_meb": float(meb.mean())}
    if predictions["seed"].nunique() > 1:
        out["per_seed"] = {str(s): {k: float(v[0]) for k, v in _statistic(p, n_aus)(
            np.ones((1, p["subject"].nunique()))).items()}
            for s, p in predictions.groupby("seed", sort=True)}
    return out


def _statistic(predictions: pd.DataFrame, n_aus: int) -> AUWeightedMetric:
    return AUWeightedMetric(au_cells(predictions, n_aus))


def au_intervals(predictions: pd.DataFrame, n_aus: int, level: float = 0.95
                 ) -> tuple[dict[str, list[float] | None], str]:
    """({metric: [lo, hi] or None}, how): the bootstrap-t interval of the AU headline
    over the predictions' subjects, the between-seed spread included as for emotions."""
    seeds = predictions["seed"].to_numpy()
    try:
        draws = studentize(_statistic(predictions, n_aus), seed_se=between_seed_se(
            seeds, lambda keep: _statistic(predictions[keep], n_aus)))
    except TooFewClusters as err:
        return {k: None for k in AU_HEADLINE}, str(err).split(": ", 1)[-1]
    return {k: draws[k].interval(level) for k in AU_HEADLINE}, INTERVAL_METHOD
