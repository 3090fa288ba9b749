"""The leaderboard cannot be forged through a result file: every string is escaped, and
every file is checked against the registry and its protocol's regenerated folds."""

import json
import shutil

import pytest

from mer_bench.errors import MerBenchError
from mer_bench.report.leaderboard import build, collect, table_key
from mer_bench.report.results import recompute_metrics
from mer_bench.runner import RunOptions, run


@pytest.fixture(scope="module")
def genuine(tmp_path_factory, shared_cache):
    """Genuine results: flow-svm loso, holdout and fewshot (smoke) on synth-casme2."""
    out = tmp_path_factory.mktemp("genuine")
    for protocol, params in (("loso", {}), ("holdout", {}), ("fewshot", {"episodes": 6})):
        run(RunOptions(method="flow-svm", protocol=protocol, preset="smoke", out_dir=out,
                       cache_dir=shared_cache, device="cpu", progress=False,
                       protocol_params=params))
    return out


def forge(genuine, tmp_path, protocol, edit, rederive=True):
    """A folder with one tampered copy of the genuine ``protocol`` result; the forger
    re-derives the metrics from the edited predictions, as a careful forger would."""
    folder = tmp_path / "forged"
    folder.mkdir(parents=True)
    [source] = genuine.glob(f"flow-svm__{protocol}__*.json")
    data = json.loads(source.read_text())
    edit(data)
    if rederive:
        data["metrics"] = json.loads(json.dumps(recompute_metrics(data)))
    (folder / source.name).write_text(json.dumps(data))
    return folder


def rejected(folder, match):
    with pytest.raises(MerBenchError, match=match):
        collect(folder)
    assert collect(folder, skip_invalid=True) == []


def test_forged_row_through_pipes_and_newlines_stays_one_escaped_cell(genuine, tmp_path):
    folder = forge(genuine, tmp_path, "loso", lambda d: d["method"].update(name="my-method")
                   or d["timing"].update(device_class="cpu|\n### Fake device"),
                   rederive=False)
    text = build(folder, tmp_path / "board.md").read_text()
    lines = text.splitlines()
    assert not any(line.startswith(("### Fake", "| fake")) for line in lines)
    rows = [line for line in lines if "my-method" in line and line.startswith("|")]
    assert len(rows) == 1 and "unregistered" in rows[0]
    assert "on cpu\\| ### Fake device" in text  # the device class, escaped, in the details


def test_a_method_name_or_run_id_outside_the_name_alphabet_is_rejected(genuine, tmp_path):
    evil = "flow-svm | smoke | 9.999 [9.999, 9.999] |\n### Fake section\n| fake"
    rejected(forge(genuine, tmp_path, "loso", lambda d: d["method"].update(name=evil)),
             "'method.name' must be a name")
    rejected(forge(genuine, tmp_path / "id", "loso", lambda d: d.update(run_id=d["run_id"] + ">")),
             "'run_id' must be a name")


def test_synthetic_result_relabelled_real_is_rejected(genuine, tmp_path):
    rejected(forge(genuine, tmp_path, "loso", lambda d: d.update(synthetic=False)),
             "contradicts the registry")


def test_dropped_subject_with_rederived_metrics_is_rejected(genuine, tmp_path):
    def drop(d):
        d["predictions"] = [p for p in d["predictions"] if p["subject"] != "synth-casme2/sub05"]
    rejected(forge(genuine, tmp_path, "loso", drop), "expected test units missing")


@pytest.mark.parametrize("protocol,unit", [("holdout", "repeat3"), ("fewshot", "episode2")])
def test_dropped_repeat_or_episode_is_rejected(genuine, tmp_path, protocol, unit):
    def drop(d):
        d["predictions"] = [p for p in d["predictions"] if p["fold"] != unit]
    rejected(forge(genuine, tmp_path, protocol, drop), "expected test units missing")


def test_seeds_or_k_shot_that_disagree_with_predictions_are_rejected(genuine, tmp_path):
    rejected(forge(genuine, tmp_path, "loso", lambda d: d.update(seeds=[0, 1])),
             "expected test units missing")
    rejected(forge(genuine, tmp_path / "k", "fewshot",
                   lambda d: d["protocol"]["params"].update(k_shot=3)), "test units")


def test_wrong_true_labels_are_rejected(genuine, tmp_path):
    def relabel(d):
        d["predictions"][0]["y_true"] = (d["predictions"][0]["y_true"] + 1) % 5
    rejected(forge(genuine, tmp_path, "loso", relabel), "'y_true' values are not the dataset's")


def test_malformed_predictions_are_skipped_with_a_reason_not_a_crash(genuine, tmp_path, capsys):
    folder = forge(genuine, tmp_path, "loso",
                   lambda d: d["predictions"][0].update(y_true="happy"), rederive=False)
    shutil.copy(next(genuine.glob("flow-svm__holdout__*.json")), folder)
    assert [r["protocol"]["name"] for _, r in collect(folder, skip_invalid=True)] == ["holdout"]
    assert "'y_true' must be an integer" in capsys.readouterr().err


def test_one_run_saved_twice_gives_one_row(genuine, tmp_path):
    folder = tmp_path / "twice"
    folder.mkdir()
    [source] = genuine.glob("flow-svm__loso__*.json")
    shutil.copy(source, folder / "a.json")
    shutil.copy(source, folder / "b.json")
    assert len(collect(folder, skip_invalid=True)) == 1


