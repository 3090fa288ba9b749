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

Every other block a reader touches is typed too (``BLOCKS``: folds, run options,
recipe departures, adapter file, macro source, code identity, diagnostics,
environment, numeric mode, episodes, corruption), every string is clean text (no lone surrogate,
no control character but tab and line breaks: ``text_problem``), the run id and the
method name are names from ``NAME`` (no path separator, nothing a file name or a page
could be confused by), and counts a reader loops over are bounded (``MAX_SEEDS``
seeds, ``MAX_STAGES`` diagnostics stages, ``MAX_CURVE`` points a curve, the
protocol's own parameter bounds), so no file can make a reader crash or hang.
"""

from __future__ import annotations

import math
import re
from numbers import Real

MAX_BYTES = 512 * 2**20
"""The largest result file read (a 5-seed few-shot run with scores is about 10 MB)."""
MAX_DEPTH = 16
"""Deepest nesting of a valid result (diagnostics curves: 7)."""
LIMIT = 1e15
"""Largest plausible timing figure (bytes of memory, samples per second, seconds)."""
PRESETS = ("paper", "fast", "smoke")
MAX_SEEDS = 64
"""Most seeds a run or a result may list (committed rows: at most 5)."""
MAX_STAGES = 32
"""Most training stages a task's diagnostics may report (adapters report 1-4)."""
MAX_CURVE = 1000
"""Most points a stored loss curve may have (the runner keeps 50)."""
MAX_TASKS = 100_000
"""Most entries of a per-task list (folds x seeds; few-shot episodes x seeds)."""
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,254}")
"""A run id or method name: letters, digits and ``._+-``, not starting with a dot or a
dash — safe as a file name, a URL and a markdown or HTML cell as it is."""
_BAD_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
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


def text_problem(value: object) -> str:
    """The first string (key or value) anywhere in ``value`` that is not clean text — a
    lone surrogate (no encoder writes it) or a control character other than tab and
    line breaks — as a problem line; empty when every string is clean."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            strings = [k for k in item if isinstance(k, str)]
            todo.extend(v for v in item.values() if not isinstance(v, (int, float)))
        elif isinstance(item, list):
            strings = []
            todo.extend(v for v in item if not isinstance(v, (int, float)))
        else:
            strings = [item] if isinstance(item, str) else []
        for text in strings:
            if _BAD_TEXT.search(text):
                return (f"the string {ascii(text)[:40]} holds a lone surrogate or a control "
                        f"character")
    return ""


def _typed(result: dict, path: str, kind: type | tuple, what: str) -> list[str]:
    value = result
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return [f"'{path}' is missing"]
        value = value[key]
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = is_int(value)
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
    if problems:
        return problems
    bad_text = text_problem(result)
    if bad_text:
        return [bad_text]
    for key in ("run_id", "method.name"):
        value = result.get("run_id") if key == "run_id" else result["method"]["name"]
        if not (isinstance(value, str) and NAME.fullmatch(value)):
            return [f"'{key}' must be a name of letters, digits and ._+- (at most 255); got "
                    f"{_short(value)}"]
    problems += _block_problems(result)
    if problems:
        return problems
    classes = result["label_scheme"]["classes"]
    if not classes or not all(isinstance(c, str) for c in classes):
        problems.append("'label_scheme.classes' must be a non-empty list of strings")
    task = result["label_scheme"].get("task", "emotion")
    if task not in TASKS or (task == "au" and len(classes) > MAX_AUS):
        return [f"'label_scheme.task' must be one of {', '.join(TASKS)} (au: at most {MAX_AUS} "
                f"AUs); got {_short(task)}"]
    if not all(isinstance(d, str) for d in result["datasets"]):
        problems.append("'datasets' must be a list of strings")
    seeds = result["seeds"]
    if not seeds or len(seeds) > MAX_SEEDS or not all(is_int(s) and 0 <= s < 2**32 for s in seeds) \
            or len(set(seeds)) != len(seeds):
        problems.append(f"'seeds' must be 1 to {MAX_SEEDS} distinct integers in [0, 2^32); got "
                        f"{_short(seeds)}")
    if result["method"]["preset"] not in PRESETS:
        problems.append(f"unknown preset {_short(result['method']['preset'])}; "
                        f"known: {', '.join(PRESETS)}")
    problems += _metric_problems(result["metrics"], task)
    problems += _timing_problems(result["timing"])
    problems += _fold_problems(result["folds"])
    if not problems:
        problems += _prediction_problems(result, len(classes), task)
    return problems[:5]


TASKS = ("emotion", "au")
MAX_AUS = 62
"""Most AUs an AU result may declare (its labels are int64 bit masks)."""
HEADLINES = {"emotion": ("uf1", "uar", "accuracy"), "au": ("au_f1", "au_f1_meb")}
"""The headline metrics of a result of each task."""


def result_task(result: dict) -> str:
    """``emotion`` or ``au``: what a (schema-checked) result evaluates."""
    return result["label_scheme"].get("task", "emotion")


def headline_key(result: dict) -> str:
    """The metric a result's table ranks by: ``uf1``, or ``au_f1`` for the AU task."""
    return "au_f1" if result_task(result) == "au" else "uf1"


