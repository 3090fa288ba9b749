"""Progress: bars for feature extraction, folds and every training stage (epochs,
meta-steps) and, for a preset sized for a GPU that runs on a CPU, an estimate of the
run's length measured from the stage's first steps.

``progress_bar`` is a tqdm bar when stderr is a terminal; otherwise (a log file, a
pipe, a batch job) it prints a plain line — ``mer-bench: features ...: 40/255 clips
(16 %), 12 s`` — every ``PLAIN_INTERVAL`` seconds, and a last one when a bar that
printed ends (a bar shorter than the interval stays silent), with no carriage returns
or cursor codes.

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
PLAIN_INTERVAL = 30.0
"""Seconds between two plain progress lines (stderr not a terminal)."""


class PlainProgress:
    """A progress bar's plain-text stand-in: ``update`` and ``close`` as tqdm's."""

    def __init__(self, total: int, desc: str, unit: str):
        self.total, self.desc, self.unit, self.done = total, desc, unit, 0
        self.start = self.last = time.monotonic()
        self.shown: int | None = None
        """``done`` as the last line printed said (None: nothing printed yet)."""

    def update(self, n: int = 1) -> None:
        self.done += n
        if time.monotonic() - self.last >= PLAIN_INTERVAL:
            self._line()

    def close(self) -> None:
        if self.shown is not None and self.shown != self.done:
            self._line()

    def _line(self) -> None:
        self.shown, self.last = self.done, time.monotonic()
        share = f" ({100 * self.done / self.total:.0f} %)" if self.total else ""
        print(f"mer-bench: {self.desc}: {self.done}/{self.total} {self.unit}s{share}, "
              f"{self.last - self.start:.0f} s", file=sys.stderr, flush=True)


def progress_bar(total: int, desc: str, unit: str, enabled: bool = True):
    """A bar over ``total`` ``unit``s: tqdm on a terminal, ``PlainProgress`` lines
    elsewhere, silent (a disabled tqdm) when not ``enabled``."""
    if enabled and not sys.stderr.isatty():
        return PlainProgress(total, desc, unit)
    return tqdm(total=total, desc=desc, unit=unit, leave=False, disable=not enabled)


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
                   f"CPU", file=sys.stderr)


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
    """``range(steps)`` with a ``progress_bar`` when the runner asks for bars, timing the first
    ``FIRST_STEPS`` steps for the run estimate when one is installed."""
    estimate = _active["estimate"]
    bar = progress_bar(steps, desc, "step", _active["bars"])
    start = time.perf_counter()
    for step in range(steps):
        if estimate is not None and step == min(FIRST_STEPS, steps - 1) and step > 0:
            estimate.report(desc, (time.perf_counter() - start) / step, steps)
        yield step
        bar.update()
    bar.close()
