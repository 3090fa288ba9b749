"""Fan-out backends: a two-worker Dask LocalCluster gives the same predictions as loky."""

import json

import pytest

from mer_bench.errors import MerBenchError
from mer_bench.runner import RunOptions, run


def _predictions(path):
    result = json.loads(path.read_text())
    return sorted((p["sample_id"], p["fold"], p["y_pred"]) for p in result["predictions"])


def test_dask_local_cluster_matches_loky(tmp_path, shared_cache):
    common = dict(method="protonet", protocol="kfold5", dataset="synth-casme2", preset="smoke",
                  cache_dir=shared_cache, device="cpu", progress=False, jobs=2)
    loky = run(RunOptions(**common, backend="loky", out_dir=tmp_path / "loky"))
    dask = run(RunOptions(**common, backend="dask", out_dir=tmp_path / "dask"))
    assert loky.name == dask.name                      # the backend is not part of the identity
    assert _predictions(loky) == _predictions(dask)


def test_scheduler_needs_the_dask_backend(tmp_path):
    with pytest.raises(MerBenchError, match="--scheduler is for --backend dask"):
        run(RunOptions(method="majority", protocol="loso", preset="smoke", out_dir=tmp_path,
                       scheduler="tcp://127.0.0.1:8786"))
