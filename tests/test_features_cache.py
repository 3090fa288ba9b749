import json

import numpy as np
import pytest

from mer_bench.data.datasets import load_dataset
from mer_bench.errors import MerBenchError
from mer_bench.features import (
    FlowGrid,
    OnsetApex,
    frame_difference,
    grid_pool,
    onset_apex,
    optical_flow,
)
from mer_bench.features.cache import FeatureCache
from tests.helpers import shifted_pair


@pytest.mark.parametrize("method", ["farneback", "dis", "tvl1-fast"])
def test_flow_recovers_a_known_shift(method):
    first, second = shifted_pair(1.5, -0.75)
    flow = optical_flow(first, second, method)
    assert flow.shape == (2, 64, 64) and flow.dtype == np.float32
    centre = flow[:, 16:48, 16:48].reshape(2, -1).mean(1)
    assert centre == pytest.approx([1.5, -0.75], abs=0.15)


def test_frame_difference_sign_and_scale():
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 51, np.uint8)
    assert frame_difference(a, b).shape == (3, 4, 4)
    assert frame_difference(a, b)[0, 0, 0] == pytest.approx(0.2)


def test_spec_validation_names_bad_values():
    with pytest.raises(MerBenchError, match="unknown feature channels \\['depth'\\]"):
        onset_apex(channels=("depth",))
    with pytest.raises(MerBenchError, match="unknown flow method 'lk'"):
        onset_apex(flow="lk")


def test_onset_apex_channels_stack_in_order():
    ds = load_dataset("synth-casme2")
    row = ds.samples.iloc[0]
    x = onset_apex(32, channels=("flow", "diff", "apex")).compute(ds, row)
    assert x.shape == (8, 32, 32)
    assert np.array_equal(x[2:5], onset_apex(32, channels=("diff",)).compute(ds, row))


def test_spec_key_changes_with_parameters():
    assert onset_apex(64).key != onset_apex(32).key
    assert onset_apex(64).key == OnsetApex(64, "farneback", ("flow",)).key


class CountingSpec(OnsetApex):
    calls = 0

    def compute(self, dataset, row):
        CountingSpec.calls += 1
        return super().compute(dataset, row)


def test_cache_hits_skip_computation_and_store_spec(tmp_path):
    ds = load_dataset("synth-casme2")
    rows = ds.samples.head(6)
    spec = CountingSpec(size=24)
    CountingSpec.calls = 0
    first = FeatureCache(tmp_path).materialize(ds, rows, spec, progress=False)
    assert CountingSpec.calls == 6
    second = FeatureCache(tmp_path).materialize(ds, rows, spec, progress=False)
    assert CountingSpec.calls == 6 and np.array_equal(first, second)
    metas = list(tmp_path.rglob("*.json"))
    assert len(metas) == 6 and json.loads(metas[0].read_text())["spec"]["size"] == 24
    assert not list(tmp_path.rglob("*.tmp"))


def test_corrupt_entry_is_recomputed(tmp_path):
    ds = load_dataset("synth-casme2")
    rows = ds.samples.head(2)
    spec = CountingSpec(size=24)
    cache = FeatureCache(tmp_path)
    good = cache.materialize(ds, rows, spec, progress=False)
    path = cache.path(ds, rows.iloc[0], spec)
    path.write_bytes(path.read_bytes()[:40])  # torn file
    CountingSpec.calls = 0
    with pytest.warns(UserWarning, match="1 corrupt entries are recomputed.*unreadable"):
        again = cache.materialize(ds, rows, spec, progress=False)
    assert CountingSpec.calls == 1 and np.array_equal(good, again)


@pytest.mark.parametrize("bad,reason", [
    (np.zeros((2, 24, 24), np.float32), "shape"),
    (np.full((3, 24, 24), np.nan, np.float32), "NaN or inf"),
    (np.zeros((3, 24, 24), np.float64), "dtype float64"),
])
def test_entry_of_wrong_shape_dtype_or_values_is_recomputed(tmp_path, bad, reason):
    ds = load_dataset("synth-casme2")
    rows = ds.samples.head(2)
    spec = onset_apex(24, channels=("diff",))
    cache = FeatureCache(tmp_path)
    good = cache.materialize(ds, rows, spec, progress=False)
    np.save(cache.path(ds, rows.iloc[1], spec), bad)
    with pytest.warns(UserWarning, match=reason):
        again = cache.materialize(ds, rows, spec, progress=False)
    assert np.array_equal(good, again)
    assert np.array_equal(np.load(cache.path(ds, rows.iloc[1], spec)), good[1])  # rewritten


