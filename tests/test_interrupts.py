"""Interrupted and concurrent runs: what is kept, locks, workers that outlive a parent,
file permissions."""

import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from mer_bench.cli import main
from mer_bench.errors import MerBenchError
from mer_bench.method import _METHODS, register_method
from mer_bench.methods.flow_svm import FlowSVM
from mer_bench.runner import RunOptions, run, run_lock


class InterruptedAtSub05(FlowSVM):
    """flow-svm that is 'interrupted' (Ctrl-C) when fitting the fold holding out sub05."""

    def fit(self, train, ctx):
        if "synth-casme2/sub05" not in set(train.subjects):
            raise KeyboardInterrupt
        super().fit(train, ctx)


def test_ctrl_c_says_what_was_kept_and_how_to_resume(tmp_path, shared_cache, capsys):
    register_method("interrupted-test")(InterruptedAtSub05)
    try:
        code = main(["run", "--method", "interrupted-test", "--protocol", "loso", "--preset",
                     "smoke", "--out", str(tmp_path), "--cache-dir", str(shared_cache), "--quiet"])
    finally:
        _METHODS.pop("interrupted-test")
    err = capsys.readouterr().err
    assert code == 130 and "Traceback" not in err
    assert "interrupted; 4 finished folds are kept in" in err and "--resume continues" in err


def test_a_second_run_of_one_identity_into_one_out_is_refused(tmp_path):
    lock = tmp_path / ".partial" / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from mer_bench.runner import run_lock\n"
        f"with run_lock(Path({str(lock)!r})):\n    print('held', flush=True); time.sleep(30)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(MerBenchError, match="another run of the same identity"):
            with run_lock(lock):
                pass
    finally:
        holder.kill()
        holder.wait()
    with run_lock(lock):  # released when its process died
        pass


def test_a_worker_ends_soon_after_its_parent_is_killed(tmp_path):
    ready = tmp_path / "watching"
    child_code = ("import time, pathlib\n"
                  "from mer_bench.runner import exit_with_parent\n"
                  f"exit_with_parent(0.1); pathlib.Path({str(ready)!r}).touch(); time.sleep(60)")
    parent_code = ("import subprocess, sys, time\n"
                   f"child = subprocess.Popen([sys.executable, '-c', {child_code!r}])\n"
                   "print(child.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE,
                              text=True)
    child = int(parent.stdout.readline())
    deadline = time.time() + 30
    while not ready.exists() and time.time() < deadline:
        time.sleep(0.1)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline and _alive(child):
        time.sleep(0.1)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_result_and_cache_files_follow_the_umask(tmp_path, shared_cache):
    old = os.umask(0o002)
    try:
        path = run(RunOptions(method="majority", protocol="holdout", preset="smoke",
                              out_dir=tmp_path, cache_dir=tmp_path / "cache", device="cpu",
                              progress=False, protocol_params={"repeats": 2}))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o664
    cached = next((tmp_path / "cache" / "features").rglob("*.npy"))
    assert stat.S_IMODE(cached.stat().st_mode) == 0o664


def test_local_workers_watch_their_parent_from_the_start(tmp_path):
    """Workers of a killed run end within seconds even when no task has started its
    watch: the pool's initializer starts it (a task here only sleeps)."""
    pids = tmp_path / "pids"
    parent_code = (
        "import os, time, pathlib\n"
        "from mer_bench.runner import exit_with_parent\n"
        "from mer_bench.scaleout import backend_session\n"
        f"def nap(k):\n    pathlib.Path({str(pids)!r}, str(os.getpid())).touch(); time.sleep(60)\n"
        "with backend_session('loky', 2, None, initializer=exit_with_parent) as fan_out:\n"
        "    list(fan_out(nap, range(2)))\n")
    pids.mkdir()
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    deadline = time.time() + 60
    while len(list(pids.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.1)
    workers = [int(p.name) for p in pids.iterdir()]
    assert len(workers) == 2
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)
