"""The markdown leaderboard, regenerated from verified result files.

Every result is checked before it is shown: its metrics are recomputed from its stored
predictions, and its predictions are checked against the registry and its protocol's
regenerated folds (``mer_bench.report.verification``). A file that fails is rejected
(an error naming the file and the problem, or skipped with the reason when asked); a
file that cannot even be read is always skipped with the reason, so one bad file never
breaks the builds that every ``run`` does. Two files of one run id give one row.
Every string from a file is escaped before it reaches the page. One table per protocol
(with its version and parameters) x dataset x label scheme x preset (x corruption);
synthetic results are in their own section and never share a table with real-data rows.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from mer_bench.errors import MerBenchError
from mer_bench.features.cache import atomic_write_bytes
from mer_bench.report.intervals import format_p, interval_label
from mer_bench.report.learning import (
    INEFFECTIVE,
    NO_LEARNING,
    ineffective_pretraining,
    no_learning,
    table_best,
)
from mer_bench.report.reported import REPORTED
from mer_bench.report.results import load_result, written_here
from mer_bench.report.staleness import stale_label
from mer_bench.report.verification import VERIFIED, result_problems
from mer_bench.timing import SPEED_BATCH, speed_at

COVERAGE = ("pooled 0.94–0.97 (about 0.91 where a seed effect moves every subject together), "
            "few-shot 0.93–0.99, holdout 0.95–0.99 (percentile bootstrap before: 0.91–0.94; "
            "holdout's t-interval over repeats: 0.62–0.89)")
"""What ``benchmarks/interval_coverage.py`` measured (README table), shown in the header."""

HEADERS = ["Method", "Preset", "UF1 [95% CI]", "UAR [95% CI]", "Accuracy", "Seeds",
           "Fit s/fold", f"Clips/s (batch {SPEED_BATCH})", "Params", "Device class", "Result"]


def collect(results_dir: Path, skip_invalid: bool = False) -> list[tuple[Path, dict]]:
    """Verified results under ``results_dir`` (recursively, ``*.json``; the runner's
    ``.partial`` folders are ignored), one per run id; each gets ``_status`` (verified
    against data or not). The result a ``run`` in this process has just written is not
    verified twice (``written_here``); ``leaderboard build`` verifies every file.

    Files that share a run id must be copies of one another (a result saved twice gives
    one row); files of one run id that differ are all refused, each naming the others,
    so no file name decides which of two claims is shown."""
    found, rejected = [], []
    _PAIRED.clear()
    for path in sorted(Path(results_dir).rglob("*.json")):
        if ".partial" in path.parts:
            continue
        try:
            result = load_result(path)
        except MerBenchError as err:  # unreadable, or malformed (``schema``)
            rejected.append(str(err))
            continue
        problems, status = ([], VERIFIED) if written_here(path) else result_problems(result)
        problems = problems or render_problems(path, result)
        if problems:
            rejected.append(f"{path}: {'; '.join(problems)}")
            continue
        found.append((path, result, status))
    by_run: dict[str, list] = {}
    for path, result, status in found:
        by_run.setdefault(result.get("run_id") or str(path), []).append((path, result, status))
    kept = []
    for run_id, files in by_run.items():
        if any(result != files[0][1] for _, result, _ in files[1:]):
            for path, _, _ in files:
                others = ", ".join(str(p) for p, _, _ in files if p != path)
                rejected.append(f"{path}: run id {run_id} is also claimed, with other content, "
                                f"by {others}; none of them is shown")
            continue
        path, result, status = files[0]
        kept.append((path, result | {"_status": status}))
    if rejected and not skip_invalid:
        raise MerBenchError("rejected result files:\n  " + "\n  ".join(rejected))
    for line in rejected:
        print(f"mer-bench: skipping {line}", file=sys.stderr)
    return sorted(kept, key=lambda pr: pr[0])


def render_problems(path: Path, result: dict) -> list[str]:
    """What fails when ``result``'s row is drawn (empty: nothing). The schema is meant
    to make this impossible; this keeps a file that gets past it to one "skipping" line
    instead of a build that breaks for every row."""
    try:
        row(path, result, path.parent)
    except Exception as err:  # noqa: BLE001 - any failure of a file is that file's problem
        return [f"cannot be shown ({type(err).__name__}: {err})"]
    return []


def cell(value: object) -> str:
    """Text from a result file made safe for a markdown table cell or heading: line
    breaks and other control characters become spaces (no new row or heading can
    start), and backslash, pipe, backtick, angle and square brackets are escaped (no new
    column, code span, HTML tag or link)."""
    text = "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in str(value))
    for ch in "\\|`<>[]":
        text = text.replace(ch, "\\" + ch)
    return text


def protocol_label(result: dict) -> str:
    """``fewshot (n_way=3)``: the protocol, its version when not 1, and the parameters
    that differ from its defaults, so results under different settings never share a
    table."""
    from mer_bench.protocols import PROTOCOLS
    name, params = result["protocol"]["name"], result["protocol"]["params"]
    version = result["protocol"].get("version", 1)
    cls = PROTOCOLS.get(name)
    defaults = cls().params() if cls else {}
    changed = [f"{k}={v}" for k, v in sorted(params.items()) if defaults.get(k, v) != v]
    label = name if version == 1 else f"{name} v{version}"
    return f"{label} ({', '.join(changed)})" if changed else label


def variant(result: dict) -> str:
    """The method config's departures from its preset (``prototypes=mean``), so ablation
    rows are told apart; ``unregistered`` when no installed adapter has the name."""
    from mer_bench.methods import get_method_class
    try:
        cls = get_method_class(result["method"]["name"])
    except MerBenchError:
        return "unregistered"
    try:
        base = json.loads(json.dumps(cls.Config.from_preset(result["method"]["preset"]).to_dict()))
    except MerBenchError:
        return "unknown preset"
    config = result["method"]["config"]
    return ", ".join(f"{k}={_plain(config[k])}" for k in sorted(config)
                     if k in base and config[k] != base[k])


def origin_label(result: dict) -> str:
    """``file: my_method.py 1a2b3c4d`` for a method run from an adapter file (its name
    and the head of its sha256), so it is never mistaken for an installed adapter."""
    source = result["method"].get("file")
    if not isinstance(source, dict):
        return ""
    return f"file: {Path(str(source.get('path', ''))).name} {str(source.get('sha256', ''))[:8]}"


def macro_label(result: dict) -> str:
    """``macro: synth-ckplus 3f2a9c1e`` — the auxiliary macro source a method read and the
    head of its fingerprint's sha256 (``synthetic`` beside real data); empty when none."""
    source = result["method"].get("auxiliary")
    if not isinstance(source, dict):
        return ""
    mixed = " synthetic" if source.get("synthetic") and not result.get("synthetic") else ""
    digest = hashlib.sha256(str(source.get("fingerprint", "")).encode()).hexdigest()[:8]
    return f"macro:{mixed} {source.get('macro')} {digest}"


