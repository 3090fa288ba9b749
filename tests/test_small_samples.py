"""Holdout intervals from the subject-cluster machinery, McNemar only where it is valid,
and no interval or test from too few subjects (issue: intervals that keep their promise)."""

import numpy as np
import pandas as pd
import pytest

from mer_bench.protocols import get_protocol
from mer_bench.report.compare import compare
from mer_bench.report.intervals import (
    MIN_CLUSTERS,
    TOO_FEW,
    TooFewClusters,
    WeightedMetric,
    headline_intervals,
    interval_label,
    studentize,
    unit_cells,
)

CLASSES = ("a", "b", "c")


def holdout_study(rng, n_subjects=20, seeds=3, repeats=5, clips=6):
    """Predictions of a holdout run on ``n_subjects`` people whose skill differs (one
    effect per person, shared by every repeat and seed): each repeat tests 40 % of them
    and predicts their clips afresh."""
    skill = rng.normal(0.0, 1.0, n_subjects)
    rows = []
    for seed in range(seeds):
        for r in range(repeats):
            for s in rng.permutation(n_subjects)[: round(0.4 * n_subjects)]:
                truth = rng.integers(0, 3, clips)
                right = rng.random(clips) < 1 / (1 + np.exp(-(0.3 + skill[s])))
                guess = np.where(right, truth, (truth + rng.integers(1, 3, clips)) % 3)
                rows += [(f"p{s}", seed, f"repeat{r}", t, g) for t, g in zip(truth, guess)]
    return pd.DataFrame(rows, columns=["subject", "seed", "fold", "y_true", "y_pred"])


def test_holdout_interval_is_the_subject_bootstrap_and_wider_than_the_t_interval():
    metrics = get_protocol("holdout").summarize(holdout_study(np.random.default_rng(0)), CLASSES)
    assert metrics["ci_method"].startswith("mean per-repeat metric; studentized cluster bootstrap")
    for k in ("uf1", "uar", "accuracy"):
        new, old = metrics["ci"][k], metrics["ci_repeats"][k]
        assert new[0] <= metrics[k] <= new[1]
        assert new[1] - new[0] > 1.5 * (old[1] - old[0])  # 15 repeats of the same people


def test_holdout_interval_covers_in_a_small_simulation():
    """40 studies of a population whose expected accuracy is known: the headline
    interval covers it in most (95 % promised; at least 34 of 40 here, which a 0.95
    interval misses with probability < 0.01), the old t-interval over repeats far less."""
    rng = np.random.default_rng(1)
    population = [holdout_study(rng, seeds=1, repeats=5) for _ in range(300)]
    truth = np.mean([get_protocol("holdout").summarize(p, CLASSES)["accuracy"]
                     for p in population[:100]])
    new = old = 0
    for study in population[100:140]:
        m = get_protocol("holdout").summarize(study, CLASSES)
        new += m["ci"]["accuracy"][0] <= truth <= m["ci"]["accuracy"][1]
        old += m["ci_repeats"]["accuracy"][0] <= truth <= m["ci_repeats"]["accuracy"][1]
    assert new >= 34 and new > old


def test_holdout_t_draws_are_centred_and_pooled_ones_are_not():
    """A draw repeats people inside a holdout test set, which lowers a small test set's
    UF1 by itself; holdout's t* are centred at their median (the estimate is unbiased
    for the expected per-repeat metric), pooled t* are left as drawn."""
    study = holdout_study(np.random.default_rng(2), seeds=1)
    labels = (study["seed"].astype(str) + "/" + study["fold"]).to_numpy()
    cells = unit_cells(study["y_true"].to_numpy(), study["y_pred"].to_numpy(),
                       study["subject"].to_numpy(), labels, len(CLASSES))
    centred = studentize(WeightedMetric(cells), n_boot=400, centre=True)
    plain = studentize(WeightedMetric(cells), n_boot=400)
    for k in ("uf1", "accuracy"):
        assert np.median(centred[k].t_draws) == pytest.approx(0.0, abs=1e-12)
        assert np.allclose(centred[k].t_draws, plain[k].t_draws - np.median(plain[k].t_draws))
    assert abs(np.median(plain["uf1"].t_draws)) > 0.05  # the artefact centring removes
    metrics = get_protocol("holdout").summarize(study, CLASSES)
    assert "t* centred at its median" in metrics["ci_method"]
    assert "centred" not in get_protocol("loso").summarize(study, CLASSES)["ci_method"]


