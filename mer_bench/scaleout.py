"""Where a run's tasks execute: joblib's local ``loky`` processes (default), a Dask
cluster (``--backend dask``), or a Ray cluster (``--backend ray``, optional extra).

Dask: with ``--scheduler ADDRESS`` (``tcp://host:8786``) tasks go to that cluster's
workers; without it a ``LocalCluster`` of ``--jobs`` single-threaded worker processes is
started on loopback for the run. Each task carries its fold's features and the paths of
the feature and artefact caches, so workers on other machines need those paths on a
shared file system (``--cache-dir /shared/mer-bench``). Results are identical to a local
run: a task's numbers depend only on its seed, fold and ``--threads``.

Trust: the client unpickles what the scheduler's workers return, so a scheduler (and
its workers) can run code in the ``mer-bench`` process. Give ``--scheduler`` only a
cluster you control, as you would for any Dask client.
"""

from __future__ import annotations

import threading
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


CONNECT_SECONDS = 20.0
"""How long connecting to a Dask scheduler, handshake included, may take."""


@contextmanager
def connect(client_class, scheduler: str, seconds: float = CONNECT_SECONDS):
    """A Dask ``Client`` of ``scheduler``, or ``MerBenchError`` within ``seconds``: the
    client is made in a helper thread, because a port that accepts TCP but never speaks
    Dask's protocol would hold the handshake past any ``timeout`` argument."""
    made: dict = {}

    def make() -> None:
        try:
            made["client"] = client_class(scheduler, timeout=f"{seconds}s")
        except Exception as err:  # reported below, in the caller's thread
            made["error"] = err

    helper = threading.Thread(target=make, name="mer-bench-dask-connect", daemon=True)
    helper.start()
    helper.join(seconds + 5)
    if "client" not in made:
        reason = (f"{type(made['error']).__name__}: {made['error']}" if "error" in made
                  else f"no Dask handshake within {seconds:g} s")
        raise MerBenchError(f"--scheduler {scheduler}: cannot connect ({reason}); is it a "
                            f"Dask scheduler address (tcp://host:8786)?")
    with made["client"]:
        yield made["client"]


@contextmanager
def _dask_client(jobs: int, scheduler: str | None):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise MerBenchError("--backend dask needs dask[distributed]") from None
    if scheduler:
        with connect(Client, scheduler):
            yield
        return
    with LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster):
        yield
