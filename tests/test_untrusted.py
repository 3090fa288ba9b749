"""Untrusted input runs no code and forges no number: result files (every class of the
hostile review's forged files), fold files of an interrupted run, sheets, frame folders,
adapters that misbehave, and the command line's own bounds. Each test fails on the code
before this round."""

import json
import os
import shutil
import time
import zipfile

import pytest

from mer_bench.cli import main
from mer_bench.errors import MerBenchError
from mer_bench.report.leaderboard import collect
from mer_bench.report.plots import slug
from mer_bench.report.results import load_result, recompute_metrics
from mer_bench.reproduce import SCORE_TOLERANCE, compare_predictions, reproduce
from mer_bench.runner import RunOptions, run


@pytest.fixture(scope="module")
def genuine(tmp_path_factory, shared_cache):
    """One genuine flow-svm LOSO result (smoke) and one few-shot result (4 episodes)."""
    out = tmp_path_factory.mktemp("genuine")
    for protocol, params in (("loso", {}), ("fewshot", {"episodes": 4})):
        run(RunOptions(method="flow-svm", protocol=protocol, preset="smoke", out_dir=out,
                       cache_dir=shared_cache, device="cpu", progress=False,
                       protocol_params=params))
    return out


def _source(genuine, protocol="loso"):
    [path] = genuine.glob(f"flow-svm__{protocol}__*.json")
    return path


def forged(genuine, tmp_path, edit, protocol="loso", rederive=True, name=None):
    """A folder holding one edited copy of a genuine result (metrics re-derived from the
    edited predictions where they still can be, as a careful forger would)."""
    source = _source(genuine, protocol)
    data = json.loads(source.read_text())
    edit(data)
    if rederive:
        try:
            data["metrics"] = json.loads(json.dumps(recompute_metrics(data)))
        except Exception:  # noqa: BLE001 - a file too broken to re-derive stays as edited
            pass
    folder = tmp_path / "forged"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / (name or source.name)).write_text(json.dumps(data))
    return folder


def skipped_with(folder, capsys, says):
    """The folder's only file is skipped with one line that says ``says``, fast, and a
    strict build refuses it naming the file."""
    start = time.perf_counter()
    assert collect(folder, skip_invalid=True) == []
    assert time.perf_counter() - start < 20
    err = capsys.readouterr().err
    assert err.count("mer-bench: skipping") == 1 and says in err, err
    with pytest.raises(MerBenchError, match="rejected result files"):
        collect(folder)


def _set(path, value):
    def edit(d):
        *parents, last = path.split(".")
        target = d
        for key in parents:
            target = target[key]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
    return edit


_DELETE = object()

MALFORMED = [
    ("folds unhashable", lambda d: d["folds"][0].update(test_subjects=[["x"]]), "folds[0]"),
    ("folds missing", _set("folds", _DELETE), "'folds' is missing"),
    ("fold seed missing", lambda d: d["folds"][0].pop("seed"), "folds[0]"),
    ("seed a string", _set("seeds", ["0"]), "'seeds' must be"),
    ("200,000 seeds", _set("seeds", list(range(200_000))), "'seeds' must be 1 to 64"),
    ("run_options strings", _set("run_options", {"threads": "2"}), "'run_options'"),
    ("run_options NaN", _set("run_options", {"threads": float("nan")}), "'run_options'"),
    ("run_options list", _set("run_options", {"threads": [1]}), "'run_options'"),
    ("recipe_departures not a dict of dicts", _set("method.recipe_departures", {"lr": 3}),
     "recipe_departures"),
    ("method.file a string", _set("method.file", "x.py"), "'method.file'"),
    ("not_specified a list", _set("method.not_specified", ["lr"]), "'method.not_specified'"),
    ("diagnostics of the wrong shape", _set("diagnostics", {"per_task": "x"}), "'diagnostics'"),
    ("diagnostics with text", _set("diagnostics", {"summary": {"s": {"loss": "high"}}}),
     "'diagnostics.summary"),
    ("3,000 diagnostics stages",
     _set("diagnostics", {"per_task": [{"seed": 0, "group": "g",
                                        "stages": {str(i): {} for i in range(3000)}}]}),
     "stages"),
    ("environment a string", _set("environment", "x"), "'environment'"),
    ("no run_id", _set("run_id", _DELETE), "'run_id' must be a name"),
    ("auxiliary a string", _set("method.auxiliary", "synth-ckplus"), "'method.auxiliary'"),
    ("lone surrogate", lambda d: d["method"]["config"].update(grid="\ud800"), "lone surrogate"),
    ("control character", lambda d: d["environment"].update(platform="\x1b[31mred"),
     "control character"),
    ("episodes 1e8", lambda d: d["protocol"]["params"].update(episodes=10**8),
     "episodes must be an integer in [1, 10,000]"),
    ("repeats 1e8", _set("protocol", {"name": "holdout", "version": 1,
                                      "params": {"repeats": 10**8, "train_fraction": 0.6}}),
     "repeats must be an integer in [1, 100]"),
    ("run id with a path", lambda d: d.update(run_id="../../../tmp/x"), "'run_id' must be a name"),
]