def preset_label(result: dict) -> str:
    """``fast`` or, when the preset departs from the paper's recipe beyond the budget,
    ``fast (recipe: lr=0.001, width=16)`` (from the result; older files: the registry)."""
    method = result["method"]
    preset = method.get("preset", "")
    departures = method.get("recipe_departures")
    if departures is None:
        from mer_bench.methods import get_method_class
        try:
            departures = get_method_class(method["name"]).Config.recipe_departures(preset)
        except MerBenchError:
            departures = {}
    if not departures:
        return preset
    shown = ", ".join(f"{k}={_plain(v.get('ran', v.get(preset)))}"  # older files: by preset
                      for k, v in sorted(departures.items()))
    return f"{preset} (recipe: {shown})"


def _plain(value: object) -> str:
    return "+".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def corruption_label(result: dict) -> str:
    """``noise 30 %`` for a robustness-track result, empty for clean test data."""
    c = result.get("corruption")
    return f"{c['kind']} {c['share'] * 100:g} %" if c else ""


def table_key(result: dict) -> tuple[str, str, str, str, str]:
    """(protocol label, dataset, scheme, preset, corruption): results share a table only
    when all five agree."""
    return (protocol_label(result), result.get("dataset", "+".join(result["datasets"])),
            result["label_scheme"]["name"], result["method"].get("preset", ""),
            corruption_label(result))