def test_cache_key_depends_on_source_fingerprint(tmp_path):
    cache = FeatureCache(tmp_path)
    a, b = load_dataset("synth-casme2"), load_dataset("synth-casme2", data_seed=1)
    row = a.samples.iloc[0]
    assert cache.path(a, row, onset_apex(24)) != cache.path(b, row, onset_apex(24))
    moved = row.copy()
    moved["apex"] = row["apex"] + 1
    assert cache.path(a, row, onset_apex(24)) != cache.path(a, moved, onset_apex(24))


def test_parallel_extraction_matches_serial(tmp_path):
    ds = load_dataset("synth-casme2")
    rows = ds.samples.head(40)
    serial = FeatureCache(None).materialize(ds, rows, onset_apex(24), n_jobs=1, progress=False)
    parallel = FeatureCache(tmp_path).materialize(ds, rows, onset_apex(24), n_jobs=2, progress=False)
    assert np.array_equal(serial, parallel)


def test_grid_pool_averages_each_cell_and_its_magnitude():
    flow = np.zeros((2, 9, 9), np.float32)
    flow[0, :4, :4] = 3.0  # top-left cell of a 2 x 2 grid moves right by 3
    flow[1, :4, 4:8] = -4.0  # top-right cell moves up by 4; row/column 8 is dropped
    flow[:, 8, :] = 100.0
    pooled = grid_pool(flow, 2)
    assert pooled.shape == (12,) and pooled.dtype == np.float32
    dx, dy, magnitude = pooled.reshape(3, 4)
    assert dx.tolist() == [3, 0, 0, 0] and dy.tolist() == [0, -4, 0, 0]
    assert magnitude.tolist() == [3, 4, 0, 0]


def test_flow_grid_is_the_pooled_onset_apex_flow_and_caches_pooled(tmp_path):
    ds = load_dataset("synth-casme2")
    rows = ds.samples.head(3)
    spec = FlowGrid(size=32, grid=4)
    pooled = FeatureCache(tmp_path).materialize(ds, rows, spec, progress=False)
    flows = FeatureCache(None).materialize(ds, rows, onset_apex(32), progress=False)
    assert pooled.shape == (3, 48)
    assert np.array_equal(pooled, np.stack([grid_pool(f, 4) for f in flows]))
    assert np.load(FeatureCache(tmp_path).path(ds, rows.iloc[0], spec)).shape == (48,)
    with pytest.raises(MerBenchError, match="grid 40 must be between 1 and the size 32"):
        FlowGrid(size=32, grid=40)
    with pytest.raises(MerBenchError, match="unknown flow method 'lk'"):
        FlowGrid(flow="lk")


def test_parallel_workers_run_opencv_on_one_thread(tmp_path):
    import cv2
    ds = load_dataset("synth-casme2")
    before = cv2.getNumThreads()
    try:
        FeatureCache(None)._compute_chunk(ds, ds.samples.head(1), [[onset_apex(16)]], one_thread=True)
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)


@pytest.mark.parametrize("length", [2, 3, 5, 8, 12])
def test_resampling_from_the_needed_frames_alone_is_identical(length):
    from mer_bench.features.operators import needed_frames, resample_frames
    rng = np.random.default_rng(length)
    for n in range(1, 40):
        frames = rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)
        needed = needed_frames(n, length)
        assert len(needed) <= min(n, 2 * length)
        assert np.array_equal(resample_frames(frames[needed], length, n),
                              resample_frames(frames, length))


def test_cache_keys_hold_the_digest_of_the_code_that_computes_the_spec(tmp_path, monkeypatch):
    """Features cached by other code are never served: the key holds the sha256 of the
    spec's and the dataset's modules and every project module they reach (operators,
    the twins' renderer), and a class defined outside the project counts its own file."""
    import importlib
    import sys

    from mer_bench import provenance
    from mer_bench.features import cache as cache_module
    ds = load_dataset("synth-casme2")
    reached = provenance.closure(tuple(c.__module__ for c in (OnsetApex, *ds.reader_classes())))
    assert {"mer_bench.features.operators", "mer_bench.data.synthetic.render"} <= set(reached)
    rows = ds.samples.head(2)
    cache = FeatureCache(tmp_path)
    before = cache.paths(ds, rows, onset_apex(16))
    monkeypatch.setattr(cache_module, "feature_code", lambda classes: "other code")
    assert not set(before) & set(cache.paths(ds, rows, onset_apex(16)))

    module = tmp_path / "my_spec.py"
    source = ("from mer_bench.features import OnsetApex\n\n\n"
              "class MySpec(OnsetApex):\n    pass\n")
    module.write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    first = provenance.feature_code((importlib.import_module("my_spec").MySpec,))
    module.write_text(source + "\n# edited\n")
    del sys.modules["my_spec"]
    assert provenance.feature_code((importlib.import_module("my_spec").MySpec,)) != first
    assert provenance.feature_code((OnsetApex,)) not in ("", first)
