"""The AU task: AU cells as bit masks, the ``au12`` scheme, ``au-lodo`` / ``au-loso``,
MEB's F1 figures (checked against scikit-learn), the runner's task checks, AU result
files (schema, verification, compare, leaderboard), and a CNN's AU head that learns."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from mer_bench.context import RunContext
from mer_bench.data.datasets import load_dataset
from mer_bench.data.facs import CD6ME_AUS, au_mask, au_vector, mask_matrix, matrix_masks
from mer_bench.data.samples import SampleSet
from mer_bench.data.schemes import get_scheme
from mer_bench.errors import MerBenchError
from mer_bench.method import Prediction, au_prediction
from mer_bench.methods import build_method
from mer_bench.protocols import get_protocol
from mer_bench.report.au_metrics import au_summary
from mer_bench.report.compare import compare
from mer_bench.report.leaderboard import collect, render
from mer_bench.report.results import load_result, verify_result
from mer_bench.report.schema import schema_problems
from mer_bench.runner import RunOptions, run

AUS = tuple(f"AU{a}" for a in CD6ME_AUS)


@pytest.fixture(scope="module")
def cd6me_table() -> pd.DataFrame:
    dataset = load_dataset("synth-cd6me")
    return get_scheme(None, dataset.name, "au").apply(dataset.samples)


def test_masks_round_trip_and_follow_the_cells():
    matrix = np.random.default_rng(0).integers(0, 2, size=(50, 12))
    assert (mask_matrix(matrix_masks(matrix), 12) == matrix).all()
    assert au_mask("AU1+R2+4C+L14") == 0b1000000111  # AU1, AU2, AU4 (bits 0-2), AU14 (bit 9)
    assert au_mask("R12 or R14") == 0  # unsure which: neither is a target


def test_au12_keeps_every_clip_of_the_six_twins(cd6me_table):
    assert len(cd6me_table) == 1964  # MEB's real composite has 2,031 (README: twin sizes)
    assert cd6me_table["dataset"].nunique() == 6
    vectors = np.stack([au_vector(cell) for cell in cd6me_table["aus"]])
    assert (mask_matrix(cd6me_table["label"].to_numpy(), 12) == vectors).all()
    assert vectors.sum(0).min() > 0  # every AU of the set occurs


def test_scheme_task_must_match_the_protocol():
    with pytest.raises(MerBenchError, match="'casme2-5' is for the emotion task, not 'au'"):
        get_scheme("casme2-5", "synth-casme2", "au")
    with pytest.raises(MerBenchError, match="does not fit dataset 'synth-smic'"):
        get_scheme(None, "synth-smic", "au")  # SMIC codes no AUs


def test_au_lodo_holds_out_each_whole_dataset_once(cd6me_table):
    folds = list(get_protocol("au-lodo").folds(cd6me_table, 0))
    by_dataset = cd6me_table.set_index("sample_id")["dataset"]
    assert len(folds) == 6
    assert sorted(s for f in folds for s in f.test_ids) == sorted(cd6me_table["sample_id"])
    for fold in folds:
        assert by_dataset[list(fold.test_ids)].nunique() == 1
        assert by_dataset[fold.test_ids[0]] not in set(by_dataset[list(fold.train_ids)])
    with pytest.raises(MerBenchError, match="choose from cd6me or their synth- twins"):
        get_protocol("au-lodo").check_dataset("synth-casme2")


def _random_predictions(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = (rng.random((n, 12)) < np.linspace(0.05, 0.5, 12)).astype(int)
    guess = np.where(rng.random((n, 12)) < 0.7, truth, 1 - truth)
    guess[:, 0] = 0  # an AU never predicted: its positive F1 is 0
    return pd.DataFrame({"sample_id": [f"c{i}" for i in range(n)],
                         "dataset": np.where(np.arange(n) < 120, "a", "b"),
                         "subject": [f"s{i % 30}" for i in range(n)], "seed": 0, "fold": "f",
                         "y_true": matrix_masks(truth), "y_pred": matrix_masks(guess)}), truth, guess


def test_f1_figures_are_scikit_learns_and_mebs():
    frame, truth, guess = _random_predictions()
    metrics = au_summary(frame, AUS)
    for k, au in enumerate(AUS):
        assert metrics["per_au"][au]["f1"] == pytest.approx(
            f1_score(truth[:, k], guess[:, k], average="binary", zero_division=0))
        assert metrics["per_au"][au]["f1_meb"] == pytest.approx(
            f1_score(truth[:, k], guess[:, k], average="macro", zero_division=0))
    per_dataset = []
    for name in ("a", "b"):
        rows = (frame["dataset"] == name).to_numpy()
        binary = np.mean([f1_score(truth[rows, k], guess[rows, k], zero_division=0)
                          for k in range(12)])
        assert metrics["per_dataset"][name]["au_f1"] == pytest.approx(binary)
        per_dataset.append(binary)
    assert metrics["au_f1"] == pytest.approx(np.mean(per_dataset))
    lo, hi = metrics["ci"]["au_f1"]
    assert lo < metrics["au_f1"] < hi and hi - lo < 0.2


def test_every_au_present_scores_2p_over_1_plus_p():
    frame, truth, _ = _random_predictions()
    frame["y_pred"] = 2 ** 12 - 1
    metrics = au_summary(frame, AUS)
    p = truth.mean(0)
    assert [metrics["per_au"][a]["f1"] for a in AUS] == pytest.approx(2 * p / (1 + p))
    assert [metrics["per_au"][a]["f1_meb"] for a in AUS] == pytest.approx(p / (1 + p))


def test_au_predictions_must_agree_with_their_scores():
    scores = np.array([[0.5, -1.0, 2.0], [-0.1, -0.2, -0.3]])
    good = au_prediction(scores)
    assert good.labels.tolist() == [0b101, 0] and good.problem(2, 3, task="au") is None
    bad = Prediction(np.array([0b001, 0]), scores)
    assert "are not their scores > 0" in bad.problem(2, 3, task="au")
    assert "AU masks outside 0..7" in Prediction(np.array([8, 0])).problem(2, 3, task="au")


def _options(tmp_path, cache, method, protocol="au-loso", **kw):
    return RunOptions(method=method, protocol=protocol, preset="smoke", out_dir=tmp_path / "out",
                      cache_dir=cache, device="cpu", progress=False,
                      dataset=kw.pop("dataset", "synth-samm"), **kw)


def test_an_emotion_only_method_is_refused_with_the_reason(tmp_path, shared_cache):
    with pytest.raises(MerBenchError, match="'protonet' predicts emotion; protocol 'au-loso' "
                                            "evaluates au"):
        run(_options(tmp_path, shared_cache, "protonet"))


@pytest.fixture(scope="module")
def au_results(tmp_path_factory):
    """flow-svm and majority (every AU present) under au-loso on the SAMM twin (smoke)."""
    folder = tmp_path_factory.mktemp("au-results")
    cache = tmp_path_factory.mktemp("au-cache")
    paths = [run(_options(folder, cache, m)) for m in ("flow-svm", "majority")]
    return folder / "out", [load_result(p) for p in paths]


def test_au_runs_verify_and_the_svm_beats_the_constant(au_results):
    _, (svm, constant) = au_results
    for result in (svm, constant):
        assert verify_result(result) == [] and schema_problems(result) == []
        assert result["label_scheme"] == {"name": "au12", "classes": list(AUS), "task": "au"}
    fitted = svm["diagnostics"]["summary"]["fitted model"]
    assert fitted["train_au_f1"] > fitted["constant_au_f1"]
    c = compare(svm, constant)
    assert c.delta["au_f1"] > 0.1 and c.p_value["au_f1"] < 0.05
    assert c.mcnemar is None and "binary decision per AU" in c.no_mcnemar


def test_au_leaderboard_table_ranks_by_mean_au_f1(au_results):
    folder, (svm, _) = au_results
    text = render(collect(folder), folder)
    assert "Mean AU F1 [95% CI]" in text and "MEB F1 (two-class) [95% CI]" in text
    table = text.split("### au-loso · synth-samm · au12 · smoke")[1].split("Details:")[0]
    rows = [line for line in table.splitlines() if line.startswith("| [")]
    assert rows[0].startswith("| [flow-svm]") and "best" in rows[0]
    assert f"{svm['metrics']['au_f1']:.3f}" in rows[0]


def test_a_forged_au_record_is_caught(au_results):
    _, (svm, _) = au_results
    forged = json.loads(json.dumps(svm))
    record = next(p for p in forged["predictions"] if p["y_pred"] != p["y_true"])
    record["y_pred"] = record["y_true"]  # right answer, scores left as the model gave them
    assert any("stored scores are > 0" in p for p in schema_problems(forged))
    forged = json.loads(json.dumps(svm))
    forged["predictions"][0]["y_true"] = 2 ** 12
    assert any("AU mask outside 0..4095" in p for p in schema_problems(forged))


def _planted_au_set(n: int, strength: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 (n, 3, 28, 28) noise maps and uint8 (n, 3) AU targets: AU k present adds a
    bump of ``strength`` to its own 7 x 7 region of channel k."""
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, 3)) < 0.4).astype(np.uint8)
    x = rng.normal(0, 1, (n, 3, 28, 28)).astype(np.float32)
    for k in range(3):
        x[:, k, 4 * k + 2:4 * k + 9, 10:17] += strength * targets[:, k, None, None]
    return x, targets


