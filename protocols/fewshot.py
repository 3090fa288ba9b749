"""Few-shot N-way K-shot Q-query evaluation on held-out subjects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mer_bench.errors import MerBenchError
from mer_bench.nn.episodes import eligible_classes, sample_episode
from mer_bench.protocols.base import (
    MAX_EPISODES,
    Fold,
    Protocol,
    repeated_summary,
    unit_mean_summary,
)
from mer_bench.protocols.holdout import split_subjects
from mer_bench.report.intervals import INTERVAL_METHOD, interval_method
from mer_bench.report.metrics import HEADLINE, t_interval
from mer_bench.seeding import stable_seed


@dataclass(frozen=True)
class FewShot(Protocol):
    """Subjects are split once per seed (train:test = ``1 - test_fraction`` :
    ``test_fraction``); methods meta-train on the training subjects only; ``episodes``
    evaluation episodes are drawn only from the held-out subjects, each with K support
    and Q query clips per class (disjoint). ``n_way=None`` means every class of the
    scheme. All episodes of a seed share one fit. Metrics: per-episode accuracy, UF1 and
    UAR averaged over episodes; headline 95 % interval by bootstrap over the held-out
    subjects (within seed), the t-interval over episodes beside it (``episodic_summary``);
    each episode's support ids are stored in the result (``episodes``)."""

    n_way: int | None = None
    k_shot: int = 5
    q_query: int = 5
    episodes: int = 100
    test_fraction: float = 0.4
    name = "fewshot"

    def __post_init__(self):
        self.check_int("n_way", 2, allow_none=True)
        for field in ("k_shot", "q_query"):
            self.check_int(field, 1)
        self.check_int("episodes", 1, maximum=MAX_EPISODES)
        self.check_fraction("test_fraction")

    def folds(self, samples: pd.DataFrame, seed: int):
        n_classes = int(samples["label"].max()) + 1 if len(samples) else 0
        n_way = self.n_way or n_classes
        if not 2 <= n_way <= n_classes:
            raise MerBenchError(f"fewshot: n_way={n_way} is not possible with {n_classes} "
                                f"classes; choose 2..{n_classes}")
        rng = np.random.default_rng(stable_seed("fewshot-split", seed))
        test_subjects = split_subjects(samples, 1 - self.test_fraction, rng,
                                       min_test_per_class=self.k_shot + self.q_query)
        is_test = samples["subject"].isin(test_subjects).to_numpy()
        pool = samples[is_test].reset_index(drop=True)
        train_ids = tuple(samples.loc[~is_test, "sample_id"])
        if len(eligible_classes(pool["label"], self.k_shot + self.q_query)) < n_way:
            raise MerBenchError(
                f"fewshot: fewer than n_way={n_way} classes have k_shot+q_query="
                f"{self.k_shot + self.q_query} clips in the held-out subjects; lower n_way, "
                f"k_shot or q_query")
        ids, labels = pool["sample_id"].to_numpy(), pool["label"].to_numpy()
        for e in range(self.episodes):
            episode = sample_episode(labels, n_way, self.k_shot, self.q_query,
                                     np.random.default_rng(stable_seed("episode", seed, e)))
            yield Fold(f"episode{e}", train_ids, tuple(ids[episode.query]),
                       support_ids=tuple(ids[episode.support]), group="meta-train", episode=e)

    def summarize(self, predictions: pd.DataFrame, classes: tuple[str, ...]) -> dict:
        return episodic_summary(predictions, classes)


def episodic_summary(predictions: pd.DataFrame, classes: tuple[str, ...]) -> dict:
    """Mean per-episode accuracy/UF1/UAR (over every episode of every seed) with, as
    the headline ``ci``, a bootstrap-t interval over the held-out subjects: what a reader
    generalizes to is other people and other episodes, so subjects are resampled (one
    person is one cluster across seeds) and each episode keeps its per-class query
    counts (``WeightedMetric(balanced=True)``); with several seeds the between-seed
    spread widens it where larger. Beside it ``ci_episodes``, the t-interval over
    episodes, which only measures the variation between episodes drawn from one pool of
    held-out people (its coverage of the generalization target is far below 95 %); with
    several seeds, the per-seed means and their t-interval apart (``seed_spread``)."""
    out = unit_mean_summary(predictions, classes, "episode", "ci_episodes", balanced=True)
    out["ci_method"] = interval_method(
        out["ci"], "mean per-episode metric; " + INTERVAL_METHOD + "; class-balanced episodes")
    if predictions["seed"].nunique() > 1:
        per_seed = {str(s): {k: v for k, v in repeated_summary(part, classes, "episode").items()
                             if k in HEADLINE}
                    for s, part in predictions.groupby("seed", sort=True)}
        out["per_seed"] = per_seed
        out["seed_spread"] = {k: t_interval([m[k] for m in per_seed.values()]) for k in HEADLINE}
    return out
