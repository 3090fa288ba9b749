"""The contract checks, run on every registered method, and checks that they can fail."""

from dataclasses import dataclass

import numpy as np
import pytest

from mer_bench.checks import check_method, resolve
from mer_bench.errors import MerBenchError
from mer_bench.features import onset_apex
from mer_bench.method import _METHODS, Method, MethodConfig, Prediction, register_method
from mer_bench.methods import BUILTIN, get_method_class, method_names


@pytest.mark.parametrize("name", method_names())
def test_registered_method_passes_contract(name):
    [cls] = resolve(name)
    failed = [f"{c.name}: {c.detail}" for c in check_method(cls) if not c.ok]
    assert not failed


@dataclass(frozen=True)
class PeekConfig(MethodConfig):
    size: int = 16


class Peeking(Method):
    """A broken adapter: reads the test labels and ignores the support set."""

    Config = PeekConfig

    @property
    def inputs(self):
        return onset_apex(self.config.size, channels=("diff",))

    def fit(self, train, ctx):
        self.rng = np.random.default_rng()  # unseeded: not deterministic

    def predict(self, test, support=None):
        try:
            return Prediction(np.asarray(test.labels))
        except PermissionError:
            return Prediction(self.rng.integers(0, test.n_classes, len(test)))


def test_checks_catch_a_broken_adapter():
    results = {c.name: c.ok for c in check_method(Peeking)}
    assert results["fit/predict shapes, finite scores, labels = argmax"]
    assert not results["test labels never read"]
    assert not results["few-shot support contract"] or not results["deterministic under a seed"]


ADAPTER_FILE = (
    "import numpy as np\n"
    "from mer_bench.features import onset_apex\n"
    "from mer_bench.method import Method, MethodConfig, Prediction, register_method, restrict_to_support\n"
    "@register_method('file-majority-test')\n"
    "class FileMajority(Method):\n"
    "    inputs = onset_apex(16, channels=('diff',))\n"
    "    def fit(self, train, ctx):\n"
    "        self.f = np.bincount(train.labels, minlength=train.n_classes).astype(float)\n"
    "    def predict(self, test, support=None):\n"
    "        s = np.tile(self.f, (len(test), 1))\n"
    "        return Prediction(restrict_to_support(s, support), s)\n"
    "    def parameter_count(self):\n"
    "        return len(self.f)\n")


def test_check_method_loads_a_file(tmp_path):
    path = tmp_path / "my_adapter.py"
    path.write_text(ADAPTER_FILE)
    try:
        [cls] = resolve(str(path))
        assert cls.name == "file-majority-test"
        assert all(c.ok for c in check_method(cls))
    finally:
        _METHODS.pop("file-majority-test", None)


def test_registering_a_taken_name_fails():
    from mer_bench.errors import MerBenchError
    with pytest.raises(MerBenchError, match="'flow-svm' is already registered"):
        register_method("flow-svm")(Peeking)


def test_run_accepts_an_adapter_file_and_records_its_hash(tmp_path, shared_cache):
    import hashlib

    from mer_bench.report.results import load_result
    from mer_bench.runner import RunOptions, run
    path = tmp_path / "my_adapter.py"
    path.write_text(ADAPTER_FILE)
    try:
        result = load_result(run(RunOptions(
            method=str(path), protocol="holdout", preset="smoke", out_dir=tmp_path / "out",
            cache_dir=shared_cache, device="cpu", progress=False, jobs=2,
            protocol_params={"repeats": 2})))
    finally:
        _METHODS.pop("file-majority-test", None)
    assert result["method"]["name"] == "file-majority-test"
    assert result["method"]["file"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    from mer_bench.report.leaderboard import row
    shown = row(tmp_path / "out" / "x.json", result, tmp_path)[0]
    assert shown.startswith("[file-majority-test (file: my_adapter.py ")


@pytest.mark.parametrize("body,says", [
    ("@register_method('flow-svm')\nclass Shadow(Method):\n    pass\n",
     "flow-svm"),  # "the name of an installed method", or "already registered" once imported
    ("def broken(:\n", "importing the adapter file failed (line 2): SyntaxError"),
    ("raise RuntimeError('boom')\n", "importing the adapter file failed: RuntimeError: boom"),
    ("raise SystemExit(0)\n", "importing the adapter file failed: SystemExit: 0"),
])
def test_a_bad_adapter_file_is_one_line_and_exit_2(tmp_path, capsys, body, says):
    from mer_bench.cli import main
    path = tmp_path / "bad_adapter.py"
    path.write_text("from mer_bench.method import Method, register_method\n" + body)
    before = set(_METHODS)
    code = main(["run", "--method", str(path), "--protocol", "loso", "--preset", "smoke",
                 "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and says in err and "Traceback" not in err
    assert err.count("\n") == 1 and str(path) in err
    assert set(_METHODS) == before
    if "flow-svm" in body:  # the built-in still runs under its name
        assert get_method_class("flow-svm").__module__ == "mer_bench.methods.flow_svm"


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_names_map_to_the_module_that_registers_them(name):
    cls = get_method_class(name)
    assert cls.name == name and cls.__module__ == f"mer_bench.methods.{BUILTIN[name]}"


def test_an_unknown_method_names_every_choice():
    with pytest.raises(MerBenchError, match="unknown method 'nope'; choose from attr-contrast, "
                                            "bi-woof, flow-svm, lbp-top, lightmannet, ma2mi, "
                                            "majority, mcnet"):
        get_method_class("nope")


class BadScores(Peeking):
    """Scores with NaN (``bad="nan"``), +inf (``"inf"``) or labels that are not their
    argmax (``"disagree"``)."""

    bad = "nan"

    def predict(self, test, support=None):
        n, c = len(test), test.n_classes
        scores = np.tile(np.linspace(0.0, 1.0, c), (n, 1))
        labels = np.full(n, c - 1)
        if self.bad == "nan":
            scores[0, 0] = np.nan
        elif self.bad == "inf":
            scores[0, 0] = np.inf
        else:
            labels[:] = 0
        return Prediction(labels, scores)


@pytest.mark.parametrize("bad", ["nan", "inf", "disagree"])
def test_check_method_fails_non_finite_scores_and_labels_that_disagree(bad):
    cls = type(f"BadScores_{bad}", (BadScores,), {"bad": bad, "name": f"bad-{bad}"})
    results = {c.name: (c.ok, c.detail) for c in check_method(cls)}
    ok, detail = results["fit/predict shapes, finite scores, labels = argmax"]
    assert not ok and ("argmax" in detail if bad == "disagree" else "NaN or +inf" in detail)


def test_run_refuses_non_finite_scores(tmp_path, monkeypatch):
    from mer_bench.runner import RunOptions, run
    cls = type("BadScoresRun", (BadScores,), {"bad": "nan"})
    monkeypatch.setitem(_METHODS, "bad-nan-run", cls)
    cls.name = "bad-nan-run"
    with pytest.raises(MerBenchError, match="NaN or \\+inf scores"):
        run(RunOptions(method="bad-nan-run", protocol="loso", preset="smoke", out_dir=tmp_path,
                       cache_dir=tmp_path / "cache", progress=False))
