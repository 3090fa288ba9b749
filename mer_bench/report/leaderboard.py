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
import os
import sys
from pathlib import Path
from urllib.parse import quote

from mer_bench.errors import MerBenchError
from mer_bench.features.cache import atomic_write_bytes
from mer_bench.report import guide
from mer_bench.report.intervals import format_p, interval_label
from mer_bench.report.learning import (
    INEFFECTIVE,
    NO_LEARNING,
    ineffective_pretraining,
    no_learning,
)
from mer_bench.report.reported import REPORTED, ReportedResult, reported_groups
from mer_bench.report.results import load_result, written_here
from mer_bench.report.schema import headline_key
from mer_bench.report.staleness import stale_label
from mer_bench.report.tables import (
    CDE_SOURCES,
    Table,
    build_tables,
    cde_sources,
    device_label,
    one_seed_of_trained,
    settings_label,
    table_key,
)
from mer_bench.report.verification import VERIFIED, result_problems
from mer_bench.timing import SPEED_BATCH, speed_at


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
    ``fast (recipe: lr=0.001, width=16)``."""
    preset, departures = result["method"].get("preset", ""), departures_label(result)
    return f"{preset} (recipe: {departures})" if departures else preset


def departures_label(result: dict) -> str:
    """``lr=0.001, width=16``: what the row's config departs from its paper's recipe
    (``recipe_departures``), empty when nothing; a built-in departure (no config field)
    by its name."""
    preset = result["method"].get("preset", "")
    return ", ".join(k if v.get("built_in") else f"{k}={_plain(v.get('ran', v.get(preset)))}"
                     for k, v in sorted(recipe_departures(result).items()))  # older: by preset


def recipe_departures(result: dict) -> dict[str, dict]:
    """The departures of the config a result ran, judged against its adapter's current
    paper record (``MethodConfig.departures``), so a row run before the record learned
    a fact shows it too; the result's stored ones where the config cannot be rebuilt
    here (an unregistered method, a field this code does not know)."""
    method = result["method"]
    stored = method.get("recipe_departures")
    from mer_bench.methods import get_method_class
    try:
        cls = get_method_class(method["name"]).Config
        config = {k: tuple(v) if isinstance(v, list) else v
                  for k, v in (method.get("config") or {}).items()}
        if not config:
            return cls.recipe_departures(method.get("preset", "")) if stored is None else stored
        return cls.from_preset("paper", **config).departures()
    except (MerBenchError, TypeError, ValueError):
        return stored or {}


def _plain(value: object) -> str:
    return "+".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _number(value: object, spec: str) -> str:
    """``value`` formatted with ``spec``, or escaped as text when it is not a number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, spec)
    return "" if value is None else cell(value)


def result_link(path: Path, root: Path) -> str:
    """The markdown link target of a result file: its path relative to the board's
    folder ``root`` (``../results/x.json`` when beside it), percent-encoded."""
    return quote(Path(os.path.relpath(Path(path).resolve(), Path(root).resolve())).as_posix())


def marks(result: dict) -> list[str]:
    """The row's marks: unverified, stale, no learning shown, pre-training not effective."""
    return [note for note in ("" if result.get("_status", VERIFIED) == VERIFIED
                              else "unverified against data", stale_label(result),
                              NO_LEARNING if no_learning(result) else "",
                              INEFFECTIVE if ineffective_pretraining(result) else "") if note]


def method_label(result: dict, macro: bool = True) -> str:
    """``flow-svm (C=0.5)``: the method and what sets the row apart (its adapter file,
    its config's departures from the preset and, unless ``macro`` is False, its macro
    source)."""
    changes = ", ".join(part for part in (origin_label(result), variant(result),
                                          macro_label(result) if macro else "") if part)
    name = result["method"]["name"]
    return f"{name} ({changes})" if changes else name


