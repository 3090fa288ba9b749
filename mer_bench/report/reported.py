"""Numbers the papers report, kept as data so the leaderboard can show them beside
reproduced results. They are the authors' real-data numbers under their own protocol
details: each is keyed by (protocol, dataset, scheme) exactly as a run on the real
dataset would be (``loso`` · ``casme2`` · ``casme2-4``), so the leaderboard shows it in
the same table as a reproduced real-data row, marked as reported, with the gap. They
are never verified and never shown beside synthetic results."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReportedResult:
    """One number from a paper. Accuracy and F1 as fractions; ``f1_kind`` says what
    the paper's F1 is (``uf1`` when it is the unweighted mean over classes, as in
    MEGC2019; otherwise the paper's "F1", usually the macro F1 of a single-database
    run). ``protocol`` is a protocol name with its default parameters, or a label as
    ``protocol_label`` writes it (``fewshot (k_shot=1, n_way=5)``)."""

    method: str
    dataset: str
    scheme: str
    protocol: str
    accuracy: float | None
    f1: float | None
    uar: float | None = None
    f1_kind: str = "F1 as reported"
    source: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.protocol, self.dataset, self.scheme)
