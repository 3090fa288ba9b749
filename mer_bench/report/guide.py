"""The words around the leaderboard's numbers, written once for both renderings (the
markdown and the site): what the three kinds of rows are, what a synthetic twin is and is
not, the legend of every mark and column, and how a row gets on the board.

Texts use two inline marks only, markdown's `code` and *emphasis*: the markdown shows
them as written; ``html`` escapes the text and turns them into ``<code>`` and ``<em>``.
"""

from __future__ import annotations

import html as _html
import re
from pathlib import Path

from mer_bench.timing import SPEED_BATCH

CONTRIBUTING = Path(__file__).resolve().parents[2] / "CONTRIBUTING.md"
"""The adapter contract in full, where this code runs from a source tree (an editable
install: the repository); the board links it, the site publishes a copy."""

INTRO = ("mer-bench evaluates facial micro-expression recognition methods under fixed "
         "protocols. Every *verified* row below was re-computed from its result file: its "
         "metrics from the stored per-sample predictions, its predictions checked against the "
         "dataset registry and the protocol's regenerated folds.")

KINDS = (
    ("verified-real", "Verified on real data",
     "results of runs on the real datasets (licensed per request, never shipped), "
     "re-computed here from their files."),
    ("reported", "Reported by papers",
     "numbers copied from the papers, under each paper's own metric name and protocol "
     "details, with a link to the paper; not reproduced or verified, never ranked against "
     "verified rows."),
    ("synthetic", "Synthetic twins",
     "verified runs on generated stand-ins for the datasets; they show that a method runs "
     "and learns, not how well it does on real faces."),
)
"""(anchor, title, what its rows are), in the order the board shows them."""

TWIN = ("A *synthetic twin* is generated data with a real dataset's subjects, class counts, "
        "label spellings and annotation quirks; its faces move by planted action-unit "
        "displacement fields of about 0.5–2 px. A twin checks that a method and the harness "
        "run end to end and that the method learns a planted signal. It is not the real "
        "dataset: a twin's numbers say nothing about accuracy on real faces and are never "
        "comparable with papers' numbers. The deep methods run shrunken `fast` recipes here "
        "(each table lists its recipe departures), so a synthetic table is not a ranking of "
        "the methods.")

LEGEND = (
    "*UF1*, *UAR*: unweighted F1 and unweighted average recall over classes, pooled over all "
    "test clips as in MEGC2019 (few-shot: mean over episodes).",
    "*Mean AU F1* (AU tables, `au-lodo` / `au-loso`): F1 of each action unit's presence, "
    "averaged over the 12 AUs per held-out dataset, then over datasets (MEB's CD6ME); *MEB F1 "
    "(two-class)*: the same with each AU's F1 averaged over present and absent, the figure of "
    "MEB's tables; the per-AU F1 row is on each result's page.",
    "*[lo, hi]*: 95 % interval, studentized bootstrap over subjects (one person is one "
    "cluster across seeds); measured coverage 0.91–0.99 on simulated data shaped like ours "
    "(`benchmarks/interval_coverage.py`). *too few subjects*: fewer than 5, no interval.",
    "*Seeds*: training seeds pooled in the row. A `*` marks a one-seed row of a trained "
    "method: its interval holds no training randomness.",
    "*vs best*: UF1 difference from the table's best row by the paired subject bootstrap "
    "(p from the same draws; `p<0.0005`: no draw of 2,000 reached it); *≈ best*: not "
    "significant at 5 %; *only row*: nothing to compare with.",
    f"*Clips/s*: inference throughput at batch {SPEED_BATCH} on the row's device class "
    "(GPU model, or CPU and thread count). Rows on another class than most of the table's "
    "are marked `†` and not ranked with them; — : measured before the throughput ladder.",
    "*stale*: the code that made the row is not the code that builds this page; `mer-bench "
    "reproduce RESULT.json` says whether its predictions still come out the same.",
    "*no learning shown*: the training accuracy stayed at the majority-class rate (and, where "
    "recorded, the training UAR at chance) or the main training loss did not fall; such a row "
    "is never *best*. *pre-training not effective at "
    "this budget*: the pre-trained model was not 5 % better than its controls.",
    "*(reported)*: a paper's own number, in its own metric, not verified here.",
)

SUBMIT = (
    ("Write an adapter",
     "One class behind the `fit`/`predict` contract; `CONTRIBUTING.md` shows the class, the "
     "presets and the rules."),
    ("Check it", "`mer-bench check-method path/to/my_adapter.py` runs the contract checks: "
     "sealed test sets, deterministic predictions, presets, diagnostics."),
    ("Run it", "`mer-bench run --method path/to/my_adapter.py --protocol loso --preset fast` "
     "(add `--data-root casme2=/data/CASME2` for a real dataset). The result file lands in "
     "`results/`, with every per-sample prediction."),
    ("Reproduce it", "`mer-bench reproduce results/<run id>.json` runs it again and says "
     "whether the predictions come out the same (`--portable` rows: identically on any x86 "
     "CPU)."),
    ("Open a pull request", "Package the adapter (a module under `methods/` or an entry point "
     "`mer_bench.methods`), put the result file under `leaderboard/results/`, run "
     "`mer-bench leaderboard build --site leaderboard/site`, and open a pull request with "
     "the adapter, the result file and the rebuilt board."),
)
"""(step, what to do): the way from an adapter to a verified row."""

VERIFIED = ("What the build verifies: the file's schema; every metric and interval "
            "re-computed from the per-sample predictions; the predictions against the dataset "
            "registry (clip ids, subjects, labels) and the protocol's regenerated folds; one "
            "content per run id. What it refuses: a file that fails any of these (named with "
            "its problem), a method name outside the safe alphabet, markup anywhere it would "
            "reach the page. Reported numbers are added by hand to "
            "`mer_bench/report/reported.py` with the paper's table and link.")


def html(text: str) -> str:
    """``text`` escaped for HTML, with `code` and *emphasis* as elements."""
    out = _html.escape(text, quote=True)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", out)