def _metric_problems(metrics: dict, task: str = "emotion") -> list[str]:
    return [f"'metrics.{k}' must be a finite number; got {_short(metrics.get(k))}"
            for k in HEADLINES[task]
            if not (is_number(metrics.get(k)) and math.isfinite(metrics[k]))]


TIMING_TEXT = ("dtype", "device", "device_class", "throughput_note", "flops_note")
LADDER_DTYPES = ("float32", "bfloat16-autocast")
MAX_LADDER = 16
"""Most throughput entries a result may hold (a ladder step per batch size and dtype)."""


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
        elif key == "throughput":
            problems += _ladder_problems(value)
        elif value is not None and not (is_number(value) and math.isfinite(value)
                                        and 0 <= value < LIMIT):
            problems.append(f"'timing.{key}' must be a finite number in [0, {LIMIT:g}) or null; "
                            f"got {_short(value)}")
    return problems


def _ladder_problems(ladder: object) -> list[str]:
    """``timing.throughput``: at most ``MAX_LADDER`` entries {batch_size: int >= 1, dtype:
    a known precision, samples_per_s and median_ms: finite numbers in [0, LIMIT)}."""
    if not isinstance(ladder, list) or len(ladder) > MAX_LADDER:
        return [f"'timing.throughput' must be a list of at most {MAX_LADDER} objects"]
    for i, entry in enumerate(ladder):
        ok = (isinstance(entry, dict) and _kind(entry.get("batch_size"), int)
              and 1 <= entry["batch_size"] < LIMIT and entry.get("dtype") in LADDER_DTYPES
              and all(is_number(entry.get(k)) and math.isfinite(entry[k]) and 0 <= entry[k] < LIMIT
                      for k in ("samples_per_s", "median_ms")))
        if not ok:
            return [f"'timing.throughput[{i}]' must hold batch_size (an integer >= 1), dtype "
                    f"(one of {', '.join(LADDER_DTYPES)}), samples_per_s and median_ms (finite "
                    f"numbers in [0, {LIMIT:g})); got {_short(entry)}"]
    return []


FOLD_FIELDS = (("seed", int), ("fold", str), ("test_subjects", list), ("n_train", int),
               ("n_test", int))


