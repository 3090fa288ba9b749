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
- Bootstrap CIs resample subjects (clusters) with replacement, not clips: percentile
  interval of the pooled metric, seeded, 2,000 draws (endpoints moved by up to 0.01
  between bootstrap seeds at 1,000). Few-shot: the mean per-episode metric under
  subjects resampled within each seed (``episode_bootstrap_ci``).
- Repeats, seeds and episodes get mean +- t-interval: t_{(1+level)/2, n-1} * sd / sqrt(n).
"""

from __future__ import annotations

from statistics import NormalDist

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


def bootstrap_ci(y_true: np.ndarray, y_pred: np.ndarray, clusters: np.ndarray, n_classes: int,
                 n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict[str, list[float]]:
    """Percentile CI of accuracy/uf1/uar, resampling ``clusters`` (subjects) with
    replacement ``n_boot`` times; each draw pools the chosen subjects' confusion
    matrices. Returns {metric: [lo, hi]}."""
    _, cluster_index = np.unique(np.asarray(clusters), return_inverse=True)
    n_clusters = cluster_index.max() + 1
    per_cluster = per_cluster_confusions(y_true, y_pred, cluster_index, n_classes, n_clusters)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_clusters, size=(n_boot, n_clusters))
    pooled = np.einsum("bs,sij->bij", draw_counts(draws, n_clusters), per_cluster)
    values = headline_from_confusion(pooled)
    alpha = (1 - level) / 2
    return {k: [float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha))]
            for k, v in values.items()}


def draw_counts(draws: np.ndarray, n_clusters: int) -> np.ndarray:
    """int64 (B, n_clusters): how often each cluster index occurs in each row of ``draws``
    (B, k) — one ``bincount`` over all rows at once."""
    offsets = np.arange(len(draws))[:, None] * n_clusters
    return np.bincount((draws + offsets).ravel(), minlength=len(draws) * n_clusters
                       ).reshape(len(draws), n_clusters)


def per_cluster_confusions(y_true: np.ndarray, y_pred: np.ndarray, clusters: np.ndarray,
                           n_classes: int, n_clusters: int) -> np.ndarray:
    """int64 (n_clusters, C, C): one confusion matrix per cluster index 0..n_clusters-1."""
    flat = (np.asarray(clusters, np.int64) * n_classes + np.asarray(y_true, np.int64)) \
        * n_classes + np.asarray(y_pred, np.int64)
    return np.bincount(flat, minlength=n_clusters * n_classes ** 2).reshape(
        n_clusters, n_classes, n_classes)


def stratified_cluster_weights(strata: np.ndarray, n_boot: int, rng: np.random.Generator
                               ) -> np.ndarray:
    """float (n_boot, S): how often each of S clusters is drawn when, in every bootstrap
    draw, each stratum's clusters are resampled with replacement within that stratum
    (``strata``: (S,) the stratum of each cluster)."""
    strata = np.asarray(strata)
    weights = np.zeros((n_boot, len(strata)))
    rows = np.arange(n_boot)[:, None]
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        drawn = members[rng.integers(0, len(members), size=(n_boot, len(members)))]
        np.add.at(weights, (np.broadcast_to(rows, drawn.shape), drawn), 1)
    return weights


def episode_bootstrap_ci(y_true: np.ndarray, y_pred: np.ndarray, episodes: np.ndarray,
                         subjects: np.ndarray, strata: np.ndarray, n_classes: int,
                         n_boot: int = 2000, seed: int = 0, level: float = 0.95
                         ) -> dict[str, list[float]]:
    """95 % interval of the mean per-episode accuracy/uf1/uar when the held-out
    subjects are resampled: estimate +- z * bootstrap standard error.

    Each draw resamples the subjects with replacement within their stratum (the seed:
    each seed holds out its own subjects) and weights every query clip by its subject's
    multiplicity; each episode's metrics are computed on its weighted confusion matrix
    and averaged over episodes. This measures how the score varies with the people
    held out, which a t-interval over episodes drawn from one pool of subjects does not.
    The normal-approximation interval is used because percentile endpoints are biased
    here: dropping a subject changes an episode's class make-up, and UF1 on ~15 query
    clips is biased under that. ``episodes`` (unique per seed), ``subjects`` and
    ``strata`` label every prediction."""
    _, episode_index = np.unique(np.asarray(episodes), return_inverse=True)
    _, stratum_codes = np.unique(np.asarray(strata), return_inverse=True)
    _, subject_codes = np.unique(np.asarray(subjects), return_inverse=True)
    pairs, subject_index = np.unique(np.stack([stratum_codes, subject_codes], 1), axis=0,
                                     return_inverse=True)
    n_episodes, n_subjects = int(episode_index.max()) + 1, len(pairs)
    cells = per_cluster_confusions(y_true, y_pred, episode_index * n_subjects + subject_index.ravel(),
                                   n_classes, n_episodes * n_subjects)
    by_episode = cells.reshape(n_episodes, n_subjects, n_classes, n_classes).astype(np.float64)
    estimate = {k: float(v.mean()) for k, v in headline_from_confusion(by_episode.sum(1)).items()}
    weights = stratified_cluster_weights(pairs[:, 0], n_boot, np.random.default_rng(seed))
    values: dict[str, list[np.ndarray]] = {k: [] for k in HEADLINE}
    for chunk in np.array_split(np.arange(n_boot), max(1, n_boot // 250)):
        pooled = np.einsum("bs,esij->beij", weights[chunk], by_episode)
        for k, v in headline_from_confusion(pooled).items():
            values[k].append(v.mean(1))
    z = NormalDist().inv_cdf((1 + level) / 2)
    out = {}
    for k, v in values.items():
        half = z * float(np.std(np.concatenate(v), ddof=1))
        out[k] = [max(0.0, estimate[k] - half), min(1.0, estimate[k] + half)]
    return out


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
