"""Real-dataset loaders on fixture trees in the official layouts (tests/real_fixtures.py)."""

import shutil
import warnings

import cv2
import numpy as np
import openpyxl
import pandas as pd
import pytest

from mer_bench.cli import main
from mer_bench.data.datasets import load_dataset
from mer_bench.data.faces import face_box
from mer_bench.data.schemes import SCHEMES
from mer_bench.data.synthetic.twins import CASME_COUNTS, CKPLUS_COUNTS, subject_counts
from mer_bench.errors import MerBenchError
from mer_bench.report.results import load_result
from mer_bench.runner import RunOptions, run
from tests import real_fixtures

WRITERS = {"casme2": real_fixtures.write_casme2, "samm": real_fixtures.write_samm,
           "smic": real_fixtures.write_smic, "mmew": real_fixtures.write_mmew,
           "casme": real_fixtures.write_casme, "ckplus": real_fixtures.write_ckplus}


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mer-data")
    for folder, write in WRITERS.items():
        write(root / folder)
    return root


@pytest.fixture
def real_data(data_root, monkeypatch):
    monkeypatch.setenv("MER_BENCH_DATA", str(data_root))
    monkeypatch.setenv("MER_BENCH_DATA_ROOTS", "")  # restored after the test
    monkeypatch.setenv("MER_BENCH_CONFIG", str(data_root / "absent.ini"))
    return data_root


