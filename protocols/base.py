"""The protocol contract: samples -> folds, fold predictions -> metrics.

Like scikit-learn's splitters, a protocol is a small object whose ``folds`` is a pure
function of (sample table, seed). Its name, version and parameters are its identity and
are hashed into results; change ``version`` whenever the folds a protocol makes change.

``summarize`` receives the predictions of every fold of every seed as a DataFrame with
columns sample_id, dataset, subject, fold, seed, y_true, y_pred (and episode for
few-shot) and returns the ``metrics`` block of a result file.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from mer_bench.errors import MerBenchError
from mer_bench.report.intervals import headline_intervals, interval_method
from mer_bench.report.metrics import (
    HEADLINE,
    classification_metrics,
    headline_from_confusion,
    per_cluster_confusions,
    t_interval,
)


MAX_COUNT = 1000
"""Default upper bound of a protocol's integer parameters (ways, shots, splits)."""
MAX_EPISODES = 10_000
"""Most few-shot evaluation episodes per seed (the papers use 100-1,000)."""
MAX_REPEATS = 100
"""Most holdout repeats per seed (the papers use 5-10)."""


@dataclass(frozen=True)
class Fold:
    """One train/test split. ``group`` names the training set: folds with the same
    group share ``train_ids`` and the runner fits once for all of them (few-shot
    episodes). ``support_ids`` are labelled samples given to ``predict``."""

    name: str
    train_ids: tuple[str, ...]
    test_ids: tuple[str, ...]
    support_ids: tuple[str, ...] | None = None
    group: str | None = None
    episode: int | None = None

    @property
    def train_group(self) -> str:
        return self.group or self.name


@dataclass(frozen=True)
class Protocol(ABC):
    """Base class; subclasses are frozen dataclasses whose fields are the parameters."""

    name = "protocol"
    version = 1
    default_dataset = "synth-casme2"
    task = "emotion"
    """What it evaluates: ``emotion`` classes or ``au`` detection (the scheme and the
    method must serve the same task)."""

    @abstractmethod
    def folds(self, samples: pd.DataFrame, seed: int) -> Iterator[Fold]:
        """Folds over ``samples`` (a labelled sample table), deterministic in ``seed``."""

    @abstractmethod
    def summarize(self, predictions: pd.DataFrame, classes: tuple[str, ...]) -> dict:
        """The metrics block of a result file, from every fold's predictions."""

    def params(self) -> dict:
        return asdict(self)

    def identity(self) -> dict:
        return {"name": self.name, "version": self.version, "params": self.params()}

    @property
    def identity_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:12]

    def check_dataset(self, dataset: str) -> None:
        """Raise ``MerBenchError`` if this protocol cannot run on ``dataset``."""

    def check_int(self, field: str, minimum: int, allow_none: bool = False,
                  maximum: int = MAX_COUNT) -> None:
        """Raise ``MerBenchError`` unless parameter ``field`` is an int in
        [``minimum``, ``maximum``] (the bound keeps a typo or a forged result file from
        asking for a run or a verification that never ends)."""
        value = getattr(self, field)
        if allow_none and value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise MerBenchError(f"protocol {self.name!r}: {field} must be an integer in "
                                f"[{minimum}, {maximum:,}]; got {_short(value)}")

    def check_fraction(self, field: str) -> None:
        """Raise ``MerBenchError`` unless parameter ``field`` is a number in (0, 1)."""
        value = getattr(self, field)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise MerBenchError(f"protocol {self.name!r}: {field} must be a number in (0, 1); "
                                f"got {_short(value)}")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def fold_table(groups: list[tuple[int, str, list[Fold]]]) -> list[dict]:
    """A result's ``folds`` block: per (seed, training group, its folds) — one fit — the
    subjects it tested (few-shot: the held-out subjects its episodes drew from) and the
    number of training and test clips. Verification rebuilds it from the protocol."""
    table = []
    for seed, group, folds in groups:
        tested = {sid for f in folds for sid in f.test_ids + (f.support_ids or ())}
        table.append({"seed": seed, "fold": group,
                      "test_subjects": sorted({sid.rsplit("/", 1)[0] for sid in tested}),
                      "n_train": len(folds[0].train_ids), "n_test": len(tested)})
    return table


def subject_folds(samples: pd.DataFrame, test_subjects_by_fold: dict[str, list[str]]
                  ) -> Iterator[Fold]:
    """Folds whose test side is the given subjects and train side everyone else."""
    subjects = samples["subject"].to_numpy()
    ids = samples["sample_id"].to_numpy()
    for name, test_subjects in test_subjects_by_fold.items():
        is_test = np.isin(subjects, test_subjects)
        yield Fold(name, tuple(ids[~is_test]), tuple(ids[is_test]))


def dataset_folds(samples: pd.DataFrame) -> Iterator[Fold]:
    """One fold per source dataset (``test-<dataset>``): its subjects against the rest."""
    by_source = samples.groupby("dataset", sort=True)["subject"].unique()
    return subject_folds(samples, {f"test-{source}": list(subjects)
                                   for source, subjects in by_source.items()})


def one_subject_folds(samples: pd.DataFrame) -> Iterator[Fold]:
    """One fold per subject, in sorted order (leave one subject out)."""
    return subject_folds(samples, {s: [s] for s in sorted(samples["subject"].unique())})


