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
import json
import os
import shutil
import tempfile
from pathlib import Path

from mer_bench.features.cache import current_umask
from mer_bench.report.intervals import interval_label
from mer_bench.report.leaderboard import (
    corruption_label,
    macro_label,
    origin_label,
    paired_with,
    preset_label,
    seeds_label,
    table_key,
    variant,
    versus_best,
)
from mer_bench.report.learning import (
    INEFFECTIVE,
    NO_LEARNING,
    ineffective_pretraining,
    no_learning,
    table_best,
)
from mer_bench.report.reported import REPORTED
from mer_bench.report.staleness import stale_label
from mer_bench.timing import SPEED_BATCH, speed_at

ASSETS = Path(__file__).with_name("site_assets")
"""``site.js`` and ``site.css``, copied beside the pages."""
COLUMNS = [("Method", "text"), ("Preset", "text"), ("UF1", "number"), ("UAR", "number"),
           ("Accuracy", "number"), ("Seeds", "text"), ("Fit s/fold", "number"),
           (f"Clips/s (batch {SPEED_BATCH})", "number"), ("Params", "number"),
           ("Device class", "text"),
           ("Data", "text"), ("vs best", "text")]


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


def _page(title: str, body: list[str], depth: int = 0) -> str:
    up = "../" * depth
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>", '<link rel="icon" href="data:,">',
        f'<link rel="stylesheet" href="{up}assets/site.css">',
        "</head><body>",
        f'<nav><a href="{up}index.html">Leaderboard</a> · '
        f'<a href="{up}robustness.html">Robustness</a></nav>',
        *body, f'<script src="{up}assets/site.js"></script>', "</body></html>", ""])


def _cell(text: str, sort: str | None = None, kind: str = "") -> str:
    attribute = "" if sort is None else f' data-value="{esc(sort)}"'
    return f'<td class="{kind}"{attribute}>{text}</td>'


def _row_cells(result: dict, best: dict) -> list[str]:
    m, t = result["metrics"], result["timing"]
    changes = ", ".join(p for p in (origin_label(result), variant(result), macro_label(result)) if p)
    name = esc(result["method"]["name"]) + (f" <small>({esc(changes)})</small>" if changes else "")
    marks = [m for m in (stale_label(result), NO_LEARNING if no_learning(result) else "",
                         INEFFECTIVE if ineffective_pretraining(result) else "") if m]
    link = f'<a href="results/{page_name(result)}">{name}</a>' + "".join(
        f' <small class="stale">({esc(m)})</small>' for m in marks)
    cells = [_cell(link, result["method"]["name"]), _cell(esc(preset_label(result)))]
    for key in ("uf1", "uar"):
        value, _, bounds = interval_label(m, key).partition(" ")
        cells.append(_cell(f"{value} <small>{esc(bounds)}</small>", repr(m[key]), "number"))
    cells.append(_cell(f"{m['accuracy']:.3f}", repr(m["accuracy"]), "number"))
    cells.append(_cell(esc(seeds_label(result))))
    for value, spec in ((t.get("fit_seconds"), ".2f"), (speed_at(t), ".0f"),
                        (t.get("params"), ",")):
        text, sort = _number(value, spec)
        cells.append(_cell(text, sort, "number"))
    cells.append(_cell(esc(str(t.get("device_class") or t.get("device", "")))))
    cells.append(_cell("synthetic" if result["synthetic"] else "real"))
    cells.append(_cell(esc(versus_best(best, result))))
    return cells


def _reported_cells(entry) -> list[str]:
    blank = _cell("", "")
    def shown(value):
        return _cell("" if value is None else f"{value:.3f}",
                     "" if value is None else repr(value), "number")
    return [_cell(f"{esc(entry.method)} <em>(reported)</em>", entry.method),
            _cell("paper"), shown(entry.f1), shown(entry.uar), shown(entry.accuracy),
            blank, blank, blank, blank, blank, _cell("real"),
            _cell(esc(f"reported: {entry.source}"))]


def _table(key: tuple, items: list[tuple[Path, dict]], reported: list, figure: str | None
           ) -> list[str]:
    protocol, dataset, scheme, preset, _ = key
    synthetic = bool(items and items[0][1]["synthetic"])
    attributes = (f'data-protocol="{esc(protocol.split(" ")[0])}" data-dataset="{esc(dataset)}" '
                  f'data-preset="{esc(preset)}" data-data="{"synthetic" if synthetic else "real"}"')
    items = sorted(items, key=lambda pr: -pr[1]["metrics"]["uf1"])
    head = "".join(f'<th data-type="{kind}" tabindex="0">{esc(name)}</th>' for name, kind in COLUMNS)
    best = table_best(items)
    rows = [f'<tr data-method="{esc(r["method"]["name"])}">{"".join(_row_cells(r, best))}</tr>'
            for _, r in items]
    rows += [f'<tr class="reported" data-method="{esc(e.method)}">{"".join(_reported_cells(e))}</tr>'
             for e in reported]
    classes = ", ".join(items[0][1]["label_scheme"]["classes"]) if items else ""
    return [f'<section class="setting" {attributes}>',
            f"<h3>{esc(protocol)} · {esc(dataset)} · {esc(scheme)} · {esc(preset)}"
            + (" <small>(synthetic data)</small>" if synthetic else "") + "</h3>",
            f"<p>Classes: {esc(classes)}</p>" if classes else "",
            f'<table class="board"><thead><tr>{head}</tr></thead><tbody>', *rows,
            "</tbody></table>",
            f'<img class="figure" alt="UF1 against inference throughput" src="{figure}">'
            if figure else "", "</section>"]


