import pandas as pd
import pytest

from mer_bench.data.datasets import load_dataset
from mer_bench.data.samples import (
    COLUMNS,
    HIDDEN_ON_TEST,
    LabelsHidden,
    SampleSet,
    key_frame,
    validate_samples,
)
from mer_bench.data.schemes import SCHEMES, get_scheme
from mer_bench.errors import MerBenchError


def table(**changes):
    row = dict(sample_id="d/s1/c1", dataset="d", subject="d/s1", clip="c1", emotion="happiness",
               aus="12", onset=0, apex=3, offset=6, fps=100.0, n_frames=8, kind="micro")
    rows = [row, {**row, "sample_id": "d/s1/c2", "clip": "c2"}]
    rows[1].update(changes)
    return pd.DataFrame(rows)


def test_valid_table_passes():
    assert len(validate_samples(table())) == 2


def test_duplicate_ids_rejected():
    with pytest.raises(MerBenchError, match="duplicate sample ids.*d/s1/c1"):
        validate_samples(table(sample_id="d/s1/c1"))


def test_missing_columns_named():
    with pytest.raises(MerBenchError, match="missing columns.*'aus'"):
        validate_samples(table().drop(columns=["aus"]), source="sheet.xlsx")


def test_unknown_emotion_named():
    with pytest.raises(MerBenchError, match="unknown emotion strings.*'joy'"):
        validate_samples(table(emotion="joy"))


@pytest.mark.parametrize("apex", [-1, 7])
def test_apex_outside_range_rejected(apex):
    with pytest.raises(MerBenchError, match="apex outside.*d/s1/c2"):
        validate_samples(table(apex=apex))


def test_missing_apex_uses_middle_frame():
    t = validate_samples(table(apex=pd.NA))
    assert key_frame(t.iloc[1]) == 3 and key_frame(t.iloc[0]) == 3


def test_scheme_drops_unmapped_and_orders_classes():
    samples = load_dataset("synth-casme2").samples
    kept = SCHEMES["casme2-5"].apply(samples)
    assert len(kept) == 246  # fear and sadness dropped
    assert set(kept["label"]) == set(range(5))
    first = kept.iloc[0]
    assert SCHEMES["casme2-5"].classes[first["label"]] == first["emotion"]
    assert len(SCHEMES["casme2-4"].apply(samples)) == 147


def test_megc_scheme_maps_negative_emotions():
    samm = load_dataset("synth-samm").samples
    kept = SCHEMES["megc2019"].apply(samm)
    assert (kept["label"] == 0).sum() == 92  # anger+contempt+disgust+fear+sadness


def test_scheme_must_fit_dataset():
    with pytest.raises(MerBenchError, match="'samm-5' does not fit dataset 'synth-casme2'.*casme2-5"):
        get_scheme("samm-5", "synth-casme2")
    with pytest.raises(MerBenchError, match="unknown label scheme 'nope'"):
        get_scheme("nope", "synth-casme2")
    assert get_scheme(None, "synth-smic").name == "smic-3"


def test_test_set_hides_labels():
    rows = validate_samples(table()).assign(label=[0, 1])
    test = SampleSet.build(rows, (rows[["onset"]].to_numpy(),), ("a", "b"), hide_labels=True)
    assert "emotion" not in test.rows and "aus" not in test.rows and "label" not in test.rows
    with pytest.raises(LabelsHidden):
        test.labels
    assert test.label_reads == ["labels"]
    assert set(test.rows.columns) == set(COLUMNS) - set(HIDDEN_ON_TEST)
