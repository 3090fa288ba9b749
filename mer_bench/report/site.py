"""The leaderboard as a static site: ``mer-bench leaderboard build --site DIR``.

Built from the same verified results as the markdown (``leaderboard.collect``), with
no network at all: pages, script, style and figures are files beside each other.

- ``index.html``: one table per setting (protocol × dataset × scheme × preset) of clean
  test data, sortable by any column (click a header), filterable by protocol, dataset,
  preset and real/synthetic, searchable by method; the papers' reported numbers marked
  as on the markdown; each table's UF1-vs-throughput figure.
- ``robustness.html``: UF1 against the share of corrupted test clips, one line per
  method and corruption kind (share 0: the method's clean result of the same setting).
- ``results/<run id>.html``: per result its method, config and recipe departures,
  protocol and parameters, seeds, environment, the command that makes it again and the
  one that checks it, confusion matrix, per-class and per-subject tables, learning
  diagnostics, and the paired comparison with its table's best row.

Every string that comes from a result file is HTML-escaped (``esc``); links and file
names are built from slugs of the run id, never taken from a file, so a result cannot
inject markup, script or a ``javascript:`` link.
"""

from __future__ import annotations

import html
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from mer_bench.features.cache import current_umask
from mer_bench.report import guide
from mer_bench.report.intervals import interval_label
from mer_bench.report.leaderboard import (
    best_cell,
    departures_label,
    figures_label,
    marks,
    method_label,
    origin_label,
    paired_with,
    preset_cell,
    preset_label,
    recipe_departures,
    reproduced_label,
    seeds_label,
    shared_marks,
    table_key,
    table_notes,
    variant,
    vs_best_delta,
)
from mer_bench.report.learning import (
    INEFFECTIVE,
    NO_LEARNING,
    ineffective_pretraining,
    no_learning,
)
from mer_bench.report.reported import PAPER_URLS, REPORTED, reported_groups
from mer_bench.report.staleness import stale_label
from mer_bench.report.tables import (
    CDE_SOURCES,
    Table,
    build_tables,
    cde_sources,
    corruption_label,
    device_label,
    settings_label,
)
from mer_bench.timing import SPEED_BATCH, speed_at

ASSETS = Path(__file__).with_name("site_assets")
"""``site.js`` and ``site.css``, copied beside the pages."""


def esc(value: object) -> str:
    """Text for HTML (element content and quoted attribute values)."""
    return html.escape("" if value is None else str(value), quote=True)


def _number(value: object, spec: str) -> tuple[str, str]:
    """(shown text, sort value) of a number; a non-number is shown escaped and sorts last."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, spec), repr(float(value))
    return esc(value), ""


def page_name(result: dict) -> str:
    from mer_bench.report.plots import slug
    return f"{slug(result['run_id'])}.html"


def data_name(result: dict) -> str:
    """The published copy of a result file: ``data/<run id slug>.json``."""
    from mer_bench.report.plots import slug
    return f"{slug(result['run_id'])}.json"


def adapter_source(name: str) -> Path | None:
    """The source file of a built-in adapter (``methods/<module>.py``), None for any
    other method (an adapter file's path comes from its result and is never read)."""
    from mer_bench.methods import BUILTIN
    if name not in BUILTIN:
        return None
    spec = importlib.util.find_spec(f"mer_bench.methods.{BUILTIN[name]}")
    return Path(spec.origin) if spec and spec.origin else None


def _legend() -> list[str]:
    return ['<footer id="legend"><h2>Legend</h2><ul>',
            *[f"<li>{guide.html(item)}</li>" for item in guide.LEGEND], "</ul></footer>"]


def _page(title: str, body: list[str], depth: int = 0) -> str:
    up = "../" * depth
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>", '<link rel="icon" href="data:,">',
        f'<link rel="stylesheet" href="{up}assets/site.css">',
        "</head><body>",
        f'<nav class="top"><a href="{up}index.html">Leaderboard</a> · '
        f'<a href="{up}robustness.html">Robustness</a> · '
        f'<a href="{up}submit.html">Submit a method</a> · <a href="#legend">Legend</a></nav>',
        "<main>", *body, "</main>", *_legend(),
        f'<script src="{up}assets/site.js"></script>', "</body></html>", ""])


