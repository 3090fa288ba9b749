import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
)

from mer_bench.protocols import get_protocol
from mer_bench.report.metrics import (
    classification_metrics,
    confusion,
    t_interval,
)

CLASSES = ("a", "b", "c", "d")


@pytest.mark.parametrize("seed", range(5))
def test_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, 60)
    y_pred = np.where(rng.random(60) < 0.5, y_true, rng.integers(0, 4, 60))
    m = classification_metrics(y_true, y_pred, CLASSES)
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["uf1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert m["uar"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert m["confusion"] == confusion_matrix(y_true, y_pred, labels=range(4)).tolist()


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_class_absent_from_y_true_is_kept_in_the_matrix():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 3, 1, 1])  # class 2 absent everywhere, class 3 only predicted
    m = classification_metrics(y_true, y_pred, CLASSES)
    assert np.shape(m["confusion"]) == (4, 4)
    assert m["per_class"]["c"] == {"f1": None, "recall": None, "support": 0}
    assert m["per_class"]["d"]["f1"] == 0.0
    assert m["uf1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert m["uar"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))


def test_pooling_is_not_averaging_folds():
    """MEGC2019: TP/FP/FN summed over folds; a fold missing a class changes nothing."""
    fold1 = (np.array([0, 0, 1]), np.array([0, 1, 1]))
    fold2 = (np.array([2, 2, 2, 0]), np.array([2, 2, 0, 0]))  # class 1 absent from this fold
    y_true = np.concatenate([fold1[0], fold2[0]])
    y_pred = np.concatenate([fold1[1], fold2[1]])
    pooled = classification_metrics(y_true, y_pred, CLASSES[:3])
    averaged = np.mean([classification_metrics(t, p, CLASSES[:3])["uf1"] for t, p in (fold1, fold2)])
    assert pooled["uf1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert pooled["uf1"] != pytest.approx(averaged)


def test_t_interval_matches_scipy():
    values = np.array([0.61, 0.55, 0.7, 0.58, 0.66])
    got = t_interval(values)
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert got["ci"] == pytest.approx([lo, hi])
    assert got["sd"] == pytest.approx(values.std(ddof=1))
    assert t_interval([0.5])["ci"] == [0.5, 0.5]


def test_confusion_rows_are_truth():
    assert confusion([0, 1, 1], [1, 1, 0], 2).tolist() == [[0, 1], [1, 1]]


def _predictions(**columns) -> pd.DataFrame:
    n = len(columns["y_true"])
    base = {"sample_id": [f"s{i}" for i in range(n)], "dataset": ["d"] * n,
            "subject": [f"p{i % 4}" for i in range(n)], "fold": ["f0"] * n, "seed": [0] * n,
            "episode": [None] * n}
    return pd.DataFrame({**base, **columns})


def test_majority_scores_uar_one_over_classes():
    frame = _predictions(y_true=[0, 1, 2, 2, 1, 0, 2, 2], y_pred=[2] * 8)
    m = get_protocol("loso").summarize(frame, CLASSES[:3])
    assert m["uar"] == pytest.approx(1 / 3)


def test_repeated_summary_is_mean_over_repeats():
    frame = _predictions(y_true=[0, 1, 0, 1, 0, 1, 0, 1], y_pred=[0, 1, 0, 1, 0, 0, 0, 0],
                         fold=["r0"] * 4 + ["r1"] * 4)
    m = get_protocol("holdout").summarize(frame, CLASSES[:2])
    assert m["accuracy"] == pytest.approx((1.0 + 0.5) / 2)
    low, high = m["ci_repeats"]["accuracy"]
    assert m["n_repeats"] == 2 and low < 0.75 < high
    assert m["ci"]["accuracy"] is None  # 4 subjects: too few for the headline interval


def test_seed_spread_reported_apart_from_bootstrap():
    frame = pd.concat([_predictions(y_true=[0, 1, 0, 1], y_pred=[0, 1, 0, 1]),
                       _predictions(y_true=[0, 1, 0, 1], y_pred=[0, 0, 0, 1], seed=[1] * 4)])
    m = get_protocol("loso").summarize(frame, CLASSES[:2])
    assert set(m["per_seed"]) == {"0", "1"}
    assert m["seed_spread"]["accuracy"]["mean"] == pytest.approx(0.875)
    assert "ci" in m and m["ci"] != m["seed_spread"]["accuracy"]["ci"]


def _episodes_with_subject_effects(n_seeds: int = 1) -> pd.DataFrame:
    """Query predictions of 200 3-way episodes per seed over 10 held-out subjects per seed,
    whose accuracy differs by person (the variation episodes of one pool do not see)."""
    rng = np.random.default_rng(0)
    skill = rng.uniform(0.2, 0.95, 10 * n_seeds)
    rows = []
    for seed in range(n_seeds):
        for e in range(200):
            for _ in range(15):
                s = int(rng.integers(0, 10)) + 10 * seed
                y = int(rng.integers(0, 3))
                pred = y if rng.random() < skill[s] else int(rng.integers(0, 3))
                rows.append({"seed": seed, "episode": e, "subject": f"s{s}", "y_true": y,
                             "y_pred": pred})
    return pd.DataFrame(rows)


def test_fewshot_headline_interval_is_a_subject_bootstrap_wider_than_episodes():
    from mer_bench.protocols.fewshot import episodic_summary
    m = episodic_summary(_episodes_with_subject_effects(), ("a", "b", "c"))
    width = lambda ci: ci[1] - ci[0]
    assert width(m["ci"]["uf1"]) > 2 * width(m["ci_episodes"]["uf1"])
    assert m["ci"]["uf1"][0] < m["uf1"] < m["ci"]["uf1"][1]
    assert "2000 draws" in m["ci_method"] and "per_seed" not in m


def test_fewshot_seeds_resample_their_own_subjects_and_spread_apart():
    from mer_bench.protocols.fewshot import episodic_summary
    m = episodic_summary(_episodes_with_subject_effects(n_seeds=2), ("a", "b", "c"))
    assert set(m["per_seed"]) == {"0", "1"} and m["seed_spread"]["uf1"]["n"] == 2
    means = [m["per_seed"][s]["uf1"] for s in ("0", "1")]
    assert m["uf1"] == pytest.approx(np.mean(means))
