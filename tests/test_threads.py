"""Thread helpers for GIL-releasing load work (mer_bench.threads)."""

import threading

import pytest

from mer_bench import threads


def test_results_come_back_in_order_from_several_threads(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 3)
    seen = set()

    def square(n: int) -> int:
        seen.add(threading.get_ident())
        return n * n
    assert threads.thread_map(square, range(40)) == [n * n for n in range(40)]
    assert threading.get_ident() not in seen


def test_one_core_runs_in_the_calling_thread(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 1)
    assert threads.thread_map(lambda _: threading.get_ident(), range(5)) == \
        [threading.get_ident()] * 5


def test_the_first_error_is_raised(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)

    def fail_on_three(n: int) -> int:
        if n == 3:
            raise ValueError("three")
        return n
    with pytest.raises(ValueError, match="three"):
        threads.thread_map(fail_on_three, range(8))


def test_each_thread_detects_faces_with_its_own_cascade():
    """OpenCV's cascade keeps working buffers: two threads sharing one found faces in
    each other's frames."""
    from mer_bench.data.faces import _cascade
    mine = _cascade()
    other = []
    worker = threading.Thread(target=lambda: other.append(_cascade()))
    worker.start()
    worker.join()
    assert mine is _cascade() and other[0] is not mine and not other[0].empty()
