"""Figures beside the leaderboard: UF1 against inference throughput per table, and per
result its confusion matrix and its learning curves (matplotlib, written as PNG; no
screen needed)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

from mer_bench.report.schema import headline_key
from mer_bench.timing import SPEED_BATCH, speed_at

PLOTS_DIR = "plots"


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def literal(text: object) -> str:
    """``text`` from a result file as matplotlib should draw it: every ``$`` escaped, so
    no part of it is parsed as mathtext (``$\\frac{a}{$`` is drawn as written, not a
    formula that fails to parse)."""
    return str(text).replace("$", r"\$")


def slug(text: str) -> str:
    """A file-name-safe form of ``text`` that no other text shares: a name of the run-id
    alphabet (``schema.NAME``) of at most 120 characters is its own slug; anything else
    is cleaned to letters, digits and ``._-``, cut to 100 characters and given ``~`` and
    the first 16 hex digits of its sha256 (``~`` is in no plain slug, and 64 bits of
    hash leave no collision to find), so two run ids that differ only by a character
    the cleaning drops never share a page or a figure."""
    from mer_bench.report.schema import NAME
    if len(text) <= 120 and NAME.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.-")[:100] + "~" + digest


def confusion_counts(result: dict) -> np.ndarray:
    """int (C, C) pooled confusion matrix, rows = true class, columns = predicted."""
    n = len(result["label_scheme"]["classes"])
    counts = np.zeros((n, n), dtype=np.int64)
    for p in result["predictions"]:
        counts[p["y_true"], p["y_pred"]] += 1
    return counts


def confusion_plot(result: dict, path: Path) -> Path:
    """Row-normalized confusion matrix of ``result`` with class names and counts."""
    plt = _pyplot()
    classes = result["label_scheme"]["classes"]
    counts = confusion_counts(result)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = 1.2 + 0.75 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{rates[i, j]:.2f}\n({counts[i, j]})", ha="center", va="center",
                    fontsize=8, color="white" if rates[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(classes)), [literal(c) for c in classes], rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), [literal(c) for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    m = result["metrics"]
    synthetic = " · synthetic" if result.get("synthetic") else ""
    ax.set_title(literal(f"{result['method']['name']} ({result['method'].get('preset', '')}) · "
                         f"{result['protocol']['name']} · {result.get('dataset', '')}{synthetic}")
                 + "\n"
                 f"UF1 {m['uf1']:.3f} · UAR {m['uar']:.3f} · accuracy {m['accuracy']:.3f}",
                 fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    return _save(fig, path)


def throughput_plot(items: list[tuple[str, dict]], title: str, path: Path) -> Path | None:
    """UF1 (AU tables: mean AU F1) with its interval against inference clips/s at
    ``SPEED_BATCH`` (log scale), one numbered point per (label, result), the labels in a legend below the axes (labels
    beside points overlap); results without that figure are left out, and with none left
    no figure is drawn (None)."""
    shown = [(label, result, speed_at(result["timing"])) for label, result in items
             if speed_at(result["timing"])]
    if not shown:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6 + 0.2 * len(shown)))
    key = headline_key(shown[0][1])
    for k, (label, result, rate) in enumerate(shown, 1):
        m = result["metrics"]
        below, above = _error(m[key], m["ci"][key])
        ax.errorbar([rate], [m[key]], yerr=[[below], [above]], fmt="o", capsize=3,
                    label=literal(f"{k}. {label}"))
        ax.annotate(str(k), (rate, m[key]), textcoords="offset points", xytext=(5, 3),
                    fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(literal(f"inference throughput, clips/s at batch {SPEED_BATCH} (log; "
                          f"{_devices(items)})"))
    ax.set_ylabel(("mean AU F1" if key == "au_f1" else "UF1") + " (95 % interval)")
    ax.set_title(literal(title), fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)
    return _save(fig, path)


def _error(value: float, bounds: list[float] | None) -> tuple[float, float]:
    """Error-bar lengths below and above ``value`` (none without an interval: too few
    subjects)."""
    return (0.0, 0.0) if bounds is None else (value - bounds[0], bounds[1] - value)


def robustness_plot(series: list[tuple[str, list[tuple[float, float, list[float]]]]],
                    path: Path) -> Path:
    """One figure for the robustness track: per (label, [(corrupted share, UF1, [lo, hi])])
    a line of UF1 with its interval against the share of corrupted test clips."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for label, points in series:
        shares = [p[0] for p in points]
        uf1 = [p[1] for p in points]
        errors = np.array([_error(p[1], p[2]) for p in points]).T
        ax.errorbar(shares, uf1, yerr=errors, marker="o", capsize=3, label=literal(label))
    ax.set_xlabel("share of test clips corrupted")
    ax.set_ylabel("UF1 (95 % interval)")
    ax.set_title("Robustness: UF1 against corrupted share", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def diagnostics_plot(result: dict, path: Path) -> Path | None:
    """The result's learning diagnostics (``diagnostics`` block): one panel per training
    stage with every fold's loss curve, titled with the stage's median start and end
    loss, and the fitted model's median training accuracy in the figure title. None when
    the result has no loss curve."""
    tasks = result.get("diagnostics", {}).get("per_task", [])
    stages = sorted({name for t in tasks for name, fig in t["stages"].items() if fig.get("loss")})
    if not stages:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(stages), figsize=(max(6.5, 4.2 * len(stages)), 3.8),
                             squeeze=False)
    summary = result["diagnostics"].get("summary", {})
    for ax, name in zip(axes[0], stages):
        for task in tasks:
            curve = task["stages"].get(name, {})
            if curve.get("loss"):
                steps = np.linspace(0, max(curve.get("steps", 1) - 1, 1), len(curve["loss"]))
                ax.plot(steps, curve["loss"], color="tab:blue", alpha=0.25, linewidth=0.8)
        figures = summary.get(name, {})
        ax.set_title(f"{literal(name)}\nloss {figures.get('loss_start', float('nan')):.3g} → "
                     f"{figures.get('loss_end', float('nan')):.3g} (median over folds)",
                     fontsize=8)
        ax.set_xlabel("epoch / step")
        ax.set_ylabel("training loss")
        ax.grid(True, alpha=0.3)
    accuracy = summary.get("fitted model", {}).get("train_accuracy")
    synthetic = " · synthetic" if result.get("synthetic") else ""
    fig.suptitle(literal(f"{result['method']['name']} ({result['method'].get('preset', '')}) · "
                         f"{result['protocol']['name']} · {result.get('dataset', '')}{synthetic}")
                 + ("" if accuracy is None else f"\nfitted model's training accuracy {accuracy:.3f}"
                                               " (median over folds)"),
                 fontsize=9)
    return _save(fig, path)


def _devices(items: list[tuple[str, dict]]) -> str:
    return ", ".join(sorted({str(r["timing"].get("device_class") or r["timing"].get("device", "?"))
                             for _, r in items})) or "?"


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path