def _filters(keys: list[tuple], synthetic: set[bool]) -> list[str]:
    def select(name: str, label: str, values: list[str]) -> str:
        options = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
        return (f'<label>{esc(label)} <select id="filter-{name}" data-filter="{name}">'
                f'<option value="">all</option>{options}</select></label>')
    protocols = sorted({k[0].split(" ")[0] for k in keys})
    return ['<form class="filters" onsubmit="return false">',
            select("protocol", "Protocol", protocols),
            select("dataset", "Dataset", sorted({k[1] for k in keys})),
            select("preset", "Preset", sorted({k[3] for k in keys})),
            select("data", "Data", [d for d in ("real", "synthetic")
                                    if (d == "synthetic") in synthetic]),
            '<label>Method <input id="search" type="search" placeholder="search methods">'
            "</label></form>"]


def index_page(results: list[tuple[Path, dict]], out: Path) -> str:
    from mer_bench.report.plots import slug, throughput_plot
    groups: dict[tuple, list] = {}
    for p, r in results:
        if not corruption_label(r):
            groups.setdefault(table_key(r), []).append((p, r))
    for entry in REPORTED:
        groups.setdefault((*entry.key, "paper", ""), [])
    body = ["<h1>mer-bench leaderboard</h1>",
            "<p>Every metric was recomputed from the stored per-sample predictions of a "
            "verified result file. Click a column header to sort; the filters and the search "
            "hide tables and rows. Rows marked <em>(reported)</em> are the papers' own "
            "real-data numbers, not reproduced here. Results on synthetic twins are labelled "
            "synthetic and are not comparable with real-data results.</p>",
            *_filters(list(groups), {bool(r["synthetic"]) for _, r in results} | {False})]
    for key, items in sorted(groups.items(), key=lambda kv: (bool(kv[1] and kv[1][0][1]["synthetic"]), kv[0])):
        reported = [e for e in REPORTED if (*e.key, "paper", "") == key]
        figure = None
        if items:
            title = " · ".join(k for k in key if k)
            path = throughput_plot([(f"{r['method']['name']} {variant(r)}".strip(), r)
                                    for _, r in items], title,
                                   out / "plots" / f"uf1-vs-throughput__{slug(title)}.png")
            figure = f"plots/{path.name}" if path else None
        body += _table(key, items, reported, figure)
    return _page("mer-bench leaderboard", body)


def robustness_page(results: list[tuple[Path, dict]], out: Path) -> str:
    """One figure: UF1 against corrupted share per (method, corruption kind, setting)."""
    from mer_bench.report.plots import robustness_plot
    clean = {(table_key(r)[:4], r["method"]["name"], variant(r)): r
             for _, r in results if not corruption_label(r)}
    lines: dict[tuple, list] = {}
    for _, r in results:
        c = r.get("corruption")
        if c:
            key = (table_key(r)[:4], r["method"]["name"], variant(r))
            lines.setdefault((*key, c["kind"]), []).append((float(c["share"]), r))
    series = []
    for (setting, name, change, kind), points in sorted(lines.items()):
        base = clean.get((setting, name, change))
        points = ([(0.0, base)] if base else []) + sorted(points, key=lambda sr: sr[0])
        label = f"{name}{f' ({change})' if change else ''} · {kind} · {setting[1]} {setting[2]}"
        series.append((label, [(share, r["metrics"]["uf1"], r["metrics"]["ci"]["uf1"])
                               for share, r in points]))
    body = ["<h1>Robustness</h1>",
            "<p>UF1 (95 % interval) against the share of test clips whose frames were "
            "corrupted; share 0 is the same method's clean result of the same setting.</p>"]
    if not series:
        return _page("Robustness", body + ["<p>No robustness-track results yet.</p>"])
    figure = robustness_plot(series, out / "plots" / "robustness.png")
    rows = "".join(f"<tr><td>{esc(label)}</td><td>{esc(share)}</td><td>{uf1:.3f}</td>"
                   f"<td>{'too few subjects' if ci is None else f'[{ci[0]:.3f}, {ci[1]:.3f}]'}"
                   f"</td></tr>" for label, points in series for share, uf1, ci in points)
    return _page("Robustness", body + [
        f'<img class="figure" alt="UF1 against corrupted share" src="plots/{figure.name}">',
        '<table class="board"><thead><tr><th data-type="text">Line</th><th data-type="number">'
        'Corrupted share</th><th data-type="number">UF1</th><th data-type="text">95 % CI'
        f"</th></tr></thead><tbody>{rows}</tbody></table>"])