def _pooled(n_subjects, rng):
    subjects = np.repeat(np.arange(n_subjects), 12)
    y_true = rng.integers(0, 3, len(subjects))
    y_pred = np.where(rng.random(len(subjects)) < 0.6, y_true, rng.integers(0, 3, len(subjects)))
    return y_true, y_pred, subjects


@pytest.mark.parametrize("n_subjects", [1, 2, 3])
def test_too_few_subjects_give_no_interval_and_no_test(n_subjects):
    y_true, y_pred, subjects = _pooled(n_subjects, np.random.default_rng(n_subjects))
    ci = headline_intervals(y_true, y_pred, subjects, np.zeros(len(subjects)), 3)
    assert ci == {"accuracy": None, "uf1": None, "uar": None}
    cells = unit_cells(y_true, y_pred, subjects, None, 3)
    with pytest.raises(TooFewClusters, match=f"{n_subjects} subjects?: too few subjects"):
        studentize(WeightedMetric(cells))
    frame = pd.DataFrame({"y_true": y_true, "y_pred": y_pred, "subject": subjects.astype(str),
                          "seed": 0, "fold": "loso"})
    metrics = get_protocol("loso").summarize(frame, CLASSES)
    assert metrics["ci_method"] == TOO_FEW
    assert interval_label(metrics, "uf1").endswith("(too few subjects for an interval)")


def test_the_minimum_is_where_the_interval_starts():
    y_true, y_pred, subjects = _pooled(MIN_CLUSTERS, np.random.default_rng(0))
    ci = headline_intervals(y_true, y_pred, subjects, np.zeros(len(subjects)), 3)
    assert all(lo < hi for lo, hi in ci.values())


def _result(protocol, frame, y_pred, seeds):
    predictions = [{"sample_id": f"c{i}", "subject": s, "seed": int(seed), "fold": fold,
                    "y_true": int(t), "y_pred": int(p)}
                   for i, (s, seed, fold, t, p) in enumerate(zip(
                       frame["subject"], frame["seed"], frame["fold"], frame["y_true"], y_pred))]
    return {"protocol": {"name": protocol, "version": 1, "params": {}}, "dataset": "x",
            "datasets": ["x"], "label_scheme": {"name": "s", "classes": list(CLASSES)},
            "seeds": seeds, "folds": [], "predictions": predictions, "method": {"name": "m"}}


@pytest.mark.parametrize("protocol,seeds,says", [
    ("loso", [0], None), ("loso", [0, 1], "2 seeds predict each clip once per seed"),
    ("holdout", [0], "holdout repeats predict each clip many times"),
])
def test_mcnemar_only_for_one_seed_and_clips_predicted_once(protocol, seeds, says):
    rng = np.random.default_rng(2)
    frame = holdout_study(rng, seeds=len(seeds), repeats=5 if protocol == "holdout" else 1)
    other = np.where(rng.random(len(frame)) < 0.5, frame["y_true"], frame["y_pred"])
    c = compare(_result(protocol, frame, frame["y_pred"], seeds),
                _result(protocol, frame, other, seeds), n_boot=200)
    if says is None:
        assert c.mcnemar is not None and c.no_mcnemar is None
    else:
        assert c.mcnemar is None and says in c.no_mcnemar and says in c.markdown()


def test_a_compare_over_too_few_subjects_is_refused_with_the_reason():
    rng = np.random.default_rng(3)
    y_true, y_pred, subjects = _pooled(3, rng)
    frame = pd.DataFrame({"subject": subjects.astype(str), "seed": 0, "fold": "loso",
                          "y_true": y_true, "y_pred": y_pred})
    with pytest.raises(TooFewClusters, match="3 subjects: too few subjects"):
        compare(_result("loso", frame, y_pred, [0]), _result("loso", frame, y_true, [0]))