def _cell(text: str, sort: str | None = None, kind: str = "", title: str = "") -> str:
    attribute = "" if sort is None else f' data-value="{esc(sort)}"'
    hint = f' title="{esc(title)}"' if title else ""
    return f'<td class="{kind}"{attribute}{hint}>{text}</td>'


def _search_text(result: dict) -> str:
    """What the search box matches a row on: method, variant, preset and departures,
    macro source, config values, protocol, dataset and scheme (lower case)."""
    config = " ".join(f"{k}={v}" for k, v in sorted(result["method"].get("config", {}).items()))
    return " ".join([method_label(result), preset_label(result), config,
                     result["protocol"]["name"], str(result.get("dataset", "")),
                     result["label_scheme"]["name"]]).lower()


def _row(table: Table, row) -> str:
    result = row.result
    m, t = result["metrics"], result["timing"]
    shared = shared_marks([r.result for r in table.rows])
    notes = [n for n in marks(result) if n not in shared] + (
        [f"{len(row.copies) + 1} identical runs"] if row.copies else [])
    name = esc(method_label(result, macro=False))
    link = f'<a href="results/{page_name(result)}">{name}</a>' + "".join(
        f' <small class="stale">({esc(n)})</small>' for n in notes)
    cells = [_cell(link, method_label(result)),
             _cell(esc(preset_cell(result)), title=departures_label(result))]
    for key in ("au_f1", "au_f1_meb") if table.is_au else ("uf1", "uar"):
        value, _, bounds = interval_label(m, key).partition(" ")
        cells.append(_cell(f"{value} <small>{esc(bounds)}</small>", repr(m[key]), "number"))
    if table.is_cde:
        for _, uf1, uar in cde_sources(result):
            cells.append(_cell("—" if uf1 is None else f"{uf1:.3f} / {uar:.3f}",
                               "" if uf1 is None else repr(uf1), "number"))
    third = m["per_au_mean"]["f1"] if table.is_au else m["accuracy"]
    cells.append(_cell(f"{third:.3f}", repr(third), "number"))
    cells.append(_cell(esc(seeds_label(result))))
    cells.append(_cell(*_number(t.get("fit_seconds"), ".2f"), "number"))
    rate, ranked = speed_at(t), table.ranked_speed(result)
    text = "—" if rate is None else f"{rate:.0f}" + ("" if ranked is not None else " †")
    cells.append(_cell(text, "" if ranked is None else repr(ranked), "number"))
    cells.append(_cell(*_number(t.get("params"), ","), "number"))
    dtype = t.get("dtype", "float32")
    cells.append(_cell(esc(device_label(t) + ("" if dtype == "float32" else f" · {dtype}"))))
    cells.append(_cell(esc(str(result.get("created", ""))[:10])))
    delta = vs_best_delta(table.best, result)
    cells.append(_cell(esc(best_cell(table, result)),
                       "0" if len(table.rows) == 1 else ("" if delta is None else repr(delta))))
    return (f'<tr data-method="{esc(result["method"]["name"])}" '
            f'data-search="{esc(_search_text(result))}">{"".join(cells)}</tr>')


def _columns(table: Table) -> list[tuple[str, str]]:
    sources = [(f"{title} UF1 / UAR", "number") for _, title in CDE_SOURCES] if table.is_cde else []
    metrics = ([("Mean AU F1", "number"), ("MEB F1 (two-class)", "number"),
                ("Per-AU F1, pooled mean", "number")] if table.is_au else
               [("UF1", "number"), ("UAR", "number"), *sources, ("Accuracy", "number")])
    return [("Method", "text"), ("Preset", "text"), *metrics, ("Seeds", "text"),
            ("Fit s/fold", "number"),
            (f"Clips/s (batch {SPEED_BATCH})", "number"), ("Params", "number"),
            ("Device class", "text"), ("Date", "text"), ("vs best", "number")]


