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
