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
    evil = "flow-svm | smoke | 9.999 [9.999, 9.999] |\n### Fake section\n| fake"
    folder = forge(genuine, tmp_path, "loso", lambda d: d["method"].update(name=evil)
                   or d["timing"].update(device="cpu|\nforged", dtype="x|\n### Fake dtype",
                                         threads="2|\n| fake", predict_samples_per_s_batch1="7|\n| fake"),
                   rederive=False)
    text = build(folder, tmp_path / "board.md").read_text()
    lines = text.splitlines()
    assert not any(line.startswith(("### Fake", "| fake")) for line in lines)
    rows = [line for line in lines if "flow-svm" in line and line.startswith("|")]
    assert len(rows) == 1 and "unregistered" in rows[0] and "\\|" in rows[0]


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
    rejected(forge(genuine, tmp_path, "loso", relabel), "y_true values are not the dataset's")


def test_malformed_predictions_are_skipped_with_a_reason_not_a_crash(genuine, tmp_path, capsys):
    folder = forge(genuine, tmp_path, "loso",
                   lambda d: d["predictions"][0].update(y_true="happy"), rederive=False)
    shutil.copy(next(genuine.glob("flow-svm__holdout__*.json")), folder)
    assert [r["protocol"]["name"] for _, r in collect(folder, skip_invalid=True)] == ["holdout"]
    assert "malformed" in capsys.readouterr().err


def test_one_run_saved_twice_gives_one_row(genuine, tmp_path):
    folder = tmp_path / "twice"
    folder.mkdir()
    [source] = genuine.glob("flow-svm__loso__*.json")
    shutil.copy(source, folder / "a.json")
    shutil.copy(source, folder / "b.json")
    assert len(collect(folder, skip_invalid=True)) == 1


def test_preset_and_protocol_version_separate_tables(genuine):
    [(_, result)] = [pr for pr in collect(genuine) if pr[1]["protocol"]["name"] == "loso"]
    fast = json.loads(json.dumps(result))
    fast["method"]["preset"] = "fast"
    newer = json.loads(json.dumps(result))
    newer["protocol"]["version"] = 2
    assert len({table_key(result), table_key(fast), table_key(newer)}) == 3
