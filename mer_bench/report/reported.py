"""Numbers the papers report, kept as data so the leaderboard can show them beside
reproduced results. They are the authors' real-data numbers under their own protocol
details and are never mixed into the verified tables."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReportedResult:
    """One number from a paper. Accuracy and F1 as fractions; ``f1_kind`` says what
    the paper's F1 is (``uf1`` when it is the unweighted mean over classes)."""

    method: str
    dataset: str
    scheme: str
    protocol: str
    accuracy: float | None
    f1: float | None
    uar: float | None = None
    f1_kind: str = "F1 as reported"
    source: str = ""
