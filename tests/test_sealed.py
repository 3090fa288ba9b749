"""The test set is sealed: no label, annotation or label-carrying id reaches a method,
and nothing the run context offers during fit reaches a test clip."""

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from mer_bench.context import FeatureLoader, RunContext
from mer_bench.data.datasets import load_dataset
from mer_bench.data.samples import HIDDEN_ON_TEST, SampleColumns, SampleSet, unshuffle
from mer_bench.errors import MerBenchError
from mer_bench.features import onset_apex
from mer_bench.method import _METHODS, Method, MethodConfig, Prediction, register_method
from mer_bench.report.results import load_result
from mer_bench.runner import RunOptions, run


@dataclass(frozen=True)
class SnoopConfig(MethodConfig):
    size: int = 16


class LabelSnooper(Method):
    """Ignores the features; learns which token of every visible column (ids, names,
    frame numbers, ...) goes with which class, and votes with the test rows' tokens.
    Also votes with the row position, in case test rows arrive sorted by class."""

    Config = SnoopConfig

    @property
    def inputs(self):
        return onset_apex(self.config.size, channels=("diff",))

    @staticmethod
    def tokens(row: pd.Series) -> set[str]:
        found = {f"pos:{row.name}"}
        for column, value in row.items():
            found |= {f"{column}:{tok}" for tok in re.split(r"[/_\-. ]", str(value)) if tok}
        return found

    def fit(self, train, ctx):
        self.votes: dict[str, np.ndarray] = {}
        for (_, row), label in zip(train.rows.iterrows(), train.labels):
            for tok in self.tokens(row):
                self.votes.setdefault(tok, np.zeros(train.n_classes))[label] += 1

    def predict(self, test, support=None):
        scores = np.zeros((len(test), test.n_classes))
        for k, (_, row) in enumerate(test.rows.iterrows()):
            for tok in self.tokens(row):
                counts = self.votes.get(tok)
                if counts is not None and counts.sum():
                    scores[k] += np.log1p(counts) - np.log1p(counts.sum())
        return Prediction(scores.argmax(1).astype(np.int64), scores)


@pytest.fixture
def snooper():
    register_method("label-snooper-test")(LabelSnooper)
    yield
    _METHODS.pop("label-snooper-test")


def test_label_snooper_scores_at_chance_on_synth_smic(tmp_path, shared_cache, snooper):
    """SMIC clip names carry the label (s1_ne_01); through opaque ids, hidden columns and
    shuffled rows, a snooper gets nothing: UAR at chance (1/3), not 1.0."""
    result = load_result(run(RunOptions(
        method="label-snooper-test", protocol="loso", dataset="synth-smic", preset="smoke",
        out_dir=tmp_path, cache_dir=shared_cache, device="cpu", progress=False)))
    assert result["metrics"]["uar"] < 0.45


def test_sealed_set_hides_labels_annotations_and_ids():
    rows = load_dataset("synth-smic").samples.head(12).assign(label=np.arange(12) % 3)
    x = np.arange(12, dtype=np.float32)[:, None]
    test, order = SampleSet.sealed(SampleColumns(rows), np.arange(12), (x,),
                                   ("negative", "positive", "surprise"), np.random.default_rng(0))
    assert not set(HIDDEN_ON_TEST) & set(test.rows.columns)
    assert list(test.rows["sample_id"]) == [f"test-{k:05d}" for k in range(12)]
    assert not set(test.rows["sample_id"]) & set(rows["sample_id"])
    assert sorted(order.tolist()) == list(range(12)) and order.tolist() != list(range(12))
    assert np.array_equal(test.x[:, 0], x[order, 0])
    assert np.array_equal(unshuffle(test.x[:, 0], order), x[:, 0])
    with pytest.raises(PermissionError):
        test.labels


def test_materialize_refuses_clips_outside_the_training_set():
    ctx = RunContext(feature_loader=FeatureLoader("synth-casme2", 0, None),
                     train_ids=frozenset({"synth-casme2/sub01/EP02_01f"}))
    spec = onset_apex(16, channels=("diff",))
    assert ctx.materialize(spec, ["synth-casme2/sub01/EP02_01f"]).shape == (1, 3, 16, 16)
    with pytest.raises(MerBenchError, match="'synth-casme2/sub02/.*' is not a training clip"):
        ctx.materialize(spec, ["synth-casme2/sub01/EP02_01f", "synth-casme2/sub02/EP01_11f"])


class ClipPeeker(LabelSnooper):
    """Asks the context for features of every clip of the dataset during fit."""

    def fit(self, train, ctx):
        everything = load_dataset("synth-casme2").samples["sample_id"].tolist()
        ctx.materialize(self.inputs, everything)


def test_a_run_stops_a_method_that_materializes_test_clips(tmp_path, shared_cache):
    register_method("peeker-test")(ClipPeeker)
    try:
        with pytest.raises(MerBenchError, match="is not a training clip of this fold"):
            run(RunOptions(method="peeker-test", protocol="holdout", preset="smoke",
                           out_dir=tmp_path, cache_dir=shared_cache, device="cpu",
                           progress=False, protocol_params={"repeats": 2}))
    finally:
        _METHODS.pop("peeker-test")


def test_episode_shrink_is_announced_and_recorded(tmp_path, shared_cache):
    """protonet asks for 5-way 12-shot 12-query episodes; most casme2-5 classes have
    fewer than 24 training clips, so N shrinks: a warning and an entry in the result."""
    with pytest.warns(UserWarning, match=r"meta-training episodes shrank in 2 of 2 tasks: "
                                         r"asked 5-way 12-shot 12-query, down to \d-way"):
        path = run(RunOptions(method="protonet", protocol="holdout", preset="smoke",
                              out_dir=tmp_path, cache_dir=shared_cache, device="cpu",
                              progress=False, protocol_params={"repeats": 2},
                              method_overrides={"k_shot": 12, "q_query": 12}))
    shrink = load_result(path)["episode_shrink"]
    assert shrink["requested"]["n_way"] == 5 and shrink["effective"]["n_way"] < 5
    assert shrink["tasks"] == 2
