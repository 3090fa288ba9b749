"""CAS(ME)^3 part A and 4DME: loaders on fixture trees in the official layouts (MEB's
errata written in), their twins, label schemes, and AU cells as 0/1 vectors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mer_bench.data.datasets import load_dataset
from mer_bench.data.facs import CD6ME_AUS, au_vector, without_k_marks
from mer_bench.data.schemes import SCHEMES
from tests import real_fixtures


@pytest.fixture(scope="module")
def newer_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mer-data-newer")
    real_fixtures.write_casme3a(root / "casme3")
    real_fixtures.write_4dme(root / "4dme")
    return root


def _load(root, monkeypatch, name, **kw):
    monkeypatch.setenv("MER_BENCH_DATA", str(root))
    monkeypatch.setenv("MER_BENCH_DATA_ROOTS", "")
    monkeypatch.setenv("MER_BENCH_CONFIG", str(root / "absent.ini"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset(name, face_crop="none", **kw)


def _by_clip(samples):
    return samples.assign(key=samples["subject"].str.split("/").str[1] + "/" + samples["clip"]) \
        .set_index("key")


def test_casme3a_loads_every_clip_with_repeated_file_names_numbered(newer_root, monkeypatch):
    real = _by_clip(_load(newer_root, monkeypatch, "casme3a").samples)
    twin = _by_clip(load_dataset("synth-casme3a").samples)
    assert len(real) == 860 and set(real.index) == set(twin.index)
    assert (real["emotion"] == twin.loc[real.index, "emotion"]).all()
    assert {"a", "a2", "a3"} <= set(real["clip"])  # one video, several micro-expressions


def test_casme3a_errata_are_corrected_and_reported_with_file_and_row(newer_root, monkeypatch):
    dataset = _load(newer_root, monkeypatch, "casme3a", strict="all")  # corrections never fail
    fixed = {p.row: p for p in dataset.problems if p.is_correction}
    assert sorted(fixed) == [130, 710, 751, 752, 798, 800]
    assert all(not p.skip and p.file.endswith("JpgIndex_v2.xlsx") for p in fixed.values())
    assert "Onset 2547 -> 2647" in fixed[751].detail
    assert [p for p in dataset.problems if not p.is_correction] == []
    row = dataset.samples.set_index("sample_id").loc[fixed[751].sample_id]
    assert dataset.paths[fixed[751].sample_id][int(row["onset"])].name == "2647.jpg"


def test_4dme_swaps_rows_146_and_147_back_and_drops_k_marked_aus(newer_root, monkeypatch):
    dataset = _load(newer_root, monkeypatch, "4dme")
    real = _by_clip(dataset.samples)
    twin = _by_clip(load_dataset("synth-4dme").samples).loc[real.index]
    assert len(real) == 267
    assert [p.row for p in dataset.problems if p.is_correction] == [146, 147]
    assert not real["aus"].str.contains("(k)", regex=False).any()
    vectors = np.stack([au_vector(a) for a in real["aus"]])
    assert (vectors == np.stack([au_vector(a) for a in twin["aus"]])).all()  # AU17(k) gone
    assert set(real["emotion"]) == set(SCHEMES["4dme-5"].classes)  # 'Negative' -> 'negative'


def test_an_unfixed_erratum_row_would_be_skipped(newer_root, monkeypatch):
    from mer_bench.data import loaders
    monkeypatch.setattr(loaders, "CASME3A_ERRATA", {})
    dataset = _load(newer_root, monkeypatch, "casme3a")
    assert sorted(p.row for p in dataset.problems if p.skip) == [130, 710, 751, 752, 798, 800]


@pytest.mark.parametrize("scheme,n", [("casme3a-7", 860), ("casme3a-4", 860), ("casme3a-3", 699)])
def test_casme3a_schemes_on_the_twin(scheme, n):
    kept = SCHEMES[scheme].apply(load_dataset("synth-casme3a").samples)
    assert len(kept) == n and kept["label"].nunique() == len(SCHEMES[scheme].classes)


@pytest.mark.parametrize("cell,aus", [
    ("AU1+L10C+R15", {1, 10, 15}), ("A9E+12", {9, 12}), ("(R12 or R14)+4", {4}),
    ("R12 or L12", {12}), ("", set()), ("25+26", set()), ("4?+7", {4, 7}),
])
def test_au_cells_become_vectors_over_the_cd6me_set(cell, aus):
    assert set(np.array(CD6ME_AUS)[au_vector(cell).astype(bool)]) == aus


def test_k_marks_are_removed_with_their_au():
    assert without_k_marks("AU1+AU2(k)+AU4") == ("AU1+AU4", ["AU2"])
    assert without_k_marks("L4 (k)") == ("", ["L4"])


def test_a_sheet_without_an_emotion_column_names_the_file_and_column(tmp_path, monkeypatch):
    import openpyxl

    from mer_bench.errors import MerBenchError
    root = tmp_path / "casme3"
    (root / "part_A").mkdir(parents=True)
    book = openpyxl.Workbook()
    book.active.append(["Subject", "Filename", "Onset", "Apex", "Offset", "AU"])
    book.active.append(["spNO.1", "a", 1, 2, 3, "4"])
    book.save(root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx")
    with pytest.raises(MerBenchError, match=r"JpgIndex_v2\.xlsx: missing columns \['emotion'\]"):
        _load(tmp_path, monkeypatch, "casme3a")


def test_an_unknown_4dme_label_is_a_problem_naming_the_row(newer_root, tmp_path, monkeypatch):
    import shutil

    import openpyxl
    root = tmp_path / "4dme"
    shutil.copytree(newer_root / "4dme", root)
    sheet = root / "4DME_Labelling_Micro_release v1.xlsx"
    book = openpyxl.load_workbook(sheet)
    book.active["C5"] = "Contemptuous"
    book.save(sheet)
    [problem] = [p for p in _load(tmp_path, monkeypatch, "4dme").problems if p.skip]
    assert problem.kind == "unknown label" and problem.row == 5 and "contemptuous" in problem.detail


@pytest.fixture(scope="module")
def composite_root(newer_root):
    """``newer_root`` with the other sources of the composites: SMIC-HS, CASME II and SAMM
    whole (the MEGC2019 list needs every official clip), CASME and MMEW in part."""
    for folder, write in (("smic", real_fixtures.write_smic), ("casme2", real_fixtures.write_casme2),
                          ("samm", real_fixtures.write_samm)):
        write(newer_root / folder)
    real_fixtures.write_casme(newer_root / "casme", limit_subjects=2)
    real_fixtures.write_mmew(newer_root / "mmew", limit_subjects=2)
    return newer_root


def test_cd6me_reads_six_sources_and_au12_keeps_every_clip(composite_root, monkeypatch):
    from mer_bench.data.schemes import get_scheme
    dataset = _load(composite_root, monkeypatch, "cd6me")
    samples = dataset.samples
    assert set(samples["dataset"]) == {"casme", "casme2", "samm", "4dme", "mmew", "casme3a"}
    assert (samples["dataset"] == "casme3a").sum() == 860 and (samples["dataset"] == "4dme").sum() == 267
    table = get_scheme(None, dataset.name, "au").apply(samples)
    assert len(table) == len(samples)
    assert sum(p.is_correction for p in dataset.problems) == 8  # CAS(ME)^3-A 6, 4DME 2


def test_casme3a_joins_lodo_as_a_fourth_source(composite_root, monkeypatch):
    from mer_bench.data.schemes import get_scheme
    from mer_bench.protocols import get_protocol
    dataset = _load(composite_root, monkeypatch, "megc2019-casme3a")
    table = get_scheme(None, dataset.name).apply(dataset.samples)
    assert table["dataset"].value_counts().to_dict() == {"casme3a": 699, "casme2": 145,
                                                         "smic-hs": 164, "samm": 133}
    folds = list(get_protocol("lodo").folds(table, 0))
    assert sorted(f.name for f in folds) == ["test-casme2", "test-casme3a", "test-samm",
                                             "test-smic-hs"]
    twin = load_dataset("synth-megc2019-casme3a")
    assert len(get_scheme(None, twin.name).apply(twin.samples)) == len(table)
