"""``mer-bench reproduce RESULT.json``: re-run exactly what a result file records and say
whether the installed code gives the same predictions.

What is re-run: the method (by name; a result made from an adapter file is re-run only
from the file the user names with ``--adapter PATH``, whose sha256 must be the recorded
one — nothing a result file names is ever imported), its full stored config (as
overrides of the stored preset), the protocol and its parameters, dataset, label
scheme, seeds, threads, bf16 autocast, corruption, and the macro source of a method
that reads one. The re-run writes into a fresh folder (never over the result it
checks). Predictions are matched by test unit (sample, seed, fold, episode); scores,
where both files have them, are compared too.

Each row states its promise (``promise``, printed with the outcome):

- **identical** — a row made in portable mode (``mer_bench.portable``; the re-run is
  portable too): the same classes and scores within ``STRICT_TOLERANCE``, on any x86-64
  CPU with AVX2.
- **identical classes, scores within T** — a row made on a CPU with the host's own
  kernels: predicted classes exactly, and scores within ``SCORE_TOLERANCE``, the drift
  the same code shows between x86-64 CPUs (OpenBLAS, OpenCV and torch pick kernels per
  instruction set). It holds for the committed linear-SVM rows across AMD and Intel; a
  deep or episodic row may move classes on another CPU model. When it does not hold, the
  re-run is checked **statistically** as well: its UF1 and UAR inside the row's 95 %
  intervals (which hold the subject and seed spread) is reported as consistent.
- **statistical** — a row made on a GPU (cuDNN and cuBLAS choose kernels per device
  model and some use atomics): only that interval check.

``strict=True`` (``--strict``) asks every row for bit-level agreement, which holds on
the machine that made the row.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path

from mer_bench.errors import MerBenchError
from mer_bench.report.schema import HEADLINES, result_task

INTERVAL_METRICS = ("uf1", "uar", "au_f1", "au_f1_meb")
"""The metrics with a recorded interval that a statistical promise is checked against
(those of the result's task)."""
PROMISES = {"identical": "identical (portable mode)",
            "tolerance": "identical classes, scores within 0.01; else statistical",
            "statistical": "statistical (a GPU row)"}
SCORE_TOLERANCE = 1e-2
"""Largest change of a stored score that still counts as the same prediction across
machines. Measured on the committed flow-svm rows (README, "Stale rows and mer-bench
reproduce"): an Intel Xeon's AVX-512 kernels moved them by up to 4.8e-4 from the
Haswell (AVX2) kernels that made them, an AMD EPYC's AVX-512 kernels by up to 3.6e-4,
and Sandy Bridge (AVX, no FMA) kernels simulated on the EPYC by up to 5.2e-3; no class
moved. The tolerance is
about twice the largest drift seen; linear-SVM decision values are O(1), so it stays
far below a change that moves a class (classes are compared exactly anyway)."""
STRICT_TOLERANCE = 1e-9
"""``--strict``: scores that differ by less are bit-level equal (a linear SVM's
decision values move in the 15th digit between processes on one machine: summation
order, not the model)."""


@dataclass
class Reproduction:
    """How a re-run's predictions compare with the recorded ones."""

    units: int
    """Test units (sample, seed, fold, episode) in the recorded result."""
    different: int
    """Units whose predicted class differs (or is missing from the re-run)."""
    max_score_change: float | None
    """Largest absolute change of a stored score (None: no scores to compare)."""
    metrics: dict[str, tuple[float, float]]
    """metric -> (recorded, re-run)."""
    path: Path
    strict: bool = False
    """Bit-level promise (``STRICT_TOLERANCE``) instead of the cross-machine one."""
    promise: str = "tolerance"
    """``identical`` (portable rows), ``tolerance`` (CPU rows in the host's kernels) or
    ``statistical`` (GPU rows); see the module docstring."""
    recorded_ci: dict = field(default_factory=dict)
    """metric -> the recorded 95 % interval (None: too few subjects for one)."""

    @property
    def identical(self) -> bool:
        """Same classes, and scores within the tolerance of the promise checked."""
        limit = STRICT_TOLERANCE if self.strict or self.promise == "identical" else SCORE_TOLERANCE
        return self.different == 0 and (self.max_score_change or 0.0) <= limit

    @property
    def consistent(self) -> bool:
        """The re-run's UF1 and UAR inside the recorded 95 % intervals."""
        return all(self.recorded_ci.get(k) is not None
                   and self.recorded_ci[k][0] <= self.metrics[k][1] <= self.recorded_ci[k][1]
                   for k in self.metrics if k in INTERVAL_METRICS)

    @property
    def kept(self) -> bool:
        """Whether the row's promise holds (the command's exit status)."""
        if self.strict or self.promise == "identical":
            return self.identical
        return self.identical or self.consistent

    def summary(self) -> str:
        return f"[promise: {PROMISES[self.promise]}] {self._outcome()}"

    def _outcome(self) -> str:
        change = self.max_score_change
        if not self.identical and self.consistent and not self.strict \
                and self.promise != "identical":
            moved = ", ".join(f"{k} {a:.4f} -> {b:.4f} (recorded interval "
                              f"[{self.recorded_ci[k][0]:.4f}, {self.recorded_ci[k][1]:.4f}])"
                              for k, (a, b) in self.metrics.items() if k in INTERVAL_METRICS)
            return (f"statistically consistent: {self.different} of {self.units} predicted "
                    f"classes differ; {moved}")
        if self.identical and (change or 0.0) <= STRICT_TOLERANCE:
            scores = "" if change is None else f" (scores within {STRICT_TOLERANCE:.0e})"
            return f"identical: {self.units} of {self.units} predictions{scores}"
        if self.identical:
            return (f"identical classes, scores within {SCORE_TOLERANCE:g}: {self.units} of "
                    f"{self.units} predicted classes the same; scores change by up to {change:.3g}")
        moved = ", ".join(f"{k} {a:.4f} -> {b:.4f}" for k, (a, b) in self.metrics.items() if a != b)
        scores = ("" if change is None else f"; scores change by up to {change:.3g} (allowed: "
                  f"{STRICT_TOLERANCE if self.strict else SCORE_TOLERANCE:g}"
                  f"{', --strict' if self.strict else ''})")
        return (f"different: {self.different} of {self.units} predicted classes differ{scores}"
                f"{'; ' + moved if moved else '; no headline metric moves'}")


def adapter_file(result: dict, adapter: Path | None) -> Path:
    """The adapter file to re-run ``result`` with: ``adapter`` (named by the user), whose
    sha256 must be the one the result records. A result file never picks the code that
    runs: without ``adapter`` this is an error naming the recorded path and hash."""
    from mer_bench.methods import file_sha256
    recorded = result["method"]["file"]
    if adapter is None:
        raise MerBenchError(f"this result ran the adapter file {recorded['path']} (sha256 "
                            f"{recorded['sha256'][:12]}...); name your copy with --adapter PATH "
                            f"to re-run it (nothing a result file names is imported)")
    adapter = Path(adapter)
    if not adapter.is_file():
        raise MerBenchError(f"--adapter {adapter}: no such file")
    if file_sha256(adapter) != recorded["sha256"]:
        raise MerBenchError(f"--adapter {adapter}: its sha256 is not the recorded "
                            f"{recorded['sha256'][:12]}... of {recorded['path']}")
    return adapter


def run_options(result: dict, out_dir: Path, jobs: int = 1, cache_dir: Path | None = None,
                progress: bool = False, adapter: Path | None = None):
    """The ``RunOptions`` that re-run ``result`` (a verified result file's content); a
    result of an adapter file needs ``adapter`` (``adapter_file``)."""
    from mer_bench.methods import build_method, resolve_method
    method = result["method"]
    name = str(adapter_file(result, adapter)) if method.get("file") else method["name"]
    preset_config = build_method(resolve_method(name), method["preset"]).config
    overrides = {}
    for f in fields(preset_config):
        stored = method["config"].get(f.name, getattr(preset_config, f.name))
        if isinstance(getattr(preset_config, f.name), tuple) and isinstance(stored, list):
            stored = tuple(tuple(v) if isinstance(v, list) else v for v in stored)
        if stored != getattr(preset_config, f.name):
            overrides[f.name] = stored
    return _options(result, name, overrides, out_dir, jobs, cache_dir, progress)


def _options(result: dict, name: str, overrides: dict, out_dir: Path, jobs: int,
             cache_dir: Path | None, progress: bool):
    from mer_bench.features.corruptions import Corruption
    from mer_bench.runner import RunOptions
    method = result["method"]
    timing, options = result["timing"], result.get("run_options", {})
    corruption = result.get("corruption")
    return RunOptions(
        method=name, protocol=result["protocol"]["name"], dataset=result["dataset"],
        scheme=result["label_scheme"]["name"], preset=method["preset"],
        seeds=tuple(result["seeds"]), jobs=jobs, out_dir=Path(out_dir), cache_dir=cache_dir,
        protocol_params=dict(result["protocol"]["params"]), method_overrides=overrides,
        auxiliary={"macro": method.get("auxiliary", {}).get("macro", "synth-ckplus")},
        threads=int(options.get("threads", timing.get("threads") or 1)),
        amp=bool(options.get("amp", str(timing.get("dtype", "")).startswith("bfloat16"))),
        corruption=(Corruption(corruption["kind"], corruption["share"], corruption["seed"])
                    if corruption else None),
        face_crop=options.get("face_crop", "detect"), progress=progress,
        portable=bool(options.get("portable", False)))


def _units(result: dict) -> dict[tuple, dict]:
    return {(p["sample_id"], p["seed"], p["fold"], p.get("episode")): p
            for p in result["predictions"]}


def compare_predictions(recorded: dict, fresh: dict, path: Path) -> Reproduction:
    """Match the two results' predictions by test unit."""
    old, new = _units(recorded), _units(fresh)
    different, score_change = 0, None
    for key, p in old.items():
        q = new.get(key)
        if q is None or q["y_pred"] != p["y_pred"]:
            different += 1
        if q is not None and p.get("scores") is not None and q.get("scores") is not None:
            change = max((abs(a - b) if a is not None and b is not None else
                          (0.0 if a is b else float("inf"))
                          for a, b in zip(p["scores"], q["scores"])), default=0.0)
            score_change = max(score_change or 0.0, change)
    different += len(set(new) - set(old))
    metrics = {k: (float(recorded["metrics"][k]), float(fresh["metrics"][k]))
               for k in HEADLINES[result_task(recorded)]}
    return Reproduction(len(old), different, score_change, metrics, path)


def reproduce(result_path: Path, out_dir: Path | None = None, jobs: int = 1,
              cache_dir: Path | None = None, progress: bool = False,
              adapter: Path | None = None, strict: bool = False) -> Reproduction:
    """Verify ``result_path``, re-run it into ``out_dir`` (default: a temporary folder,
    removed afterwards) and compare the predictions (``strict``: bit-level)."""
    from mer_bench.report.results import load_result
    from mer_bench.report.verification import result_problems
    from mer_bench.runner import run
    recorded = load_result(result_path)
    problems, _ = result_problems(recorded)
    if problems:
        raise MerBenchError(f"{result_path}: not a verified result ({'; '.join(problems[:3])}); "
                            f"nothing to reproduce")
    with tempfile.TemporaryDirectory(prefix="mer-bench-reproduce-") as scratch:
        folder = Path(out_dir) if out_dir is not None else Path(scratch)
        path = run(run_options(recorded, folder, jobs, cache_dir, progress, adapter))
        outcome = compare_predictions(recorded, load_result(path), path)
        outcome.strict, outcome.promise = strict, row_promise(recorded)
        outcome.recorded_ci = {k: recorded["metrics"].get("ci", {}).get(k) for k in outcome.metrics}
        return outcome


def row_promise(result: dict) -> str:
    """What a re-run of ``result`` promises (module docstring)."""
    if (result.get("numeric_mode") or {}).get("portable") is True:
        return "identical"
    if str(result["timing"].get("device_class") or result["timing"].get("device", "")
           ).startswith(("GPU", "NVIDIA", "cuda")):
        return "statistical"
    return "tolerance"


def _text(value: object) -> str:
    """A config value as ``-S`` reads it back (``true``, ``flow,diff``)."""
    if isinstance(value, bool):
        return str(value).lower()
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def run_command(result: dict, path: Path | None = None) -> str:
    """The ``mer-bench run`` command line that makes ``result`` again (what ``run_options``
    rebuilds, as a user would type it); with ``path``, followed by the ``reproduce`` call
    that checks it. For a result of an adapter file nothing is imported: the command
    names the recorded path as text and sets every stored config field with ``-S``."""
    import shlex
    method = result["method"]
    if method.get("file"):
        options = _options(result, str(method["file"]["path"]), dict(method["config"]),
                           Path("results"), 1, None, False)
    else:
        options = run_options(result, Path("results"))
    parts = ["mer-bench", "run", "--method", options.method, "--protocol", options.protocol,
             "--dataset", options.dataset, "--scheme", options.scheme, "--preset", options.preset,
             "--seeds", ",".join(map(str, options.seeds))]
    parts += [a for k, v in options.protocol_params.items() if v is not None
              for a in ("-P", f"{k}={v}")]
    parts += [a for k, v in options.method_overrides.items() for a in ("-S", f"{k}={_text(v)}")]
    parts += ["--threads", str(options.threads)] + (["--amp"] if options.amp else [])
    parts += ["--portable"] if options.portable else []
    if options.corruption:
        parts += ["--corrupt", options.corruption.kind,
                  "--corrupt-share", f"{options.corruption.share:g}"]
    if result["method"].get("auxiliary"):
        parts += ["--macro-dataset", options.auxiliary["macro"]]
    if options.face_crop != "detect":
        parts += ["--face-crop", options.face_crop]
    command = shlex.join(parts)
    if path is None:
        return command
    check = ["mer-bench", "reproduce", str(path)]
    if method.get("file"):
        check += ["--adapter", str(method["file"]["path"])]
    return f"{command}\n{shlex.join(check)}"
