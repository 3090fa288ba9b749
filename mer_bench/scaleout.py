"""Where a run's tasks execute: joblib's local ``loky`` processes (default), a Dask
cluster (``--backend dask``), or a Ray cluster (``--backend ray``, optional extra).

Dask: with ``--scheduler ADDRESS`` (``tcp://host:8786``) tasks go to that cluster's
workers; without it a ``LocalCluster`` of ``--jobs`` single-threaded worker processes is
started on loopback for the run. Each task carries its fold's features and the paths of
the feature and artefact caches, so workers on other machines need those paths on a
shared file system (``--cache-dir /shared/mer-bench``). Results are identical to a local
run: a task's numbers depend only on its seed, fold and ``--threads``.

GPU folds on Dask (``--device cuda``): every fold task asks for one unit of the worker
resource ``GPU`` (``GPU_RESOURCE``), so only workers that declare it take folds, one at a
time each. Start one such worker per GPU, each seeing its own device::

    CUDA_VISIBLE_DEVICES=0 dask worker tcp://HOST:8786 --nthreads 1 --resources GPU=1
    CUDA_VISIBLE_DEVICES=1 dask worker tcp://HOST:8786 --nthreads 1 --resources GPU=1

A cluster with no such worker is refused before any fold is sent (a task asking for a
resource nobody has would wait forever). The local cluster started without
``--scheduler`` declares ``GPU=1`` on each of its ``--jobs`` workers, which share this
machine's GPU as ``--jobs N --device cuda`` does with local processes.

Trust: the client unpickles what the scheduler's workers return, so a scheduler (and
its workers) can run code in the ``mer-bench`` process. Give ``--scheduler`` only a
cluster you control, as you would for any Dask client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial

from mer_bench.errors import MerBenchError


GPU_RESOURCE = "GPU"
"""The Dask worker resource a GPU fold asks one unit of (Dask's usual name for it)."""

FanOut = Callable[[Callable, Iterable], Iterator]
"""``fan_out(function, items)``: ``function(item)`` for every item, in the order they
finish."""


@contextmanager
def backend_session(backend: str, jobs: int, scheduler: str | None, gpu: bool = False,
                    initializer: Callable | None = None) -> Iterator[FanOut]:
    """A ``FanOut`` over ``backend`` (already checked by ``runner.check_backend``) for the
    block, connecting to or starting a cluster where it needs one. ``gpu``: the items run
    on CUDA (Dask: only on workers that declare ``GPU_RESOURCE``; module docstring).
    ``initializer``: run first in each local ``loky`` worker process.

    joblib runs local processes and Ray; Dask is driven through its own client, since
    joblib's Dask backend runs every task in *this* process when the cluster has one
    thread in all (one GPU worker, say)."""
    if backend == "dask":
        with _dask_client(jobs, scheduler, gpu) as client:
            yield partial(dask_fan_out, client, gpu=gpu)
        return
    if backend == "ray":
        try:
            from ray.util.joblib import register_ray
        except ImportError:
            raise MerBenchError("--backend ray needs Ray: pip install 'mer-bench[ray]'") from None
        register_ray()
    extra = {"initializer": initializer} if backend == "loky" and jobs > 1 and initializer else {}
    yield partial(_joblib_fan_out, {"backend": backend, "n_jobs": jobs, **extra})


def _joblib_fan_out(config: dict, function: Callable, items: Iterable) -> Iterator:
    from joblib import Parallel, delayed, parallel_config
    with parallel_config(**config):
        yield from Parallel(return_as="generator_unordered")(delayed(function)(i) for i in items)


def dask_fan_out(client, function: Callable, items: Iterable, gpu: bool = False) -> Iterator:
    """``function(item)`` on the client's workers, in the order they finish: ``function``
    is sent to the cluster once (it carries the run's features), each item is one task,
    a GPU task asks for one unit of ``GPU_RESOURCE``. Tasks not yet finished are
    cancelled when the caller stops early (an error, an interrupt)."""
    from dask.distributed import as_completed
    [shared] = client.scatter([function], hash=False)
    options = {"resources": {GPU_RESOURCE: 1}} if gpu else {}
    futures = [client.submit(_call, shared, item, pure=False, **options) for item in items]
    try:
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.cancel(futures)


def _call(function: Callable, item):
    return function(item)


def require_gpu_workers(scheduler_info: dict, scheduler: str) -> int:
    """The number of workers of a cluster (``Client.scheduler_info()``) that declare
    ``GPU_RESOURCE``; ``MerBenchError`` with the command to start one when none does."""
    workers = (scheduler_info.get("workers") or {}).values()
    count = sum(1 for w in workers if (w.get("resources") or {}).get(GPU_RESOURCE, 0) >= 1)
    if not count:
        raise MerBenchError(
            f"--device cuda --scheduler {scheduler}: no worker of the cluster declares a "
            f"{GPU_RESOURCE} resource, so no GPU fold could start; start one worker per GPU "
            f"with `CUDA_VISIBLE_DEVICES=K dask worker {scheduler} --nthreads 1 --resources "
            f"{GPU_RESOURCE}=1`")
    return count


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
def _dask_client(jobs: int, scheduler: str | None, gpu: bool):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise MerBenchError("--backend dask needs dask[distributed]") from None
    if scheduler:
        with connect(Client, scheduler) as client:
            if gpu:
                require_gpu_workers(client.scheduler_info(), scheduler)
            yield client
        return
    with LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, resources={GPU_RESOURCE: 1} if gpu else None
                      ) as cluster, Client(cluster) as client:
        yield client
