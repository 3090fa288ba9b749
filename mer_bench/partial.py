"""Finished folds of an interrupted run (``<out>/.partial/<run-id>/<task>.json``), and
what ``--resume`` accepts of them.

A fold file is the runner's own output, but it lies in a folder anyone can write, so
before a resumed run takes it each file is checked: a regular JSON file of at most
``MAX_FOLD_BYTES``, written under this run's identity (``run_hash``), for a task this
run has, whose predictions test exactly that task's units (sample, fold, episode, seed)
with the dataset's labels, subjects and datasets, whose class indices are in range and
whose stored scores give its predicted classes, and whose timing figures are numbers.
A file that fails is set aside with a warning naming it and the reason, and its fold
is computed again; a file of another identity stops the run (``--fresh`` discards).
A fold whose predictions were edited consistently (labels and scores together) cannot
be told from a computed one; every result lists the folds it took from a resume
(``resumed_folds``), and ``mer-bench reproduce`` re-runs them all.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pandas as pd

from mer_bench.errors import MerBenchError
from mer_bench.report.results import read_regular
from mer_bench.report.schema import au_score_problem, is_int, is_number, score_problem

MAX_FOLD_BYTES = 256 * 2**20
"""Largest fold file read back."""
TIMING_NUMBERS = ("fit_seconds", "n_train", "params", "model_bytes", "peak_memory_bytes",
                  "threads")


def load_partial(partial_dir: Path, run_hash: str, resume: bool, fresh: bool
                 ) -> dict[str, tuple[Path, dict]]:
    """Task key -> (file, output) of the fold files in ``partial_dir`` that carry
    ``run_hash`` (unchecked against the tasks yet: ``accepted``). With ``fresh`` the folder is
    removed; files there without ``resume`` stop the run."""
    files = sorted(partial_dir.glob("*.json")) if partial_dir.is_dir() else []
    if files and fresh:
        shutil.rmtree(partial_dir)
        return {}
    if files and not resume:
        raise MerBenchError(f"{len(files)} finished folds of this run are in {partial_dir}; pass "
                            f"--resume to continue it or --fresh to discard them")
    done = {}
    for f in files:
        try:
            record = json.loads(read_regular(f, MAX_FOLD_BYTES))
        except (MerBenchError, ValueError, OSError, RecursionError) as err:
            _set_aside(f, f"unreadable ({type(err).__name__})")
            continue
        if not isinstance(record, dict) or not isinstance(record.get("key"), str):
            _set_aside(f, "not a fold record")
            continue
        if record.get("run_hash") != run_hash:
            raise MerBenchError(f"{f} was computed under another setting of this run (its "
                                f"identity differs); --fresh discards the folder's folds")
        done[record["key"]] = (f, record)
    return done


def accepted(done: dict[str, tuple[Path, dict]], tasks: list, samples: pd.DataFrame,
             n_classes: int, n_aus: int = 0) -> dict[str, dict]:
    """Task key -> output, of the records of ``done`` that are a valid output of their
    task (module docstring); the others are set aside with a warning and computed again.
    ``n_classes``: how many label values a record may hold (AU task: 2^A); ``n_aus``: A
    for the AU task (its scores are checked as AU scores), else 0."""
    if not done:
        return {}
    by_key = {t.key: t for t in tasks}
    truth = samples.set_index("sample_id")[["label", "subject", "dataset"]].to_dict("index")
    kept = {}
    for key, (path, record) in done.items():
        task = by_key.get(key)
        problem = ("no task of this run has this key" if task is None else
                   _record_problem(record, task, truth, n_classes, n_aus))
        if problem:
            _set_aside(path, problem)
        else:
            kept[key] = record
    return kept


def _set_aside(path: Path, reason: str) -> None:
    warnings.warn(f"{path}: {reason}; the fold is computed again")


def _record_problem(record: dict, task, truth: dict, n_classes: int, n_aus: int) -> str:
    predictions, timing = record.get("predictions"), record.get("timing")
    if not isinstance(predictions, list) or not isinstance(timing, dict) \
            or not isinstance(record.get("episodes", []), list) \
            or not isinstance(record.get("diagnostics", {}), dict):
        return "predictions, timing, episodes or diagnostics of the wrong type"
    if not all(is_number(timing.get(k)) for k in TIMING_NUMBERS):
        return f"timing needs the numbers {', '.join(TIMING_NUMBERS)}"
    expected = sorted((sid, fold.name, fold.episode)
                      for fold in task.folds for sid in fold.test_ids)
    try:
        stored = sorted((p["sample_id"], p["fold"], p.get("episode")) for p in predictions)
    except (TypeError, KeyError):
        return "a prediction without sample_id or fold"
    if stored != expected:
        return "its predictions do not test this fold's clips"
    for p in predictions:
        problem = _prediction_problem(p, task.seed, truth, n_classes, n_aus)
        if problem:
            return f"prediction of {p['sample_id']}: {problem}"
    return ""


def _prediction_problem(p: dict, seed: int, truth: dict, n_classes: int, n_aus: int) -> str:
    clip = truth.get(p["sample_id"])
    if clip is None or p.get("seed") != seed or p.get("y_true") != clip["label"] \
            or p.get("subject") != clip["subject"] or p.get("dataset") != clip["dataset"]:
        return "seed, y_true, subject or dataset is not this run's"
    if not (is_int(p.get("y_pred")) and 0 <= p["y_pred"] < n_classes):
        return "y_pred is not a class index"
    if p.get("scores") is not None and n_aus:
        return au_score_problem(p["scores"], p["y_pred"], n_aus)
    if p.get("scores") is not None:
        return score_problem(p["scores"], p["y_pred"], n_classes, None)
    return ""