def _au_set(x: np.ndarray, targets: np.ndarray, hide: bool) -> SampleSet:
    rows = pd.DataFrame({"sample_id": [f"c{i}" for i in range(len(x))],
                         "subject": [f"s{i % 6}" for i in range(len(x))],
                         "label": matrix_masks(targets)})
    return SampleSet.build(rows, (x,), ("AU1", "AU2", "AU4"), hide_labels=hide, task="au")


@pytest.mark.parametrize("strength,expect_learned", [(1.5, True), (0.0, False)])
def test_ststnet_au_head_learns_a_planted_au_and_not_noise(strength, expect_learned):
    x, targets = _planted_au_set(96, strength, seed=0)
    held_x, held_targets = _planted_au_set(96, strength, seed=1)
    method = build_method("ststnet", "fast", epochs=60, batch_size=32)  # fast: lr 2e-3
    method.fit(_au_set(x, targets, hide=False), RunContext(seed=0))
    guess = mask_matrix(method.predict(_au_set(held_x, held_targets, hide=True)).labels, 3)
    f1 = np.mean([f1_score(held_targets[:, k], guess[:, k], zero_division=0) for k in range(3)])
    assert (f1 >= 0.75) if expect_learned else (f1 < 0.6), f1


def test_list_says_which_methods_predict_aus(capsys):
    from mer_bench.cli import main
    assert main(["list", "methods"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "[emotion, au]" in lines["flow-svm"] and "[emotion, au]" in lines["ststnet"]
    assert "[emotion]" in lines["mcnet"] and "[emotion]" in lines["lightmannet"]


def test_the_run_command_prints_mean_au_f1_with_its_interval_and_f1_per_au(
        tmp_path, shared_cache, capsys):
    from mer_bench.cli import main
    code = main(["run", "--method", "majority", "--protocol", "au-loso", "--dataset",
                 "synth-samm", "--preset", "smoke", "--out", str(tmp_path),
                 "--cache-dir", str(shared_cache)])
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"mean AU F1 0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]  MEB F1 \(two-class\)", out)
    assert re.search(r"F1 per AU: AU1 0\.\d{3}, AU2 0\.\d{3}, .*AU17 0\.\d{3}", out)
