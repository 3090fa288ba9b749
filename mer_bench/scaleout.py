"""Where a run's tasks execute: joblib's local ``loky`` processes (default), a Dask
cluster (``--backend dask``), or a Ray cluster (``--backend ray``, optional extra).

Dask: with ``--scheduler ADDRESS`` (``tcp://host:8786``) tasks go to that cluster's
workers; without it a ``LocalCluster`` of ``--jobs`` single-threaded worker processes is
started on loopback for the run. Each task carries its fold's features and the paths of
the feature and artefact caches, so workers on other machines need those paths on a
shared file system (``--cache-dir /shared/mer-bench``). Results are identical to a local
run: a task's numbers depend only on its seed, fold and ``--threads``.
"""

from __future__ import annotations

from contextlib import contextmanager

from mer_bench.errors import MerBenchError


@contextmanager
def backend_session(backend: str, jobs: int, scheduler: str | None):
    """Make ``backend`` (already checked by ``runner.check_backend``) usable by joblib for
    the block, connecting to or starting a cluster where it needs one; yields the name to
    pass to ``parallel_config``."""
    if backend == "dask":
        with _dask_client(jobs, scheduler):
            yield "dask"
    elif backend == "ray":
        try:
            from ray.util.joblib import register_ray
        except ImportError:
            raise MerBenchError("--backend ray needs Ray: pip install 'mer-bench[ray]'") from None
        register_ray()
        yield "ray"
    else:
        yield backend


@contextmanager
def _dask_client(jobs: int, scheduler: str | None):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise MerBenchError("--backend dask needs dask[distributed]") from None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as err:
            raise MerBenchError(f"--scheduler {scheduler}: cannot connect ({err})") from None
        with client:
            yield
        return
    with LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster):
        yield
