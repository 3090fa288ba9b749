"""The markdown leaderboard, regenerated from verified result files.

Every result's metrics are recomputed from its stored predictions first; a file whose
numbers do not match is rejected (an error naming the file and the metric, or skipped
with a warning when asked). One table per protocol x dataset x label scheme; synthetic
results are in their own section and never share a table with real-data rows.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tabulate import tabulate

from mer_bench.errors import MerBenchError
from mer_bench.report.results import load_result, verify_result

HEADERS = ["Method", "Preset", "UF1 [95% CI]", "UAR [95% CI]", "Accuracy", "Seeds",
           "Fit s/fold", "Infer samples/s", "Params", "Device", "Result"]


def collect(results_dir: Path, skip_invalid: bool = False) -> list[tuple[Path, dict]]:
    """Verified results under ``results_dir`` (recursively, ``*.json``; the runner's
    ``.partial`` folders are ignored)."""
    found, rejected = [], []
    for path in sorted(Path(results_dir).rglob("*.json")):
        if ".partial" in path.parts:
            continue
        try:
            result = load_result(path)
            problems = verify_result(result)
        except MerBenchError as err:
            problems = [str(err)]
            result = None
        if problems:
            rejected.append(f"{path}: {'; '.join(problems)}")
        else:
            found.append((path, result))
    if rejected and not skip_invalid:
        raise MerBenchError("rejected result files (metrics do not match predictions):\n  "
                            + "\n  ".join(rejected))
    for line in rejected:
        print(f"mer-bench: skipping {line}", file=sys.stderr)
    return found


def _interval(metrics: dict, key: str) -> str:
    lo, hi = metrics["ci"][key]
    return f"{metrics[key]:.3f} [{lo:.3f}, {hi:.3f}]"


def protocol_label(result: dict) -> str:
    """``fewshot (n_way=3)``: the protocol and the parameters that differ from its
    defaults, so results under different settings never share a table."""
    from mer_bench.protocols import PROTOCOLS
    name, params = result["protocol"]["name"], result["protocol"]["params"]
    cls = PROTOCOLS.get(name)
    defaults = cls().params() if cls else {}
    changed = [f"{k}={v}" for k, v in sorted(params.items()) if defaults.get(k, v) != v]
    return f"{name} ({', '.join(changed)})" if changed else name


def variant(result: dict) -> str:
    """The method config's departures from its preset (``prototypes=mean``), so ablation
    rows are told apart; empty when the method is not registered here."""
    from mer_bench.methods import get_method_class
    try:
        cls = get_method_class(result["method"]["name"])
        base = json.loads(json.dumps(cls.Config.from_preset(result["method"]["preset"]).to_dict()))
    except MerBenchError:
        return ""
    config = result["method"]["config"]
    return ", ".join(f"{k}={config[k] if not isinstance(config[k], list) else '+'.join(map(str, config[k]))}"
                     for k in sorted(config) if k in base and config[k] != base[k])


def corruption_label(result: dict) -> str:
    """``noise 30 %`` for a robustness-track result, empty for clean test data."""
    c = result.get("corruption")
    return f"{c['kind']} {c['share'] * 100:g} %" if c else ""


def table_key(result: dict) -> tuple[str, str, str, str]:
    """(protocol label, dataset, scheme, corruption): results share a table only when all
    four agree."""
    return (protocol_label(result), result.get("dataset", "+".join(result["datasets"])),
            result["label_scheme"]["name"], corruption_label(result))


def row(path: Path, result: dict, root: Path) -> list:
    m, t = result["metrics"], result["timing"]
    throughput = t.get("predict_samples_per_s")
    try:
        shown = path.relative_to(root)
    except ValueError:
        shown = path
    name = result["method"]["name"]
    changes = variant(result)
    return [f"{name} ({changes})" if changes else name, result["method"].get("preset", ""),
            _interval(m, "uf1"),
            _interval(m, "uar"), f"{m['accuracy']:.3f}", ",".join(map(str, result["seeds"])),
            f"{t['fit_seconds']:.2f}", f"{throughput:.0f}" if throughput else "",
            f"{t['params']:,}", t["device"], f"`{shown}`"]


def versus_best(best: dict, other: dict) -> str:
    """``−0.085 (p=0.002)``: UF1 difference from the table's best row by the paired
    subject bootstrap; ``≈ best`` marks a difference that is not significant at 5 %;
    ``not paired`` where the two did not predict the same test units."""
    from mer_bench.report.compare import compare
    if other is best:
        return "best"
    try:
        c = compare(other, best)
    except MerBenchError:
        return "not paired"
    p = c.p_value["uf1"]
    text = f"{c.delta['uf1']:+.3f} (p={p:.2g})"
    return f"≈ best, {text}" if p >= 0.05 else text


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
        rows.append([f"{r.method} (reported)", "paper", f1, fmt(r.uar), fmt(r.accuracy), "", "",
                     "", "", "", r.source, gap])
    return rows


def render(results: list[tuple[Path, dict]], root: Path) -> str:
    """Markdown: a section for real data and one for synthetic data, a table per
    (protocol, dataset, scheme, corruption), rows sorted by UF1 descending, each compared
    with the best row by a paired bootstrap; the papers' reported numbers sit in the
    real-data table of their key, marked as reported."""
    from mer_bench.methods import get_method_class, method_names
    reported = [r for name in method_names() for r in getattr(get_method_class(name), "REPORTED", ())]
    lines = ["# mer-bench leaderboard", "",
             "Generated by `mer-bench leaderboard build` from verified result files: every "
             "metric below was recomputed from the stored per-sample predictions. UF1/UAR are "
             "pooled as in MEGC2019; intervals are bootstrap over subjects (loso, kfold5, cde, "
             "lodo), t-intervals over repeats (holdout), or bootstrap over held-out subjects of "
             "the mean per-episode metric (fewshot). *vs best*: the UF1 difference from the "
             "table's best row with a paired subject bootstrap; ≈ best = not significant at 5 %. "
             "Rows marked *(reported)* are the papers' own real-data numbers, not reproduced "
             "or verified here.", ""]
    headers = HEADERS + ["vs best"]
    for synthetic, title in ((False, "Real datasets"),
                             (True, "Synthetic twins (synthetic data; not comparable with real-data results)")):
        groups: dict[tuple, list] = {}
        for p, r in results:
            if bool(r["synthetic"]) == synthetic:
                groups.setdefault(table_key(r), []).append((p, r))
        if not synthetic:
            for entry in reported:
                groups.setdefault((*entry.key, ""), [])
        lines += [f"## {title}", ""] + ([] if groups else ["No results yet.", ""])
        for tracks in (False, True):
            for key, items in sorted(groups.items()):
                if bool(key[3]) != tracks:
                    continue
                lines += _table(key, items, root, [] if synthetic else
                                [e for e in reported if e.key == key[:3] and not key[3]], headers)
    return "\n".join(lines)


def _table(key: tuple, items: list[tuple[Path, dict]], root: Path, reported: list,
           headers: list[str]) -> list[str]:
    protocol, dataset, scheme, corruption = key
    items.sort(key=lambda pr: -pr[1]["metrics"]["uf1"])
    title = f"### {protocol} · {dataset} · {scheme}" + (f" · robustness: {corruption} of test "
                                                        f"clips corrupted" if corruption else "")
    rows = [row(p, r, root) + [versus_best(items[0][1], r)] for p, r in items]
    rows += reported_rows(reported, items)
    classes = ", ".join(items[0][1]["label_scheme"]["classes"]) if items else \
        "(no reproduced result yet)"
    return [title, "", f"Classes: {classes}", "", tabulate(rows, headers, tablefmt="github"), ""]


def build(results_dir: Path, output: Path, skip_invalid: bool = False) -> Path:
    """Verify every result under ``results_dir`` and write the markdown to ``output``."""
    results = collect(results_dir, skip_invalid)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(results, output.parent))
    return output