def _fold_problems(folds: list) -> list[str]:
    for i, f in enumerate(folds):
        bad = [key for key, kind in FOLD_FIELDS if not _kind(f.get(key), kind)]
        if bad or not all(isinstance(s, str) for s in f["test_subjects"]) or \
                not all(isinstance(s, str) for s in f.get("train_subjects") or ()):
            return [f"folds[{i}]: needs seed, fold, test_subjects (strings), n_train and n_test "
                    f"of their types; wrong: {', '.join(bad) or 'subjects'}"]
        both = set(f.get("test_subjects") or ()) & set(f.get("train_subjects") or ())
        if both:
            return [f"fold {_short(f.get('fold'))}: subject {sorted(both)[0]!r} is on both the "
                    f"training and the test side"]
    return []


def _kind(value: object, kind: type) -> bool:
    if kind is int:
        return is_int(value)
    if kind is float:
        return is_number(value) and math.isfinite(value)
    return isinstance(value, kind) and not isinstance(value, bool)


def _scalar(value: object, nesting: int = 2) -> bool:
    """A config or option value: a finite number, a string, a boolean, null, or a list of
    at most 256 of those, lists nested ``nesting`` deep (tuples of tuples)."""
    if isinstance(value, list):
        return nesting > 0 and len(value) <= 256 and all(_scalar(v, nesting - 1) for v in value)
    return value is None or isinstance(value, (str, bool)) or (
        is_number(value) and math.isfinite(value))


def _flat_dict(value: object, what: str) -> list[str]:
    if not isinstance(value, dict) or not all(_scalar(v) for v in value.values()):
        return [f"'{what}' must be an object of numbers, strings, booleans or lists of them"]
    return []


def _block_problems(result: dict) -> list[str]:
    """Types of the optional and nested blocks readers use (``BLOCKS``)."""
    problems = []
    for key, check in BLOCKS:
        value = result
        for part in key.split("."):
            value = value.get(part, _ABSENT) if isinstance(value, dict) else _ABSENT
        if value is _ABSENT:
            if key in REQUIRED_BLOCKS:
                problems.append(f"'{key}' is missing")
            continue
        problems += check(value, key)
    return problems


_ABSENT = object()
REQUIRED_BLOCKS = ("folds", "dataset")


def _typed_list(kind: type, limit: int = MAX_TASKS):
    def check(value, key):
        if not isinstance(value, list) or len(value) > limit or \
                not all(_kind(v, kind) for v in value):
            return [f"'{key}' must be a list of at most {limit:,} {kind.__name__} values"]
        return []
    return check


def _string(value, key):
    return [] if isinstance(value, str) else [f"'{key}' must be a string; got {_short(value)}"]


def _departures(value, key):
    if not isinstance(value, dict) or not all(
            isinstance(v, dict) and all(_scalar(x) for x in v.values()) for v in value.values()):
        return [f"'{key}' must map each field to an object of preset -> value"]
    return []


def _adapter_file(value, key):
    if not (isinstance(value, dict) and isinstance(value.get("path"), str)
            and isinstance(value.get("sha256"), str)
            and re.fullmatch("[0-9a-f]{64}", value["sha256"])):
        return [f"'{key}' must be an object with a path and a 64-digit hex sha256"]
    return []


def _auxiliary(value, key):
    if not (isinstance(value, dict) and isinstance(value.get("macro"), str)
            and all(_scalar(v) for v in value.values())):
        return [f"'{key}' must be an object with a 'macro' name"]
    return []


def _run_options(value, key):
    problems = _flat_dict({k: v for k, v in value.items() if k != "overrides"}, key) \
        if isinstance(value, dict) else [f"'{key}' must be an object"]
    if problems:
        return problems
    threads, crop = value.get("threads", 1), value.get("face_crop", "detect")
    amp, portable = value.get("amp", False), value.get("portable", False)
    if not (is_int(threads) and 1 <= threads <= 256) or not isinstance(amp, bool) \
            or not isinstance(portable, bool) or not isinstance(crop, str):
        return [f"'{key}': threads must be 1..256, amp and portable booleans, face_crop a "
                f"string (the runner checks its value when the row is re-run)"]
    return _flat_dict(value.get("overrides", {}), f"{key}.overrides")