def _head(columns: list[tuple[str, str]]) -> str:
    return "".join(f'<th data-type="{kind}" tabindex="0">{esc(name)}</th>' for name, kind in columns)


def _table(table: Table, figure: str | None) -> list[str]:
    _, dataset, _, preset, _ = table.key
    kind = "synthetic" if table.synthetic else "real"
    attributes = (f'data-protocol="{esc(table.protocol)}" data-dataset="{esc(dataset)}" '
                  f'data-preset="{esc(preset)}" data-data="{kind}"')
    first = table.rows[0].result
    badge = ' <span class="badge synthetic">synthetic</span>' if table.synthetic else \
        ' <span class="badge real">verified, real data</span>'
    twin = ' <a href="#synthetic">What a synthetic twin is and is not.</a>' if table.synthetic else ""
    return [f'<section class="setting" id="{table.anchor}" {attributes}>',
            f'<h3><a class="anchor" href="#{table.anchor}">{esc(table.title)}</a>{badge}</h3>',
            f'<p class="settings">Setting: {esc(settings_label(first))}. Classes: '
            f"{esc(', '.join(table.classes))}.{twin}</p>",
            f'<div class="scroll"><table class="board"><thead><tr>{_head(_columns(table))}</tr>'
            "</thead><tbody>", *[_row(table, r) for r in table.rows], "</tbody></table></div>",
            '<ul class="details">' + "".join(f"<li>{esc(n)}</li>" for n in table_notes(table))
            + "</ul>",
            f'<img class="figure" alt="UF1 against inference throughput, {esc(table.title)}" '
            f'src="{figure}">' if figure else "", "</section>"]


def _reported_table(title: str, entries: list, results: list[tuple[Path, dict]], cde: bool
                    ) -> list[str]:
    columns = ["Method", *([] if cde else ["Setting"]), "Paper's figures",
               *([f"{t} UF1 / UAR" for _, t in CDE_SOURCES] if cde else []), "Paper",
               "Verified real row"]
    rows = []
    for e in entries:
        cells = [f"{esc(e.method)} <em>(reported)</em>"]
        if not cde:
            cells.append(esc(" · ".join(e.key)))
        cells.append(esc(figures_label(e)))
        if cde:
            per = e.per_dataset or {}
            cells += ["—" if name not in per else f"{per[name][0]:.3f} / {per[name][1]:.3f}"
                      for name in ("smic-hs", "casme2", "samm")]
        citation, note = e.citation
        cells += [f'<a href="{esc(e.paper_url)}" rel="noopener">{esc(citation)}</a>'
                  + (f" <small>{esc(note)}</small>" if note else ""),
                  esc(reproduced_label(e, results))]
        rows.append(f'<tr class="reported" data-method="{esc(e.method)}" '
                    f'data-protocol="{esc(e.protocol.split(" ")[0])}" data-dataset="{esc(e.dataset)}" '
                    f'data-search="{esc(" ".join([e.method, *e.key, e.source]).lower())}">'
                    + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f'<th data-type="text" tabindex="0">{esc(c)}</th>' for c in columns)
    return ['<section class="setting" data-data="reported" data-preset="paper">',
            f"<h3>{esc(title)}</h3>",
            f'<div class="scroll"><table class="board"><thead><tr>{head}</tr></thead><tbody>',
            *rows, "</tbody></table></div>", "</section>"]


