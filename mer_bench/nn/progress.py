"""Progress of training loops, for every trainer and adapter: a bar per training stage
(epochs, meta-steps) and, for a preset sized for a GPU that runs on a CPU, an estimate of
the run's length measured from the stage's first steps.

Trainers iterate ``for step in stage(n, "pre-training"): ...``. The runner switches bars
on (one process, progress wanted) and installs a ``RunEstimate`` around ``fit``
(``watching``); outside a run, ``stage`` is a plain ``range``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tqdm.auto import tqdm

FIRST_STEPS = 3
"""Steps timed before a stage's estimate is printed."""


@dataclass
class RunEstimate:
    """What an estimate needs about the run: the method and preset, the number of fits
    (tasks), how many run at once and the task measured (``first_task``, so that
    parallel workers do not each print one); ``reported`` holds the stages estimated."""

    method: str
    preset: str
    n_tasks: int
    jobs: int
    first_task: str = ""
    reported: set = field(default_factory=set)

    def report(self, desc: str, seconds_per_step: float, steps: int) -> None:
        """Print, once per stage, the stage's length per fit and over the whole run."""
        if desc in self.reported:
            return
        self.reported.add(desc)
        per_fit = seconds_per_step * steps
        total = per_fit * self.n_tasks / max(1, self.jobs)
        tqdm.write(f"mer-bench: estimate: {self.method} '{self.preset}' stage '{desc}': first "
                   f"steps take {seconds_per_step:.1f} s each on this CPU, so {steps} steps "
                   f"≈ {_duration(per_fit)} per fit, ≈ {_duration(total)} over the run's "
                   f"{self.n_tasks} fits if each runs it; `--preset fast` is sized for a 2-core "
                   f"CPU", 
                   file=sys.stderr)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


_active: dict = {"bars": False, "estimate": None}


@contextmanager
def watching(bars: bool, estimate: RunEstimate | None):
    """Within the block, training stages show bars (``bars``) and report to
    ``estimate`` (None: no estimate)."""
    saved = dict(_active)
    _active.update(bars=bars, estimate=estimate)
    try:
        yield
    finally:
        _active.update(saved)


def stage(steps: int, desc: str) -> Iterator[int]:
    """``range(steps)`` with a tqdm bar when the runner asks for bars, timing the first
    ``FIRST_STEPS`` steps for the run estimate when one is installed."""
    estimate = _active["estimate"]
    bar = tqdm(range(steps), desc=desc, leave=False, disable=not _active["bars"])
    start = time.perf_counter()
    for step in bar:
        if estimate is not None and step == min(FIRST_STEPS, steps - 1) and step > 0:
            estimate.report(desc, (time.perf_counter() - start) / step, steps)
        yield step