def quiet_load(name, **kw):
    """Load without printing the loader's warnings (tests read ``problems`` instead).
    The fixture trees hold rendered face crops at 24 px, where no face detector finds a
    face: they are loaded as a user with face crops would (``face_crop="none"``) unless
    a test asks for detection."""
    kw.setdefault("face_crop", "none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset(name, **kw)


@pytest.mark.parametrize("name,real", [("casme2", "casme2"), ("samm", "samm"),
                                       ("smic-hs", "smic-hs"), ("mmew", "mmew")])
def test_counts_match_the_official_per_subject_counts(real_data, name, real):
    samples = quiet_load(name).samples
    got = (samples.assign(subject=samples["subject"].str.split("/").str[1])
           .groupby(["subject", "emotion"]).size().rename("n").reset_index())
    want = subject_counts(real).rename(columns={"n_clips": "n"})
    merged = want.merge(got, on=["subject", "emotion"], how="outer", suffixes=("_want", "_got"))
    assert (merged["n_want"] == merged["n_got"]).all()


def test_quirks_of_the_official_files(real_data):
    casme2 = quiet_load("casme2")
    assert casme2.samples["subject"].str.match(r"casme2/sub\d\d$").all()  # int ids re-padded
    row = casme2.samples.set_index("clip").loc["EP12_01f"]
    assert pd.isna(row["apex"])  # '/' in the sheet
    [problem] = casme2.problems
    assert problem.kind == "apex missing" and not problem.skip and problem.row is not None
    samm = quiet_load("samm").samples
    assert "other" in set(samm["emotion"]) and samm["subject"].str.match(r"samm/\d{3}$").all()
    smic = load_dataset("smic-hs").samples
    assert smic["apex"].isna().all() and "smic-hs/s1" in set(smic["subject"])
    assert len(load_dataset("casme").samples) == sum(CASME_COUNTS.values())
    ck = load_dataset("ckplus", face_crop="none").samples
    assert ck.groupby("emotion").size().to_dict() == CKPLUS_COUNTS
    assert (ck["apex"] == ck["offset"]).all() and (ck["kind"] == "macro").all()


def test_megc2019_composite_is_the_official_list(real_data):
    samples = quiet_load("megc2019").samples
    labelled = SCHEMES["megc2019"].apply(samples)
    assert len(labelled) == 442 and labelled["subject"].nunique() == 68


def test_missing_clip_of_the_official_list_is_reported(data_root, tmp_path, monkeypatch):
    copy = tmp_path / "data"
    for folder in ("casme2", "samm", "smic"):
        shutil.copytree(data_root / folder, copy / folder)
    shutil.rmtree(copy / "smic" / "SMIC_all_cropped" / "HS" / "s1" / "micro" / "negative" / "s1_ne_01")
    monkeypatch.setenv("MER_BENCH_DATA", str(copy))
    with pytest.raises(MerBenchError, match="1 clips of the official MEGC2019 list are missing: "
                                            "smic-hs/s1/s1_ne_01"):
        quiet_load("megc2019")


@pytest.fixture
def small_casme2(tmp_path, monkeypatch):
    root = tmp_path / "casme2"
    real_fixtures.write_casme2(root, limit_subjects=3)
    monkeypatch.setenv("MER_BENCH_DATA", str(tmp_path))
    monkeypatch.setenv("MER_BENCH_DATA_ROOTS", "")  # restored after the test
    return root


def _edit_sheet(path, edit):
    book = openpyxl.load_workbook(path)
    edit(book.active)
    book.save(path)


def test_bad_clips_are_skipped_reported_and_strict_fails(small_casme2):
    sheet = small_casme2 / "CASME2-coding-20190701.xlsx"

    def edit(ws):
        clip = ws.cell(row=6, column=2).value       # a clip without frames (row 6)
        shutil.rmtree(small_casme2 / "Cropped" / f"sub{ws.cell(row=6, column=1).value:02d}" / clip)
        ws.cell(row=3, column=4).value = 5          # onset not on disk (row 3 = 2nd clip)
        ws.cell(row=4, column=5).value = 10_000     # apex outside [onset, offset]
        ws.cell(row=5, column=9).value = "joy"      # unknown label
        ws.append([cell.value for cell in ws[2]])   # the first clip listed twice
    _edit_sheet(sheet, edit)
    dataset = quiet_load("casme2")
    kinds = {p.kind: p for p in dataset.problems}
    assert {"missing frames", "range not on disk", "apex outside range", "unknown label",
            "duplicate clip"} <= set(kinds)
    assert kinds["range not on disk"].row == 3 and str(sheet) == kinds["range not on disk"].file
    assert kinds["unknown label"].row == 5 and "'joy'" in kinds["unknown label"].detail
    assert "folder holds" in kinds["range not on disk"].detail
    skipped = {p.sample_id for p in dataset.problems if p.skip and p.kind != "duplicate clip"}
    assert not skipped & set(dataset.samples["sample_id"])
    assert kinds["duplicate clip"].sample_id in set(dataset.samples["sample_id"])  # first row kept
    with pytest.raises(MerBenchError, match="(?s)problems \\(strict\\).*row 3.*range not on disk"):
        quiet_load("casme2", strict=True)


def test_malformed_sheet_names_file_and_columns(small_casme2):
    sheet = small_casme2 / "CASME2-coding-20190701.xlsx"
    _edit_sheet(sheet, lambda ws: setattr(ws.cell(row=1, column=4), "value", "Onset"))
    with pytest.raises(MerBenchError, match="CASME2-coding-20190701.xlsx: missing columns \\['OnsetFrame'\\]"):
        load_dataset("casme2")


def test_an_apex_frame_of_another_size_is_a_data_problem(small_casme2):
    """A key frame stored at another size than the clip's other frames is not silently
    resized into the clip's motion: the clip is skipped and the file named."""
    import cv2
    dataset = quiet_load("casme2")
    row = dataset.samples.iloc[0]
    apex = dataset.paths[row["sample_id"]][int(row["apex"])]
    image = cv2.imread(str(apex))
    cv2.imwrite(str(apex), cv2.resize(image, (image.shape[1] * 2, image.shape[0])))
    again = quiet_load("casme2")
    problems = [p for p in again.problems if p.kind == "frame size differs"]
    assert [p.file for p in problems] == [str(apex)] and problems[0].skip
    assert row["sample_id"] not in set(again.samples["sample_id"])


def test_unreadable_frame_names_the_file(small_casme2):
    dataset = quiet_load("casme2")
    sid = dataset.samples["sample_id"].iloc[0]
    dataset.paths[sid][0].write_bytes(b"not a jpeg")
    with pytest.raises(MerBenchError, match="unreadable image"):
        dataset.frames(sid, np.array([0]), 16)


def test_not_configured_dataset_says_how(monkeypatch):
    monkeypatch.delenv("MER_BENCH_DATA", raising=False)
    monkeypatch.setenv("MER_BENCH_DATA_ROOTS", "")  # restored after the test
    monkeypatch.setenv("MER_BENCH_CONFIG", "/nonexistent.ini")
    with pytest.raises(MerBenchError, match="'samm' is not configured: set MER_BENCH_DATA .* "
                                            "--data-root samm=PATH"):
        load_dataset("samm")


def test_data_root_flag_and_config_file(data_root, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MER_BENCH_DATA", raising=False)
    monkeypatch.setenv("MER_BENCH_DATA_ROOTS", "")  # restored after the test
    config = tmp_path / "datasets.ini"
    config.write_text(f"[data_roots]\nsamm = {data_root / 'samm'}\n")
    monkeypatch.setenv("MER_BENCH_CONFIG", str(config))
    assert len(load_dataset("samm", face_crop="none").samples) == 159
    assert main(["datasets", "--data-root", f"smic-hs={data_root / 'smic'}"]) == 0
    out = capsys.readouterr().out
    assert "samm      found" in out and "(config file)" in out and "(--data-root)" in out
    assert main(["datasets", "check", "--dataset", "smic-hs"]) == 0
    assert "164 clips, 16 subjects" in capsys.readouterr().out


def test_face_is_found_in_a_real_photo():
    from skimage import data as skimage_data  # dev dependency: a real face photo
    image = skimage_data.astronaut()
    (x, y, w, h), found = face_box(image)
    assert found
    assert 120 < x + w / 2 < 260 and 40 < y + h / 2 < 160  # her face, not the flag or helmet
    (_, _, w2, h2), found_none = face_box(np.full((100, 140, 3), 128, np.uint8))
    assert not found_none and w2 == h2 == 100  # fallback: the centred square


def test_runs_on_real_layouts_end_to_end(real_data, tmp_path):
    for protocol, dataset in (("loso", "casme2"), ("cde", "megc2019")):
        with pytest.warns(UserWarning, match="sub04/EP12_01f: apex missing"):
            path = run(RunOptions(method="flow-svm", protocol=protocol, dataset=dataset,
                                  preset="smoke", out_dir=tmp_path, cache_dir=tmp_path / "cache",
                                  device="cpu", progress=False, face_crop="none"))
        result = load_result(path)
        assert result["synthetic"] is False
        assert result["data_problems"][0]["sample_id"] == "casme2/sub04/EP12_01f"
    assert len(result["predictions"]) == 442


def test_casme_sq_micro_and_macro_rows(tmp_path, monkeypatch):
    real_fixtures.write_casme_sq(tmp_path / "casme-sq")
    monkeypatch.setenv("MER_BENCH_DATA", str(tmp_path))
    monkeypatch.setenv("MER_BENCH_DATA_ROOTS", "")  # restored after the test
    dataset = quiet_load("casme-sq")
    samples = dataset.samples.set_index("clip")
    assert samples.loc["happy1_2", "emotion"] == "happiness"  # the 'happyiness' typo
    assert samples.loc["anger1_2", "kind"] == "macro" and samples.loc["anger1_1", "kind"] == "micro"
    assert samples.loc["anger1_1", "subject"] == "casme-sq/s15"
    [unknown] = [p for p in dataset.problems if p.kind == "unknown video"]
    assert unknown.row == 5 and "'mystery9'" in unknown.detail
    assert len(SCHEMES["megc2019"].apply(dataset.samples)) == 3  # 'others' dropped


def test_raw_frames_without_a_face_are_problems_not_whole_frames(small_casme2):
    cropped = small_casme2 / "Cropped"
    raw = small_casme2 / "CASME2_RAW_selected"
    cropped.rename(raw)
    for path in raw.rglob("reg_img*.jpg"):
        path.rename(path.with_name(path.name[len("reg_"):]))
    detected = quiet_load("casme2", face_crop="detect")
    assert detected.crop_faces and detected.samples.empty  # 24 px renders hold no face
    problem = detected.problems[-1]
    assert problem.kind == "no face found" and problem.file.startswith(str(raw))
    assert "--face-crop none" in problem.detail and problem.skip
    whole = quiet_load("casme2", face_crop="none")
    assert not whole.crop_faces and len(whole.samples) > 0
    assert whole.fingerprint.split(":")[1] == "False" != detected.fingerprint.split(":")[1]
    sid = whole.samples["sample_id"].iloc[0]
    assert whole.frames(sid, np.array([0, 1]), 16).shape == (2, 16, 16, 3)


def test_samm_faces_are_cropped_from_the_wide_frame(tmp_path, monkeypatch):
    """SAMM is distributed as whole 2040 x 1088 frames: the face, off-centre in a wide
    frame, is found and every frame of the clip is cut to it."""
    cx, cy = real_fixtures.write_samm_faces(tmp_path / "samm")
    monkeypatch.setenv("MER_BENCH_DATA", str(tmp_path))
    monkeypatch.setenv("MER_BENCH_DATA_ROOTS", "")  # restored after the test
    dataset = load_dataset("samm")
    assert dataset.crop_faces and len(dataset.samples) == 2 and not dataset.problems
    for sid in dataset.samples["sample_id"]:
        x, y, w, h = dataset._boxes[sid]
        assert abs(x + w / 2 - cx) < 40 and abs(y + h / 2 - cy) < 40 and w < 1020 / 3
    frames = dataset.frames(sid, np.array([0, 5]), 64)
    assert frames.shape == (2, 64, 64, 3)
    assert (frames[0] != 128).mean() > 0.9  # the face fills the crop, not the gray frame


def test_a_warm_load_decodes_no_frame(tmp_path, monkeypatch):
    real_fixtures.write_samm_faces(tmp_path / "samm")
    monkeypatch.setenv("MER_BENCH_DATA", str(tmp_path))
    monkeypatch.setenv("MER_BENCH_DATA_ROOTS", "")  # restored after the test
    monkeypatch.setenv("MER_BENCH_CACHE", str(tmp_path / "cache"))
    calls = []
    real_imread = cv2.imread
    monkeypatch.setattr(cv2, "imread", lambda *a: calls.append(a[0]) or real_imread(*a))
    cold = load_dataset("samm")
    assert len(calls) == 2 * 4  # per clip: 3 key frames at 1/8, the onset at detection scale
    calls.clear()
    warm = load_dataset("samm")
    assert calls == [] and warm._boxes == cold._boxes and warm.fingerprint == cold.fingerprint


def test_text_or_blank_subject_and_text_onset_are_problems_with_file_and_row(small_casme2):
    sheet = small_casme2 / "CASME2-coding-20190701.xlsx"

    def edit(ws):
        ws.cell(row=2, column=1).value = "abc"
        ws.cell(row=3, column=1).value = None
        ws.cell(row=4, column=4).value = "x12"   # OnsetFrame
    _edit_sheet(sheet, edit)
    dataset = quiet_load("casme2")
    by_row = {p.row: p for p in dataset.problems}
    assert by_row[2].kind == "bad subject" and "'abc'" in by_row[2].detail
    assert by_row[3].kind == "bad subject" and by_row[2].file == str(sheet)
    assert by_row[4].kind == "bad frame number" and "onset cell 'x12'" in by_row[4].detail
    assert by_row[4].sample_id not in set(dataset.samples["sample_id"])  # not the first frame


def test_undecodable_key_frame_is_found_and_its_clip_skipped(small_casme2, capsys):
    from mer_bench.cli import main
    dataset = quiet_load("casme2")
    row = dataset.samples.iloc[0]
    dataset.paths[row["sample_id"]][int(row["onset"])].write_bytes(b"")  # zero bytes
    dataset.paths[dataset.samples.iloc[1]["sample_id"]][
        int(dataset.samples.iloc[1]["offset"])].write_bytes(b"garbage, not a jpeg")
    assert main(["datasets", "check", "--dataset", "casme2"]) == 0
    out = capsys.readouterr().out
    assert out.count("unreadable frame") == 2 and "2 problems" in out
    again = quiet_load("casme2")
    assert row["sample_id"] not in set(again.samples["sample_id"])
    assert main(["datasets", "check", "--dataset", "casme2", "--strict"]) == 2


def test_broken_or_resized_non_key_frames_are_found_by_all_frames_and_stop_a_read(
        small_casme2, capsys):
    dataset = quiet_load("casme2")
    first, second = (dataset.samples.iloc[k] for k in (0, 1))
    between = int(first["onset"]) + 1  # neither onset, apex nor offset in the fixtures
    assert between not in (int(first["apex"]), int(first["offset"]))
    dataset.paths[first["sample_id"]][between].write_bytes(b"garbage, not a jpeg")
    frame = cv2.imread(str(dataset.paths[second["sample_id"]][int(second["onset"]) + 1]))
    cv2.imwrite(str(dataset.paths[second["sample_id"]][int(second["onset"]) + 1]),
                cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2)))
    assert main(["datasets", "check", "--dataset", "casme2"]) == 0
    out = capsys.readouterr().out
    assert "bad frames" not in out and "--all-frames decodes every frame" in out
    assert main(["datasets", "check", "--dataset", "casme2", "--all-frames"]) == 0
    out = capsys.readouterr().out
    assert out.count("bad frames") == 2 and "does not decode" in out and "differs in size" in out
    again = quiet_load("casme2")
    every = np.arange(int(second["n_frames"]))
    with pytest.raises(MerBenchError, match="frame of .* px in a clip of .*--all-frames"):
        again.frames(second["sample_id"], every, 32)


