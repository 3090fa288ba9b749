"""Paired comparison: refusal of incomparable results, the paired bootstrap, McNemar."""

import json

import numpy as np
import pytest
from scipy import stats

from mer_bench.cli import main
from mer_bench.errors import MerBenchError
from mer_bench.report.compare import comparable_setting, compare, mcnemar
from mer_bench.report.results import load_result
from mer_bench.runner import RunOptions, run


def _run(tmp_path, cache, method, protocol="loso", **kw):
    return run(RunOptions(method=method, protocol=protocol, preset="smoke", out_dir=tmp_path,
                          cache_dir=cache, device="cpu", progress=False, **kw))


@pytest.fixture(scope="module")
def two_loso_results(tmp_path_factory, shared_cache):
    out = tmp_path_factory.mktemp("compare")
    return out, _run(out, shared_cache, "flow-svm"), _run(out, shared_cache, "majority")


def test_paired_deltas_intervals_and_mcnemar(two_loso_results):
    _, path_a, path_b = two_loso_results
    a, b = load_result(path_a), load_result(path_b)
    c = compare(a, b)
    assert c.n_units == 246
    for k in ("uf1", "uar", "accuracy"):
        assert c.delta[k] == pytest.approx(a["metrics"][k] - b["metrics"][k])
        assert c.ci[k][0] < c.delta[k] < c.ci[k][1]
    assert c.delta["uf1"] > 0 and c.p_value["uf1"] < 0.01  # flow-svm beats 'others' always
    right_a = np.array([p["y_pred"] == p["y_true"] for p in a["predictions"]])
    right_b = np.array([p["y_pred"] == p["y_true"] for p in b["predictions"]])
    assert c.mcnemar["a_only"] == int((right_a & ~right_b).sum())
    assert c.mcnemar["b_only"] == int((~right_a & right_b).sum())


def test_a_result_against_itself_differs_by_nothing(two_loso_results):
    a = load_result(two_loso_results[1])
    c = compare(a, a)
    assert c.delta["uf1"] == 0 and c.ci["uf1"] == [0, 0] and c.p_value["uf1"] == 1
    assert c.mcnemar == {"a_only": 0, "b_only": 0, "p_value": 1.0}


def test_mcnemar_is_the_exact_binomial_test():
    a = np.array([True] * 59 + [False] * 36 + [True] * 100)
    b = np.array([False] * 59 + [True] * 36 + [True] * 100)
    assert mcnemar(a, b)["p_value"] == pytest.approx(stats.binomtest(36, 95, 0.5).pvalue)


def test_incomparable_results_are_refused_naming_the_difference(two_loso_results, tmp_path):
    a = load_result(two_loso_results[1])
    other = json.loads(json.dumps(a)) | {"label_scheme": {"name": "casme2-4", "classes": ["x"]}}
    with pytest.raises(MerBenchError, match="label scheme differs"):
        comparable_setting(a, other)
    fewer = json.loads(json.dumps(a))
    fewer["predictions"] = fewer["predictions"][1:]
    with pytest.raises(MerBenchError, match="1 test units are in only one of them"):
        compare(a, fewer)


def test_cli_refuses_a_scheme_mismatch_with_exit_2(two_loso_results, shared_cache, capsys):
    out, _, _ = two_loso_results
    _run(out, shared_cache, "majority", scheme="casme2-4")
    code = main(["compare", "flow-svm", "majority", "--protocol", "loso", "--scheme", "casme2-4",
                 "--results", str(out)])
    assert code == 2 and "no verified result of 'flow-svm'" in capsys.readouterr().err
    code = main(["compare", "flow-svm", str(next(out.glob("majority__loso*casme2-4*.json"))),
                 "--protocol", "loso", "--results", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "label scheme differs" in err and len(err.strip().splitlines()) == 1


def test_cli_prints_markdown_and_json(two_loso_results, capsys):
    out, _, _ = two_loso_results
    assert main(["compare", "flow-svm", "majority", "--protocol", "loso", "--scheme", "casme2-5",
                 "--results", str(out)]) == 0
    assert "| UF1 | +" in capsys.readouterr().out
    assert main(["compare", "flow-svm", "majority", "--protocol", "loso", "--scheme", "casme2-5",
                 "--results", str(out), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"delta", "ci", "p_value", "mcnemar", "files"}


def test_a_tampered_result_given_by_path_is_refused(two_loso_results, tmp_path, capsys):
    out, path_a, _ = two_loso_results
    forged = json.loads(path_a.read_text())
    wrong = next(p for p in forged["predictions"] if p["y_pred"] != p["y_true"])
    wrong["y_pred"] = wrong["y_true"]  # one more right answer, metrics left as they were
    wrong.pop("scores")  # kept, they would give it away before any metric (schema)
    target = tmp_path / "forged.json"
    target.write_text(json.dumps(forged))
    code = main(["compare", str(target), "majority", "--protocol", "loso", "--scheme", "casme2-5",
                 "--results", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "forged.json: not verified, refused" in err


def test_a_method_without_results_says_what_was_looked_for(two_loso_results, capsys):
    out, _, _ = two_loso_results
    assert main(["compare", "flow-svm", "protonet", "--results", str(out)]) == 2
    err = capsys.readouterr().err
    assert ("no verified result of 'protonet' (any protocol, dataset, scheme and preset) among"
            in err and f"(searched --results {out})" in err)