def method_cell(path: Path, result: dict, root: Path, copies: int = 0,
                shown: frozenset[str] = frozenset()) -> str:
    """The markdown Method cell: the method label linked to its result file, its marks
    in italics (but those in ``shown``, which the table says once), and how many
    identical re-runs the row stands for. The macro source is in the details line."""
    notes = [n for n in marks(result) if n not in shown] + (
        [f"{copies + 1} identical runs"] if copies else [])
    return (f"[{cell(method_label(result, macro=False))}]({result_link(path, root)})"
            + "".join(f" *({cell(n)})*" for n in notes))


def shared_marks(results: list[dict]) -> frozenset[str]:
    """The marks every one of ``results`` carries (said once per table; none for a
    one-row table)."""
    if len(results) < 2:
        return frozenset()
    return frozenset.intersection(*(frozenset(marks(r)) for r in results))


def preset_cell(result: dict) -> str:
    """``fast``, or ``fast (recipe)`` when it departs from the paper beyond the budget
    (the departures are listed under the table)."""
    preset = cell(result["method"].get("preset", ""))
    return f"{preset} (recipe)" if departures_label(result) else preset


def row(path: Path, result: dict, root: Path, reference: str | None = None) -> list[str]:
    """A result's core markdown cells: method (linked), preset, UF1 and UAR with their
    intervals, seeds, clips/s at ``SPEED_BATCH`` (``†`` when not on the table's
    ``reference`` device class)."""
    m = result["metrics"]
    first, second = ("au_f1", "au_f1_meb") if headline_key(result) == "au_f1" else ("uf1", "uar")
    return [method_cell(path, result, root), preset_cell(result), interval_label(m, first),
            interval_label(m, second), cell(seeds_label(result)),
            speed_cell(result["timing"], reference)]


def speed_cell(timing: dict, reference: str | None) -> str:
    """Clips/s at ``SPEED_BATCH`` in the run's dtype (``timing.speed_at``), ``†`` when
    measured on another device class than ``reference``; ``—`` for a result measured
    before the ladder (or capped below it)."""
    rate = speed_at(timing)
    if rate is None:
        cap = timing.get("throughput_cap")
        return f"— (capped at {cap})" if cap else "—"
    other = reference is not None and device_label(timing) != reference
    return _number(rate, ".0f") + (f" † ({cell(device_label(timing))})" if other else "")


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
    key = headline_key(best)
    text = f"{c.delta[key]:+.3f} ({format_p(c.p_value[key])})"
    if not sorted(other["seeds"]) == shared == sorted(best["seeds"]):
        text += f" on seeds {','.join(map(str, shared))}"
    return f"≈ best, {text}" if c.p_value[key] >= 0.05 else text


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
    """The seeds, with ``*`` for a one-seed row of a method whose training depends on
    its seed (``tables.one_seed_of_trained``): its interval says nothing about training
    randomness (the table's note says so once)."""
    seeds = ",".join(map(str, result["seeds"]))
    return f"{seeds}*" if one_seed_of_trained(result) else seeds


def best_cell(table: Table, result: dict) -> str:
    """*vs best* of a row: ``only row`` in a one-row table, else ``versus_best``."""
    return "only row" if len(table.rows) == 1 else versus_best(table.best, result)


def figures_label(entry: ReportedResult) -> str:
    """``F1 (paper's) 0.920 · UAR 0.889 · accuracy 0.911``: each reported number under the
    paper's own metric name."""
    return " · ".join(f"{name} {value:.3f}" for name, value in entry.figures())


def reproduced_label(entry: ReportedResult, results: list[tuple[Path, dict]]) -> str:
    """The best verified real-data UF1 of the same method and setting, with its gap to
    the paper's figure; ``none yet`` without one."""
    mine = [r for _, r in results if not r["synthetic"] and r["method"]["name"] == entry.method
            and table_key(r)[:3] == entry.key]
    if not mine:
        return "none yet"
    key = headline_key(mine[0])
    best = max(r["metrics"][key] for r in mine)
    gap = "" if entry.f1 is None else f" (reproduced − reported {entry.f1_name}: {best - entry.f1:+.3f})"
    return f"{'mean AU F1' if key == 'au_f1' else 'UF1'} {best:.3f}{gap}"