def test_strict_fails_on_problems_not_on_kept_clip_warnings(small_casme2):
    sheet = small_casme2 / "CASME2-coding-20190701.xlsx"
    _edit_sheet(sheet, lambda ws: setattr(ws.cell(row=2, column=5), "value", "/"))  # as sub04/EP12_01f
    kept = quiet_load("casme2", strict=True)  # CASME II's official "/" apex passes --strict
    assert [p.kind for p in kept.problems] == ["apex missing"] and not kept.problems[0].skip
    with pytest.raises(MerBenchError, match="apex missing"):
        quiet_load("casme2", strict="all")


def test_specs_decode_only_the_frames_they_read_and_share_them(tmp_path, monkeypatch):
    """A clip of 20 frames: a 3-frame whole-clip sequence reads the 4 it resamples from
    (positions 0, 9.5 and 19), not 20; with
    onset -> apex flow beside it (onset and apex frames), ``materialize_all`` decodes a
    frame the two specs share once."""
    from mer_bench.data import folders
    from mer_bench.features.cache import FeatureCache
    from mer_bench.features.specs import FrameSequence, OnsetApex
    real_fixtures.write_samm_faces(tmp_path / "samm", clips=1, n_frames=20)
    monkeypatch.setenv("MER_BENCH_DATA", str(tmp_path))
    monkeypatch.setenv("MER_BENCH_DATA_ROOTS", "")  # restored after the test
    dataset = load_dataset("samm")
    decoded = []
    real_read = folders.read_rgb
    monkeypatch.setattr(folders, "read_rgb", lambda path: decoded.append(path.name) or real_read(path))
    sequence, flow = FrameSequence(length=3, size=16, span="offset"), OnsetApex(size=16)
    seq_alone = FeatureCache(None).materialize(dataset, dataset.samples, sequence, progress=False)
    assert sorted(decoded) == ["006_00100.jpg", "006_00109.jpg", "006_00110.jpg", "006_00119.jpg"]
    decoded.clear()
    dataset = load_dataset("samm")  # nothing decoded yet
    both = FeatureCache(None).materialize_all(dataset, dataset.samples, (sequence, flow),
                                              progress=False)
    assert sorted(decoded) == ["006_00100.jpg", "006_00102.jpg", "006_00109.jpg", "006_00110.jpg",
                              "006_00119.jpg"]
    assert np.array_equal(both[0], seq_alone)


