"""Does a row show that its method learned? (``no_learning``)

A trained method's result carries diagnostics (``Method.diagnostics``, summarized over
folds): each training stage's loss at start and end, and the fitted model's accuracy on
its own training clips, asked like a test set. A row shows **no learning** when either

- its training accuracy (median over folds) is at or below the majority-class rate of
  its training clips (``majority_rate``), what always answering that class would
  score, and so is its training UAR (``train_uar``) against that answer's UAR
  (``chance_uar``, 1 / classes present) where the run recorded them: a method trained
  on class-balanced episodes or with a balanced loss trades plain accuracy on an
  imbalanced training set for the rare classes (LightmanNet on the composite: training
  accuracy 0.550 against a majority rate 0.565, training UAR well above chance, test
  UF1 0.495 against majority's 0.241); or
- its main training stage (the one with the most steps) ends with a loss no lower than
  it started; or
- (AU task) its mean AU F1 on its training clips (``train_au_f1``) is at or below that
  of answering every AU present (``constant_au_f1``, MEB's constant baseline).

Such a row is marked *no learning shown* on the markdown and the site, and is never a
table's best row (``table_best``). Methods that train no stage (descriptors with an
SVM, majority) are not judged: they have no loss to fall.

A pre-training stage that reports a conditioned reconstruction beside its controls
(MA2MI: the L1 of the next frame's latent with each pair's own motion code, with the
codes shuffled, and of copying the frame) must reach at least ``CONTROL_MARGIN`` below
both controls to count as reading the motion code; otherwise the row is marked
*pre-training not effective at this budget* (``ineffective_pretraining``) — it may
still learn in its fine-tuning, so it can be best.
"""

from __future__ import annotations

from collections import Counter
from functools import cache

NO_LEARNING = "no learning shown"
INEFFECTIVE = "pre-training not effective at this budget"
CONTROL_MARGIN = 0.05
"""How far below both controls a conditioned reconstruction must come (5 %)."""
CONTROLS = ("reconstruction_l1_own_condition", "reconstruction_l1_shuffled_condition",
            "reconstruction_l1_copy_baseline")


def no_learning(result: dict) -> str | None:
    """Why ``result`` (a verified result) shows no learning, or None."""
    summary = (result.get("diagnostics") or {}).get("summary") or {}
    stages = {name: figures for name, figures in summary.items()
              if isinstance(figures, dict) and figures.get("steps")}
    if not stages:
        return None
    reasons = []
    fitted = summary.get("fitted model") or {}
    accuracy, majority = fitted.get("train_accuracy"), majority_rate(result)
    uar, chance = fitted.get("train_uar"), fitted.get("chance_uar")
    balanced = uar is not None and chance is not None and uar > chance
    if accuracy is not None and majority is not None and accuracy <= majority and not balanced:
        reasons.append(f"training accuracy {accuracy:.3f} <= majority-class rate {majority:.3f}"
                       + ("" if uar is None or chance is None
                          else f", training UAR {uar:.3f} <= chance {chance:.3f}"))
    au_f1, constant = fitted.get("train_au_f1"), fitted.get("constant_au_f1")
    if au_f1 is not None and constant is not None and au_f1 <= constant:
        reasons.append(f"training AU F1 {au_f1:.3f} <= every-AU-present {constant:.3f}")
    name, main = max(stages.items(), key=lambda item: item[1]["steps"])
    start, end = main.get("loss_start"), main.get("loss_end")
    if main["steps"] >= 2 and start is not None and end is not None and end >= start:
        reasons.append(f"{name}: loss {start:.3g} -> {end:.3g}")
    return "; ".join(reasons) or None


def majority_rate(result: dict) -> float | None:
    """Share of the most frequent class among the training clips: as the run recorded it
    (``fitted model.majority_rate``, median over folds); for older results the share
    among the labelled test clips (pooled protocols and holdout test every clip alike)
    or, for few-shot (whose query sets are class-balanced), among the dataset's clips
    under the scheme (twins only; None for a real dataset)."""
    recorded = ((result.get("diagnostics") or {}).get("summary") or {}).get(
        "fitted model", {}).get("majority_rate")
    if recorded is not None:
        return recorded
    if result["protocol"]["name"] != "fewshot":
        labels = Counter(p["y_true"] for p in result.get("predictions", ()))
        total = sum(labels.values())
        return max(labels.values()) / total if total else None
    return _dataset_majority(result["dataset"], result["label_scheme"]["name"]) \
        if result.get("synthetic") else None


@cache
def _dataset_majority(dataset: str, scheme: str) -> float | None:
    from mer_bench.data.datasets import load_dataset
    from mer_bench.data.schemes import get_scheme
    labels = get_scheme(scheme, dataset).apply(load_dataset(dataset).samples)["label"]
    return float(labels.value_counts(normalize=True).max()) if len(labels) else None


def table_best(items: list[tuple[object, dict]]) -> dict | None:
    """The best row of a table sorted by its headline (UF1, mean AU F1): the first that
    does not show ``no_learning`` (None when every row does)."""
    return next((r for _, r in items if no_learning(r) is None), None)


def ineffective_pretraining(result: dict) -> str | None:
    """Why a pre-training stage did not read its condition (module docstring), or None."""
    summary = (result.get("diagnostics") or {}).get("summary") or {}
    for name, figures in summary.items():
        values = [figures.get(k) for k in CONTROLS] if isinstance(figures, dict) else [None]
        if all(isinstance(v, (int, float)) for v in values):
            own, shuffled, copy = values
            if own > (1 - CONTROL_MARGIN) * min(shuffled, copy):
                return (f"{name}: reconstruction with its own motion code {own:.4g}, shuffled "
                        f"{shuffled:.4g}, copy {copy:.4g} (not {CONTROL_MARGIN:.0%} below both)")
    return None