def reported_rows(entries: list[ReportedResult], results: list[tuple[Path, dict]],
                  cde: bool) -> list[list[str]]:
    """Markdown rows for the papers' numbers: method, setting (not for ``cde``), the
    figures under their own names, per-source UF1/UAR (``cde``), the paper linked, and
    the verified real-data row of the same setting."""
    rows = []
    for e in entries:
        if cde:
            cells = [figures_label(e), *(_pair(*(e.per_dataset or {}).get(name, (None, None)))
                                         for name in ("smic-hs", "casme2", "samm"))]
        else:
            cells = [cell(" · ".join(e.key)), figures_label(e)]
        citation, note = e.citation
        rows.append([f"{cell(e.method)} (reported)", *cells,
                     f"[{cell(citation)}]({e.paper_url})" + (f" {cell(note)}" if note else ""),
                     reproduced_label(e, results)])
    return rows


def reported_tables(results: list[tuple[Path, dict]]) -> list[tuple[str, list[str], list[list]]]:
    """(title, headers, markdown rows) of the papers' numbers: the MEGC2019 composite with
    its per-source columns, then every other setting."""
    sources = [f"{title} UF1 / UAR" for _, title in CDE_SOURCES]
    headers = {True: ["Method", "Paper's figures", *sources, "Paper", "Verified real row"],
               False: ["Method", "Setting", "Paper's figures", "Paper", "Verified real row"]}
    return [(title, headers[cde], reported_rows(entries, results, cde=cde))
            for title, entries, cde in reported_groups()]


def _kinds(counts: dict[str, str]) -> list[str]:
    return [f"- **[{title}](#{anchor_})** ({counts[anchor_]}): {text}" for anchor_, title, text
            in guide.KINDS]


def render(results: list[tuple[Path, dict]], root: Path, plots: bool = False) -> str:
    """Markdown: what the board is and its three kinds of rows, a table of contents,
    then verified real-data tables, the papers' reported numbers (apart, never ranked),
    synthetic tables, the legend and how to submit a row. A table per (protocol,
    dataset, scheme, preset, corruption) in at most 8 columns, rows by UF1 descending,
    each compared with the best row by a paired bootstrap; the other figures are on the
    site and in each result file."""
    tables = build_tables(results, corrupted=None)
    real = [t for t in tables if not t.synthetic]
    synthetic = [t for t in tables if t.synthetic]
    counts = {"verified-real": f"{sum(len(t.rows) for t in real)} rows",
              "reported": f"{len(REPORTED)} rows",
              "synthetic": f"{sum(len(t.rows) for t in synthetic)} rows in {len(synthetic)} tables"}
    lines = ["# mer-bench leaderboard", "", guide.INTRO, "", *_kinds(counts), "",
             "Generated by `mer-bench leaderboard build`; the site (`leaderboard/site`) shows "
             "every column, filters and per-result pages.", "", "## Contents", "",
             "- [Verified on real data](#verified-real)",
             *[f"  - [{cell(t.title)}](#{t.anchor})" for t in real],
             "- [Reported by papers](#reported)", "- [Synthetic twins](#synthetic)",
             *[f"  - [{cell(t.title)}](#{t.anchor})" for t in synthetic],
             "- [Legend](#legend)", "- [How to submit a row](#submit)", "",
             '<a id="verified-real"></a>', "", "## Verified on real data", ""]
    if not real:
        lines += ["None yet. The real datasets are licensed per request and never ship; a "
                  "run on one (`--data-root NAME=PATH`) whose result file is submitted "
                  "appears here.", ""]
    for table in real:
        lines += _table(table, root, plots)
    lines += ['<a id="reported"></a>', "", "## Reported by papers", "",
              "Numbers copied from the papers, under each paper's own metric name; not "
              "reproduced or verified here, and never ranked against verified rows.", ""]
    for title, headers, rows in reported_tables(results):
        lines += [f"### {title}", "", markdown_table(rows, headers), ""]
    lines += ['<a id="synthetic"></a>', "", "## Synthetic twins", "", guide.TWIN, ""]
    if not synthetic:
        lines += ["No results yet.", ""]
    for table in synthetic:
        lines += _table(table, root, plots)
    lines += ['<a id="legend"></a>', "", "## Legend", "", *[f"- {item}" for item in guide.LEGEND],
              "", '<a id="submit"></a>', "", "## How to submit a row", "",
              *[f"{k}. **{step}.** {text}" for k, (step, text) in enumerate(guide.SUBMIT, 1)],
              "", guide.VERIFIED, ""]
    if guide.CONTRIBUTING.is_file():
        lines += [f"The adapter contract in full: [CONTRIBUTING.md]"
                  f"({result_link(guide.CONTRIBUTING, root)}).", ""]
    return "\n".join(lines)


