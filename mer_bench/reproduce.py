"""``mer-bench reproduce RESULT.json``: re-run exactly what a result file records and say
whether the installed code gives the same predictions.

What is re-run: the method (by name, or the adapter file it names when the file's
sha256 still matches), its full stored config (as overrides of the stored preset),
the protocol and its parameters, dataset, label scheme, seeds, threads, bf16 autocast,
corruption, and the macro source of a method that reads one. The re-run writes into a
fresh folder (never over the result it checks). Predictions are matched by test unit
(sample, seed, fold, episode); scores, where both files have them, are compared too.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

from mer_bench.errors import MerBenchError

METRICS = ("accuracy", "uf1", "uar")
SCORE_TOLERANCE = 1e-9
"""Scores that differ by less count as the same (a linear SVM's decision values move in
the 15th digit between processes: summation order, not the model)."""


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

    @property
    def identical(self) -> bool:
        return self.different == 0 and (self.max_score_change or 0.0) <= SCORE_TOLERANCE

    def summary(self) -> str:
        if self.identical:
            scores = ("" if self.max_score_change is None
                      else f" (scores within {self.max_score_change:.1g})")
            return f"identical: {self.units} of {self.units} predictions{scores}"
        moved = ", ".join(f"{k} {a:.4f} -> {b:.4f}" for k, (a, b) in self.metrics.items() if a != b)
        scores = ("" if self.max_score_change is None
                  else f"; scores change by up to {self.max_score_change:.3g}")
        return (f"different: {self.different} of {self.units} predicted classes differ{scores}"
                f"{'; ' + moved if moved else '; no headline metric moves'}")


def run_options(result: dict, out_dir: Path, jobs: int = 1, cache_dir: Path | None = None,
                progress: bool = False):
    """The ``RunOptions`` that re-run ``result`` (a verified result file's content)."""
    from mer_bench.features.corruptions import Corruption
    from mer_bench.methods import build_method, file_sha256, resolve_method
    from mer_bench.runner import RunOptions
    method = result["method"]
    name = method["name"]
    if method.get("file"):
        path = Path(method["file"]["path"])
        if not path.is_file() or file_sha256(path) != method["file"]["sha256"]:
            raise MerBenchError(f"the adapter file {path} this result ran is not here with the "
                                f"recorded content (sha256 {method['file']['sha256'][:12]}...)")
        name = str(path)
    preset_config = build_method(resolve_method(name), method["preset"]).config
    overrides = {}
    for f in fields(preset_config):
        stored = method["config"].get(f.name, getattr(preset_config, f.name))
        if isinstance(getattr(preset_config, f.name), tuple) and isinstance(stored, list):
            stored = tuple(tuple(v) if isinstance(v, list) else v for v in stored)
        if stored != getattr(preset_config, f.name):
            overrides[f.name] = stored
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
        face_crop=options.get("face_crop", "detect"), progress=progress)


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
    metrics = {k: (float(recorded["metrics"][k]), float(fresh["metrics"][k])) for k in METRICS}
    return Reproduction(len(old), different, score_change, metrics, path)


def reproduce(result_path: Path, out_dir: Path | None = None, jobs: int = 1,
              cache_dir: Path | None = None, progress: bool = False) -> Reproduction:
    """Verify ``result_path``, re-run it into ``out_dir`` (default: a temporary folder,
    removed afterwards) and compare the predictions."""
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
        path = run(run_options(recorded, folder, jobs, cache_dir, progress))
        return compare_predictions(recorded, load_result(path), path)


def _text(value: object) -> str:
    """A config value as ``-S`` reads it back (``true``, ``flow,diff``)."""
    if isinstance(value, bool):
        return str(value).lower()
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def run_command(result: dict, path: Path | None = None) -> str:
    """The ``mer-bench run`` command line that makes ``result`` again (what ``run_options``
    rebuilds, as a user would type it); with ``path``, followed by the ``reproduce`` call
    that checks it."""
    import shlex
    options = run_options(result, Path("results"))
    parts = ["mer-bench", "run", "--method", options.method, "--protocol", options.protocol,
             "--dataset", options.dataset, "--scheme", options.scheme, "--preset", options.preset,
             "--seeds", ",".join(map(str, options.seeds))]
    parts += [a for k, v in options.protocol_params.items() if v is not None
              for a in ("-P", f"{k}={v}")]
    parts += [a for k, v in options.method_overrides.items() for a in ("-S", f"{k}={_text(v)}")]
    parts += ["--threads", str(options.threads)] + (["--amp"] if options.amp else [])
    if options.corruption:
        parts += ["--corrupt", options.corruption.kind,
                  "--corrupt-share", f"{options.corruption.share:g}"]
    if result["method"].get("auxiliary"):
        parts += ["--macro-dataset", options.auxiliary["macro"]]
    if options.face_crop != "detect":
        parts += ["--face-crop", options.face_crop]
    command = shlex.join(parts)
    return command if path is None else f"{command}\nmer-bench reproduce {shlex.quote(str(path))}"
