"""Portable numeric mode: a process is portable only if it started with the switches,
each library is checked for what it runs, and predictions are bit-identical whether
or not the host's AVX-512 is visible (a simulated AVX2 host)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mer_bench.errors import MerBenchError
from mer_bench.portable import cache_root, host_pins, portable_env, portable_process
from mer_bench.report.results import load_result
from mer_bench.runner import RunOptions, run

AVX512_HIDDEN = "glibc.cpu.hwcaps=-AVX512F,-AVX512CD,-AVX512BW,-AVX512DQ,-AVX512VL"
"""A host without AVX-512 as far as the dynamic loader and glibc's CPU-specific code
paths can tell (the libraries' own switches are portable mode's already)."""


def cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mer_bench.cli", *args], env=env,
                          capture_output=True, text=True, check=False, timeout=600)


def test_only_a_process_started_with_the_switches_is_portable(tmp_path):
    assert not portable_process()
    env = {**os.environ, **portable_env()}
    code = "from mer_bench.portable import portable_process; print(portable_process())"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=False).stdout.strip() == "True"
    late = ("import os, numpy; from mer_bench.portable import portable_env, portable_process; "
            "os.environ.update(portable_env()); print(portable_process())")
    assert subprocess.run([sys.executable, "-c", late], capture_output=True,
                          text=True, check=False).stdout.strip() == "False"  # set after numpy loaded
    with pytest.raises(MerBenchError, match="needs its switches in the environment the process"):
        run(RunOptions(method="flow-svm", protocol="loso", preset="smoke", out_dir=tmp_path,
                       device="cpu", progress=False, portable=True))
    assert cache_root(tmp_path, True) == tmp_path / "portable" and cache_root(tmp_path, False) == tmp_path


def _predictions(folder: Path) -> tuple[dict, list]:
    [path] = folder.glob("*.json")
    result = load_result(path)
    return result, sorted((p["sample_id"], p["seed"], p["fold"], p.get("episode"), p["y_pred"],
                           tuple(p.get("scores") or ())) for p in result["predictions"])


@pytest.mark.parametrize("method, protocol", [("flow-svm", "loso"), ("protonet", "kfold5")])
def test_portable_runs_are_identical_on_a_simulated_avx2_host(method, protocol, tmp_path,
                                                               shared_cache):
    """The command restarts itself portable; the same row run where AVX-512 is hidden
    from the loader and glibc gives the same bits, and a native run is another run."""
    args = ["run", "--method", method, "--protocol", protocol, "--preset", "smoke",
            "--device", "cpu", "--cache-dir", str(shared_cache), "--quiet", "--portable"]
    done = cli([*args, "--out", str(tmp_path / "host")], dict(os.environ))
    assert done.returncode == 0, done.stderr[-2000:]
    simulated = {**os.environ, "GLIBC_TUNABLES": AVX512_HIDDEN}
    done = cli([*args, "--out", str(tmp_path / "avx2")], simulated)
    assert done.returncode == 0, done.stderr[-2000:]
    host, host_rows = _predictions(tmp_path / "host")
    _, other_rows = _predictions(tmp_path / "avx2")
    assert host_rows == other_rows  # bit-identical scores
    mode = host["numeric_mode"]
    assert mode["portable"] is True and mode["verified"]["openblas"] == "Haswell"
    assert mode["switches"]["OPENBLAS_CORETYPE"] == "Haswell"
    if method == "protonet":
        assert mode["verified"]["torch"].startswith("ATen AVX2")
    native = load_result(run(RunOptions(method=method, protocol=protocol, preset="smoke",
                                        out_dir=tmp_path / "native", cache_dir=shared_cache,
                                        device="cpu", progress=False)))
    assert native["run_id"] != host["run_id"] and native["numeric_mode"]["portable"] is False


def test_a_library_left_above_avx2_refuses_the_run(tmp_path, shared_cache):
    pins = host_pins()
    if "NPY_DISABLE_CPU_FEATURES" not in pins:
        pytest.skip("this CPU has no numpy target above AVX2 to leave on")
    env = {**os.environ, **portable_env()}
    del env["NPY_DISABLE_CPU_FEATURES"]  # a switch forgotten: numpy dispatches AVX-512
    code = ("from mer_bench.portable import verify; verify(False)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "--portable: numpy dispatches" in done.stderr


def test_reproduce_of_a_portable_row_promises_identical(tmp_path, shared_cache):
    done = cli(["run", "--method", "flow-svm", "--protocol", "loso", "--preset", "smoke",
                "--cache-dir", str(shared_cache), "--quiet", "--portable", "--out",
                str(tmp_path / "r")], dict(os.environ))
    assert done.returncode == 0, done.stderr[-2000:]
    [path] = (tmp_path / "r").glob("*.json")
    assert json.loads(path.read_text())["run_options"]["portable"] is True
    again = cli(["reproduce", str(path), "--quiet", "--cache-dir", str(shared_cache)],
                dict(os.environ))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "[promise: identical (portable mode)] identical" in again.stdout