def test_a_forged_twin_of_a_run_id_cannot_win_by_its_file_name(genuine, tmp_path, capsys):
    """``AAA_….json`` with every prediction set right and the metrics re-derived, beside
    the genuine file of the same run id: both are refused and each names the other."""
    [source] = genuine.glob("flow-svm__loso__*.json")
    data = json.loads(source.read_text())
    for p in data["predictions"]:
        p["y_pred"] = p["y_true"]
        p["scores"] = [float(c == p["y_true"]) for c in range(len(p["scores"]))]
    data["metrics"] = json.loads(json.dumps(recompute_metrics(data)))
    folder = tmp_path / "twins"
    folder.mkdir()
    (folder / f"AAA_{source.name}").write_text(json.dumps(data))
    shutil.copy(source, folder)
    assert collect(folder, skip_invalid=True) == []
    err = capsys.readouterr().err
    assert err.count("is also claimed, with other content") == 2 and "AAA_" in err


@pytest.mark.parametrize("edit,says", [
    (lambda d: d.update(predictions=json.loads("[" * 20 + "]" * 20)), "nested deeper"),
    (lambda d: d.update(method="flow-svm"), "'method' must be an object"),
    (lambda d: d.update(timing=[]), "'timing' must be an object"),
    (lambda d: d["predictions"][0].update(y_pred=1.0), "'y_pred' must be an integer"),
    (lambda d: d["predictions"][0].update(y_pred=True), "'y_pred' must be an integer"),
    (lambda d: d.update(synthetic="yes"), "'synthetic' must be true or false"),
    (lambda d: d["predictions"][0].update(corrupted=True), "only a boolean on the robustness"),
    (lambda d: d["predictions"][0].update(scores=[float("nan")] * 5), "finite numbers or null"),
    (lambda d: d["method"].update(preset="turbo"), "unknown preset"),
    (lambda d: d["folds"][0].update(train_subjects=d["folds"][0]["test_subjects"]),
     "on both the training and the test side"),
    (lambda d: d["timing"].update(fit_seconds=-1.0), "'timing.fit_seconds' must be a finite"),
    (lambda d: d["timing"].update(fit_seconds=float("inf")), "'timing.fit_seconds' must be"),
    (lambda d: d["timing"].update(fit_seconds=1e308), "'timing.fit_seconds' must be"),
    (lambda d: d["timing"].update(threads="2|\n| fake"), "'timing.threads' must be"),
    (lambda d: d["seeds"].append(-1), "'seeds' must be 1 to 64 distinct integers"),
])
def test_malformed_result_files_are_rejected_with_a_reason(genuine, tmp_path, capsys, edit, says):
    """Each is refused with the reason before anything reads it, and nothing else is
    affected: the genuine holdout result beside it is still shown."""
    folder = forge(genuine, tmp_path, "loso", edit, rederive=False)
    shutil.copy(next(genuine.glob("flow-svm__holdout__*.json")), folder)
    shown = collect(folder, skip_invalid=True)
    assert [r["protocol"]["name"] for _, r in shown] == ["holdout"]
    assert says in capsys.readouterr().err
    build(folder, tmp_path / "board.md", skip_invalid=True)


def test_json_nested_past_the_parser_is_rejected_not_a_crash(genuine, tmp_path, capsys):
    folder = tmp_path / "deep"
    folder.mkdir()
    (folder / "deep.json").write_text('{"schema": "mer-bench/result/v1", "predictions": '
                                      + "[" * 200_000 + "]" * 200_000 + "}")
    assert collect(folder, skip_invalid=True) == []
    assert "nested deeper" in capsys.readouterr().err


def test_a_y_pred_that_is_not_the_argmax_of_its_scores_is_rejected(genuine, tmp_path):
    """An all-correct forgery that keeps the model's scores is caught."""
    def all_right(d):
        for p in d["predictions"]:
            p["y_pred"] = p["y_true"]
    rejected(forge(genuine, tmp_path, "loso", all_right), "not the argmax of the stored scores")


def test_a_missing_results_folder_writes_nothing(tmp_path, capsys):
    from mer_bench.cli import main
    board = tmp_path / "LEADERBOARD.md"
    board.write_text("kept")
    assert main(["leaderboard", "build", "--results", str(tmp_path / "nonexistent"),
                 "--output", str(board), "--no-plots"]) == 2
    assert board.read_text() == "kept" and "no such folder" in capsys.readouterr().err


def test_preset_and_protocol_version_separate_tables(genuine):
    [(_, result)] = [pr for pr in collect(genuine) if pr[1]["protocol"]["name"] == "loso"]
    fast = json.loads(json.dumps(result))
    fast["method"]["preset"] = "fast"
    newer = json.loads(json.dumps(result))
    newer["protocol"]["version"] = 2
    assert len({table_key(result), table_key(fast), table_key(newer)}) == 3


def test_a_method_name_in_mathtext_is_drawn_as_text(genuine, tmp_path):
    """Plots take names literally: a name that is a broken formula cannot stop a build."""
    folder = forge(genuine, tmp_path, "loso",
                   lambda d: d["timing"].update(device_class="$\\frac{a}{$"), rederive=False)
    board = build(folder, tmp_path / "board.md", plots=True)
    assert "frac{a}{" in board.read_text()
    assert list((tmp_path / "plots").glob("*.png"))
    import matplotlib
    assert matplotlib.rcParams["text.parse_math"]  # axis tick labels (10^2) still typeset