def _code(value, key):
    if not isinstance(value, dict) or not all(_scalar(v) for v in value.values()):
        return [f"'{key}' must be an object of strings and numbers"]
    return []


def _environment(value, key):
    if not isinstance(value, dict) or not all(
            _scalar(v) or isinstance(v, dict) and all(_scalar(w) for w in v.values())
            for v in value.values()):
        return [f"'{key}' must be an object of strings, numbers and objects of them"]
    return []


def _corruption(value, key):
    """Types only: an unknown kind is refused by verification, which rebuilds the
    ``Corruption`` (importing OpenCV here would slow every reader of every file)."""
    if not (isinstance(value, dict) and isinstance(value.get("kind"), str)
            and _kind(value.get("share"), float) and 0 < value["share"] <= 1
            and is_int(value.get("seed")) and 0 <= value["seed"] < 2**32):
        return [f"'{key}' must name a kind, a share in (0, 1] and a seed"]
    return []


def _episodes(value, key):
    if not isinstance(value, list) or len(value) > MAX_TASKS:
        return [f"'{key}' must be a list of at most {MAX_TASKS:,} episodes"]
    for i, e in enumerate(value):
        if not (isinstance(e, dict) and is_int(e.get("seed")) and is_int(e.get("episode"))
                and isinstance(e.get("support"), list) and isinstance(e.get("support_labels"), list)
                and all(isinstance(s, str) for s in e["support"])
                and all(is_int(c) for c in e["support_labels"])):
            return [f"'{key}[{i}]' must have an integer seed and episode, support ids and "
                    f"integer support labels"]
    return []


def _diagnostics(value, key):
    if not isinstance(value, dict):
        return [f"'{key}' must be an object"]
    tasks, summary = value.get("per_task", []), value.get("summary", {})
    if not isinstance(tasks, list) or len(tasks) > MAX_TASKS or not isinstance(summary, dict) \
            or len(summary) > MAX_STAGES:
        return [f"'{key}' must hold a per_task list and a summary of at most {MAX_STAGES} stages"]
    for name, figures in summary.items():
        if not (isinstance(figures, dict)
                and all(v is None or _kind(v, float) for v in figures.values())):
            return [f"'{key}.summary.{_short(name)}' must map figures to numbers"]
    for i, task in enumerate(tasks):
        stages = task.get("stages") if isinstance(task, dict) else None
        if not (isinstance(stages, dict) and len(stages) <= MAX_STAGES and is_int(task.get("seed"))
                and isinstance(task.get("group"), str)
                and all(_stage_ok(s) for s in stages.values())):
            return [f"'{key}.per_task[{i}]' must have a seed, a group and at most {MAX_STAGES} "
                    f"stages of numbers (a loss curve of at most {MAX_CURVE} points)"]
    return []


def _stage_ok(stage: object) -> bool:
    if not isinstance(stage, dict):
        return False
    for name, v in stage.items():
        if name == "loss":
            if not (isinstance(v, list) and len(v) <= MAX_CURVE
                    and all(_kind(x, float) for x in v)):
                return False
        elif not (v is None or _kind(v, float)):
            return False
    steps = stage.get("steps", 1)
    return steps is None or (is_int(steps) and 0 <= steps < 2**40)


def _folds_block(value, key):
    if isinstance(value, list) and len(value) <= MAX_TASKS \
            and all(isinstance(f, dict) for f in value):
        return []
    return [f"'{key}' must be a list of at most {MAX_TASKS:,} objects"]


def _integer(value, key):
    return [] if is_int(value) else [f"'{key}' must be an integer"]