def _headers(table: Table) -> list[str]:
    sources = [title for _, title in CDE_SOURCES] if table.is_cde else []
    speed = [] if table.is_cde else [f"Clips/s (batch {SPEED_BATCH})"]
    metrics = (["Mean AU F1 [95% CI]", "MEB F1 (two-class) [95% CI]"] if table.is_au
               else ["UF1 [95% CI]", "UAR [95% CI]"])
    return ["Method", "Preset", *metrics, *sources,
            *([] if table.is_cde else ["Seeds"]), *speed, "vs best"]


def _cells(table: Table, r, root: Path) -> list[str]:
    cells = row(r.path, r.result, root, table.reference_device)
    cells[0] = method_cell(r.path, r.result, root, len(r.copies),
                           shared_marks([x.result for x in table.rows]))
    if table.is_cde:  # per-source UF1 / UAR in place of seeds and speed (in the details)
        cells = cells[:4] + [_pair(uf1, uar) for _, uf1, uar in cde_sources(r.result)]
    return cells + [cell(best_cell(table, r.result))]


def _pair(uf1: float | None, uar: float | None) -> str:
    return "—" if uf1 is None or uar is None else f"{uf1:.3f} / {uar:.3f}"


def _table(table: Table, root: Path, plots: bool) -> list[str]:
    """A table's anchor, heading, settings line, rows and details line (and figures)."""
    title = cell(table.title) + (" (synthetic)" if table.synthetic else "")
    first = table.rows[0].result
    settings = (f"Setting: {cell(settings_label(first))}. Classes: "
                f"{cell(', '.join(table.classes))}." + (
                    " Robustness track: the test clips named in the title are corrupted."
                    if table.key[4] else "") + (
                    " [What a synthetic twin is and is not](#synthetic)." if table.synthetic else ""))
    rows = [_cells(table, r, root) for r in table.rows]
    return [f'<a id="{table.anchor}"></a>', "", f"### {title}", "", settings, "",
            markdown_table(rows, _headers(table)), "", _details(table), "",
            *(_plots(table, root) if plots else [])]


