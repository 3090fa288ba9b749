"""The leaderboard's tables as data, shared by the markdown (``leaderboard``) and the
site (``site``): which results share a table, in which order, which re-runs collapse into
one row, which row is best, and what the table's header says about its protocol.

A table holds the verified results of one (protocol with its parameters, dataset, label
scheme, preset, corruption) key. Rows are sorted by UF1 (AU tables: mean AU F1),
descending. Results whose
predictions are the same clip for clip (same method, config and protocol; a
seed-independent method's seeds 0,1,2 repeat its seed 0) are one row: a re-run that came
out identical is shown once, with its copies named, instead of twice with a "+0.000
(p=1)" against itself. Speed is compared within one device class:
the table's *reference* class is the one most of its timed rows ran on; rows of other
classes keep their figure but are marked and not ranked with the others.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mer_bench.report.learning import table_best
from mer_bench.report.schema import headline_key
from mer_bench.timing import speed_at

CDE_SOURCES = (("smic", "SMIC-HS"), ("casme2", "CASME II"), ("samm", "SAMM"))
"""MEGC2019's three source datasets (name stem of the dataset, column title), in the
order of its result table."""


@dataclass
class Row:
    """One shown row: a result, its file, and the files of identical re-runs."""

    path: Path
    result: dict
    copies: list[Path] = field(default_factory=list)


@dataclass
class Table:
    """The rows of one table key (``leaderboard.table_key``), best UF1 first."""

    key: tuple[str, str, str, str, str]
    rows: list[Row]
    anchor: str = ""

    @property
    def results(self) -> list[tuple[Path, dict]]:
        return [(r.path, r.result) for r in self.rows]

    @property
    def best(self) -> dict | None:
        """The best row's result (``learning.table_best``: never a no-learning row)."""
        return table_best(self.results)

    @property
    def synthetic(self) -> bool:
        return bool(self.rows) and bool(self.rows[0].result["synthetic"])

    @property
    def title(self) -> str:
        """``loso · synth-casme2 · casme2-5 · fast`` (and the corruption, if any)."""
        return " · ".join(part for part in self.key if part)

    @property
    def protocol(self) -> str:
        return self.key[0].split(" ")[0]

    @property
    def is_cde(self) -> bool:
        return self.protocol == "cde"

    @property
    def is_au(self) -> bool:
        """An AU-task table: ranked by mean AU F1, its classes are AUs."""
        return bool(self.rows) and self.rows[0].result["label_scheme"].get("task") == "au"

    @property
    def classes(self) -> list[str]:
        return list(self.rows[0].result["label_scheme"]["classes"]) if self.rows else []

    @property
    def reference_device(self) -> str | None:
        """The device class most of the table's timed rows ran on (ties: the first in
        sorted order); None when no row has a speed figure."""
        counts = Counter(device_label(r.result["timing"]) for r in self.rows
                         if speed_at(r.result["timing"]) is not None)
        if not counts:
            return None
        top = max(counts.values())
        return min(name for name, n in counts.items() if n == top)

    def ranked_speed(self, result: dict) -> float | None:
        """The row's clips/s when it ran on the reference device class, else None (its
        figure is shown but not ranked with the others)."""
        rate = speed_at(result["timing"])
        return rate if device_label(result["timing"]) == self.reference_device else None

    @property
    def one_seed_trained(self) -> bool:
        """Whether any row is a one-seed run of a seed-dependent (torch) method."""
        return any(one_seed_of_trained(r.result) for r in self.rows)


def device_label(timing: dict) -> str:
    """``CPU · 2 threads`` or ``GPU: <name>`` (``timing.device_class``; results written
    before it was recorded: built the same way from their device and thread count)."""
    known = timing.get("device_class")
    if known:
        return str(known)
    device, threads = str(timing.get("device", "")), timing.get("threads")
    if device.startswith("cuda"):
        return f"GPU: {device}"
    if not isinstance(threads, int):
        return device.upper() or "?"
    return f"CPU · {threads} thread" + ("s" if threads != 1 else "")


def one_seed_of_trained(result: dict) -> bool:
    """A one-seed row of a method whose training depends on its seed (a torch adapter):
    its interval holds no training randomness."""
    if len(result["seeds"]) > 1:
        return False
    from mer_bench.errors import MerBenchError
    from mer_bench.methods import get_method_class
    try:
        return get_method_class(result["method"]["name"]).uses_torch
    except MerBenchError:
        return True