def _filters(tables: list[Table]) -> list[str]:
    def select(name: str, label: str, values: list[str]) -> str:
        options = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
        return (f'<label>{esc(label)} <select id="filter-{name}" data-filter="{name}">'
                f'<option value="">all</option>{options}</select></label>')
    protocols = {t.protocol for t in tables} | {e.protocol.split(" ")[0] for e in REPORTED}
    datasets = {t.key[1] for t in tables} | {e.dataset for e in REPORTED}
    return ['<form class="filters" onsubmit="return false">',
            select("data", "Rows", ["real", "reported", "synthetic"]),
            select("protocol", "Protocol", sorted(protocols)),
            select("dataset", "Dataset", sorted(datasets)),
            select("preset", "Preset", sorted({t.key[3] for t in tables} | {"paper"})),
            '<label>Search <input id="search" type="search" '
            'placeholder="method, variant, config"></label></form>',
            '<p id="no-match" hidden>Nothing matches these filters. '
            '<a href="index.html">Clear them</a>.</p>']


def index_page(results: list[tuple[Path, dict]], out: Path) -> str:
    from mer_bench.report.plots import slug, throughput_plot
    tables = build_tables(results)
    real = [t for t in tables if not t.synthetic]
    synthetic = [t for t in tables if t.synthetic]
    counts = {"verified-real": f"{sum(len(t.rows) for t in real)} rows",
              "reported": f"{len(REPORTED)} rows",
              "synthetic": f"{sum(len(t.rows) for t in synthetic)} rows"}
    body = ["<h1>mer-bench leaderboard</h1>", f'<p class="intro">{guide.html(guide.INTRO)}</p>',
            '<ul class="kinds">', *[f'<li class="kind-{a}"><a href="#{a}"><strong>{esc(title)}'
                                    f"</strong></a> ({counts[a]}): {guide.html(text)}</li>"
                                    for a, title, text in guide.KINDS], "</ul>",
            '<p>To put a method on the board, see <a href="submit.html">Submit a method</a>.</p>',
            f'<details class="toc"><summary>Contents: {len(tables)} tables</summary><ul>',
            *[f'<li><a href="#{t.anchor}">{esc(t.title)}</a>'
              f'{" (synthetic)" if t.synthetic else ""}</li>' for t in tables],
            "</ul></details>", *_filters(tables),
            '<section id="verified-real" class="kind" data-data="real"><h2>Verified on real data</h2>']
    if not real:
        body.append("<p>None yet. The real datasets are licensed per request and never ship; "
                    "a run on one (<code>--data-root NAME=PATH</code>) whose result file is "
                    'submitted appears here (<a href="submit.html">how</a>).</p>')

    def figure(table: Table) -> str | None:
        path = throughput_plot([(method_label(r), r) for _, r in table.results], table.title,
                               out / "plots" / f"uf1-vs-throughput__{slug(table.title)}.png")
        return f"plots/{path.name}" if path else None
    for table in real:
        body += _table(table, figure(table))
    body += ['</section><section id="reported" class="kind" data-data="reported"><h2>Reported by papers</h2>',
             "<p>Numbers copied from the papers, each under the paper's own metric name, "
             "with a link to the paper; not reproduced or verified here, and never ranked "
             "against verified rows.</p>"]
    for title, entries, cde in reported_groups():
        body += _reported_table(title, entries, results, cde=cde)
    body += ['</section><section id="synthetic" class="kind" data-data="synthetic"><h2>Synthetic twins</h2>',
             f'<p class="twin">{guide.html(guide.TWIN)}</p>']
    for table in synthetic:
        body += _table(table, figure(table))
    body.append("</section>")
    return _page("mer-bench leaderboard", body)


def submit_page(contributing: bool) -> str:
    """How a method author gets a verified row on the board (``guide.SUBMIT``)."""
    steps = "".join(f"<li><strong>{esc(step)}.</strong> {guide.html(text)}</li>"
                    for step, text in guide.SUBMIT)
    link = ('<p>The adapter contract in full: <a href="CONTRIBUTING.md.txt">CONTRIBUTING.md</a>'
            "</p>" if contributing else "")
    return _page("Submit a method", ["<h1>Submit a method</h1>",
                                     "<p>From an adapter to a verified row on the board:</p>",
                                     f"<ol>{steps}</ol>", f"<p>{guide.html(guide.VERIFIED)}</p>",
                                     link])


