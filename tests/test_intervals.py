"""Subject-cluster bootstrap-t intervals, paired tests, and how they are shown."""

import json

import numpy as np
import pandas as pd
import pytest

from mer_bench.protocols.fewshot import episodic_summary
from mer_bench.report.compare import compare, common_seeds
from mer_bench.report.intervals import (
    WeightedMetric,
    format_p,
    headline_intervals,
    jackknife_se,
    studentize,
    unit_cells,
)
from mer_bench.report.metrics import classification_metrics


def _clustered(n_subjects=14, per_subject=12, seed=0):
    rng = np.random.default_rng(seed)
    subjects = np.repeat(np.arange(n_subjects), per_subject)
    skill = rng.uniform(0.3, 0.9, n_subjects)[subjects]
    y_true = rng.integers(0, 3, len(subjects))
    y_pred = np.where(rng.random(len(subjects)) < skill, y_true, rng.integers(0, 3, len(subjects)))
    return y_true, y_pred, subjects


def test_pooled_interval_holds_the_estimate_and_is_deterministic():
    y_true, y_pred, subjects = _clustered()
    seeds = np.zeros(len(y_true))
    ci = headline_intervals(y_true, y_pred, subjects, seeds, 3)
    point = classification_metrics(y_true, y_pred, ("a", "b", "c"))
    for k in ("accuracy", "uf1", "uar"):
        assert 0 <= ci[k][0] < point[k] < ci[k][1] <= 1
    assert ci == headline_intervals(y_true, y_pred, subjects, seeds, 3)
    single = headline_intervals(y_true, y_pred, np.zeros(len(y_true)), seeds, 3)
    assert single["uf1"] is None  # one subject: no interval (intervals.MIN_CLUSTERS)


def test_jackknife_se_of_accuracy_is_the_textbook_delete_one_subject_jackknife():
    y_true, y_pred, subjects = _clustered(n_subjects=6)
    statistic = WeightedMetric(unit_cells(y_true, y_pred, subjects, None, 3))
    got = jackknife_se(statistic, np.ones((1, 6)))["accuracy"][0]
    left_out = np.array([np.mean((y_true == y_pred)[subjects != s]) for s in range(6)])
    expected = np.sqrt(5 / 6 * np.sum((left_out - left_out.mean()) ** 2))
    assert got == pytest.approx(expected)
    # a draw holding subject 0 twice deletes each copy in turn
    weights = np.array([[2.0, 1, 1, 1, 1, 0]])
    assert jackknife_se(statistic, weights)["accuracy"][0] > 0


def test_jackknife_in_pieces_equals_the_jackknife_at_once(monkeypatch):
    from mer_bench.report import intervals
    y_true, y_pred, subjects = _clustered()
    statistic = WeightedMetric(unit_cells(y_true, y_pred, subjects, None, 3))
    weights = intervals.draw_weights(14, 50, seed=1)
    whole = jackknife_se(statistic, weights)
    monkeypatch.setattr(intervals, "JACKKNIFE_CELLS", 14 * 14 * 7)  # 7 draws a piece
    pieces = jackknife_se(statistic, weights)
    for k in whole:
        np.testing.assert_allclose(pieces[k], whole[k], rtol=1e-12)


def test_p_value_is_dual_to_the_interval():
    """p < 0.05 exactly when the 95 % interval excludes 0, over many data sets."""
    for seed in range(12):
        y_true, y_pred, subjects = _clustered(seed=seed)
        rng = np.random.default_rng(100 + seed)
        other = np.where(rng.random(len(y_true)) < 0.15, rng.integers(0, 3, len(y_true)), y_pred)
        from mer_bench.report.compare import PairedDifference
        cells = [unit_cells(y_true, p, subjects, None, 3) for p in (y_pred, other)]
        draws = studentize(PairedDifference(*map(WeightedMetric, cells)), 1000, seed,
                           bounds=(-1, 1))
        for k, s in draws.items():
            lo, hi = s.interval()
            assert (s.p_value() < 0.05) == (not lo <= 0 <= hi) or min(abs(lo), abs(hi)) < 1e-3


def test_p_below_the_draws_resolution_is_never_printed_as_zero():
    assert format_p(0.0) == "p<0.0005"
    assert format_p(0.0004) == "p<0.0005"
    assert format_p(0.012) == "p=0.012"
    assert format_p(0.0, prefix=False) == "<0.0005" and format_p(0.012, prefix=False) == "0.012"


def _balanced_episodes(n_seeds=1, constant=False, n_subjects=10):
    """3-way 5-query episodes (balanced); each query's subject random; a predictor either
    always answering class 0 (``constant``) or right with a per-subject skill."""
    rng = np.random.default_rng(0)
    skill = rng.uniform(0.2, 0.95, n_subjects)
    rows = []
    for seed in range(n_seeds):
        for e in range(60):
            for y in range(3):
                for _ in range(5):
                    s = int(rng.integers(0, n_subjects))
                    pred = 0 if constant else (y if rng.random() < skill[s] else (y + 1) % 3)
                    rows.append({"seed": seed, "episode": e, "subject": f"s{s}", "y_true": y,
                                 "y_pred": pred, "sample_id": f"c{len(rows)}", "fold": f"episode{e}",
                                 "dataset": "d"})
    return pd.DataFrame(rows)