def table_notes(table: Table, markdown: bool = False) -> list[str]:
    """What the line under a table says, as plain text: marks every row carries,
    recipe departures, macro sources, the one-seed note, the speed's device class, the
    re-runs folded into one row and, in the ``markdown`` (whose CDE tables have no room
    for them), a CDE table's seeds and speeds."""
    rows = [r.result for r in table.rows]
    notes = [f"all rows {m}" for m in sorted(shared_marks(rows))]
    departures = sorted({f"{method_label(r, macro=False)}: {departures_label(r)}"
                         for r in rows if departures_label(r)})
    if departures:
        notes.append("recipe departures from the papers — " + "; ".join(departures))
    sources = sorted({f"{method_label(r, macro=False)}: {macro_label(r)}" for r in rows
                      if macro_label(r)})
    if sources:
        notes.append("macro-expression sources — " + "; ".join(sources))
    if table.one_seed_trained:
        notes.append("a seed marked * is the only seed of a trained method: its interval "
                     "holds no training spread")
    if markdown and table.is_cde:
        notes.append("seeds and clips/s — " + "; ".join(
            f"{method_label(r, macro=False)}: seeds {seeds_label(r)}, {_speed_text(r['timing'])}"
            for r in rows))
    if table.reference_device:
        notes.append(f"clips/s at batch {SPEED_BATCH} on {table.reference_device}; † another "
                     "device class, not ranked with it")
    folded = [f"{method_label(r.result, macro=False)}: {', '.join(p.name for p in r.copies)}"
              for r in table.rows if r.copies]
    if folded:
        notes.append("identical re-runs folded into one row — " + "; ".join(folded))
    return notes


def _speed_text(timing: dict) -> str:
    rate = speed_at(timing)
    return "clips/s not measured" if rate is None else f"{rate:.0f} clips/s ({device_label(timing)})"


def _details(table: Table) -> str:
    """The markdown line under a table (``table_notes`` and where the other columns are)."""
    notes = table_notes(table, markdown=True) + [f"accuracy, fit time, parameters, device and date: on the site "
                                  f"(#{table.anchor}) and in each result file"]
    return "Details: " + ". ".join(cell(n) for n in notes) + "."


def markdown_table(rows: list[list[str]], headers: list[str]) -> str:
    """A GitHub pipe table (``tabulate``, ``github`` format). Cells are shown exactly as
    given: text already made safe by ``cell``, and ``disable_numparse`` keeps ``0.820``
    as written (no number is re-formatted or re-aligned)."""
    from tabulate import tabulate
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _plots(table: Table, root: Path) -> list[str]:
    """Write the table's UF1-vs-throughput figure and each row's confusion matrix under
    ``root/plots``; the markdown lines that show and link them, each link named by its
    row's method and variant."""
    from mer_bench.report.plots import (
        PLOTS_DIR,
        confusion_plot,
        diagnostics_plot,
        slug,
        throughput_plot,
    )
    folder = root / PLOTS_DIR
    shown = table.title + (" · synthetic data" if table.synthetic else "")
    figure = throughput_plot([(method_label(r), r) for _, r in table.results], shown,
                             folder / f"uf1-vs-throughput__{slug(table.title)}.png")
    links, curves = [], []
    for _, result in table.results:
        name = cell(method_label(result))
        if not table.is_au:  # AUs are twelve binary decisions: no confusion matrix
            path = confusion_plot(result, folder / f"confusion__{slug(result['run_id'])}.png")
            links.append(f"[{name}]({PLOTS_DIR}/{path.name})")
        learning = diagnostics_plot(result, folder / f"learning__{slug(result['run_id'])}.png")
        if learning:
            curves.append(f"[{name}]({PLOTS_DIR}/{learning.name})")
    what = "Mean AU F1" if table.is_au else "UF1"
    shown = ([f"![{what} against inference throughput]({PLOTS_DIR}/{figure.name})", ""]
             if figure else [])
    return shown + ([
            "Confusion matrices (row-normalized): " + " · ".join(links), ""] if links else []) + (
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


def vs_best_delta(best: dict | None, result: dict) -> float | None:
    """The row's paired UF1 difference from the best row (0 for the best row itself),
    None when it has none (no best, no common seeds, not paired): the number *vs best*
    sorts by."""
    if best is None:
        return None
    if result is best:
        return 0.0
    comparison, _ = paired_with(result, best)
    return None if comparison is None else float(comparison.delta[headline_key(best)])
