"""Result verification (tamper rejection) and the markdown leaderboard."""

import json
import shutil
from pathlib import Path

import pytest

from mer_bench.errors import MerBenchError
from mer_bench.report.leaderboard import build, collect, markdown_table
from mer_bench.report.results import load_result, verify_result, written_here
from mer_bench.runner import RunOptions, run


@pytest.fixture(scope="module")
def result_dir(tmp_path_factory, shared_cache):
    out = tmp_path_factory.mktemp("results")
    for method in ("flow-svm", "majority"):
        run(RunOptions(method=method, protocol="loso", preset="smoke", out_dir=out,
                       cache_dir=shared_cache, device="cpu", progress=False))
    return out


def copy_of(result_dir, tmp_path):
    target = tmp_path / "results"
    shutil.copytree(result_dir, target)
    return target, sorted(target.glob("flow-svm*.json"))[0]


def test_untouched_results_verify(result_dir):
    for path in result_dir.glob("*.json"):
        assert verify_result(load_result(path)) == []


@pytest.mark.parametrize("tamper", ["prediction", "metric", "ci", "per_subject"])
def test_tampered_result_is_rejected(result_dir, tmp_path, tamper):
    folder, path = copy_of(result_dir, tmp_path)
    data = json.loads(path.read_text())
    if tamper == "prediction":
        wrong = next(p for p in data["predictions"] if p["y_pred"] != p["y_true"])
        wrong["y_pred"] = wrong["y_true"]
        wrong.pop("scores")  # kept, they would give it away first (test_forgery)
    elif tamper == "metric":
        data["metrics"]["uf1"] += 0.05
    elif tamper == "ci":
        data["metrics"]["ci"]["uar"][1] = 0.99
    else:
        first = next(iter(data["metrics"]["per_subject"].values()))
        first["accuracy"] = 1.0
    path.write_text(json.dumps(data))
    assert verify_result(load_result(path))
    with pytest.raises(MerBenchError, match=f"{path.name}.*does not match"):
        build(folder, tmp_path / "board.md")
    skipped = build(folder, tmp_path / "board.md", skip_invalid=True).read_text()
    assert "majority" in skipped and "| flow-svm" not in skipped


def test_a_fresh_result_is_trusted_only_while_untouched(result_dir):
    """The result a run just wrote is not verified twice in its process; once the file
    changes (even a forgery of the same length), it is verified in full again."""
    path = sorted(result_dir.glob("flow-svm*.json"))[0]
    assert written_here(path)
    text = path.read_text()
    forged = text.replace('"y_pred": 0', '"y_pred": 1', 1)
    assert forged != text and len(forged) == len(text)
    path.write_text(forged)
    try:
        assert not written_here(path)
        with pytest.raises(MerBenchError, match=f"{path.name}.*(does not match|argmax)"):
            collect(result_dir)
    finally:
        path.write_text(text)


def test_malformed_file_is_named(result_dir, tmp_path):
    folder, path = copy_of(result_dir, tmp_path)
    data = json.loads(path.read_text())
    del data["predictions"][3]["y_true"]
    path.write_text(json.dumps(data))
    with pytest.raises(MerBenchError, match="prediction 3 lacks \\['y_true'\\]"):
        load_result(path)


def test_leaderboard_has_a_synthetic_section_and_one_table_per_setting(result_dir, tmp_path):
    text = build(result_dir, tmp_path / "LEADERBOARD.md").read_text()
    head, rest = text.split("## Verified on real data")
    for kind in ("Verified on real data", "Reported by papers", "Synthetic twins"):
        assert kind in head  # the first screen names the three kinds of rows
    real, rest = rest.split("## Reported by papers")
    reported, rest = rest.split("## Synthetic twins")
    synthetic = rest.split("## Legend")[0]
    assert "None yet" in real  # the twins' rows are never real-data rows
    assert "### loso · synth-casme2 · casme2-5 · smoke (synthetic)" in synthetic
    assert "A *synthetic twin* is generated data" in synthetic
    assert synthetic.count("[What a synthetic twin is and is not](#synthetic)") == \
        synthetic.count("\n### ") >= 1  # every synthetic table links the note
    rows = [line for line in synthetic.splitlines() if line.startswith(("| [flow-svm]", "| [majority]"))]
    assert len(rows) == 2 and rows[0].startswith("| [flow-svm](../results0/flow-svm__loso__")  # linked, by UF1
    assert "0.200 [" in rows[1]  # majority's UAR
    assert rows[0].rstrip(" |").endswith("best") and "(p\\<0.0005)" in rows[1]  # paired vs best
    assert "(reported)" not in synthetic  # papers' numbers never beside twins
    # each reported row: the paper's own metric name, the paper linked
    line = next(x for x in reported.splitlines() if x.startswith("| mcnet (reported)")
                and "casme2-4" in x)
    assert "F1 (paper's) 0.810 · accuracy 0.816" in line
    assert "[MCNet paper, Table 3](https://doi.org/10.1117/1.JEI.33.2.023014)" in line
    assert "UF1 0.920" not in reported and "F1 (paper's) 0.920" in reported  # LightmanNet CDE
    for table in [t for t in text.split("\n\n") if t.startswith("| ")]:
        assert table.splitlines()[0].count("|") - 1 <= 8  # at most 8 columns