def test_each_frame_file_is_stated_once_per_run(tmp_path, monkeypatch):
    """Loading a dataset and computing a spec (a cache miss) ``stat`` every frame file
    once (its content digest's memo key), and a warm load does no more."""
    import os

    from mer_bench.features.cache import FeatureCache
    from mer_bench.features.specs import OnsetApex
    real_fixtures.write_samm_faces(tmp_path / "samm", clips=2, n_frames=8)
    monkeypatch.setenv("MER_BENCH_DATA", str(tmp_path))
    monkeypatch.setenv("MER_BENCH_DATA_ROOTS", "")  # restored after the test
    monkeypatch.setenv("MER_BENCH_CACHE", str(tmp_path / "cache"))
    frames = [str(p) for p in (tmp_path / "samm").rglob("*.jpg")]
    for _ in range(2):  # cold, then warm
        stated = []
        real_stat = os.stat
        monkeypatch.setattr(os, "stat", lambda path, *a, **k: stated.append(str(path))
                            or real_stat(path, *a, **k))
        dataset = load_dataset("samm")
        FeatureCache(tmp_path / "features").materialize(dataset, dataset.samples, OnsetApex(16),
                                                        progress=False)
        monkeypatch.setattr(os, "stat", real_stat)
        assert sorted(p for p in stated if p.endswith(".jpg")) == sorted(frames)


def test_features_computed_in_threads_equal_one_thread(tmp_path, monkeypatch):
    """A real dataset's cold cache is computed over the cores in threads (each thread
    keeps its own clip's decoded frames): the arrays are those of one thread."""
    from mer_bench import threads
    from mer_bench.features.cache import FeatureCache
    from mer_bench.features.specs import FrameSequence, OnsetApex
    real_fixtures.write_samm_faces(tmp_path / "samm", clips=6, n_frames=10)
    monkeypatch.setenv("MER_BENCH_DATA", str(tmp_path))
    monkeypatch.setenv("MER_BENCH_DATA_ROOTS", "")  # restored after the test
    specs = (FrameSequence(length=4, size=16, span="offset"), OnsetApex(size=16))
    computed = {}
    for cores in (1, 3):
        monkeypatch.setattr(threads, "usable_cores", lambda: cores)
        dataset = load_dataset("samm")
        assert dataset.threadsafe and len(dataset.samples) == 6
        computed[cores] = FeatureCache(None).materialize_all(dataset, dataset.samples, specs,
                                                             progress=False)
    for one, spread in zip(computed[1], computed[3]):
        assert np.array_equal(one, spread)
