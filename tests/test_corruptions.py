"""Robustness track: seeded corruption of test clips only, cached apart, own tables."""

import numpy as np
import pandas as pd
import pytest

from mer_bench.data.datasets import load_dataset
from mer_bench.errors import MerBenchError
from mer_bench.features.corruptions import CorruptedDataset, Corruption
from mer_bench.method import _METHODS, register_method
from mer_bench.methods.flow_svm import FlowSVM
from mer_bench.report.leaderboard import build
from mer_bench.report.results import load_result, verify_result
from mer_bench.runner import RunOptions, run


def test_exactly_the_share_is_chosen_and_shares_nest():
    ids = pd.Series([f"d/s{k // 10}/c{k}" for k in range(200)])
    chosen = {p: Corruption("mask", p).chosen(ids) for p in (0.1, 0.3, 0.5)}
    assert [int(c.sum()) for c in chosen.values()] == [20, 60, 100]
    assert np.all(chosen[0.3][chosen[0.1]]) and np.all(chosen[0.5][chosen[0.3]])
    assert np.array_equal(Corruption("mask", 0.3).chosen(ids[::-1]), chosen[0.3][::-1])
    assert not np.array_equal(Corruption("mask", 0.3, seed=1).chosen(ids), chosen[0.3])


@pytest.mark.parametrize("kind", ["mask", "noise", "grayscale"])
def test_corruptions_change_frames_consistently(kind):
    rng = np.random.default_rng(0)
    frames = rng.integers(30, 220, (4, 64, 64, 3)).astype(np.uint8)
    c = Corruption(kind, 0.5)
    out = c.apply(frames, "d/s1/c1")
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(out, c.apply(frames, "d/s1/c1"))  # deterministic per clip
    changed = np.any(out != frames, axis=3)
    if kind == "grayscale":
        assert np.all(out[..., 0] == out[..., 2]) and changed.mean() > 0.9
    else:
        assert 0.01 < changed.mean() < 0.6  # a region, not the whole frame
    if kind == "mask":
        assert np.array_equal(changed[0], changed[3]) and np.all(out[changed] == 0)


def test_corrupted_dataset_has_its_own_fingerprint():
    base = load_dataset("synth-casme2")
    corrupted = CorruptedDataset(base, Corruption("noise", 0.3))
    assert corrupted.fingerprint != base.fingerprint
    assert corrupted.fingerprint == CorruptedDataset(base, Corruption("noise", 0.5)).fingerprint
    sid = base.samples["sample_id"][0]
    assert not np.array_equal(corrupted.frames(sid, np.array([0]), 32),
                              base.frames(sid, np.array([0]), 32))


def test_bad_corruption_arguments_are_refused():
    with pytest.raises(MerBenchError, match="unknown corruption 'blur'"):
        Corruption("blur", 0.3)
    with pytest.raises(MerBenchError, match="--corrupt-share 0 is not in"):
        Corruption("mask", 0)


class TrainSpy(FlowSVM):
    """flow-svm that records the sum of every training and test input it is given."""

    seen: list = []

    def fit(self, train, ctx):
        TrainSpy.seen.append(("train", float(train.x.sum())))
        super().fit(train, ctx)

    def predict(self, test, support=None):
        TrainSpy.seen.append(("test", float(test.x.sum())))
        return super().predict(test, support)


def test_only_test_clips_are_corrupted_and_the_track_has_its_own_table(tmp_path, shared_cache):
    register_method("train-spy-test")(TrainSpy)
    try:
        sums = {}
        for corruption in (None, Corruption("noise", 0.5)):
            TrainSpy.seen.clear()
            path = run(RunOptions(method="train-spy-test", protocol="holdout", preset="smoke",
                                  out_dir=tmp_path, cache_dir=shared_cache, device="cpu",
                                  progress=False, protocol_params={"repeats": 2},
                                  corruption=corruption))
            sums[corruption] = list(TrainSpy.seen)
    finally:
        _METHODS.pop("train-spy-test")
    clean, dirty = sums.values()
    assert [s for s in clean if s[0] == "train"] == [s for s in dirty if s[0] == "train"]
    assert [s for s in clean if s[0] == "test"] != [s for s in dirty if s[0] == "test"]
    result = load_result(path)
    assert verify_result(result) == []
    assert "__noise50__" in path.name and result["corruption"]["kind"] == "noise"
    flagged = {p["sample_id"] for p in result["predictions"] if p["corrupted"]}
    assert result["corruption"]["n_corrupted"] == len(flagged) > 0
    text = build(tmp_path, tmp_path / "board.md").read_text()
    table = text.split("### holdout (repeats=2) · synth-casme2 · casme2-5 · smoke · noise 50 % (synthetic)")[1]
    assert "Robustness track: the test clips named in the title are corrupted" in table.split("###")[0]
