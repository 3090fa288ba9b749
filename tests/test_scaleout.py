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


def test_a_port_that_never_speaks_dask_fails_within_the_timeout():
    """A port that accepts TCP but never answers the handshake is an error in seconds,
    not a hang."""
    import socket
    import time

    from dask.distributed import Client

    from mer_bench.scaleout import connect
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    start = time.monotonic()
    try:
        with pytest.raises(MerBenchError, match="cannot connect"):
            with connect(Client, address, seconds=1.0):
                pass
    finally:
        server.close()
    assert time.monotonic() - start < 10
