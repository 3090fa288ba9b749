import numpy as np
import pandas as pd
import pytest

from mer_bench.data.datasets import load_dataset
from mer_bench.data.schemes import SCHEMES
from mer_bench.data.synthetic.render import (
    au_anchors,
    displacement_field,
    make_geometry,
    profile,
)
from mer_bench.data.synthetic.twins import CASME_COUNTS, CKPLUS_COUNTS, subject_counts
from mer_bench.features import optical_flow
from mer_bench.seeding import stable_seed


@pytest.mark.parametrize("twin,real", [("synth-casme2", "casme2"), ("synth-samm", "samm"),
                                       ("synth-smic", "smic-hs"), ("synth-mmew", "mmew")])
def test_twin_reproduces_subject_class_counts(twin, real):
    samples = load_dataset(twin).samples
    got = (samples.assign(subject=samples["subject"].str.split("/").str[1])
           .groupby(["subject", "emotion"]).size().rename("n_clips").reset_index())
    want = subject_counts(real)
    merged = want.merge(got, on=["subject", "emotion"], how="outer", suffixes=("_want", "_got"))
    assert (merged["n_clips_want"] == merged["n_clips_got"]).all()


def test_totals_of_twins_without_subject_counts():
    casme = load_dataset("synth-casme").samples
    assert casme.groupby("emotion").size().to_dict() == CASME_COUNTS
    assert casme["subject"].nunique() == 19
    ck = load_dataset("synth-ckplus").samples
    assert ck.groupby("emotion").size().to_dict() == CKPLUS_COUNTS
    assert ck["subject"].nunique() == 118 and (ck["kind"] == "macro").all()
    assert (ck["onset"] == 0).all() and (ck["apex"] == ck["n_frames"] - 1).all()


def test_label_spellings_and_apex_availability():
    smic = load_dataset("synth-smic").samples
    assert smic["apex"].isna().all()
    assert smic["subject"].str.match(r"synth-smic/s[1-9]\d?$").all()  # unpadded like the folders
    samm = load_dataset("synth-samm").samples
    assert "other" in set(samm["emotion"]) and "others" not in set(samm["emotion"])
    casme2 = load_dataset("synth-casme2").samples.set_index("clip")
    assert pd.isna(casme2.loc["EP12_01f", "apex"])
    assert casme2.loc["EP09_05f", "apex"] == casme2.loc["EP09_05f", "onset"]


def test_megc2019_composite_matches_official_list():
    samples = load_dataset("synth-megc2019").samples
    labelled = SCHEMES["megc2019"].apply(samples)
    assert len(labelled) == 442
    assert labelled["subject"].nunique() == 68
    counts = labelled.groupby(["dataset", "label"]).size().unstack().to_dict("index")
    assert counts["synth-smic"] == {0: 70, 1: 51, 2: 43}
    assert counts["synth-casme2"] == {0: 88, 1: 32, 2: 25}
    assert counts["synth-samm"] == {0: 92, 1: 26, 2: 15}
    assert not samples["clip"].isin(["EP12_01f", "EP09_05f"]).any()


def test_frames_are_deterministic_and_sized():
    ds = load_dataset("synth-casme2")
    sid = ds.samples["sample_id"].iloc[5]
    a = ds.frames(sid, np.array([0, 3]), 48)
    b = load_dataset("synth-casme2", data_seed=0).frames(sid, np.array([0, 3]), 48)
    assert a.shape == (2, 48, 48, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    other = load_dataset("synth-casme2", data_seed=1)
    assert not np.array_equal(a, other.frames(sid, np.array([0, 3]), 48))


def test_au_field_amplitude_in_pixels_scales_with_size():
    geometry = make_geometry(stable_seed("test-face"))
    at128 = displacement_field(geometry, au_anchors("12", 1.5), 128)
    at64 = displacement_field(geometry, au_anchors("12", 1.5), 64)
    assert np.hypot(*at128).max() == pytest.approx(1.5, rel=0.05)
    assert np.hypot(*at64).max() == pytest.approx(0.75, rel=0.05)
    right_only = displacement_field(geometry, au_anchors("R12", 1.5), 128)
    assert np.hypot(*right_only[:, :, :56]).max() < 0.05  # the left half does not move


def test_micro_amplitudes_and_profile():
    ds = load_dataset("synth-casme2")
    amps = [m.amplitude for m in ds._motion.values()]
    assert 0.4 <= min(amps) and max(amps) <= 2.5
    assert profile(np.array([0, 2, 5, 8, 10]), 2, 5, 8).tolist() == [0, 0, 1, 0, 0]


def test_onset_apex_flow_sees_the_expression():
    """Flow between onset and apex is larger than between two neutral frames."""
    ds = load_dataset("synth-casme2")
    rows = ds.samples[(ds.samples["onset"] >= 2) & ds.samples["apex"].notna()]
    ratios = []
    for _, row in rows.head(20).iterrows():
        f = ds.frames(row["sample_id"], np.array([0, 1, row["onset"], row["apex"]]), 128)
        neutral = np.hypot(*optical_flow(f[0], f[1], "farneback")).mean()
        expressive = np.hypot(*optical_flow(f[2], f[3], "farneback")).mean()
        ratios.append(expressive / neutral)
    assert np.median(ratios) > 1.5
