"""Contract checks for a method adapter (``mer-bench check-method NAME_OR_PATH``).

On a tiny slice of ``synth-casme2`` (6 subjects; 4 train, 2 test; the ``smoke`` preset;
features computed in memory; ``synth-ckplus`` as the auxiliary macro set) the checks are:
config presets, declared inputs, fit + predict shapes and ranges, no read of the test
labels, few-shot support contract (predictions among the support's classes), and
determinism (two fresh fits with the same seed predict the same). An adapter that
declares the AU task is also fitted on the same clips' ``au12`` targets and must answer
AU masks that agree with its scores, without reading the test targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_bench.context import AuxiliaryLoader, FeatureLoader, RunContext
from mer_bench.data.datasets import load_dataset
from mer_bench.data.samples import SampleColumns, SampleSet
from mer_bench.data.schemes import get_scheme
from mer_bench.features import FeatureSpec
from mer_bench.features.cache import FeatureCache
from mer_bench.method import PRESETS, Method, MethodConfig, Prediction, adapter_call
from mer_bench.methods import get_method_class, load_adapter_file


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


def resolve(name_or_path: str) -> list[type[Method]]:
    """Adapters named by a registered name, or registered by importing a .py file."""
    if name_or_path.endswith(".py"):
        return [get_method_class(n) for n in load_adapter_file(name_or_path)]
    return [get_method_class(name_or_path)]


def tiny_data(specs: tuple[FeatureSpec, ...], stand_in: bool = False, scheme: str = "casme2-5"
              ) -> tuple[SampleSet, SampleSet, SampleSet]:
    """(train, test, support) from 6 synth-casme2 subjects; the test set sealed as in a
    run (shuffled, opaque ids, labels and annotations hidden). ``stand_in``: features
    are uniform random arrays of each spec's declared shape instead of computed ones
    (``mer_bench.bench`` where an operator is missing). ``scheme="au12"``: the AU task's
    sets (the support set then has no meaning and is the training set's first rows)."""
    dataset = load_dataset("synth-casme2")
    chosen = get_scheme(scheme, dataset.name)
    rows = chosen.apply(dataset.samples)
    subjects = sorted(rows["subject"].unique())[:6]
    rows = rows[rows["subject"].isin(subjects)].reset_index(drop=True)
    if stand_in:
        rng = np.random.default_rng(0)
        feats = tuple(rng.random((len(rows), *spec.shape), dtype=np.float32) for spec in specs)
    else:
        feats = FeatureCache(None).materialize_all(dataset, rows, specs, progress=False)
    classes, task = chosen.classes, chosen.task
    is_test = rows["subject"].isin(subjects[4:]).to_numpy()
    train_idx, test_idx = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    support_idx = train_idx[np.isin(rows["label"].to_numpy()[train_idx], [0, 1, 4])]

    table = SampleColumns(rows)

    def pick(idx: np.ndarray) -> SampleSet:
        return SampleSet.gather(table, idx, feats, classes, False, task)

    test, _ = SampleSet.sealed(table, test_idx, feats, classes, np.random.default_rng(0), task)
    return pick(train_idx), test, pick(support_idx)


def check_method(cls: type[Method]) -> list[Check]:
    """Run every contract check on ``cls``; never raises for a failing adapter."""
    checks: list[Check] = []

    def record(name: str, fn) -> object:
        try:
            with adapter_call(cls.name, name):
                value = fn()
            checks.append(Check(name, True))
            return value
        except Exception as err:  # a failing adapter is reported, not raised (exits and
            # endless recursion arrive as MerBenchError from ``adapter_call``)
            checks.append(Check(name, False, f"{type(err).__name__}: {err}"))
            return None

    def presets():
        assert issubclass(cls.Config, MethodConfig), "Config must subclass MethodConfig"
        return {p: cls.Config.from_preset(p) for p in PRESETS}

    configs = record("config presets paper/fast/smoke", presets)
    if not configs:
        return checks
    method = cls(configs["smoke"])

    def inputs():
        assert all(isinstance(s, FeatureSpec) for s in method.input_specs), \
            "inputs must be FeatureSpec or a tuple of them"
        return tiny_data(method.input_specs)

    data = record("inputs are FeatureSpecs", inputs)
    if data is None:
        return checks
    train, test, support = data
    auxiliary = AuxiliaryLoader({"macro": "synth-ckplus"}, method.input_specs, None, 0)
    loader = FeatureLoader("synth-casme2", 0, None)

    def ctx() -> RunContext:
        return RunContext(device="cpu", seed=0, preset="smoke", auxiliary_loader=auxiliary,
                          feature_loader=loader, train_ids=frozenset(train.rows["sample_id"]))

    def fit_predict():
        method.fit(train, ctx())
        pred = method.predict(test)
        assert isinstance(pred, Prediction), \
            f"predict returned {type(pred).__name__}, not a mer_bench.method.Prediction"
        problem = pred.problem(len(test), test.n_classes)
        assert problem is None, problem
        return pred

    first = record("fit/predict shapes, finite scores, labels = argmax", fit_predict)
    if first is None:
        return checks
    checks.append(Check("test labels never read", not test.label_reads,
                        f"read {test.label_reads}" if test.label_reads else ""))

    def support_contract():
        pred = method.predict(test, support)
        allowed = set(np.unique(support.labels).tolist())
        extra = set(np.asarray(pred.labels).tolist()) - allowed
        assert not extra, f"predicted classes {sorted(extra)} not in the support set"
        problem = pred.problem(len(test), test.n_classes, np.unique(support.labels))
        assert problem is None, problem

    record("few-shot support contract", support_contract)

    def determinism():
        again = cls(configs["smoke"])
        again.fit(train, ctx())
        second = again.predict(test)
        assert np.array_equal(first.labels, second.labels), "labels differ between two seeded fits"

    record("deterministic under a seed", determinism)
    record("parameter count", lambda: int(method.parameter_count()))
    if "au" in cls.tasks:
        record("AU task: masks agree with scores, targets never read",
               lambda: _au_contract(cls(configs["smoke"])))
    return checks


def _au_contract(method: Method) -> None:
    """Fit ``method`` on the tiny slice's AU targets; its prediction must be AU masks
    that agree with its scores, and the sealed test targets must stay unread."""
    train, test, _ = tiny_data(method.input_specs, scheme="au12")
    method.fit(train, RunContext(device="cpu", seed=0, preset="smoke",
                                 train_ids=frozenset(train.rows["sample_id"])))
    prediction = method.predict(test)
    assert isinstance(prediction, Prediction), "predict returned no Prediction"
    problem = prediction.problem(len(test), test.n_classes, task="au")
    assert problem is None, problem
    assert not test.label_reads, f"read the test set's {test.label_reads}"

