"""Is method A better than method B? Paired comparison of two result files.

Two results are comparable only when they share protocol (name, version, parameters),
dataset, label scheme (and class order), seeds and folds, and predicted exactly the
same test units (sample, seed, fold, episode); anything else is refused, naming the
difference. Then:

- ΔUF1, ΔUAR, Δaccuracy = A − B of the protocol's headline statistic: pooled over all
  folds (loso, kfold5, cde, lodo) or the mean over repeats/episodes (holdout, fewshot);
- a paired studentized bootstrap over subjects (``mer_bench.report.intervals``; 2,000
  draws; one person is one cluster across seeds): both methods see the same draw, so
  what the two share (hard subjects) cancels; the 95 % interval of Δ and its two-sided
  p-value come from the same draws (p < 0.05 exactly when the interval excludes 0), and
  a p below the draws' resolution reads ``p<0.0005``; few-shot episodes keep their
  per-class query counts in every draw, as in their headline interval;
- McNemar's exact test on per-clip correctness (A right / B wrong against A wrong /
  B right), binomial, two-sided — only where its assumption holds: one seed and each
  clip predicted once (loso, kfold5, cde, lodo). Few-shot episodes and holdout repeats
  predict a clip many times, and several seeds predict it once per seed, so the units
  are not independent: under the null it rejected 9-28 % of the time there. Then it is
  not computed, the bootstrap is the test, and the output says why;
- fewer than ``MIN_CLUSTERS`` subjects: refused (``TooFewClusters``), with the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mer_bench.errors import MerBenchError
from mer_bench.report.intervals import (
    BOOTSTRAP_DRAWS,
    WeightedMetric,
    between_seed_se,
    format_p,
    studentize,
    unit_cells,
)
from mer_bench.report.schema import HEADLINES, result_task

PER_UNIT_MEAN = {"holdout": "fold", "fewshot": "episode"}
"""Protocols whose headline is a mean over units (repeats, episodes), and the unit."""

UNIT_KEYS = ["sample_id", "seed", "fold", "episode"]
METHOD = ("paired studentized bootstrap over subjects (one subject = one cluster across "
          "seeds; interval and p-value from the same draws) of the protocol's headline "
          "statistic; McNemar's exact test on per-clip correctness (one seed, each clip "
          "predicted once)")


METRIC_NAMES = {"uf1": "UF1", "uar": "UAR", "accuracy": "Accuracy", "au_f1": "Mean AU F1",
                "au_f1_meb": "MEB F1 (two-class)"}


def mcnemar_refusal(protocol: str, n_seeds: int, task: str = "emotion") -> str | None:
    """Why McNemar's test does not apply to these paired units (None: it does)."""
    if task == "au":
        return ("McNemar not computed: an AU prediction is one binary decision per AU, not "
                "one correct-or-not answer per clip; the paired subject bootstrap is the test")
    if protocol in PER_UNIT_MEAN:
        unit = "episodes" if protocol == "fewshot" else "repeats"
        return (f"McNemar not computed: {protocol} {unit} predict each clip many times, so the "
                f"units are not independent; the paired subject bootstrap is the test")
    if n_seeds > 1:
        return (f"McNemar not computed: {n_seeds} seeds predict each clip once per seed, so the "
                f"units are not independent; the paired subject bootstrap is the test")
    return None


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
    mcnemar: dict | None
    no_mcnemar: str | None = None
    """Why ``mcnemar`` is None (``mcnemar_refusal``)."""

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "setting": self.setting, "n_units": self.n_units,
                "delta": self.delta, "ci": self.ci, "p_value": self.p_value,
                "mcnemar": self.mcnemar, "no_mcnemar": self.no_mcnemar, "method": METHOD}

    def markdown(self) -> str:
        lines = [f"**{self.a}** vs **{self.b}** · {self.setting['protocol']} · "
                 f"{self.setting['dataset']} · {self.setting['scheme']} · {self.n_units} paired "
                 f"test units", "",
                 "| Metric | A − B | 95% CI (paired subject bootstrap-t) | p |",
                 "|---|---|---|---|"]
        for k in self.delta:
            lo, hi = self.ci[k]
            lines.append(f"| {METRIC_NAMES.get(k, k)} | {self.delta[k]:+.3f} "
                         f"| [{lo:+.3f}, {hi:+.3f}] | {format_p(self.p_value[k], prefix=False)} |")
        m = self.mcnemar
        lines += ["", self.no_mcnemar if m is None else
                  f"McNemar exact test on per-clip correctness: A right / B wrong {m['a_only']}, "
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
        shared = ["subject", "dataset"] if "dataset" in frame else ["subject"]
        frames.append(frame[UNIT_KEYS + shared + ["y_true", "y_pred"]].rename(
            columns={"y_pred": f"y_pred_{tag}", "y_true": f"y_true_{tag}"}))
    merged = frames[0].merge(frames[1].drop(columns=shared), on=UNIT_KEYS, how="outer",
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


@dataclass(frozen=True)
class PairedDifference:
    """A's minus B's headline statistic under the same subject weights (R, G)."""

    a: WeightedMetric
    b: WeightedMetric

    @property
    def n_clusters(self) -> int:
        return self.a.n_clusters

    def __call__(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        stat_a, stat_b = self.a(weights), self.b(weights)
        return {k: stat_a[k] - stat_b[k] for k in stat_a}


def paired_statistic(units: pd.DataFrame, n_classes: int, protocol: str) -> PairedDifference:
    """The difference statistic of the paired ``units``: pooled, or the mean over the
    protocol's repeats/episodes (episode class counts kept for few-shot)."""
    mean_over = PER_UNIT_MEAN.get(protocol)
    labels = None if mean_over is None else \
        (units["seed"].astype(str) + "/" + units[mean_over].astype(str)).to_numpy()
    subjects, y_true = units["subject"].to_numpy(), units["y_true"].to_numpy()
    balanced = protocol == "fewshot"
    return PairedDifference(
        *(WeightedMetric(unit_cells(y_true, units[f"y_pred_{tag}"].to_numpy(), subjects, labels,
                                    n_classes), balanced) for tag in ("a", "b")))


def paired_au_statistic(units: pd.DataFrame, n_aus: int, protocol: str) -> PairedDifference:
    """The AU headline's difference of the paired ``units`` (clip by clip: the same
    clips, datasets and subjects on both sides), as a function of subject weights."""
    from mer_bench.report.au_metrics import AUWeightedMetric, au_cells
    return PairedDifference(*(AUWeightedMetric(au_cells(units.assign(y_pred=units[f"y_pred_{tag}"]),
                                                        n_aus)) for tag in ("a", "b")))


def compare(a: dict, b: dict, n_boot: int = BOOTSTRAP_DRAWS, seed: int = 0) -> Comparison:
    """Paired comparison of results ``a`` and ``b`` (see the module docstring)."""
    setting = comparable_setting(a, b)
    units = paired_units(a, b)
    n_classes = len(a["label_scheme"]["classes"])
    seeds = units["seed"].to_numpy()
    task = result_task(a)
    build = paired_au_statistic if task == "au" else paired_statistic
    statistic = build(units, n_classes, setting["protocol"])
    seed_se = between_seed_se(seeds, lambda keep: build(
        units[keep].reset_index(drop=True), n_classes, setting["protocol"]))
    draws = studentize(statistic, n_boot, seed, seed_se, bounds=(-1.0, 1.0),
                       centre=setting["protocol"] == "holdout")
    correct = (units["y_pred_a"] == units["y_true"], units["y_pred_b"] == units["y_true"])
    refusal = mcnemar_refusal(setting["protocol"], len(np.unique(seeds)), task)
    keys = HEADLINES[task]
    return Comparison(_name(a), _name(b), setting, len(units),
                      {k: draws[k].estimate for k in keys},
                      {k: draws[k].interval() for k in keys},
                      {k: draws[k].p_value() for k in keys},
                      None if refusal else mcnemar(*correct), refusal)


def common_seeds(a: dict, b: dict) -> tuple[dict, dict, list[int]]:
    """``a`` and ``b`` restricted to the seeds both ran (predictions and folds of the
    other seeds dropped), and those seeds; unchanged when their seeds agree."""
    shared = sorted(set(a["seeds"]) & set(b["seeds"]))
    if shared == sorted(a["seeds"]) == sorted(b["seeds"]):
        return a, b, shared
    return restrict_seeds(a, shared), restrict_seeds(b, shared), shared


def restrict_seeds(result: dict, seeds: list[int]) -> dict:
    """A shallow copy of ``result`` holding only ``seeds`` (predictions, folds)."""
    keep = set(seeds)
    return result | {"seeds": list(seeds),
                     "predictions": [p for p in result["predictions"] if p["seed"] in keep],
                     "folds": [f for f in result["folds"] if f["seed"] in keep]}


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
        from mer_bench.report.verification import result_problems
        result = load_result(path)
        problems, _ = result_problems(result)
        if problems:
            raise MerBenchError(f"{path}: not verified, refused: {'; '.join(problems)}")
        return [(path, result)]
    getters = {"protocol": lambda r: r["protocol"]["name"], "dataset": lambda r: r.get("dataset"),
               "scheme": lambda r: r["label_scheme"]["name"],
               "preset": lambda r: r["method"].get("preset")}
    found = [(p, r) for p, r in results if r["method"]["name"] == method
             and all(v is None or getters[k](r) == v for k, v in filters.items())]
    if not found:
        wanted = ", ".join(f"{k}={v}" for k, v in filters.items() if v is not None)
        raise MerBenchError(f"no verified result of {method!r} "
                            f"({wanted or 'any protocol, dataset, scheme and preset'}) among "
                            f"{len(results)} verified results; run it first, or name a result "
                            f"file")
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