def _number(value: object, spec: str) -> str:
    """``value`` formatted with ``spec``, or escaped as text when it is not a number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, spec)
    return "" if value is None else cell(value)


def row(path: Path, result: dict, root: Path) -> list:
    m, t = result["metrics"], result["timing"]
    try:
        shown = path.relative_to(root)
    except ValueError:
        shown = path
    name = result["method"]["name"]
    changes = ", ".join(part for part in (origin_label(result), variant(result),
                                          macro_label(result)) if part)
    notes = [note for note in ("" if result.get("_status", VERIFIED) == VERIFIED
                               else "unverified against data", stale_label(result),
                               NO_LEARNING if no_learning(result) else "",
                               INEFFECTIVE if ineffective_pretraining(result) else "") if note]
    where = cell(shown) + "".join(f" ({cell(n)})" for n in notes)
    return [cell(f"{name} ({changes})" if changes else name), cell(preset_label(result)),
            interval_label(m, "uf1"), interval_label(m, "uar"), f"{m['accuracy']:.3f}",
            cell(seeds_label(result)), _number(t.get("fit_seconds"), ".2f"),
            _throughput(t), _number(t.get("params"), ","), cell(_device(t)), where]


def _throughput(timing: dict) -> str:
    """Clips/s at ``SPEED_BATCH`` in the run's dtype (``timing.speed_at``); ``—`` for a
    result measured before the ladder (or capped below it)."""
    rate = speed_at(timing)
    if rate is None:
        cap = timing.get("throughput_cap")
        return f"— (capped at {cap})" if cap else "—"
    return _number(rate, ".0f")


def _device(timing: dict) -> str:
    """The device class speed figures compare within (``timing.device_class``; GPU name,
    or CPU and its thread count), with a dtype other than float32."""
    dtype = timing.get("dtype", "float32")
    known = timing.get("device_class")
    if known is None:  # results written before the device class was recorded
        threads = timing.get("threads")
        known = " · ".join([str(timing.get("device", "")),
                            *([f"{threads} thread" + ("s" if threads != 1 else "")] if threads else [])])
    return " · ".join([str(known), *([str(dtype)] if dtype != "float32" else [])])


def versus_best(best: dict, other: dict) -> str:
    """``−0.085 (p=0.002)``: UF1 difference from the table's best row by the paired
    subject bootstrap-t; ``≈ best`` marks a difference that is not significant at 5 %;
    rows of different seed sets are paired on their common seeds, and say so (``on seeds
    1``) or ``no common seeds``; ``not paired`` where the two did not predict the same
    test units."""
    if other is best:
        return "best"
    if best is None:
        return f"no best: every row is {NO_LEARNING}"
    c, shared = paired_with(other, best)
    if c is None:
        return "no common seeds" if not shared else _unpaired_reason(other, best)
    text = f"{c.delta['uf1']:+.3f} ({format_p(c.p_value['uf1'])})"
    if not sorted(other["seeds"]) == shared == sorted(best["seeds"]):
        text += f" on seeds {','.join(map(str, shared))}"
    return f"≈ best, {text}" if c.p_value["uf1"] >= 0.05 else text


_PAIRED: dict[tuple[int, int], tuple] = {}
"""(id(result), id(best)) -> (result, best, comparison, seeds). The two dicts are held
and checked by identity, so an id reused by a later object never returns another pair's
comparison; ``collect`` empties it (one build's results at a time)."""


def paired_with(result: dict, best: dict) -> tuple[object | None, list[int]]:
    """(``compare(result, best)`` on their common seeds or None when there are none or
    they are not paired, the common seeds); each pair is computed once per build (the
    markdown and the site both show it)."""
    cached = _PAIRED.get((id(result), id(best)))
    if cached is None or cached[0] is not result or cached[1] is not best:
        from mer_bench.report.compare import common_seeds, compare
        mine, theirs, shared = common_seeds(result, best)
        try:
            comparison = compare(mine, theirs) if shared else None
        except MerBenchError:
            comparison = None
        cached = _PAIRED[(id(result), id(best))] = (result, best, comparison, list(shared))
    return cached[2], cached[3]


def _unpaired_reason(result: dict, best: dict) -> str:
    """Why two results with common seeds have no paired test: too few subjects, or
    they did not predict the same units."""
    from mer_bench.report.intervals import MIN_CLUSTERS
    subjects = {p["subject"] for p in result["predictions"]}
    return "too few subjects for a test" if len(subjects) < MIN_CLUSTERS else "not paired"


def seeds_label(result: dict) -> str:
    """The seeds, with ``(one seed: no training spread)`` for a one-seed row of a
    method whose training depends on its seed (a torch adapter), whose interval then
    says nothing about training randomness."""
    seeds = ",".join(map(str, result["seeds"]))
    if len(result["seeds"]) > 1:
        return seeds
    from mer_bench.methods import get_method_class
    try:
        trained = get_method_class(result["method"]["name"]).uses_torch
    except MerBenchError:
        trained = True
    return f"{seeds} (one seed: no training spread)" if trained else seeds


def reported_rows(entries: list, reproduced: list[tuple[Path, dict]]) -> list[list]:
    """Table rows for the papers' numbers; the gap is the reproduced UF1 (the best row
    of the same method in this table) minus the reported F1."""
    rows = []
    for r in entries:
        mine = [res for _, res in reproduced if res["method"]["name"] == r.method]
        gap = "" if not mine or r.f1 is None else \
            f"reproduced − reported: {max(m['metrics']['uf1'] for m in mine) - r.f1:+.3f}"
        f1 = "" if r.f1 is None else f"{r.f1:.3f}" + ("" if r.f1_kind == "uf1" else " (paper's F1)")
        fmt = lambda v: "" if v is None else f"{v:.3f}"
        source = r.source + ("" if not r.per_dataset else "; per source UF1/UAR: " + ", ".join(
            f"{name} {uf1:.3f}/{uar:.3f}" for name, (uf1, uar) in r.per_dataset.items()))
        rows.append([f"{r.method} (reported)", "paper", f1, fmt(r.uar), fmt(r.accuracy), "", "",
                     "", "", "", source, gap])
    return rows


def render(results: list[tuple[Path, dict]], root: Path, plots: bool = False) -> str:
    """Markdown: a section for real data and one for synthetic data, a table per
    (protocol, dataset, scheme, corruption), rows sorted by UF1 descending, each compared
    with the best row by a paired bootstrap; the papers' reported numbers sit in the
    real-data table of their key, marked as reported."""
    lines = ["# mer-bench leaderboard", "",
             "Generated by `mer-bench leaderboard build` from verified result files: every "
             "metric below was recomputed from the stored per-sample predictions. UF1/UAR are "
             "pooled as in MEGC2019. Intervals (95 %): studentized bootstrap (bootstrap-t) over "
             "subjects — one person is one cluster across seeds — of the pooled metric (loso, "
             "kfold5, cde, lodo) or of the mean per-episode metric with each episode's class "
             "counts kept (fewshot); with several seeds, widened to the between-seed spread "
             "where that is larger. `benchmarks/interval_coverage.py` measured their coverage "
             f"on simulated data shaped like casme2-5, smic-3, samm-5 and megc2019: "
             f"{COVERAGE}. Holdout: the same bootstrap-t of the mean over repeats (one person is "
             "one cluster across repeats), its SE widened by the spread between repeats and "
             "its t* centred (a draw's repeated people lower a small test set's UF1). "
             "Fewer than 5 subjects: no interval (*too few subjects*). A one-seed row of a trained "
             "method is marked: its interval holds no training randomness. *vs best*: the UF1 "
             "difference from the table's best row by the paired subject bootstrap-t (p from "
             "the same draws; `p<0.0005` = no draw of 2,000 reached it), on the seeds both "
             "rows ran; ≈ best = not significant at 5 %. A result is marked *stale* when the code "
             "it recorded (its adapter, and the core modules that make predictions) is not the "
             "code that builds this page; `mer-bench reproduce RESULT.json` says whether its "
             "predictions still come out the same. "
             "Rows marked *(reported)* are the papers' own real-data numbers, not reproduced "
             "or verified here. A trained method's row is marked *no learning shown* when its "
             "training accuracy is at or below the majority-class rate or its main training "
             "stage's loss did not fall; such a row is never *best*. "
             f"Speed: inference clips/s at batch {SPEED_BATCH} (the same batch in every table; the "
             "result files hold batch 1, 32 and 256 in fp32 and bf16 and FLOPs per clip), "
             "comparable only between rows of one device class (GPU model, or CPU and thread "
             "count); rows are ranked by UF1, never by speed across device classes; — = "
             "measured before the ladder existed.", ""]
    headers = HEADERS + ["vs best"]
    for synthetic, title in ((False, "Real datasets"),
                             (True, "Synthetic twins (synthetic data; not comparable with real-data results)")):
        groups: dict[tuple, list] = {}
        for p, r in results:
            if bool(r["synthetic"]) == synthetic:
                groups.setdefault(table_key(r), []).append((p, r))
        if not synthetic:
            for entry in REPORTED:
                groups.setdefault((*entry.key, "paper", ""), [])
        lines += [f"## {title}", ""] + ([] if groups else ["No results yet.", ""])
        for tracks in (False, True):
            for key, items in sorted(groups.items()):
                if bool(key[4]) != tracks:
                    continue
                lines += _table(key, items, root, [] if synthetic else
                                [e for e in REPORTED if (*e.key, "paper", "") == key], headers)
                if plots and items:
                    lines += _plots(key, items, root)
    return "\n".join(lines)


def _table(key: tuple, items: list[tuple[Path, dict]], root: Path, reported: list,
           headers: list[str]) -> list[str]:
    protocol, dataset, scheme, preset, corruption = (cell(k) for k in key)
    items.sort(key=lambda pr: -pr[1]["metrics"]["uf1"])
    title = f"### {protocol} · {dataset} · {scheme} · {preset}" + (
        f" · robustness: {corruption} of test clips corrupted" if corruption else "")
    best = table_best(items)
    rows = [row(p, r, root) + [versus_best(best, r)] for p, r in items]
    rows += reported_rows(reported, items)
    classes = cell(", ".join(items[0][1]["label_scheme"]["classes"])) if items else \
        "(no reproduced result yet)"
    return [title, "", f"Classes: {classes}", "", markdown_table(rows, headers), ""]


def markdown_table(rows: list[list[str]], headers: list[str]) -> str:
    """A GitHub pipe table (``tabulate``, ``github`` format). Cells are shown exactly as
    given: text already made safe by ``cell``, and ``disable_numparse`` keeps ``0.820``
    as written (no number is re-formatted or re-aligned)."""
    from tabulate import tabulate
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _plots(key: tuple, items: list[tuple[Path, dict]], root: Path) -> list[str]:
    """Write the table's UF1-vs-throughput figure and each row's confusion matrix under
    ``root/plots``; the markdown lines that show and link them."""
    from mer_bench.report.plots import (
        PLOTS_DIR,
        confusion_plot,
        diagnostics_plot,
        slug,
        throughput_plot,
    )
    folder = root / PLOTS_DIR
    title = " · ".join(k for k in key if k)
    shown = title + (" · synthetic data" if items[0][1]["synthetic"] else "")
    figure = throughput_plot([(f"{r['method']['name']} {variant(r)}".strip(), r) for _, r in items],
                             shown, folder / f"uf1-vs-throughput__{slug(title)}.png")
    links, curves = [], []
    for _, result in items:
        name = cell(result["method"]["name"])
        path = confusion_plot(result, folder / f"confusion__{slug(result['run_id'])}.png")
        links.append(f"[{name}]({PLOTS_DIR}/{path.name})")
        learning = diagnostics_plot(result, folder / f"learning__{slug(result['run_id'])}.png")
        if learning:
            curves.append(f"[{name}]({PLOTS_DIR}/{learning.name})")
    shown = [f"![UF1 against inference throughput]({PLOTS_DIR}/{figure.name})", ""] if figure else []
    return shown + [
            "Confusion matrices (row-normalized): " + " · ".join(links), ""] + (
        ["Learning curves (training loss per fold, training accuracy): " + " · ".join(curves), ""]
        if curves else [])


def verified(results_dir: Path, output: Path, skip_invalid: bool = False
             ) -> list[tuple[Path, dict]]:
    """``collect`` of ``results_dir``; a folder that does not exist is an error (an empty
    board is never written over ``output``)."""
    if not Path(results_dir).is_dir():
        raise MerBenchError(f"--results {results_dir}: no such folder; nothing was written "
                            f"to {output}")
    return collect(results_dir, skip_invalid)


def build(results_dir: Path, output: Path, skip_invalid: bool = False,
          plots: bool = False) -> Path:
    """Verify every result under ``results_dir`` (``verified``) and write the markdown to
    ``output``; with ``plots``, also the figures under ``plots/`` beside it, shown in the
    markdown."""
    return write(verified(results_dir, output, skip_invalid), output, plots)


def write(results: list[tuple[Path, dict]], output: Path, plots: bool = False) -> Path:
    """Write the markdown of verified ``results`` (``collect``) to ``output``; with
    ``plots``, the figures under ``plots/`` beside it (stale ones removed)."""
    output = Path(output)
    if plots:
        from mer_bench.report.plots import PLOTS_DIR
        for stale in (output.parent / PLOTS_DIR).glob("*__*.png"):
            stale.unlink()
    atomic_write_bytes(output, render(results, output.parent, plots).encode())
    return output
