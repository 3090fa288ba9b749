"""Is method A better than method B? Paired comparison of two result files.

Two results are comparable only when they share protocol (name, version, parameters),
dataset, label scheme (and class order), seeds and folds, and predicted exactly the
same test units (sample, seed, fold, episode); anything else is refused, naming the
difference. Then:

- ΔUF1, ΔUAR, Δaccuracy = A − B of the protocol's headline statistic: pooled over all
  folds (loso, kfold5, cde, lodo) or the mean over repeats/episodes (holdout, fewshot);
- a paired bootstrap over subjects (2,000 draws, resampled within seed): both methods
  see the same draw, so what the two share (hard subjects) cancels. The interval is
  Δ ± 1.96 bootstrap SE and the two-sided p-value comes from the same normal
  approximation (percentile endpoints of per-episode means are biased, see
  ``mer_bench.report.metrics.episode_bootstrap_ci``);
- McNemar's exact test on per-unit correctness (A right / B wrong against A wrong /
  B right), binomial, two-sided. Few-shot units are (clip, episode) pairs, so one clip
  can count several times; the bootstrap, not McNemar, accounts for that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from mer_bench.errors import MerBenchError
from mer_bench.report.metrics import (
    HEADLINE,
    headline_from_confusion,
    per_cluster_confusions,
    stratified_cluster_weights,
)

BOOTSTRAP_DRAWS = 2000
PER_UNIT_MEAN = {"holdout": "fold", "fewshot": "episode"}
"""Protocols whose headline is a mean over units (repeats, episodes), and the unit."""

UNIT_KEYS = ["sample_id", "seed", "fold", "episode"]
METHOD = ("paired bootstrap over subjects resampled within seed (Δ ± 1.96 SE, normal "
          "p-value) of the protocol's headline statistic; McNemar's exact test on per-unit "
          "correctness")


@dataclass(frozen=True)
class Comparison:
    """A paired comparison; ``delta`` etc. map metric -> value."""

    a: str
    b: str
    setting: dict
    n_units: int
    delta: dict
    ci: dict
    p_value: dict
    mcnemar: dict

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "setting": self.setting, "n_units": self.n_units,
                "delta": self.delta, "ci": self.ci, "p_value": self.p_value,
                "mcnemar": self.mcnemar, "method": METHOD}

    def markdown(self) -> str:
        lines = [f"**{self.a}** vs **{self.b}** · {self.setting['protocol']} · "
                 f"{self.setting['dataset']} · {self.setting['scheme']} · {self.n_units} paired "
                 f"test units", "",
                 "| Metric | A − B | 95% CI (paired subject bootstrap) | p |", "|---|---|---|---|"]
        for k in ("uf1", "uar", "accuracy"):
            lo, hi = self.ci[k]
            lines.append(f"| {k.upper() if k != 'accuracy' else 'Accuracy'} | {self.delta[k]:+.3f} "
                         f"| [{lo:+.3f}, {hi:+.3f}] | {self.p_value[k]:.3g} |")
        m = self.mcnemar
        lines += ["", f"McNemar exact test on per-unit correctness: A right / B wrong {m['a_only']}, "
                      f"A wrong / B right {m['b_only']}, p = {m['p_value']:.3g}"]
        return "\n".join(lines)


def comparable_setting(a: dict, b: dict) -> dict:
    """The shared setting of two results, or ``MerBenchError`` naming what differs."""
    fields = {
        "protocol": lambda r: r["protocol"]["name"],
        "protocol version": lambda r: r["protocol"].get("version"),
        "protocol parameters": lambda r: r["protocol"]["params"],
        "dataset": lambda r: r.get("dataset", "+".join(r["datasets"])),
        "label scheme": lambda r: r["label_scheme"]["name"],
        "class order": lambda r: r["label_scheme"]["classes"],
        "corruption": lambda r: r.get("corruption"),
        "seeds": lambda r: r["seeds"],
        "folds": lambda r: [(f["seed"], f["fold"], f["test_subjects"]) for f in r["folds"]],
    }
    for what, get in fields.items():
        if get(a) != get(b):
            raise MerBenchError(f"results are not comparable: {what} differs ({_name(a)}: "
                                f"{_short(get(a))}; {_name(b)}: {_short(get(b))})")
    return {"protocol": a["protocol"]["name"], "params": a["protocol"]["params"],
            "dataset": fields["dataset"](a), "scheme": a["label_scheme"]["name"],
            "seeds": a["seeds"], "corruption": a.get("corruption")}


def _name(result: dict) -> str:
    return result.get("run_id") or result["method"]["name"]


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def paired_units(a: dict, b: dict) -> pd.DataFrame:
    """One row per test unit with both methods' predictions (y_pred_a, y_pred_b)."""
    frames = []
    for tag, result in (("a", a), ("b", b)):
        frame = pd.DataFrame(result["predictions"])
        frame["episode"] = frame["episode"] if "episode" in frame else -1
        frame["episode"] = frame["episode"].fillna(-1).astype(int)
        frames.append(frame[UNIT_KEYS + ["subject", "y_true", "y_pred"]].rename(
            columns={"y_pred": f"y_pred_{tag}", "y_true": f"y_true_{tag}"}))
    merged = frames[0].merge(frames[1].drop(columns="subject"), on=UNIT_KEYS, how="outer",
                             indicator=True)
    unpaired = merged[merged["_merge"] != "both"]
    if len(unpaired):
        first = unpaired.iloc[0]
        raise MerBenchError(f"results are not comparable: {len(unpaired)} test units are in only "
                            f"one of them (e.g. {first['sample_id']}, seed {first['seed']}, "
                            f"fold {first['fold']})")
    if not np.array_equal(merged["y_true_a"], merged["y_true_b"]):
        raise MerBenchError("results are not comparable: true labels differ for the same clips")
    return merged.drop(columns=["_merge", "y_true_b"]).rename(columns={"y_true_a": "y_true"})


