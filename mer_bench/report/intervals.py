"""Subject-cluster bootstrap-t intervals and tests for the headline metrics.

Every interval and p-value the leaderboard shows comes from here. The statistic is a
function of *subject weights*: subjects are the clusters (one person is one cluster
across seeds), a bootstrap draw gives each subject a multiplicity, and the headline
metric is recomputed from the weighted confusion counts (``WeightedMetric``).

Method: the **studentized (bootstrap-t) cluster bootstrap** (Efron & Tibshirani 1993,
ch. 12; for few clusters Cameron, Gelbach & Miller 2008). For the observed data and for
each of B draws, the standard error is the delete-one-subject jackknife of the same
statistic (inside a draw, deleting each drawn copy in turn); the interval is
``[θ̂ − q_hi·SE, θ̂ − q_lo·SE]`` with q the 2.5 % / 97.5 % quantiles of
``t* = (θ* − θ̂) / SE*``. It was chosen by ``benchmarks/interval_coverage.py``, which
simulates per-subject predictions shaped like casme2-5, smic-3, samm-5 and the
68-subject megc2019 composite: the percentile bootstrap covered 0.91–0.94 there (pooled
UF1 is a ratio, biased low and skewed with 16–27 subjects), BCa no better and the
jackknife with a t quantile 0.90–0.96 in exploratory runs, bootstrap-t 0.94–0.97 pooled
and 0.93–0.99 for few-shot means (the README holds the table). Its price is width where
few people are held out (6 held-out SMIC subjects: a few-shot interval about 0.7 wide).

The p-value of a difference comes from the same draws: ``2·min(P(t* ≥ t), P(t* ≤ t))``
with ``t = θ̂ / SE``, the test dual to the interval (p < 0.05 exactly when the interval
excludes 0). When no draw reaches ``t`` it is 0, to be read and printed as
``p < 1/B`` (``format_p``): B draws cannot resolve a smaller p.

Holdout's mean over repeats: the estimand is the expected per-repeat metric at the
protocol's test-set size, which the mean over repeats estimates without bias; a
bootstrap draw, though, repeats people inside a repeat (fewer distinct subjects per
test set), which lowers a small test set's UF1 by itself (about −0.02 on CASME II-like
repeats of 10 people) and skewed t* (2.5 % / 97.5 % quantiles −3.0 / +1.6 where the real
studentized error ran −1.8 / +1.7), so the interval sat above the truth (three seeds:
UF1 coverage 0.92, misses below 6 %). There t* is centred at its median (``centre``),
which removes that artefact and keeps the skew: coverage 0.95. Not for pooled
statistics (their small-sample bias is real, and bootstrap-t corrects it) nor for
few-shot episodes (class counts kept per episode): centring measured lower there
(0.93–0.97 against 0.93–0.99), so they are left as they were.

Seeds: with several seeds the standard error is the larger of the subject jackknife's
and the between-seed one (``sd over seeds / √S``): the spread over seeds holds training
randomness and which subjects a seed held out, which resampling subjects alone does not
see (a truncated method-of-moments estimate, as in random-effects meta-analysis).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_bench.errors import MerBenchError
from mer_bench.report.metrics import HEADLINE, headline_from_confusion, per_cluster_confusions

BOOTSTRAP_DRAWS = 2000
"""Bootstrap draws for every interval and paired test."""

INTERVAL_METHOD = ("studentized cluster bootstrap (bootstrap-t) over subjects, jackknife "
                   f"SE inside each draw, {BOOTSTRAP_DRAWS} draws, seed 0")
MIN_CLUSTERS = 5
"""Fewest subjects an interval or a paired test is computed from. Below it the
bootstrap-t does not keep its promise (``benchmarks/interval_coverage.py --only
few-subjects``, 300 replicates of casme2-5-like subjects): coverage of the "95 %"
interval 0.00 with 2 subjects (every draw has t* = 0), 0.77-0.86 with 3, 0.92-0.94
with 4, 0.94-0.95 with 5, 0.94-0.97 with 8. Below it no interval or p-value is given."""
TOO_FEW = f"too few subjects for an interval (fewer than {MIN_CLUSTERS})"


class TooFewClusters(MerBenchError):
    """An interval or test asked of fewer than ``MIN_CLUSTERS`` subjects."""

_CHUNK_CELLS = 4_000_000
"""Weighted confusion cells evaluated at once (memory bound of ``WeightedMetric``)."""


@dataclass(frozen=True)
class WeightedMetric:
    """Headline metrics as a function of subject weights.

    ``cells`` float (U, G, C, C): confusion counts per averaging unit (U = 1 for pooled
    protocols; repeats or episodes otherwise) and subject. For weights (R, G) the
    statistic is, per weight row, the mean over units of each unit's metrics on its
    weighted confusion ``Σ_g w_g · cells[u, g]``; units with no weighted count are left
    out of that row's mean. ``balanced`` (few-shot episodes): each unit's class rows are
    rescaled to their observed totals, so an episode keeps its per-class query counts
    whoever is drawn (accuracy stays equal to UAR in a balanced episode, and a predictor
    whose per-episode score does not depend on who is asked gets a zero-width interval);
    a class row whose every query subject has weight 0 keeps its observed counts (the
    statistic stays a smooth function of the weights: dropping such episodes instead
    made the bootstrap-t unstable)."""

    cells: np.ndarray
    balanced: bool = False

    @property
    def n_clusters(self) -> int:
        return self.cells.shape[1]

    def __call__(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """{metric: float (R,)} for weights (R, G)."""
        weights = np.asarray(weights, np.float64)
        n_units, n_clusters, n_classes, _ = self.cells.shape
        flat = self.cells.transpose(1, 0, 2, 3).reshape(n_clusters, -1)
        step = max(1, _CHUNK_CELLS // flat.shape[1])
        observed = self.cells.sum(1)[None] if self.balanced else None
        out = {k: np.empty(len(weights)) for k in HEADLINE}
        for start in range(0, len(weights), step):
            rows = slice(start, start + step)
            pooled = (weights[rows] @ flat).reshape(-1, n_units, n_classes, n_classes)
            for k, v in self._unit_mean(pooled, observed).items():
                out[k][rows] = v
        return out

    @staticmethod
    def _unit_mean(pooled: np.ndarray, observed: np.ndarray | None) -> dict[str, np.ndarray]:
        """Mean over the units with a count of (R, U, C, C) weighted counts; ``observed``
        (1, U, C, C): each unit's observed counts, whose class totals the weighted rows
        are rescaled to (balanced), else None."""
        if observed is not None:
            row_totals = pooled.sum(-1)
            scale = np.divide(observed.sum(-1), row_totals, out=np.zeros_like(row_totals),
                              where=row_totals > 0)
            pooled = np.where(row_totals[..., None] > 0, pooled * scale[..., None], observed)
        formed = pooled.sum((-2, -1)) > 0
        heads = headline_from_confusion(pooled)
        count = formed.sum(-1)
        return {k: np.divide((v * formed).sum(-1), count, out=np.full(len(v), np.nan),
                             where=count > 0) for k, v in heads.items()}


def unit_cells(y_true: np.ndarray, y_pred: np.ndarray, subjects: np.ndarray,
               units: np.ndarray | None, n_classes: int) -> np.ndarray:
    """float (U, G, C, C) confusion counts per averaging unit and subject (subjects and
    units in sorted order; ``units=None``: one unit, the pooled confusion)."""
    _, subject_index = np.unique(np.asarray(subjects).astype(str), return_inverse=True)
    n_subjects = int(subject_index.max()) + 1
    if units is None:
        unit_index, n_units = np.zeros(len(subject_index), np.int64), 1
    else:
        _, unit_index = np.unique(np.asarray(units).astype(str), return_inverse=True)
        n_units = int(unit_index.max()) + 1
    counts = per_cluster_confusions(y_true, y_pred, unit_index * n_subjects + subject_index,
                                    n_classes, n_units * n_subjects)
    return counts.reshape(n_units, n_subjects, n_classes, n_classes).astype(np.float64)


def draw_weights(n_clusters: int, n_boot: int, seed: int) -> np.ndarray:
    """float (B, G): each subject's multiplicity in each of ``n_boot`` draws of
    ``n_clusters`` subjects with replacement."""
    draws = np.random.default_rng(seed).integers(0, n_clusters, size=(n_boot, n_clusters))
    offsets = np.arange(n_boot)[:, None] * n_clusters
    return np.bincount((draws + offsets).ravel(), minlength=n_boot * n_clusters).reshape(
        n_boot, n_clusters).astype(np.float64)


JACKKNIFE_CELLS = 10_000_000
"""About how many deleted-set weights (draws x subjects x subjects) ``jackknife_se``
builds at once (80 MB): 2,000 draws of up to 70 subjects in one piece."""


def jackknife_se(statistic, weights: np.ndarray) -> dict[str, np.ndarray]:
    """{metric: (R,)} delete-one-subject jackknife standard errors of ``statistic`` at
    each weight row (R, G): every drawn copy of a subject is deleted in turn (the
    jackknife of the resampled data set), ``SE² = (n−1)/n · Σ (θ₍ᵢ₎ − θ̄₍·₎)²`` over the n
    drawn copies. Deletions that leave the statistic undefined are skipped. Weight rows
    are taken about ``JACKKNIFE_CELLS`` deleted weights at a time (the deleted weight
    matrix of 2,000 draws of 300 subjects would take about a gigabyte at once)."""
    weights = np.asarray(weights, np.float64)
    step = max(1, JACKKNIFE_CELLS // max(1, weights.shape[1]) ** 2)
    if len(weights) > step:
        parts = [jackknife_se(statistic, weights[i:i + step]) for i in range(0, len(weights), step)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    rows, clusters = np.nonzero(weights > 0)
    deleted = weights[rows].copy()
    deleted[np.arange(len(rows)), clusters] -= 1
    values = statistic(deleted)
    multiplicity = weights[rows, clusters]
    out = {}
    for k, v in values.items():
        ok = np.isfinite(v)
        m = np.where(ok, multiplicity, 0.0)
        n = np.bincount(rows, m, len(weights))
        mean = np.bincount(rows, m * np.nan_to_num(v), len(weights)) / np.maximum(n, 1)
        sq = np.bincount(rows, m * (np.nan_to_num(v) - mean[rows]) ** 2, len(weights))
        out[k] = np.sqrt(np.divide(n - 1, n, out=np.zeros_like(n), where=n > 0) * sq)
    return out


@dataclass(frozen=True)
class Studentized:
    """Point estimate, standard error and the studentized draws ``t*`` of one metric."""

    estimate: float
    se: float
    t_draws: np.ndarray
    bounds: tuple[float, float] = (0.0, 1.0)
    """The statistic's range (a metric: [0, 1]; a difference: [−1, 1]); intervals are
    clipped to it."""

    def interval(self, level: float = 0.95) -> list[float]:
        """Equal-tailed bootstrap-t interval, clipped to ``bounds``; [θ̂, θ̂] when
        nothing varies."""
        if self.se == 0 or len(self.t_draws) == 0:
            return [self.estimate, self.estimate]
        alpha = (1 - level) / 2
        lo, hi = np.quantile(self.t_draws, [alpha, 1 - alpha])
        return [float(max(self.bounds[0], self.estimate - hi * self.se)),
                float(min(self.bounds[1], self.estimate - lo * self.se))]

    def p_value(self) -> float:
        """Two-sided p of θ = 0, dual to ``interval``; 0 means below 1/B."""
        if self.se == 0 or len(self.t_draws) == 0:
            return 1.0 if self.estimate == 0 else 0.0
        t = self.estimate / self.se
        upper, lower = np.mean(self.t_draws >= t), np.mean(self.t_draws <= t)
        return float(min(1.0, 2 * min(upper, lower)))


def studentize(statistic, n_boot: int = BOOTSTRAP_DRAWS, seed: int = 0,
               seed_se: dict[str, float] | None = None,
               bounds: tuple[float, float] = (0.0, 1.0),
               min_clusters: int = MIN_CLUSTERS,
               added_se: dict[str, float] | None = None,
               centre: bool = False) -> dict[str, Studentized]:
    """Bootstrap-t of ``statistic`` (weights (R, G) -> {metric: (R,)}) over its G
    subjects. ``seed_se``: between-seed standard errors; where larger than the
    jackknife's, they replace it (module docstring). ``added_se``: standard errors of a
    source of variation the subject draws hold fixed (holdout's choice of split), added
    in quadrature. ``bounds``: the statistic's range. ``centre``: t* centred at its
    median (means over units; module docstring).
    Raises ``TooFewClusters`` when G < ``min_clusters`` (lowered only by the coverage
    benchmark, to measure where the promise fails)."""
    n_clusters = statistic.n_clusters
    if n_clusters < min_clusters:
        raise TooFewClusters(f"{n_clusters} subject{'s' if n_clusters != 1 else ''}: "
                             f"{TOO_FEW}")
    ones = np.ones((1, n_clusters))
    estimate = {k: float(v[0]) for k, v in statistic(ones).items()}
    se = {k: float(v[0]) for k, v in jackknife_se(statistic, ones).items()}
    if seed_se:
        se = {k: max(v, seed_se.get(k, 0.0)) for k, v in se.items()}
    if added_se:
        se = {k: float(np.hypot(v, added_se.get(k, 0.0))) for k, v in se.items()}
    weights = draw_weights(n_clusters, n_boot, seed)
    draws, draw_se = statistic(weights), jackknife_se(statistic, weights)
    out = {}
    for k in estimate:
        ok = np.isfinite(draws[k]) & (draw_se[k] > 0)
        t = (draws[k][ok] - estimate[k]) / draw_se[k][ok]
        if centre and len(t):
            t = t - np.median(t)
        out[k] = Studentized(estimate[k], se[k] if n_clusters > 1 else 0.0, t, bounds)
    return out


def format_p(p: float, n_boot: int = BOOTSTRAP_DRAWS, prefix: bool = True) -> str:
    """``p=0.012``, or ``p<0.0005`` (1/B) where no bootstrap draw reached the statistic;
    without ``prefix``: ``0.012``, ``<0.0005`` (a table cell under a "p" header)."""
    text = f"<{1 / n_boot:.2g}" if p < 1 / n_boot else f"={p:.2g}"
    return "p" + text if prefix else text.removeprefix("=")


def headline_intervals(y_true: np.ndarray, y_pred: np.ndarray, subjects: np.ndarray,
                       seeds: np.ndarray, n_classes: int, units: np.ndarray | None = None,
                       balanced: bool = False, n_boot: int = BOOTSTRAP_DRAWS, seed: int = 0,
                       level: float = 0.95, added_se: dict[str, float] | None = None
                       ) -> dict[str, list[float] | None]:
    """{metric: [lo, hi]}: the bootstrap-t interval of the headline statistic over the
    predictions' subjects — pooled (``units=None``) or the mean over ``units`` (one label
    per prediction, unique across seeds), class-balanced for few-shot episodes; {metric:
    None} with fewer than ``MIN_CLUSTERS`` subjects (``interval_method`` says why)."""
    def statistic(keep: np.ndarray) -> WeightedMetric:
        cells = unit_cells(np.asarray(y_true)[keep], np.asarray(y_pred)[keep],
                           np.asarray(subjects)[keep],
                           None if units is None else np.asarray(units)[keep], n_classes)
        return WeightedMetric(cells, balanced)

    everything = np.ones(len(seeds), bool)
    try:
        intervals = studentize(statistic(everything), n_boot, seed,
                               between_seed_se(seeds, statistic), added_se=added_se,
                               centre=units is not None and not balanced)
    except TooFewClusters:
        return {k: None for k in HEADLINE}
    return {k: s.interval(level) for k, s in intervals.items()}


def interval_method(ci: dict, method: str = INTERVAL_METHOD) -> str:
    """``method``, or ``TOO_FEW`` when ``ci`` (``headline_intervals``) holds no interval."""
    return method if all(v is not None for v in ci.values()) else TOO_FEW


def interval_label(metrics: dict, key: str) -> str:
    """``0.483 [0.422, 0.538]``, or ``0.483 (too few subjects for an interval)``."""
    bounds = metrics["ci"].get(key)
    if bounds is None:
        return f"{metrics[key]:.3f} ({TOO_FEW.split(' (')[0]})"
    return f"{metrics[key]:.3f} [{bounds[0]:.3f}, {bounds[1]:.3f}]"


def between_seed_se(seeds: np.ndarray, statistic) -> dict[str, float] | None:
    """{metric: sd over seeds of the per-seed statistic / √S}; None with one seed.
    ``statistic(mask)`` builds the statistic of the predictions selected by ``mask``."""
    seeds = np.asarray(seeds)
    values = np.unique(seeds)
    if len(values) < 2:
        return None
    per_seed = []
    for value in values:
        part = statistic(seeds == value)
        per_seed.append(part(np.ones((1, part.n_clusters))))
    return {k: float(np.std([s[k][0] for s in per_seed], ddof=1) / np.sqrt(len(values)))
            for k in per_seed[0]}
