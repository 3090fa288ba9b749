"""DESIGN.md calibration of the synthetic twins, on synth-casme2 (5 classes, LOSO):
onset-apex optical flow + a linear model lands well above chance and well below
perfect; frame difference alone scores below optical flow; apex appearance alone is
near chance (UF1 about 0.2 for 5 classes)."""

import numpy as np
import pytest
from sklearn.linear_model import RidgeClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mer_bench.data.datasets import load_dataset
from mer_bench.data.schemes import SCHEMES
from mer_bench.features import onset_apex
from mer_bench.features.cache import FeatureCache
from mer_bench.report.metrics import classification_metrics
from mer_bench.report.results import load_result
from mer_bench.runner import RunOptions, run


def test_flow_svm_well_above_chance_below_perfect(tmp_path, shared_cache):
    result = load_result(run(RunOptions(method="flow-svm", protocol="loso", preset="fast",
                                        out_dir=tmp_path, cache_dir=shared_cache, device="cpu",
                                        progress=False)))
    assert 0.4 < result["metrics"]["uf1"] < 0.95  # chance is about 0.2
    assert result["metrics"]["ci"]["uf1"][0] > 0.3


def loso_uf1(channel: str, cache_dir) -> float:
    """Same linear model (grid-pooled signed and absolute values, ridge) on one input."""
    ds = load_dataset("synth-casme2")
    rows = SCHEMES["casme2-5"].apply(ds.samples)
    x = FeatureCache(cache_dir).materialize(ds, rows, onset_apex(64, channels=(channel,)),
                                            progress=False)
    x = np.concatenate([x, np.abs(x)], axis=1)
    n, c = x.shape[:2]
    features = x.reshape(n, c, 8, 8, 8, 8).mean((3, 5)).reshape(n, -1)
    y, subjects = rows["label"].to_numpy(), rows["subject"].to_numpy()
    pred = np.empty_like(y)
    for s in np.unique(subjects):
        test = subjects == s
        model = make_pipeline(StandardScaler(), RidgeClassifier(alpha=100, class_weight="balanced"))
        pred[test] = model.fit(features[~test], y[~test]).predict(features[test])
    return classification_metrics(y, pred, SCHEMES["casme2-5"].classes)["uf1"]


@pytest.fixture(scope="module")
def uf1_by_input(tmp_path_factory):
    cache = tmp_path_factory.mktemp("calibration")
    return {c: loso_uf1(c, cache) for c in ("flow", "diff", "apex")}


def test_frame_difference_below_optical_flow(uf1_by_input):
    assert uf1_by_input["diff"] < uf1_by_input["flow"] - 0.05


def test_apex_appearance_near_chance(uf1_by_input):
    assert uf1_by_input["apex"] < 0.3
    assert uf1_by_input["flow"] > 0.45