def _same_run(result: dict) -> str:
    """What makes two results the same row: method, config, preset, protocol, dataset,
    scheme, corruption and the distinct per-seed predictions (clip, predicted class) —
    so a seed-independent method's run on seeds 0,1,2 (three copies of one prediction
    set) is the same row as its run on seed 0."""
    per_seed: dict[int, list] = {}
    for p in result["predictions"]:
        per_seed.setdefault(p["seed"], []).append((p["sample_id"], p["y_pred"]))
    distinct = sorted({tuple(sorted(pairs)) for pairs in per_seed.values()})
    return json.dumps([result["method"]["name"], result["method"].get("config"),
                       result["method"].get("preset"), result["protocol"],
                       result.get("dataset"), result["label_scheme"]["name"],
                       result.get("corruption"), distinct], sort_keys=True, default=str)


def collapse_identical(items: list[tuple[Path, dict]]) -> list[Row]:
    """``items`` as rows, best UF1 first, a result whose predictions repeat another's
    (``_same_run``) folded into that row's ``copies``; the row is the result of the most
    seeds (then the first file by path)."""
    rows: dict[str, Row] = {}
    for path, result in sorted(items, key=lambda pr: (-len(pr[1]["seeds"]), str(pr[0]))):
        key = _same_run(result)
        if key in rows:
            rows[key].copies.append(path)
        else:
            rows[key] = Row(path, result)
    return sorted(rows.values(), key=lambda r: (-r.result["metrics"][headline_key(r.result)],
                                                 str(r.path)))


def anchor(text: str, taken: set[str]) -> str:
    """An HTML id for a table titled ``text`` (``t-loso-synth-casme2-casme2-5-fast``),
    unique among ``taken`` (which it joins)."""
    base = "t-" + (re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "table")
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    taken.add(name)
    return name


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


def build_tables(results: list[tuple[Path, dict]], corrupted: bool | None = False
                 ) -> list[Table]:
    """Tables of ``results`` (clean test data only by default; ``corrupted=True``: the
    robustness track only; None: both), real data before synthetic, clean before
    corrupted, then by key; every table gets a unique ``anchor``."""
    groups: dict[tuple, list] = {}
    for path, result in results:
        if corrupted is None or bool(corruption_label(result)) == corrupted:
            groups.setdefault(table_key(result), []).append((path, result))
    tables = [Table(key, collapse_identical(items)) for key, items in groups.items()]
    tables.sort(key=lambda t: (t.synthetic, bool(t.key[4]), t.key))
    taken: set[str] = set()
    for table in tables:
        table.anchor = anchor(table.title, taken)
    return tables


def settings_label(result: dict) -> str:
    """The protocol's settings in words, for a table's header: few-shot N-way, K-shot,
    queries, episodes and held-out share; holdout's split and repeats; CDE's sources;
    other protocols' parameters as ``name=value``."""
    name, params = result["protocol"]["name"], result["protocol"]["params"]
    if name == "fewshot":
        n_way = params.get("n_way") or f"{len(result['label_scheme']['classes'])} (all classes)"
        return (f"{n_way}-way {params.get('k_shot')}-shot episodes, {params.get('q_query')} "
                f"queries per class, {params.get('episodes')} episodes per seed, on the "
                f"{float(params.get('test_fraction', 0)) * 100:g} % of subjects held out")
    if name == "holdout":
        train = float(params.get("train_fraction", 0.6))
        return (f"{params.get('repeats')} repeated subject splits, train:test "
                f"{train * 100:g}:{(1 - train) * 100:g} % of subjects")
    if name == "cde":
        return ("MEGC2019 composite: SMIC-HS + CASME II + SAMM in 3 classes, leave one "
                "subject out over all subjects; UF1/UAR overall and per source")
    shown = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return {"loso": "leave one subject out", "kfold5": "five subject-independent folds",
            "lodo": "leave one dataset out"}.get(name, name) + (f" ({shown})" if shown else "")


def cde_sources(result: dict) -> list[tuple[str, float | None, float | None]]:
    """(column title, UF1, UAR) per MEGC2019 source from the result's ``per_dataset``
    metrics (None where the source is missing)."""
    per = result["metrics"].get("per_dataset") or {}
    found = {}
    for name, figures in per.items():
        stem = str(name).removeprefix("synth-").split("-")[0]
        if isinstance(figures, dict):
            found[stem] = figures
    return [(title, found.get(stem, {}).get("uf1"), found.get(stem, {}).get("uar"))
            for stem, title in CDE_SOURCES]