def test_constant_per_episode_predictor_gets_equal_accuracy_and_uar_intervals():
    m = episodic_summary(_balanced_episodes(constant=True), ("a", "b", "c"))
    assert m["accuracy"] == pytest.approx(1 / 3) and m["uar"] == pytest.approx(1 / 3)
    assert m["ci"]["accuracy"] == pytest.approx(m["ci"]["uar"])
    assert m["ci"]["uar"] == pytest.approx([1 / 3, 1 / 3])  # whoever is drawn: 1/3
    varied = episodic_summary(_balanced_episodes(), ("a", "b", "c"))
    assert varied["ci"]["accuracy"] == pytest.approx(varied["ci"]["uar"])
    assert varied["ci"]["uar"][1] - varied["ci"]["uar"][0] > 0.05


def test_fewshot_interval_with_seeds_takes_the_larger_of_subject_and_seed_spread():
    frame = _balanced_episodes(n_seeds=3)
    # seed 2's predictor is much worse: a training-randomness effect no subject draw sees
    worse = (frame["seed"] == 2) & (frame.index % 2 == 0)
    frame.loc[worse, "y_pred"] = (frame.loc[worse, "y_true"] + 1) % 3
    m = episodic_summary(frame, ("a", "b", "c"))
    per_seed = [m["per_seed"][s]["uar"] for s in ("0", "1", "2")]
    seed_se = np.std(per_seed, ddof=1) / np.sqrt(3)
    lo, hi = m["ci"]["uar"]
    assert hi - lo > 2 * 1.96 * seed_se * 0.9


def _result(frame: pd.DataFrame, protocol="loso") -> dict:
    seeds = sorted(frame["seed"].unique().tolist())
    folds = [{"seed": s, "fold": f, "test_subjects": sorted(g["subject"].unique().tolist())}
             for (s, f), g in frame.groupby(["seed", "fold"])]
    return {"run_id": "r", "method": {"name": "m"}, "protocol": {"name": protocol, "params": {}},
            "datasets": ["d"], "dataset": "d", "label_scheme": {"name": "s", "classes": ["a", "b", "c"]},
            "seeds": seeds, "folds": folds,
            "predictions": json.loads(frame.to_json(orient="records"))}


def _loso_frame(y_true, y_pred, subjects, seed=0):
    return pd.DataFrame({"sample_id": [f"c{i}" for i in range(len(y_true))], "dataset": "d",
                         "subject": [f"p{s}" for s in subjects],
                         "fold": [f"p{s}" for s in subjects], "seed": seed,
                         "y_true": y_true, "y_pred": y_pred})


def test_multi_seed_compare_treats_a_subject_across_seeds_as_one_cluster():
    """Three seeds repeating the same predictions hold no more people than one seed:
    the paired interval must not shrink (it did by 1/√3 with (seed, subject) clusters)."""
    y_true, y_pred, subjects = _clustered()
    worse = np.where(np.arange(len(y_true)) % 4 == 0, (y_true + 1) % 3, y_pred)
    one = [_result(_loso_frame(y_true, p, subjects)) for p in (y_pred, worse)]
    three = [_result(pd.concat([_loso_frame(y_true, p, subjects, seed=s) for s in range(3)]))
             for p in (y_pred, worse)]
    c1, c3 = compare(*one), compare(*three)
    assert c3.delta["uf1"] == pytest.approx(c1.delta["uf1"])
    width = lambda c: c.ci["uf1"][1] - c.ci["uf1"][0]
    assert width(c3) == pytest.approx(width(c1), rel=0.02)


def test_fewshot_compare_leaves_mcnemar_out_and_says_so():
    frame = _balanced_episodes()
    other = frame.assign(y_pred=0)
    c = compare(_result(frame, "fewshot"), _result(other, "fewshot"))
    assert c.mcnemar is None and "McNemar not computed" in c.markdown()
    assert "p=0 " not in c.markdown() and "| 0 |" not in c.markdown()


def test_common_seeds_pairs_rows_of_different_seed_sets():
    y_true, y_pred, subjects = _clustered()
    two = _result(pd.concat([_loso_frame(y_true, y_pred, subjects, seed=s) for s in (0, 1)]))
    zero = _result(_loso_frame(y_true, y_pred, subjects, seed=0))
    a, b, shared = common_seeds(two, zero)
    assert shared == [0] and a["seeds"] == [0] and {p["seed"] for p in a["predictions"]} == {0}
    assert common_seeds(two, _result(_loso_frame(y_true, y_pred, subjects, seed=5)))[2] == []


def test_one_seed_rows_of_trained_methods_are_marked():
    from mer_bench.report.leaderboard import seeds_label
    assert seeds_label({"seeds": [0], "method": {"name": "protonet"}}) == "0*"
    assert seeds_label({"seeds": [0], "method": {"name": "flow-svm"}}) == "0"
    assert seeds_label({"seeds": [0, 1, 2], "method": {"name": "protonet"}}) == "0,1,2"
