"""The shape and types of a result file, checked before anything else reads it.

``schema_problems(result)`` lists what is wrong with a parsed result (empty: nothing),
so that verification, the leaderboard, plots and ``compare`` only ever see values of the
types they expect: a malformed file is rejected with a reason and nothing else is
affected. Beyond types: predictions' class indices are integers (not booleans or
floats), stored scores are finite or null (null: a class the method did not score,
e.g. one without prototypes) and ``y_pred`` is their argmax over the classes the unit
could be given (few-shot: its episode's support classes), so an all-correct forgery
that keeps the model's scores is caught; ``corrupted`` flags appear only on the
robustness track; the preset is a known one; a fold's test subjects are not also
among its training subjects; timing figures are finite, non-negative and below
``LIMIT``. Files above ``MAX_BYTES`` or nested deeper than ``MAX_DEPTH`` are refused
before and while parsing.
"""

from __future__ import annotations

import math
from numbers import Real

MAX_BYTES = 512 * 2**20
"""The largest result file read (a 5-seed few-shot run with scores is about 10 MB)."""
MAX_DEPTH = 16
"""Deepest nesting of a valid result (diagnostics curves: 7)."""
LIMIT = 1e15
"""Largest plausible timing figure (bytes of memory, samples per second, seconds)."""
PRESETS = ("paper", "fast", "smoke")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def depth(value: object) -> int:
    """Nesting depth of a parsed JSON value (a scalar: 0), without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict):
            items = item.values()
        elif isinstance(item, list):
            items = item
        else:
            continue
        deepest = max(deepest, level)
        todo.extend((v, level + 1) for v in items if isinstance(v, (dict, list)))
    return deepest


def _typed(result: dict, path: str, kind: type | tuple, what: str) -> list[str]:
    value = result
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return [f"'{path}' is missing"]
        value = value[key]
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = _is_int(value)
    else:
        ok = isinstance(value, kind) and not isinstance(value, bool)
    return [] if ok else [f"'{path}' must be {what}; got {type(value).__name__} {_short(value)}"]


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


TOP_LEVEL = (("schema", str, "a string"), ("method", dict, "an object"),
             ("method.name", str, "a string"), ("method.preset", str, "a string"),
             ("method.config", dict, "an object"), ("protocol", dict, "an object"),
             ("protocol.name", str, "a string"), ("protocol.params", dict, "an object"),
             ("datasets", list, "a list"), ("synthetic", bool, "true or false"),
             ("label_scheme", dict, "an object"), ("label_scheme.name", str, "a string"),
             ("label_scheme.classes", list, "a list"), ("seeds", list, "a list"),
             ("predictions", list, "a list"), ("metrics", dict, "an object"),
             ("timing", dict, "an object"), ("environment", dict, "an object"),
             ("created", str, "a string"))


def schema_problems(result: object) -> list[str]:
    """What is wrong with the shape or types of a parsed result (at most a few lines)."""
    if not isinstance(result, dict):
        return [f"a result is a JSON object, not {type(result).__name__}"]
    if depth(result) > MAX_DEPTH:
        return [f"nested deeper than {MAX_DEPTH} levels"]
    problems = [p for path, kind, what in TOP_LEVEL for p in _typed(result, path, kind, what)]
    for key in ("dataset", "run_id"):
        if key in result:
            problems += _typed(result, key, str, "a string")
    if problems:
        return problems
    classes = result["label_scheme"]["classes"]
    if not classes or not all(isinstance(c, str) for c in classes):
        problems.append("'label_scheme.classes' must be a non-empty list of strings")
    if not all(isinstance(d, str) for d in result["datasets"]):
        problems.append("'datasets' must be a list of strings")
    if not result["seeds"] or not all(_is_int(s) and 0 <= s < 2**32 for s in result["seeds"]):
        problems.append(f"'seeds' must be integers in [0, 2^32); got {_short(result['seeds'])}")
    if result["method"]["preset"] not in PRESETS:
        problems.append(f"unknown preset {_short(result['method']['preset'])}; "
                        f"known: {', '.join(PRESETS)}")
    problems += _metric_problems(result["metrics"])
    problems += _timing_problems(result["timing"])
    problems += _fold_problems(result.get("folds", []))
    if not problems:
        problems += _prediction_problems(result, len(classes))
    return problems[:5]


def _metric_problems(metrics: dict) -> list[str]:
    return [f"'metrics.{k}' must be a finite number; got {_short(metrics.get(k))}"
            for k in ("accuracy", "uf1", "uar")
            if not (_is_number(metrics.get(k)) and math.isfinite(metrics[k]))]


TIMING_TEXT = ("dtype", "device")


def _timing_problems(timing: dict) -> list[str]:
    """Every figure finite, non-negative and below ``LIMIT`` (or null: not measured)."""
    problems = []
    for key, value in timing.items():
        if key in TIMING_TEXT:
            if value is not None and not isinstance(value, str):
                problems.append(f"'timing.{key}' must be a string; got {_short(value)}")
        elif key == "per_task":
            if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
                problems.append("'timing.per_task' must be a list of objects")
        elif value is not None and not (_is_number(value) and math.isfinite(value)
                                        and 0 <= value < LIMIT):
            problems.append(f"'timing.{key}' must be a finite number in [0, {LIMIT:g}) or null; "
                            f"got {_short(value)}")
    return problems


def _fold_problems(folds: object) -> list[str]:
    if not isinstance(folds, list) or not all(isinstance(f, dict) for f in folds):
        return ["'folds' must be a list of objects"]
    for f in folds:
        both = set(f.get("test_subjects") or ()) & set(f.get("train_subjects") or ())
        if both:
            return [f"fold {_short(f.get('fold'))}: subject {sorted(both)[0]!r} is on both the "
                    f"training and the test side"]
    return []


PREDICTION_TYPES = (("sample_id", str), ("dataset", str), ("subject", str), ("fold", str),
                    ("seed", int), ("y_true", int), ("y_pred", int))


def _prediction_problems(result: dict, n_classes: int) -> list[str]:
    on_track = bool(result.get("corruption"))
    supports = {(e.get("seed"), e.get("episode")): set(e.get("support_labels") or ())
                for e in result.get("episodes", []) if isinstance(e, dict)}
    for i, p in enumerate(result["predictions"]):
        if not isinstance(p, dict):
            return [f"prediction {i} is not an object"]
        for key, kind in PREDICTION_TYPES:
            value = p.get(key)
            if not (_is_int(value) if kind is int else isinstance(value, kind)):
                return [f"prediction {i}: '{key}' must be {'an integer' if kind is int else 'a string'}"
                        f"; got {type(value).__name__} {_short(value)}"]
        if not (0 <= p["y_true"] < n_classes and 0 <= p["y_pred"] < n_classes):
            return [f"prediction {i}: class index outside 0..{n_classes - 1}"]
        if "corrupted" in p and (not on_track or not isinstance(p["corrupted"], bool)):
            return [f"prediction {i}: 'corrupted' is only a boolean on the robustness track "
                    f"(a result with a 'corruption' block)"]
        episode = p.get("episode")
        if episode is not None and not _is_int(episode):
            return [f"prediction {i}: 'episode' must be an integer or null"]
        scores = p.get("scores")
        if scores is not None:
            problem = _score_problem(scores, p["y_pred"], n_classes,
                                     supports.get((p["seed"], episode)))
            if problem:
                return [f"prediction {i}: {problem}"]
    return []


def _score_problem(scores: object, y_pred: int, n_classes: int, allowed: set | None) -> str:
    if not isinstance(scores, list) or len(scores) != n_classes:
        return f"'scores' must be a list of {n_classes} numbers"
    if not all(s is None or (_is_number(s) and math.isfinite(s)) for s in scores):
        return "'scores' must be finite numbers or null (NaN and infinity are not scores)"
    candidates = [c for c in range(n_classes) if scores[c] is not None
                  and (not allowed or c in allowed)]
    if not candidates:
        return ""
    if scores[y_pred] is None or scores[y_pred] < max(scores[c] for c in candidates):
        return (f"'y_pred' {y_pred} is not the argmax of the stored scores "
                f"({max(candidates, key=lambda c: scores[c])})")
    return ""
