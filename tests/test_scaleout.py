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
    timing = json.loads(dask.read_text())["timing"]  # named by the workers that ran the folds
    assert {t["device_name"] for t in timing["per_task"]} == {timing["device"]}


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


@pytest.fixture(scope="module")
def gpu_cluster():
    """An in-process Dask cluster whose one worker declares the GPU resource (no GPU is
    needed: a resource is a label the scheduler counts)."""
    from dask.distributed import Client, LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                      resources={"GPU": 1}) as cluster, Client(cluster) as client:
        yield client


def test_a_gpu_fold_takes_one_gpu_unit_of_a_dask_worker(gpu_cluster):
    """Each GPU fold is a task asking for ``resources={"GPU": 1}``: while it runs, its
    worker has no GPU unit left for another; a CPU fold asks none. Both run on the
    cluster's worker, even though it has a single thread (joblib's Dask backend would
    run them in this process)."""
    from distributed import get_worker

    from mer_bench.scaleout import dask_fan_out

    def free_gpu_units(_):
        return get_worker().state.available_resources["GPU"]

    assert list(dask_fan_out(gpu_cluster, free_gpu_units, range(3), gpu=True)) == [0, 0, 0]
    assert list(dask_fan_out(gpu_cluster, free_gpu_units, range(2))) == [1, 1]


def test_gpu_workers_are_counted_from_the_scheduler(gpu_cluster):
    from mer_bench.scaleout import require_gpu_workers
    assert require_gpu_workers(gpu_cluster.scheduler_info(), "tcp://x:8786") == 1
    with pytest.raises(MerBenchError, match=r"no worker .* declares a GPU resource.*"
                                            r"--resources GPU=1"):
        require_gpu_workers({"workers": {"tcp://a:1": {"resources": {}},
                                         "tcp://b:1": {"resources": {"GPU": 0}}}}, "tcp://x:8786")


def test_gpu_run_on_a_cluster_without_gpu_workers_is_refused(tmp_path, shared_cache, monkeypatch):
    """``--device cuda --scheduler``: the GPU is the workers' (this machine needs none), and
    a cluster none of whose workers declares one is refused before a fold is sent, rather
    than waiting forever; nothing is written."""
    from dask.distributed import LocalCluster
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # the run pins it; restored after
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        with pytest.raises(MerBenchError, match="no worker of the cluster declares a GPU"):
            run(RunOptions(method="protonet", protocol="kfold5", dataset="synth-casme2",
                           preset="smoke", cache_dir=shared_cache, device="cuda",
                           backend="dask", scheduler=cluster.scheduler_address,
                           out_dir=tmp_path, progress=False))
    assert not list(tmp_path.glob("*.json"))