BLOCKS = (("dataset", _string), ("folds", _folds_block),
          ("protocol.params", _flat_dict), ("method.config", _flat_dict),
          ("method.recipe_departures", _departures), ("method.file", _adapter_file),
          ("method.not_specified", _flat_dict),
          ("method.auxiliary", _auxiliary), ("method.config_hash", _string),
          ("run_options", _run_options), ("code", _code), ("environment", _environment),
          ("numeric_mode", _environment),
          ("corruption", _corruption), ("episodes", _episodes), ("diagnostics", _diagnostics),
          ("protocol.version", _integer),
          ("datasets", _typed_list(str, 64)), ("resumed_folds", _typed_list(str)))
"""(dotted key, check) of the blocks beyond ``TOP_LEVEL``; absent optional blocks pass."""


PREDICTION_TYPES = (("sample_id", str), ("dataset", str), ("subject", str), ("fold", str),
                    ("seed", int), ("y_true", int), ("y_pred", int))


def _prediction_problems(result: dict, n_classes: int, task: str = "emotion") -> list[str]:
    codes = 2 ** n_classes if task == "au" else n_classes
    on_track = bool(result.get("corruption"))
    supports = {(e.get("seed"), e.get("episode")): set(e.get("support_labels") or ())
                for e in result.get("episodes", []) if isinstance(e, dict)}
    for i, p in enumerate(result["predictions"]):
        if not isinstance(p, dict):
            return [f"prediction {i} is not an object"]
        for key, kind in PREDICTION_TYPES:
            value = p.get(key)
            if not (is_int(value) if kind is int else isinstance(value, kind)):
                what = "an integer" if kind is int else "a string"
                return [f"prediction {i}: '{key}' must be {what}; got "
                        f"{type(value).__name__} {_short(value)}"]
        if not (0 <= p["y_true"] < codes and 0 <= p["y_pred"] < codes):
            return [f"prediction {i}: {'AU mask' if task == 'au' else 'class index'} outside "
                    f"0..{codes - 1}"]
        if "corrupted" in p and (not on_track or not isinstance(p["corrupted"], bool)):
            return [f"prediction {i}: 'corrupted' is only a boolean on the robustness track "
                    f"(a result with a 'corruption' block)"]
        episode = p.get("episode")
        if episode is not None and not is_int(episode):
            return [f"prediction {i}: 'episode' must be an integer or null"]
        scores = p.get("scores")
        if scores is not None:
            problem = (au_score_problem(scores, p["y_pred"], n_classes) if task == "au" else
                       score_problem(scores, p["y_pred"], n_classes,
                                     supports.get((p["seed"], episode))))
            if problem:
                return [f"prediction {i}: {problem}"]
    return []


def score_problem(scores: object, y_pred: int, n_classes: int, allowed: set | None) -> str:
    if not isinstance(scores, list) or len(scores) != n_classes:
        return f"'scores' must be a list of {n_classes} numbers"
    if not all(s is None or (is_number(s) and math.isfinite(s)) for s in scores):
        return "'scores' must be finite numbers or null (NaN and infinity are not scores)"
    candidates = [c for c in range(n_classes) if scores[c] is not None
                  and (not allowed or c in allowed)]
    if not candidates:
        return ""
    if scores[y_pred] is None or scores[y_pred] < max(scores[c] for c in candidates):
        return (f"'y_pred' {y_pred} is not the argmax of the stored scores "
                f"({max(candidates, key=lambda c: scores[c])})")
    return ""


def au_score_problem(scores: object, y_pred: int, n_aus: int) -> str:
    """What is wrong with an AU record's scores: a list of ``n_aus`` finite numbers whose
    signs give ``y_pred`` (bit k set exactly where score k is > 0)."""
    if not isinstance(scores, list) or len(scores) != n_aus:
        return f"'scores' must be a list of {n_aus} numbers"
    if not all(is_number(s) and math.isfinite(s) for s in scores):
        return "'scores' must be finite numbers (NaN and infinity are not scores)"
    mask = sum(1 << k for k, value in enumerate(scores) if value > 0)
    if mask != y_pred:
        return f"'y_pred' {y_pred} is not the AUs whose stored scores are > 0 ({mask})"
    return ""
