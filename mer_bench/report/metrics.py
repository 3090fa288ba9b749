"""Classification metrics (MEGC2019 pooling) and the statistics for their intervals.

Conventions (cross-checked against scikit-learn in tests):
- Confusion matrices are always C x C over the scheme's classes, rows = true class, so a
  class absent from a fold is never skipped; pooled metrics sum TP/FP/FN over all folds
  (never an average of per-fold F1).
- F1_c = 2TP / (2TP + FP + FN); UF1 = mean F1_c over the classes that occur in y_true or
  y_pred (scikit-learn's ``f1_score(average="macro")``). With every class present, as in
  every pooled LOSO result, that is the plain MEGC2019 mean over all classes.
- UAR = mean per-class recall over the classes that occur in y_true (scikit-learn's
  ``balanced_accuracy_score``).
- Intervals of the headline metrics resample subjects, not clips:
  ``mer_bench.report.intervals`` (studentized cluster bootstrap).
- Repeats and seeds get mean +- t-interval: t_{(1+level)/2, n-1} * sd / sqrt(n).
"""

from __future__ import annotations

import numpy as np

HEADLINE = ("accuracy", "uf1", "uar")


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """int64 (C, C) counts, rows = true class, columns = predicted class."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes ** 2).reshape(
        n_classes, n_classes)


def headline_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """accuracy, uf1, uar for one (C, C) or a stack (B, C, C) of confusion matrices."""
    cm = np.asarray(cm, np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support, predicted = cm.sum(-1), cm.sum(-2)
    fp, fn = predicted - tp, support - tp
    denom = 2 * tp + fp + fn
    occurs = denom > 0
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=occurs)
    has_support = support > 0
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=has_support)
    total = cm.sum((-2, -1))
    return {
        "accuracy": np.divide(tp.sum(-1), total, out=np.zeros_like(total), where=total > 0),
        "uf1": (f1 * occurs).sum(-1) / np.maximum(occurs.sum(-1), 1),
        "uar": (recall * has_support).sum(-1) / np.maximum(has_support.sum(-1), 1),
    }


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray,
                           classes: tuple[str, ...]) -> dict:
    """accuracy, uf1, uar, per-class f1/recall/support and the confusion matrix."""
    cm = confusion(y_true, y_pred, len(classes))
    head = {k: float(v) for k, v in headline_from_confusion(cm).items()}
    tp, support, predicted = np.diag(cm), cm.sum(1), cm.sum(0)
    per_class = {}
    for c, name in enumerate(classes):
        denom = 2 * tp[c] + (predicted[c] - tp[c]) + (support[c] - tp[c])
        per_class[name] = {
            "f1": float(2 * tp[c] / denom) if denom else None,
            "recall": float(tp[c] / support[c]) if support[c] else None,
            "support": int(support[c]),
        }
    return {**head, "per_class": per_class, "confusion": cm.tolist()}


def per_cluster_confusions(y_true: np.ndarray, y_pred: np.ndarray, clusters: np.ndarray,
                           n_classes: int, n_clusters: int) -> np.ndarray:
    """int64 (n_clusters, C, C): one confusion matrix per cluster index 0..n_clusters-1."""
    flat = (np.asarray(clusters, np.int64) * n_classes + np.asarray(y_true, np.int64)) \
        * n_classes + np.asarray(y_pred, np.int64)
    return np.bincount(flat, minlength=n_clusters * n_classes ** 2).reshape(
        n_clusters, n_classes, n_classes)


def t_interval(values: np.ndarray, level: float = 0.95) -> dict:
    """mean, sd (ddof=1), n and the t-interval [lo, hi] of ``values``; with n < 2 the
    interval is [mean, mean] and sd is 0 (nothing to estimate spread from)."""
    values = np.asarray(values, np.float64)
    n, mean = len(values), float(np.mean(values))
    if n < 2:
        return {"mean": mean, "sd": 0.0, "n": n, "ci": [mean, mean]}
    sd = float(np.std(values, ddof=1))
    from scipy import stats  # imported here: scipy.stats costs ~1.5 s, needed only here
    half = float(stats.t.ppf((1 + level) / 2, n - 1) * sd / np.sqrt(n))
    return {"mean": mean, "sd": sd, "n": n, "ci": [mean - half, mean + half]}