def _cells(units: pd.DataFrame, column: str, n_classes: int, mean_over: str | None
           ) -> tuple[np.ndarray, np.ndarray]:
    """(U, S, C, C) confusion counts per averaging unit and (seed, subject) cluster, and
    each cluster's seed (its bootstrap stratum). U = 1 for pooled protocols."""
    pairs, cluster_codes = np.unique(units[["seed", "subject"]].to_numpy(str), axis=0,
                                     return_inverse=True)
    cluster_codes = cluster_codes.ravel()
    if mean_over is None:
        unit_codes, n_units = np.zeros(len(units), np.int64), 1
    else:
        unit_codes, unit_names = pd.factorize(units["seed"].astype(str) + "/"
                                              + units[mean_over].astype(str), sort=True)
        n_units = len(unit_names)
    n_clusters = len(pairs)
    cells = per_cluster_confusions(units["y_true"], units[column],
                                   unit_codes * n_clusters + cluster_codes, n_classes,
                                   n_units * n_clusters)
    return cells.reshape(n_units, n_clusters, n_classes, n_classes).astype(np.float64), pairs[:, 0]


def _statistic(cells: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Headline metrics (B,) for cluster weights (B, S): per unit on the weighted
    confusion, averaged over units."""
    pooled = np.einsum("bs,usij->buij", weights, cells)
    return {k: v.mean(1) for k, v in headline_from_confusion(pooled).items()}


def compare(a: dict, b: dict, n_boot: int = BOOTSTRAP_DRAWS, seed: int = 0) -> Comparison:
    """Paired comparison of results ``a`` and ``b`` (see the module docstring)."""
    setting = comparable_setting(a, b)
    units = paired_units(a, b)
    n_classes = len(a["label_scheme"]["classes"])
    mean_over = PER_UNIT_MEAN.get(setting["protocol"])
    cells_a, strata = _cells(units, "y_pred_a", n_classes, mean_over)
    cells_b, _ = _cells(units, "y_pred_b", n_classes, mean_over)
    ones = np.ones((1, cells_a.shape[1]))
    point = {k: float(_statistic(cells_a, ones)[k][0] - _statistic(cells_b, ones)[k][0])
             for k in HEADLINE}
    weights = stratified_cluster_weights(strata, n_boot, np.random.default_rng(seed))
    draws: dict[str, list[np.ndarray]] = {k: [] for k in HEADLINE}
    for chunk in np.array_split(np.arange(n_boot), max(1, n_boot // 250)):
        stat_a, stat_b = _statistic(cells_a, weights[chunk]), _statistic(cells_b, weights[chunk])
        for k in HEADLINE:
            draws[k].append(stat_a[k] - stat_b[k])
    ci, p_value = {}, {}
    for k in HEADLINE:
        se = float(np.std(np.concatenate(draws[k]), ddof=1))
        ci[k] = [point[k] - 1.96 * se, point[k] + 1.96 * se]
        p_value[k] = 2 * NormalDist().cdf(-abs(point[k]) / se) if se > 0 else float(point[k] == 0)
    return Comparison(_name(a), _name(b), setting, len(units), point, ci, p_value,
                      mcnemar(units["y_pred_a"] == units["y_true"],
                              units["y_pred_b"] == units["y_true"]))


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """McNemar's exact (binomial) test on paired correctness: counts of discordant pairs
    and the two-sided p-value."""
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    a_only, b_only = int((correct_a & ~correct_b).sum()), int((~correct_a & correct_b).sum())
    n = a_only + b_only
    from scipy import stats  # imported here: scipy.stats costs ~1.5 s
    p = 1.0 if n == 0 else float(stats.binomtest(min(a_only, b_only), n, 0.5).pvalue)
    return {"a_only": a_only, "b_only": b_only, "p_value": p}


def candidates(results: list[tuple[Path, dict]], method: str, **filters) -> list[tuple[Path, dict]]:
    """Results of ``method`` (a registered name, or a result file's path) that match
    ``filters`` (protocol, dataset, scheme, preset; None = any)."""
    path = Path(method)
    if path.suffix == ".json":
        from mer_bench.report.results import load_result
        return [(path, load_result(path))]
    getters = {"protocol": lambda r: r["protocol"]["name"], "dataset": lambda r: r.get("dataset"),
               "scheme": lambda r: r["label_scheme"]["name"],
               "preset": lambda r: r["method"].get("preset")}
    found = [(p, r) for p, r in results if r["method"]["name"] == method
             and all(v is None or getters[k](r) == v for k, v in filters.items())]
    if not found:
        wanted = ", ".join(f"{k}={v}" for k, v in filters.items() if v is not None)
        raise MerBenchError(f"no verified result of {method!r} with {wanted}")
    return found


def choose_pair(results: list[tuple[Path, dict]], a: str, b: str, **filters
                ) -> tuple[tuple[Path, dict], tuple[Path, dict]]:
    """The one comparable pair among ``a``'s and ``b``'s matching results. Refuses when
    none is comparable (naming the difference of the first pair tried) or when several
    are (asking to narrow the choice)."""
    pairs, first_error = [], None
    for pa in candidates(results, a, **filters):
        for pb in candidates(results, b, **filters):
            try:
                comparable_setting(pa[1], pb[1])
                pairs.append((pa, pb))
            except MerBenchError as err:
                first_error = first_error or err
    if not pairs:
        raise first_error
    if len(pairs) > 1:
        names = "; ".join(f"{pa[0].name} vs {pb[0].name}" for pa, pb in pairs[:4])
        raise MerBenchError(f"{len(pairs)} comparable pairs of results ({names}); narrow with "
                            f"--scheme, --preset, --dataset or give the result files' paths")
    return pairs[0]