def require_composite(protocol: str, dataset: str, composites: tuple[str, ...]) -> None:
    """Raise ``MerBenchError`` unless ``dataset`` is one of ``composites`` (base names) or
    its twin: a leave-one-dataset-out protocol needs several sources."""
    from mer_bench.data.schemes import base_dataset
    if base_dataset(dataset) not in composites:
        raise MerBenchError(f"protocol {protocol!r} leaves one source of a composite out; got "
                            f"dataset {dataset!r}; choose from {', '.join(composites)} or their "
                            f"synth- twins")


def pooled_summary(predictions: pd.DataFrame, classes: tuple[str, ...],
                   per_subject: bool = False, per_dataset: bool = False) -> dict:
    """MEGC2019 pooling: one confusion over every fold (and seed); 95 % bootstrap-t
    interval over subjects (a subject is one cluster across seeds; with several seeds the
    between-seed spread widens it where larger, ``mer_bench.report.intervals``);
    optional per-subject / per-source-dataset tables; spread over seeds."""
    y_true, y_pred = predictions["y_true"].to_numpy(), predictions["y_pred"].to_numpy()
    out = classification_metrics(y_true, y_pred, classes)
    out["ci"] = headline_intervals(y_true, y_pred, predictions["subject"].to_numpy(),
                                   predictions["seed"].to_numpy(), len(classes))
    out["ci_method"] = interval_method(out["ci"])
    if per_subject:
        out["per_subject"] = _headline_by(predictions, "subject", classes)
    if per_dataset:
        out["per_dataset"] = _headline_by(predictions, "dataset", classes)
    out.update(seed_spread(predictions, classes))
    return out


def _headline_by(predictions: pd.DataFrame, column: str, classes: tuple[str, ...]) -> dict:
    """{value of ``column`` (sorted): accuracy, uf1, uar of its predictions, and n}: one
    confusion matrix per value, all counted at once."""
    keys, index = np.unique(predictions[column].to_numpy(), return_inverse=True)
    cms = per_cluster_confusions(predictions["y_true"].to_numpy(), predictions["y_pred"].to_numpy(),
                                 index, len(classes), len(keys))
    heads = headline_from_confusion(cms)
    return {str(key): {k: float(heads[k][i]) for k in HEADLINE} | {"n": int(cms[i].sum())}
            for i, key in enumerate(keys)}


def seed_spread(predictions: pd.DataFrame, classes: tuple[str, ...]) -> dict:
    """Per-seed headline metrics and their mean +- t-interval (only with > 1 seed)."""
    if predictions["seed"].nunique() < 2:
        return {}
    per_seed = _headline_by(predictions, "seed", classes)
    spread = {k: t_interval([m[k] for m in per_seed.values()]) for k in HEADLINE}
    return {"per_seed": per_seed, "seed_spread": spread}


def unit_mean_summary(predictions: pd.DataFrame, classes: tuple[str, ...], unit: str,
                      beside: str, balanced: bool = False, add_unit_spread: bool = False) -> dict:
    """``repeated_summary`` over ``unit`` (fold = a holdout repeat, episode), with its
    t-interval over units moved to ``beside`` (and ``beside``_method) and, as the
    headline ``ci``, the bootstrap-t over subjects of the mean per-unit metric: one
    person is one cluster across units and seeds (the units reuse the same people, so a
    t-interval over units misses the variation from sampling people: ``benchmarks/
    interval_coverage.py``). ``balanced``: each unit keeps its per-class counts in every
    draw (few-shot episodes). ``add_unit_spread``: the standard error of the mean over
    units (sd / √units) is added in quadrature to the subject jackknife's, for what the
    subject draws hold fixed — which people each holdout split tests."""
    out = repeated_summary(predictions, classes, unit=unit)
    out[beside], out[f"{beside}_method"] = out["ci"], out.pop("ci_method")
    unit_key = predictions["seed"].astype(str) + "/" + predictions[unit].astype(str)
    spread = ({k: out["sd"][k] / np.sqrt(out["n_repeats"]) for k in HEADLINE}
              if add_unit_spread else None)
    column = {c: predictions[c].to_numpy() for c in ("y_true", "y_pred", "subject", "seed")}
    out["ci"] = headline_intervals(column["y_true"], column["y_pred"], column["subject"],
                                   column["seed"], len(classes), units=unit_key.to_numpy(),
                                   balanced=balanced, added_se=spread)
    return out


def repeated_summary(predictions: pd.DataFrame, classes: tuple[str, ...], unit: str) -> dict:
    """Metrics per repeat (``unit`` = fold or episode, within each seed), then mean +-
    95 % t-interval over repeats as the headline and CI. The confusion matrix and
    per-class values are pooled over all repeats (a sample counts once per repeat)."""
    out = classification_metrics(predictions["y_true"].to_numpy(), predictions["y_pred"].to_numpy(),
                                 classes)
    per_unit = [classification_metrics(p["y_true"].to_numpy(), p["y_pred"].to_numpy(), classes)
                for _, p in predictions.groupby(["seed", unit], sort=True)]
    intervals = {k: t_interval([m[k] for m in per_unit]) for k in HEADLINE}
    for k in HEADLINE:
        out[k] = intervals[k]["mean"]
    out["ci"] = {k: intervals[k]["ci"] for k in HEADLINE}
    out["sd"] = {k: intervals[k]["sd"] for k in HEADLINE}
    out["n_repeats"] = len(per_unit)
    out["ci_method"] = f"mean +- 95% t-interval over {len(per_unit)} {unit}s"
    return out