def test_reported_number_names_the_verified_real_row_of_its_setting_with_the_gap():
    from mer_bench.report.leaderboard import reported_rows
    from mer_bench.report.reported import ReportedResult
    entry = ReportedResult("mcnet", "casme2", "casme2-4", "loso", 0.8163, 0.81,
                           source="MCNet paper, Table 3")
    reproduced = {"method": {"name": "mcnet", "preset": "paper"}, "synthetic": False,
                  "protocol": {"name": "loso", "params": {}}, "dataset": "casme2", "datasets": ["casme2"],
                  "label_scheme": {"name": "casme2-4"}, "metrics": {"uf1": 0.7}}
    [row] = reported_rows([entry], [(Path("x.json"), reproduced)], cde=False)
    assert row[0] == "mcnet (reported)" and row[2] == "F1 (paper's) 0.810 · accuracy 0.816"
    assert row[-1] == "UF1 0.700 (reproduced − reported F1 (paper's): -0.110)"
    twin = reproduced | {"synthetic": True}
    assert reported_rows([entry], [(Path("x.json"), twin)], cde=False)[0][-1] == "none yet"


def test_ablation_rows_name_their_config(tmp_path, shared_cache):
    run(RunOptions(method="flow-svm", protocol="loso", preset="smoke", out_dir=tmp_path,
                   cache_dir=shared_cache, device="cpu", progress=False,
                   method_overrides={"C": 0.5}))
    text = build(tmp_path, tmp_path / "board.md").read_text()
    assert "| [flow-svm (C=0.5)](flow-svm__loso__" in text and "| smoke " in text


def test_presets_name_their_departures_from_the_recipe():
    from mer_bench.methods import get_method_class
    from mer_bench.report.leaderboard import preset_label
    mpfnet = get_method_class("mpfnet-p").Config
    departures = mpfnet.recipe_departures("fast")
    assert departures["length"] == {"paper": 11, "ran": 6,
                                    "where": "§5.4 Hyperparameter settings, Fig. 8: L = 11"}
    assert "size" in departures  # input size changes the method
    # budget-named, but fixed by the paper's record: departures too
    assert {"length", "tasks_per_batch", "triplet_batch"} <= departures.keys()
    # how long training runs is the budget; execution settings are not recipe
    assert not {"triplet_epochs", "afe_epochs", "checkpointing", "micro_batch"} & departures.keys()
    # what the paper leaves open is listed apart, not as a departure
    fast = mpfnet.from_preset("fast")
    assert {"embed_dim", "afe_batch", "width"} <= fast.not_specified().keys()
    assert not fast.not_specified().keys() & departures.keys()
    # what cannot be had offline departs in every row, the paper preset's too
    assert set(mpfnet.recipe_departures("paper")) == {"flow", "interpolation", "magnification"}
    assert mpfnet.recipe_departures("paper")["magnification"]["built_in"] is True
    mcnet = {"method": {"name": "mcnet", "preset": "fast"}}
    assert preset_label(mcnet) == ("fast (recipe: initialization, pretrain_batch=64, "
                                   "scale=10.0, size=48, tasks_per_batch=2, width=32)")
    light = get_method_class("lightmannet").Config
    assert light.recipe_departures("paper")["relative"]["paper"] is False  # raw frames
    older = {"method": {"name": "mcnet", "preset": "fast",
                        "recipe_departures": {"size": {"paper": 112, "fast": 48}}}}
    assert preset_label(older) == "fast (recipe: size=48)"  # files written before "ran"
    stored = {"method": {"name": "mcnet", "preset": "fast", "recipe_departures": {}}}
    assert preset_label(stored) == "fast"


def test_departures_are_computed_from_the_config_that_ran():
    from mer_bench.methods import build_method
    ran = build_method("lightmannet", "fast", first_order=False, beta=0.5).config.departures()
    assert "first_order" not in ran  # -S restored the paper's value
    assert ran["beta"] == {"paper": 0.1, "ran": 0.5, "where": "§5.2: β = 0.1"}  # -S departs
    assert "pretrained" not in build_method("ma2mi", "fast", pretrained="x.pt").config.departures()


def test_leaderboard_build_writes_and_links_the_plots(result_dir, tmp_path):
    board = build(result_dir, tmp_path / "LEADERBOARD.md", plots=True)
    text = board.read_text()
    figures = sorted((tmp_path / "plots").glob("*.png"))
    names = {p.name for p in figures}
    assert any(n.startswith("uf1-vs-throughput__") for n in names)
    assert sum(n.startswith("confusion__") for n in names) == len(list(result_dir.glob("*.json")))
    for name in names:
        assert f"plots/{name}" in text
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_command_draws_one_result(result_dir, tmp_path, capsys):
    from mer_bench.cli import main
    source = next(result_dir.glob("*.json"))
    assert main(["plot", str(source), "--output", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_markdown_table_pads_columns_and_keeps_cells_as_written():
    table = markdown_table([["mpfnet-p", "0.820"], ["a", "1"]], ["Method", "UAR"])
    assert table.splitlines() == ["| Method   | UAR   |", "|----------|-------|",
                                  "| mpfnet-p | 0.820 |", "| a        | 1     |"]
