"""Threads for work that releases the GIL (OpenCV decoding and detection, hashlib).

A real dataset's load-time work — hashing every frame file, checking each clip's key
frames and finding its face — is a loop of independent file reads and OpenCV calls that
release the GIL, so threads spread it over the cores without the start-up and pickling
of worker processes. The pool has one thread per core this process may run on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def thread_imap(function: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """``function(item)`` for each of ``items``, yielded in order as they are ready,
    computed over ``usable_cores()`` threads (in this thread when there is one core or
    at most one item). The first exception raised by a call is raised here; leaving the
    loop early waits for the calls already started."""
    items = list(items)
    workers = min(usable_cores(), len(items))
    if workers <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(workers) as pool:
        yield from pool.map(function, items)


def thread_map(function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``list(thread_imap(function, items))``."""
    return list(thread_imap(function, items))
