"""Training progress: a bar per stage, and an estimate for GPU presets on a CPU."""

import time
from dataclasses import dataclass

from mer_bench.method import _METHODS, register_method
from mer_bench.methods.flow_svm import FlowSVM, FlowSVMConfig
from mer_bench.progress import RunEstimate, stage, watching
from mer_bench.runner import RunOptions, run


def test_stage_is_a_range_outside_a_run(capsys):
    assert list(stage(4, "epochs")) == [0, 1, 2, 3]
    assert capsys.readouterr().err == ""


class FakeClock:
    """perf_counter that advances 1.5 s per call (stage reads it at start and after
    three steps: 1.5 s for 3 steps)."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 1.5
        return self.now


def test_estimate_is_measured_from_the_first_steps_and_printed_once(capsys, monkeypatch):
    monkeypatch.setattr("mer_bench.progress.time", FakeClock())
    estimate = RunEstimate("m", "paper", n_tasks=26, jobs=2)
    with watching(False, estimate):
        for _ in range(2):
            for _ in stage(100, "epochs"):
                pass
    err = capsys.readouterr().err
    assert err.count("estimate: m 'paper' stage 'epochs'") == 1
    assert "first steps take 0.5 s each" in err
    assert "100 steps ≈ 50 s per fit, ≈ 11 min over the run's 26 fits" in err  # 2 jobs


@dataclass(frozen=True)
class SlowConfig(FlowSVMConfig):
    GPU_PRESETS = ("smoke",)


class SlowStages(FlowSVM):
    """flow-svm with a timed training stage and a 'smoke' preset marked as GPU-sized."""

    Config = SlowConfig

    def fit(self, train, ctx):
        for _ in stage(5, "warm-up steps"):
            time.sleep(0.002)
        super().fit(train, ctx)


def test_a_gpu_preset_on_cpu_says_so_up_front_with_an_estimate(tmp_path, shared_cache, capsys):
    register_method("slow-stages-test")(SlowStages)
    try:
        run(RunOptions(method="slow-stages-test", protocol="holdout", preset="smoke",
                       out_dir=tmp_path, cache_dir=shared_cache, device="cpu", progress=False,
                       protocol_params={"repeats": 2}))
    finally:
        _METHODS.pop("slow-stages-test")
    err = capsys.readouterr().err
    assert "preset 'smoke' of slow-stages-test is sized for a GPU and this run is on the CPU" in err
    assert err.count("stage 'warm-up steps'") == 1 and "`--preset fast`" in err


def test_off_a_terminal_bars_are_plain_periodic_lines(capsys, monkeypatch):
    """stderr under pytest is not a terminal: a bar prints a plain line every
    ``PLAIN_INTERVAL`` seconds and a last one when it ends (a bar shorter than that is
    silent), never carriage returns or cursor codes."""
    from mer_bench import progress
    bar = progress.progress_bar(40, "features X", "clip")
    for _ in range(40):
        bar.update()
    bar.close()
    assert capsys.readouterr().err == ""  # done within PLAIN_INTERVAL
    monkeypatch.setattr(progress, "PLAIN_INTERVAL", 0.0)
    bar = progress.progress_bar(4, "epochs", "step")
    bar.update(2)
    bar.update(2)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["mer-bench: epochs: 2/4 steps (50 %), 0 s",
                     "mer-bench: epochs: 4/4 steps (100 %), 0 s"]  # not repeated by close
    progress.progress_bar(4, "quiet", "step", enabled=False).update(4)
    assert capsys.readouterr().err == ""


def test_a_run_logged_to_a_file_has_no_terminal_codes(tmp_path, shared_cache, capsys, monkeypatch):
    monkeypatch.setattr("mer_bench.progress.PLAIN_INTERVAL", 0.0)
    run(RunOptions(method="majority", protocol="holdout", preset="smoke", out_dir=tmp_path,
                   cache_dir=shared_cache, device="cpu", protocol_params={"repeats": 2}))
    err = capsys.readouterr().err
    assert "mer-bench: majority folds: 2/2 folds (100 %)" in err
    assert "\r" not in err and "\x1b[" not in err