@pytest.mark.parametrize("edit,says", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_a_malformed_result_file_is_one_skipped_line(genuine, tmp_path, capsys, edit, says):
    protocol = "fewshot" if says.startswith("episodes") else "loso"
    skipped_with(forged(genuine, tmp_path, edit, protocol, rederive=False), capsys, says)


@pytest.mark.parametrize("edit,says", [
    (lambda d: [p.update(subject="synth-casme2/sub01") for p in d["predictions"]],
     "'subject' values are not the dataset's"),
    (lambda d: [p.update(dataset="synth-samm") for p in d["predictions"][:20]],
     "'dataset' values are not the dataset's"),
    (lambda d: d["folds"][0].update(test_subjects=["synth-casme2/sub02"]),
     "'folds' block is not the protocol's"),
    (lambda d: [p.update(y_pred=p["y_true"]) or p.pop("scores") for p in d["predictions"]],
     "emits scores, and these predictions have none"),
    (lambda d: [p.update(y_pred=p["y_true"]) or p.pop("scores") for p in d["predictions"][:5]],
     "predictions lack the scores the others have"),
], ids=["one subject", "relabelled dataset", "folds block", "scores deleted",
        "some scores deleted"])
def test_a_forged_field_a_number_depends_on_is_refused(genuine, tmp_path, capsys, edit, says):
    skipped_with(forged(genuine, tmp_path, edit), capsys, says)


def test_files_that_are_not_regular_or_not_utf8_are_skipped_without_a_hang(genuine, tmp_path,
                                                                          capsys):
    folder = tmp_path / "odd"
    folder.mkdir()
    os.mkfifo(folder / "fifo.json")
    (folder / "zero.json").symlink_to("/dev/zero")
    shutil.copy(_source(genuine), os.fsencode(folder) + b"/bad-\xff.json")
    shutil.copy(_source(genuine), folder / "genuine.json")
    start = time.perf_counter()
    shown = collect(folder, skip_invalid=True)
    assert time.perf_counter() - start < 20
    assert [p.name for p, _ in shown] == ["genuine.json"]
    err = capsys.readouterr().err
    assert err.count("not a regular file") == 2 and "file name is not UTF-8" in err


def test_slugs_of_names_that_differ_by_a_dropped_character_differ():
    plain = "flow-svm__loso__synth-casme2__casme2-5__fast__17c8f9d0"
    assert slug(plain) == plain
    variants = {slug(plain + ">"), slug(plain + "\u200b"), slug(plain + "_"), slug(plain)}
    assert len(variants) == 4
    long = "a" * 130
    assert slug(long) != slug(long + "b") and len(slug(long)) < 130


PLANTED = (
    "from pathlib import Path\n"
    "Path(__file__).with_name('IMPORTED').write_text('ran')\n"
)


def test_nothing_a_result_file_names_is_imported(genuine, tmp_path, capsys):
    """A result naming a planted .py (with its true hash) as its adapter file: the site
    and the run command show it as text; reproduce refuses without --adapter."""
    from mer_bench.methods import file_sha256
    from mer_bench.report.site import build_site
    planted = tmp_path / "planted.py"
    planted.write_text(PLANTED)

    def edit(d):
        d["method"].update(name="planted", file={"path": str(planted),
                                                  "sha256": file_sha256(planted)})
    folder = forged(genuine, tmp_path, edit)
    results = collect(folder)
    index = build_site(results, tmp_path / "site")
    assert not (tmp_path / "IMPORTED").exists()
    page = next((tmp_path / "site" / "results").glob("*.html")).read_text()
    assert "--adapter" in page and "planted.py" in page
    [path] = folder.glob("*.json")
    assert main(["reproduce", str(path), "--quiet"]) == 2
    assert "name your copy with --adapter PATH" in capsys.readouterr().err
    assert not (tmp_path / "IMPORTED").exists() and index.exists()


def test_reproduce_compares_classes_exactly_and_scores_within_the_tolerance(genuine):
    path = _source(genuine)
    recorded = load_result(path)
    nudged = json.loads(json.dumps(recorded))
    for p in nudged["predictions"]:
        p["scores"] = [s + SCORE_TOLERANCE / 4 if i != p["y_pred"] else s + SCORE_TOLERANCE / 2
                       for i, s in enumerate(p["scores"])]
    outcome = compare_predictions(recorded, nudged, path)
    assert outcome.identical and outcome.summary().split("] ", 1)[1].startswith(
        "identical classes, scores within")
    outcome.strict = True
    assert not outcome.identical and "--strict" in outcome.summary()
    far = json.loads(json.dumps(recorded))
    far["predictions"][0]["scores"][0] += 10 * SCORE_TOLERANCE
    assert not compare_predictions(recorded, far, path).identical
    same = reproduce(path, strict=True)
    assert same.identical and same.summary().split("] ", 1)[1].startswith("identical:")


def test_an_adapter_cannot_register_a_name_with_a_path():
    from mer_bench.method import register_method
    for name in ("../../../../tmp/x/ESCAPED", "", "a/b", ".hidden", "x" * 65):
        with pytest.raises(MerBenchError, match="is not allowed"):
            register_method(name)
    with pytest.raises(MerBenchError, match="not a subclass of mer_bench.method.Method"):
        register_method("not-a-method")(dict)


BEHAVIOURS = {
    "sys.exit": ("import sys; sys.exit(0)", "called sys.exit(0)"),
    "os._exit": ("import os; os._exit(0)", "called os._exit(0)"),
    "recursion": ("def f(n): return f(n + 1)\n        f(0)", "recursed without end"),
}
ADAPTER = (
    "import numpy as np\n"
    "from mer_bench.features import onset_apex\n"
    "from mer_bench.method import Method, Prediction, register_method\n"
    "@register_method('{name}')\n"
    "class Misbehaving(Method):\n"
    "    inputs = onset_apex(16, channels=('diff',))\n"
    "    def fit(self, train, ctx):\n"
    "        {fit}\n"
    "    def predict(self, test, support=None):\n"
    "        return {predicted}\n"
)


@pytest.mark.parametrize("what", [*BEHAVIOURS, "returns None"])
def test_an_adapter_that_exits_recurses_or_returns_nothing_is_one_line(what, tmp_path, capsys,
                                                                       shared_cache):
    fit, says = BEHAVIOURS.get(what, ("pass", "predict returned NoneType, not a"))
    predicted = "None" if what == "returns None" else "Prediction(np.zeros(len(test), np.int64))"
    path = tmp_path / "misbehaving.py"
    path.write_text(ADAPTER.format(name=f"misbehaving-{what.replace('.', '-').replace(' ', '-')}",
                                   fit=fit, predicted=predicted))
    code = main(["run", "--method", str(path), "--protocol", "loso", "--preset", "smoke",
                 "--out", str(tmp_path / "out"), "--cache-dir", str(shared_cache), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and says in err and "misbehaving" in err and "Traceback" not in err
    assert main(["check-method", str(path)]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_a_site_build_that_fails_leaves_the_previous_site(genuine, tmp_path, monkeypatch):
    from mer_bench.report import site
    results = collect(genuine)
    out = tmp_path / "site"
    site.build_site(results, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(site, "robustness_page", full_disk)
    with pytest.raises(OSError):
        site.build_site(results, out)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["site"]  # no staging folder left


def test_resume_sets_aside_fold_files_that_are_not_this_runs(tmp_path, shared_cache, monkeypatch,
                                                            recwarn):
    from mer_bench import runner
    options = RunOptions(method="flow-svm", protocol="loso", preset="smoke", out_dir=tmp_path,
                         cache_dir=shared_cache, progress=False)
    monkeypatch.setattr(runner.shutil, "rmtree", lambda *a, **k: None)  # keep the fold files
    first = load_result(run(options))
    monkeypatch.undo()
    [partial] = (tmp_path / ".partial").iterdir()
    files = sorted(partial.glob("*.json"))
    records = [json.loads(f.read_text()) for f in files[:3]]
    records[0]["predictions"][0]["y_pred"] = (records[0]["predictions"][0]["y_pred"] + 1) % 5
    records[1]["predictions"][0]["subject"] = "synth-casme2/sub99"
    for f, record in zip(files, records[:2]):
        f.write_text(json.dumps(record))
    files[2].write_text("[1, 2]")
    again = load_result(run(RunOptions(**{**options.__dict__, "resume": True})))
    said = " ".join(str(w.message) for w in recwarn)
    assert said.count("the fold is computed again") == 3 and "not this run's" in said
    assert again["predictions"] == first["predictions"]
    assert len(again["resumed_folds"]) == len(files) - 3


def _workbook(path, xml: bytes):
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("[Content_Types].xml", b'<?xml version="1.0"?><Types/>')
        book.writestr("xl/worksheets/sheet1.xml", xml)
    return path


LOL = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
       b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><a>&lol2;</a>')


@pytest.mark.parametrize("xml", [
    LOL,
    b'<?xml version="1.0"?><!--' + b"x" * 5000
    + b'--><!DOCTYPE a [<!ENTITY e "entity-expanded">]><a>&e;</a>',
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'
    .encode("utf-16"),
], ids=["entity expansion", "after a 4 KiB comment", "UTF-16"])
def test_a_sheet_that_declares_a_doctype_anywhere_is_refused(xml, tmp_path):
    from mer_bench.data.folders import refuse_doctype
    with pytest.raises(MerBenchError, match="declares a DOCTYPE or entities"):
        refuse_doctype(_workbook(tmp_path / "sheet.xlsx", xml))
    refuse_doctype(_workbook(tmp_path / "plain.xlsx", b'<?xml version="1.0"?><a>1</a>'))


def test_frame_cells_and_frame_files_that_are_not_frames_are_data_problems(tmp_path):
    from mer_bench.data.folders import BadCell, frame_files, frame_number, required_frame
    assert isinstance(frame_number("12.5"), BadCell) and frame_number("12.0") == 12
    assert isinstance(required_frame(""), BadCell)
    assert isinstance(required_frame(float("nan")), BadCell)
    assert frame_number("") is None and required_frame(7) == 7
    (tmp_path / "img1.jpg").write_bytes(b"x")
    os.mkfifo(tmp_path / "img2.jpg")
    (tmp_path / "img3.jpg").symlink_to("/dev/zero")
    assert frame_files(tmp_path, r"img(\d+)\.jpg") == ([tmp_path / "img1.jpg"], [1])