def _unchanged(result: dict, clean: dict | None) -> bool:
    """Whether a corrupted run predicted every clip as the clean run did."""
    if clean is None:
        return False
    def key(r):
        return sorted((p["sample_id"], p["seed"], p["y_pred"]) for p in r["predictions"])
    return key(result) == key(clean)


def robustness_page(results: list[tuple[Path, dict]], out: Path) -> str:
    """UF1 against corrupted share, a line per (setting, method, variant, corruption kind);
    every point's row linked to its result page; a line whose predictions never differ
    from the clean run's is said to be untouched by its corruption."""
    from mer_bench.report.plots import robustness_plot
    clean = {(table_key(r)[:4], r["method"]["name"], variant(r)): r
             for _, r in results if not corruption_label(r)}
    lines: dict[tuple, list] = {}
    for _, r in results:
        c = r.get("corruption")
        if c:
            key = (table_key(r)[:4], r["method"]["name"], variant(r))
            lines.setdefault((*key, c["kind"]), []).append((float(c["share"]), r))
    series, rows, notes = [], [], []
    for (setting, name, change, kind), points in sorted(lines.items()):
        base = clean.get((setting, name, change))
        points = ([(0.0, base)] if base else []) + sorted(points, key=lambda sr: sr[0])
        synthetic = " (synthetic)" if points[-1][1]["synthetic"] else ""
        label = f"{name}{f' ({change})' if change else ''} · {kind} · {setting[1]} {setting[2]}"
        series.append((label + synthetic, [(share, r["metrics"]["uf1"], r["metrics"]["ci"]["uf1"])
                                           for share, r in points]))
        if all(_unchanged(r, base) for share, r in points if share > 0):
            notes.append(f"{label}: every corrupted run predicted every clip as the clean run "
                         f"did — {kind} does not reach this method's input (its features are "
                         "computed from what this corruption leaves unchanged).")
        for share, r in points:
            ci = r["metrics"]["ci"]["uf1"]
            rows.append(f'<tr><td><a href="results/{page_name(r)}">{esc(label)}</a></td>'
                        f"<td>{'synthetic' if r['synthetic'] else 'real'}</td>"
                        f'<td class="number" data-value="{share!r}">{share * 100:g} %</td>'
                        f'<td class="number" data-value="{r["metrics"]["uf1"]!r}">'
                        f'{r["metrics"]["uf1"]:.3f}</td><td>'
                        f"{'too few subjects' if ci is None else f'[{ci[0]:.3f}, {ci[1]:.3f}]'}"
                        "</td></tr>")
    methods = sorted({key[1] for key in lines})
    body = ["<h1>Robustness</h1>",
            "<p>UF1 (95 % interval) against the share of test clips whose frames were "
            "corrupted (mask, regional noise, grayscale); share 0 is the same method's clean "
            "result of the same setting. Methods with robustness runs: "
            f"{esc(', '.join(methods)) or 'none'}. Rows on synthetic twins are labelled: "
            '<a href="index.html#synthetic">what a twin is and is not</a>.</p>']
    if not series:
        return _page("Robustness", body + ["<p>No robustness-track results yet.</p>"])
    figure = robustness_plot(series, out / "plots" / "robustness.png")
    return _page("Robustness", body + [
        f'<img class="figure" alt="UF1 against corrupted share" src="plots/{figure.name}">',
        *[f'<p class="note">{esc(n)}</p>' for n in notes],
        '<div class="scroll"><table class="board"><thead><tr><th data-type="text">Line</th>'
        '<th data-type="text">Data</th><th data-type="number">Corrupted share</th>'
        '<th data-type="number">UF1</th><th data-type="text">95 % CI</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"])


def _show(value: object) -> str:
    """A value from a result file as HTML: floats to 4 significant digits, lists joined,
    mappings as nested lists; every string escaped."""
    if isinstance(value, bool) or value is None:
        return esc(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        if not value:
            return "—"
        return '<ul class="kv">' + "".join(f"<li><b>{esc(k)}</b>: {_show(v)}</li>"
                                           for k, v in value.items()) + "</ul>"
    if isinstance(value, (list, tuple)):
        if all(not isinstance(v, (dict, list, tuple)) for v in value):
            return ", ".join(_show(v) for v in value) or "—"
        return "<ol>" + "".join(f"<li>{_show(v)}</li>" for v in value) + "</ol>"
    return esc(value)


def _key_values(title: str, pairs: list[tuple[str, object]]) -> list[str]:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{_show(v)}</td></tr>" for k, v in pairs)
    return [f"<h2>{esc(title)}</h2>", f'<div class="scroll"><table class="facts">{rows}</table></div>']


def _ladder(timing: dict) -> list[str]:
    """The throughput ladder as a table: a row per precision, clips/s per batch size."""
    entries = timing.get("throughput") or []
    if not entries:
        return []
    sizes = sorted({e["batch_size"] for e in entries})
    rate = {(e["dtype"], e["batch_size"]): e["samples_per_s"] for e in entries}
    head = "".join(f"<th>batch {size}</th>" for size in sizes)
    rows = "".join(f"<tr><th>{esc(dtype)}</th>" + "".join(
        f'<td class="number">{_number(rate.get((dtype, size)), ".0f")[0]}</td>' for size in sizes)
        + "</tr>" for dtype in sorted({e["dtype"] for e in entries}))
    return [f"<h2>Inference throughput, clips/s ({esc(device_label(timing))})</h2>",
            f'<div class="scroll"><table class="facts"><tr><th></th>{head}</tr>{rows}</table></div>']


def _headline_text(metrics: dict) -> str:
    """``UF1 … · UAR … · accuracy …``, or for the AU task ``mean AU F1 … · MEB F1 …``."""
    if "au_f1" in metrics:
        return (f"mean AU F1 {interval_label(metrics, 'au_f1')} · MEB F1 (two-class) "
                f"{interval_label(metrics, 'au_f1_meb')}")
    return (f"UF1 {interval_label(metrics, 'uf1')} · UAR {interval_label(metrics, 'uar')} · "
            f"accuracy {metrics['accuracy']:.3f}")


def _matrix(result: dict) -> list[str]:
    """The confusion matrix: a plain table (not sortable: its rows are classes in order)."""
    classes = result["label_scheme"]["classes"]
    confusion = result["metrics"].get("confusion", [])
    head = "".join(f"<th>{esc(c)}</th>" for c in classes)
    rows = "".join(f"<tr><th>{esc(c)}</th>{''.join(f'<td>{esc(n)}</td>' for n in counts)}</tr>"
                   for c, counts in zip(classes, confusion))
    return ["<h2>Confusion matrix</h2>", "<p>Rows: true class; columns: predicted.</p>",
            f'<div class="scroll"><table class="matrix"><thead><tr><th></th>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>"]


def _records(title: str, records: dict, columns: list[str]) -> list[str]:
    if not records:
        return []
    head = "".join(f'<th data-type="{"text" if k == 0 else "number"}" tabindex="0">{esc(c)}</th>'
                   for k, c in enumerate(["", *columns]))
    rows = "".join("<tr>" + f"<td>{esc(name)}</td>" + "".join(
        f'<td class="number" data-value="{esc(values.get(c))}">{esc(_short(values.get(c)))}</td>'
        for c in columns) + "</tr>" for name, values in records.items() if isinstance(values, dict))
    return [f"<h2>{esc(title)}</h2>",
            f'<div class="scroll"><table class="board"><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>"]


def _short(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _comparison(result: dict, best: dict | None) -> list[str]:
    if best is None:
        return ["<h2>Against the table's best row</h2>",
                f"<p>No best row: every row of this table is {NO_LEARNING}.</p>"]
    if best is result:
        return ["<h2>Against the table's best row</h2>", "<p>This is the table's best row.</p>"]
    c, shared = paired_with(result, best)
    if c is None:
        return ["<h2>Against the table's best row</h2>",
                f"<p>{'Not paired: they tested different units' if shared else 'No common seeds'}.</p>"]
    from mer_bench.report.intervals import format_p
    rows = "".join(f"<tr><td>{k}</td><td>{c.delta[k]:+.3f}</td><td>[{c.ci[k][0]:+.3f}, "
                   f"{c.ci[k][1]:+.3f}]</td><td>{esc(format_p(c.p_value[k], prefix=False))}</td></tr>"
                   for k in c.delta)
    return [f"<h2>Against the table's best row ({esc(best['method']['name'])}, seeds "
            f"{esc(','.join(map(str, shared)))})</h2>",
            "<p>This row minus the best; paired subject bootstrap-t.</p>",
            '<div class="scroll"><table class="matrix"><thead><tr><th>Metric</th><th>Difference</th>'
            f"<th>95 % CI</th><th>p</th></tr></thead><tbody>{rows}</tbody></table></div>"]


def _links(result: dict, table: Table | None) -> list[str]:
    """The result's links: its paper, its adapter's source, its published result file
    (with every prediction) and its table on the board."""
    name = result["method"]["name"]
    links = [f'<a href="../data/{data_name(result)}">result file (JSON, per-sample predictions)</a>']
    if name in PAPER_URLS:
        links.insert(0, f'<a href="{esc(PAPER_URLS[name])}" rel="noopener">paper</a>')
    if adapter_source(name):
        links.append(f'<a href="../code/{esc(adapter_source(name).name)}.txt">adapter source '
                     f"(methods/{esc(adapter_source(name).name)})</a>")
    else:
        links.append(f"adapter: {esc(origin_label(result) or 'not a built-in adapter')}")
    if table is not None:
        links.append(f'<a href="../index.html#{table.anchor}">its table</a>')
    return ['<p class="links">' + " · ".join(links) + "</p>"]


def result_page(path: Path, result: dict, table: Table | None, out: Path) -> str:
    from mer_bench.report.plots import diagnostics_plot, slug
    from mer_bench.reproduce import run_command
    method, m = result["method"], result["metrics"]
    best = table.best if table is not None else None
    try:
        command = run_command(result, path)
    except Exception as err:  # noqa: BLE001 - an unregistered method, a config this code cannot build
        command = f"(cannot be rebuilt here: {type(err).__name__}: {err})"
    stale = stale_label(result)
    kind = ('<span class="badge synthetic">synthetic data</span> <a href="../index.html#synthetic">'
            "what a twin is and is not</a>") if result["synthetic"] else \
        '<span class="badge real">verified, real data</span>'
    body = [f"<h1>{esc(method['name'])} · {esc(result['protocol']['name'])} · "
            f"{esc(result.get('dataset'))} · {esc(result['label_scheme']['name'])}</h1>",
            f"<p>{kind}</p>",
            f"<p>{esc(_headline_text(m))} · seeds {esc(seeds_label(result))} · "
            f"{esc(str(result.get('created', ''))[:10])}</p>",
            f"<p><small>{esc(m.get('ci_method', ''))}</small></p>",
            *_links(result, table),
            f'<p class="stale">{esc(stale)}</p>' if stale else "",
            "<h2>Reproduce</h2>", f"<pre><code>{esc(command)}</code></pre>"]
    source = adapter_source(method["name"])
    body += _key_values("Method", [("name", method["name"]), ("preset", preset_label(result)),
                                   ("config", method.get("config")),
                                   ("recipe departures (paper → ran, where)",
                                    recipe_departures(result)),
                                   ("not specified by the paper", method.get("not_specified", {})),
                                   ("inputs", method.get("inputs")),
                                   ("macro source", method.get("auxiliary", "")),
                                   ("adapter", f"methods/{source.name}" if source
                                    else method.get("file", "")),
                                   ("code", result.get("code", "not recorded"))])
    body += _key_values("Protocol", [("name", result["protocol"]["name"]),
                                     ("setting", settings_label(result)),
                                     ("parameters", result["protocol"]["params"]),
                                     ("seeds", result["seeds"]),
                                     ("dataset", result.get("dataset")),
                                     ("classes", result["label_scheme"]["classes"]),
                                     ("corruption", result.get("corruption", ""))])
    if "au_f1" in m:
        body += _records("Per AU (pooled over every held-out clip)", m.get("per_au", {}),
                         ["f1", "f1_meb", "positives", "predicted"])
        body += _records("Per held-out dataset (mean over AUs)", m.get("per_dataset", {}),
                         ["au_f1", "au_f1_meb", "n"])
    else:
        body += _matrix(result)
        body += _records("Per class", m.get("per_class", {}), ["f1", "recall", "support"])
        body += _records("Per source dataset", m.get("per_dataset", {}),
                         ["uf1", "uar", "accuracy", "n"])
    body += _records("Per subject", m.get("per_subject", {}), ["accuracy", "uf1", "uar", "n"])
    curves = diagnostics_plot(result, out / "plots" / f"learning__{slug(result['run_id'])}.png")
    summary = result.get("diagnostics", {}).get("summary", {})
    if summary:
        body += _key_values("Learning diagnostics (median over folds)", sorted(summary.items()))
    for mark, reason in ((NO_LEARNING, no_learning(result)),
                         (INEFFECTIVE, ineffective_pretraining(result))):
        if reason:
            body.append(f'<p class="stale"><strong>{mark}</strong>: {esc(reason)}.</p>')
    if curves:
        body.append(f'<img class="figure" alt="learning curves" src="../plots/{curves.name}">')
    body += _comparison(result, best)
    body += _ladder(result["timing"])
    body += _key_values("Timing", sorted((k, v) for k, v in result["timing"].items()
                                         if k not in ("per_task", "throughput")))
    body += _key_values("Environment", sorted(result.get("environment", {}).items()))
    return _page(f"{method['name']} · {result['run_id']}", body, depth=1)


def build_site(results: list[tuple[Path, dict]], out: Path) -> Path:
    """Write the site for verified ``results`` (``collect``) into ``out``; returns the
    index page. The site is built in a new folder beside ``out`` and swapped in by
    renames only when complete (``swap_in``): a build that fails — a full disk, an
    interrupt — leaves the previous site as it was and no half-written folder."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        _write_site(results, staging)
        swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out / "index.html"


def swap_in(new: Path, out: Path) -> None:
    """Replace the folder ``out`` by the complete folder ``new``: ``out`` is renamed
    aside, ``new`` renamed into its place (if that fails the old one is renamed back),
    then the old one removed."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        old.rmdir()
        out.rename(old)
    try:
        new.rename(out)
    except BaseException:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    os.chmod(out, 0o777 & ~current_umask())


def _write_site(results: list[tuple[Path, dict]], out: Path) -> None:
    """Pages, assets, figures, the result files (``data/``) and the built-in adapters'
    sources (``code/``) shown, all under ``out``."""
    for folder in ("results", "plots", "assets", "data", "code"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for asset in ASSETS.iterdir():
        (out / "assets" / asset.name).write_bytes(asset.read_bytes())
    tables = {table.key: table for table in build_tables(results, corrupted=None)}
    for path, r in results:
        (out / "results" / page_name(r)).write_text(result_page(path, r, tables.get(table_key(r)), out))
        (out / "data" / data_name(r)).write_bytes(path.read_bytes())
        source = adapter_source(r["method"]["name"])
        if source is not None:
            (out / "code" / f"{source.name}.txt").write_bytes(source.read_bytes())
    contributing = guide.CONTRIBUTING
    if contributing.is_file():
        (out / "CONTRIBUTING.md.txt").write_bytes(contributing.read_bytes())
    (out / "submit.html").write_text(submit_page(contributing.is_file()))
    (out / "robustness.html").write_text(robustness_page(results, out))
    (out / "index.html").write_text(index_page(results, out))
