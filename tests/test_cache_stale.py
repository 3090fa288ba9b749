"""The feature cache never serves features of data that changed (real-data layout)."""

import cv2
import numpy as np

from mer_bench.features import onset_apex
from mer_bench.features.cache import FeatureCache
from tests.test_loaders import _edit_sheet, quiet_load, small_casme2  # noqa: F401


def test_stale_cache_after_sheet_or_frame_edit_is_recomputed(small_casme2, tmp_path):  # noqa: F811
    spec = onset_apex(24, channels=("flow", "diff"))
    cache = FeatureCache(tmp_path / "cache")
    before = quiet_load("casme2")
    rows = before.samples.head(3)
    warm = cache.materialize(before, rows, spec, progress=False)

    # 1. an ApexFrame cell of the coding sheet changes (first clip, sheet row 2)
    def move_apex(ws):
        onset, apex = ws.cell(row=2, column=4).value, ws.cell(row=2, column=5).value
        ws.cell(row=2, column=5).value = onset + 1 if apex != onset + 1 else onset + 2
    _edit_sheet(small_casme2 / "CASME2-coding-20190701.xlsx", move_apex)
    edited = quiet_load("casme2")
    after_sheet = cache.materialize(edited, edited.samples.head(3), spec, progress=False)
    cold = FeatureCache(None).materialize(edited, edited.samples.head(3), spec, progress=False)
    assert np.array_equal(after_sheet, cold) and not np.array_equal(after_sheet[0], warm[0])

    # 2. a frame other than the first is overwritten (the second clip's apex frame)
    row = edited.samples.iloc[1]
    frame = edited.paths[row["sample_id"]][int(row["apex"])]
    image = cv2.imread(str(frame))
    cv2.imwrite(str(frame), np.ascontiguousarray(image[:, ::-1]))
    again = quiet_load("casme2")
    after_frame = cache.materialize(again, again.samples.head(3), spec, progress=False)
    cold = FeatureCache(None).materialize(again, again.samples.head(3), spec, progress=False)
    assert np.array_equal(after_frame, cold) and not np.array_equal(after_frame[1], after_sheet[1])


def test_a_same_size_overwrite_with_its_mtime_restored_is_noticed(small_casme2, tmp_path):  # noqa: F811
    """Re-extracting an archive writes other content of the same size and restores the
    mtime (``touch -r``); the key follows the content, so the features are recomputed."""
    import os
    spec = onset_apex(24, channels=("flow", "diff"))
    cache = FeatureCache(tmp_path / "cache")
    before = quiet_load("casme2")
    rows = before.samples.head(2)
    warm = cache.materialize(before, rows, spec, progress=False)
    row = before.samples.iloc[0]
    frame = before.paths[row["sample_id"]][int(row["apex"])]
    stat, data = frame.stat(), bytearray(frame.read_bytes())
    other = cv2.imencode(frame.suffix, np.ascontiguousarray(cv2.imread(str(frame))[::-1]))[1]
    data[:] = bytes(other.tobytes()[:len(data)]).ljust(len(data), b"\0")
    frame.write_bytes(bytes(data))
    os.utime(frame, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert frame.stat().st_size == stat.st_size and frame.stat().st_mtime_ns == stat.st_mtime_ns
    again = quiet_load("casme2")
    assert again.clip_fingerprint(row["sample_id"]) != before.clip_fingerprint(row["sample_id"])
    served = cache.materialize(again, again.samples.head(2), spec, progress=False)
    cold = FeatureCache(None).materialize(again, again.samples.head(2), spec, progress=False)
    assert np.array_equal(served, cold) and not np.array_equal(served[0], warm[0])


def test_a_copied_dataset_folder_keeps_its_keys(small_casme2, tmp_path, monkeypatch):  # noqa: F811
    """Keys and the run identity hold frame content, not the folder's path: a copy
    elsewhere (another mount, another machine) hits the same cache entries."""
    import shutil
    spec = onset_apex(24, channels=("flow", "diff"))
    cache = FeatureCache(tmp_path / "cache")
    first = quiet_load("casme2")
    elsewhere = tmp_path / "mounted" / "casme2"
    shutil.copytree(small_casme2, elsewhere)
    monkeypatch.setenv("MER_BENCH_DATA", str(elsewhere.parent))
    copy = quiet_load("casme2")
    assert str(copy.paths[copy.samples["sample_id"][0]][0]).startswith(str(elsewhere))
    assert copy.fingerprint == first.fingerprint
    assert cache.paths(copy, copy.samples, spec) == cache.paths(first, first.samples, spec)