def _key_values(title: str, pairs: list[tuple[str, object]]) -> list[str]:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(_json(v))}</td></tr>" for k, v in pairs)
    return [f"<h2>{esc(title)}</h2>", f'<table class="facts">{rows}</table>']


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
    return [f"<h2>Inference throughput, clips/s ({esc(timing.get('device_class', ''))})</h2>",
            f'<table class="facts"><tr><th></th>{head}</tr>{rows}</table>']


def _json(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _matrix(result: dict) -> list[str]:
    classes = result["label_scheme"]["classes"]
    confusion = result["metrics"].get("confusion", [])
    head = "".join(f"<th>{esc(c)}</th>" for c in classes)
    rows = "".join(f"<tr><th>{esc(c)}</th>{''.join(f'<td>{esc(n)}</td>' for n in counts)}</tr>"
                   for c, counts in zip(classes, confusion))
    return ["<h2>Confusion matrix</h2>", "<p>Rows: true class; columns: predicted.</p>",
            f'<table class="board"><thead><tr><th></th>{head}</tr></thead><tbody>{rows}</tbody></table>']


def _records(title: str, records: dict, columns: list[str]) -> list[str]:
    if not records:
        return []
    head = "".join(f'<th data-type="{"text" if k == 0 else "number"}">{esc(c)}</th>'
                   for k, c in enumerate(["", *columns]))
    rows = "".join("<tr>" + f"<td>{esc(name)}</td>" + "".join(
        f'<td data-value="{esc(values.get(c))}">{esc(_short(values.get(c)))}</td>' for c in columns)
        + "</tr>" for name, values in records.items() if isinstance(values, dict))
    return [f"<h2>{esc(title)}</h2>",
            f'<table class="board"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>']


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
                   for k in ("uf1", "uar", "accuracy"))
    return [f"<h2>Against the table's best row ({esc(best['method']['name'])}, seeds "
            f"{esc(','.join(map(str, shared)))})</h2>",
            "<p>This row minus the best; paired subject bootstrap-t.</p>",
            '<table class="board"><thead><tr><th>Metric</th><th>Difference</th><th>95 % CI</th>'
            f"<th>p</th></tr></thead><tbody>{rows}</tbody></table>"]


def result_page(path: Path, result: dict, best: dict | None, out: Path) -> str:
    from mer_bench.report.plots import diagnostics_plot, slug
    from mer_bench.reproduce import run_command
    method, m = result["method"], result["metrics"]
    try:
        command = run_command(result, path)
    except Exception as err:  # an unregistered method, a config this code cannot build
        command = f"(cannot be rebuilt here: {type(err).__name__}: {err})"
    stale = stale_label(result)
    body = [f"<h1>{esc(method['name'])} · {esc(result['protocol']['name'])} · "
            f"{esc(result.get('dataset'))} · {esc(result['label_scheme']['name'])}</h1>",
            f"<p>{'Synthetic data. ' if result['synthetic'] else ''}"
            f"UF1 {esc(interval_label(m, 'uf1'))} · UAR {esc(interval_label(m, 'uar'))} · "
            f"accuracy {m['accuracy']:.3f} · {esc(m.get('ci_method', ''))}</p>",
            f'<p class="stale">{esc(stale)}</p>' if stale else "",
            "<h2>Reproduce</h2>", f"<pre><code>{esc(command)}</code></pre>",
            f"<p>Result file: <code>{esc(path)}</code></p>"]
    body += _key_values("Method", [("name", method["name"]), ("preset", preset_label(result)),
                                   ("config", method.get("config")),
                                   ("recipe departures", method.get("recipe_departures", {})),
                                   ("inputs", method.get("inputs")),
                                   ("macro source", method.get("auxiliary", "")),
                                   ("adapter file", method.get("file", "")),
                                   ("code", result.get("code", "not recorded"))])
    body += _key_values("Protocol", [("name", result["protocol"]["name"]),
                                     ("parameters", result["protocol"]["params"]),
                                     ("seeds", result["seeds"]),
                                     ("dataset", result.get("dataset")),
                                     ("classes", result["label_scheme"]["classes"]),
                                     ("corruption", result.get("corruption", ""))])
    body += _matrix(result)
    body += _records("Per class", m.get("per_class", {}), ["f1", "recall", "support"])
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
    for folder in ("results", "plots", "assets"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for asset in ASSETS.iterdir():
        (out / "assets" / asset.name).write_bytes(asset.read_bytes())
    by_table: dict[tuple, list] = {}
    for path, r in sorted(results, key=lambda pr: -pr[1]["metrics"]["uf1"]):
        by_table.setdefault(table_key(r), []).append((path, r))
    best = {key: table_best(items) for key, items in by_table.items()}
    for path, r in results:
        (out / "results" / page_name(r)).write_text(result_page(path, r, best.get(table_key(r)), out))
    (out / "robustness.html").write_text(robustness_page(results, out))
    (out / "index.html").write_text(index_page(results, out))
