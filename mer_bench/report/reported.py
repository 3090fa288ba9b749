"""Numbers the papers report, kept as data so the leaderboard can show them beside
reproduced results. They are the authors' real-data numbers under their own protocol
details: each is keyed by (protocol, dataset, scheme) exactly as a run on the real
dataset would be (``loso`` · ``casme2`` · ``casme2-4``), so the leaderboard shows it in
the same table as a reproduced real-data row, marked as reported, with the gap. They
are never verified and never shown beside synthetic results. ``REPORTED`` is the table
of every reference adapter's paper; it lives here, not on the adapters, so that building
a leaderboard imports no adapter (and no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    per_dataset: dict[str, tuple[float, float]] | None = field(default=None, compare=False)
    """UF1 and UAR per source dataset of a composite evaluation (``cde``), by dataset."""
    f1_meb: float | None = None
    """AU task: MEB's two-class F1 (``f1`` is then the mean AU F1, ``f1_kind`` ``au_f1``)."""
    paper: str = ""
    """The ``PAPER_URLS`` key of the source when it is not the method's own paper."""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.protocol, self.dataset, self.scheme)

    @property
    def f1_name(self) -> str:
        """The paper's own name for its F1 figure: ``UF1`` only when it is one."""
        return {"uf1": "UF1", "au_f1": "mean AU F1"}.get(self.f1_kind, "F1 (paper's)")

    @property
    def paper_url(self) -> str:
        """The paper's DOI or arXiv page (``PAPER_URLS``, by the paper that reports the
        row: the MEGC2019 baselines are STSTNet's table)."""
        paper = self.paper or ("ststnet" if self.source.startswith(_STSTNET) else self.method)
        return PAPER_URLS[paper]

    @property
    def citation(self) -> tuple[str, str]:
        """(the paper and its table, the rest of ``source``): ``source`` split at its
        first ``": "``, so a link's text stays short."""
        head, _, rest = self.source.partition(": ")
        return head, rest

    def figures(self) -> list[tuple[str, float]]:
        """(the paper's metric name, value) for every number the paper gives."""
        named = [(self.f1_name, self.f1), ("MEB F1 (two-class)", self.f1_meb), ("UAR", self.uar),
                 ("accuracy", self.accuracy)]
        return [(name, value) for name, value in named if value is not None]


PAPER_URLS = {
    "mcnet": "https://doi.org/10.1117/1.JEI.33.2.023014",
    "lightmannet": "https://arxiv.org/abs/2404.12024",
    "mpfnet-p": "https://arxiv.org/abs/2506.09735",
    "mpfnet-c": "https://arxiv.org/abs/2506.09735",
    "attr-contrast": "https://arxiv.org/abs/2205.14643",
    "ma2mi": "https://arxiv.org/abs/2405.16451",
    "ststnet": "https://arxiv.org/abs/1902.03634",
    "meb": "https://github.com/tvaranka/meb",
}
"""Each reference paper's DOI (MCNet, from its accepted version) or arXiv abstract page,
by method name; the MEGC2019 baselines' numbers are STSTNet's Table III."""

_LIGHTMANNET = "LightmanNet paper"
_MPFNET = "MPFNet paper"
_ATTR = "attribute-embedding paper, Table III (accuracy, mean ± std over 5 3:2 splits)"
_MA2MI = "MA2MI paper"
_STSTNET = ("STSTNet paper (Liong et al., FG 2019), Table III: MEGC2019 composite, LOSO over "
            "68 subjects; its rows 1, 2 and 7 are the MEGC2019 baselines")


_MEB = ("MEB repository (Varanka et al., 'Data Leakage and Evaluation Issues in "
        "Micro-Expression Analysis'): CD6ME, mean of 5 seeds, printed by notebook ")


def _cd6me(method: str, notebook: str, au_f1: float, au_f1_meb: float) -> ReportedResult:
    """An ``au-lodo · cd6me · au12`` row of MEB: mean over held-out datasets of the mean
    AU F1 (binary) and of MEB's two-class F1."""
    return ReportedResult(method, "cd6me", "au12", "au-lodo", None, au_f1, None, "au_f1",
                          f"{_MEB}{notebook}", f1_meb=au_f1_meb, paper="meb")


def _megc(method: str, accuracy: float | None, uf1: float, uar: float,
          smic: tuple[float, float], casme2: tuple[float, float], samm: tuple[float, float]
          ) -> ReportedResult:
    """A MEGC2019 composite (``cde · megc2019``) row with its per-source UF1/UAR."""
    return ReportedResult(method, "megc2019", "megc2019", "cde", accuracy, uf1, uar, "uf1", _STSTNET,
                          {"smic-hs": smic, "casme2": casme2, "samm": samm})


REPORTED: tuple[ReportedResult, ...] = (
    ReportedResult("mcnet", "smic-hs", "smic-3", "loso", 0.6563, 0.65, source="MCNet paper, Table 1"),
    ReportedResult("mcnet", "casme", "casme-4", "loso", 0.7027, 0.70, source="MCNet paper, Table 2"),
    ReportedResult("mcnet", "casme2", "casme2-4", "loso", 0.8163, 0.81, source="MCNet paper, Table 3"),
    ReportedResult("lightmannet", "megc2019", "megc2019", "cde", 0.9110, 0.9201, 0.8887,
                   source=f"{_LIGHTMANNET}, Table 3 (full model on CDE)"),
    ReportedResult("lightmannet", "smic-hs", "smic-3", "fewshot", 0.8519, 0.8383,
                   source=f"{_LIGHTMANNET}, Tables 1-2 (few-shot; N, K per dataset not stated)"),
    ReportedResult("lightmannet", "casme2", "casme2-5", "fewshot", 0.9348, 0.9049,
                   source=f"{_LIGHTMANNET}, Tables 1-2 (few-shot; N, K per dataset not stated)"),
    ReportedResult("lightmannet", "samm", "samm-5", "fewshot", 0.8183, 0.8293,
                   source=f"{_LIGHTMANNET}, Tables 1-2 (few-shot; N, K and SAMM classes not stated)"),
    ReportedResult("lightmannet", "casme", "casme-4", "fewshot", 0.8783, 0.8978,
                   source=f"{_LIGHTMANNET}, Tables 1-2 (few-shot; N, K and CASME classes not stated)"),
    ReportedResult("mpfnet-p", "smic-hs", "smic-3", "loso", 0.787, 0.787, source=f"{_MPFNET}, Table II"),
    ReportedResult("mpfnet-p", "casme2", "casme2-5", "loso", 0.82, 0.819, source=f"{_MPFNET}, Table II"),
    ReportedResult("mpfnet-p", "samm", "samm-5", "loso", 0.704, 0.695,
                   source=f"{_MPFNET}, Table II (five SAMM classes, not listed; samm-5 assumed)"),
    ReportedResult("mpfnet-p", "megc2019", "megc2019", "cde", None, 0.811, 0.82, "uf1",
                   f"{_MPFNET}, Table III"),
    ReportedResult("mpfnet-c", "smic-hs", "smic-3", "loso", 0.811, 0.811, source=f"{_MPFNET}, Table II"),
    ReportedResult("mpfnet-c", "casme2", "casme2-5", "loso", 0.831, 0.833, source=f"{_MPFNET}, Table II"),
    ReportedResult("mpfnet-c", "samm", "samm-5", "loso", 0.719, 0.718,
                   source=f"{_MPFNET}, Table II (five SAMM classes, not listed; samm-5 assumed)"),
    ReportedResult("mpfnet-c", "megc2019", "megc2019", "cde", None, 0.84, 0.846, "uf1",
                   f"{_MPFNET}, Table III"),
    ReportedResult("attr-contrast", "casme2", "casme2-5s", "holdout", 0.7782, None,
                   source=f"{_ATTR}: 77.82 ± 3.65"),
    ReportedResult("attr-contrast", "mmew", "mmew-6", "holdout", 0.7104, None,
                   source=f"{_ATTR}: 71.04 ± 4.21"),
    ReportedResult("ma2mi", "casme2", "casme2-5", "loso", 0.8916, 0.8882, f1_kind="uf1",
                   source=f"{_MA2MI}, Table 5a"),
    ReportedResult("ma2mi", "samm", "samm-5", "loso", 0.8382, 0.7893, f1_kind="uf1",
                   source=f"{_MA2MI}, Table 5b"),
    ReportedResult("ma2mi", "mmew", "mmew-6", "kfold5", 0.7521, None,
                   source=f"{_MA2MI}, Table 6 (accuracy only)"),
    _megc("lbp-top", None, 0.5882, 0.5785, (0.2000, 0.5280), (0.7026, 0.7429), (0.3954, 0.4102)),
    _megc("bi-woof", 0.6833, 0.6296, 0.6227, (0.5727, 0.5829), (0.7805, 0.8026), (0.5211, 0.5139)),
    _megc("off-apexnet", 0.7460, 0.7196, 0.7096, (0.6817, 0.6695), (0.8764, 0.8681),
          (0.5409, 0.5392)),
    _megc("ststnet", 0.7692, 0.7353, 0.7605, (0.6801, 0.7013), (0.8382, 0.8686), (0.6588, 0.6810)),
    _cd6me("majority", "'Constant, LBPTOP, MDMO and OF + SVM' (Constant: every AU present)",
           0.178, 0.089),
    _cd6me("OF + RBF SVM", "'Constant, LBPTOP, MDMO and OF + SVM' (SVC C=28 on 32 x 32 flow; "
           "not flow-svm)", 0.349, 0.651),
    _cd6me("MDMO + RBF SVM", "'Constant, LBPTOP, MDMO and OF + SVM'", 0.270, 0.606),
    _cd6me("lbp-top", "'Constant, LBPTOP, MDMO and OF + SVM' (polynomial-kernel SVC)", 0.137,
           0.550),
    _cd6me("off-apexnet", "'Optical flow networks' (3,000 epochs, Adam 1e-4)", 0.370, 0.663),
    _cd6me("ststnet", "'Optical flow networks' (500 epochs, Adam 5e-5)", 0.310, 0.632),
)
"""Every reference adapter's reported numbers (a new adapter's paper numbers go here:
the leaderboard reads this table without importing any adapter)."""


def reported_groups() -> list[tuple[str, list[ReportedResult], bool]]:
    """(title, entries, whether it is the composite table with per-source columns) of the
    board's reported tables: the MEGC2019 composite, every single-dataset setting, and
    MEB's AU protocol."""
    cde = [e for e in REPORTED if e.protocol == "cde"]
    au = [e for e in REPORTED if e.f1_kind == "au_f1"]
    other = sorted((e for e in REPORTED if e not in cde and e not in au),
                   key=lambda e: (e.key, e.method))
    return [("MEGC2019 composite (cde · megc2019)", cde, True),
            ("Single-dataset protocols", other, False),
            ("Action units, MEB's CD6ME (au-lodo · cd6me · au12)", au, False)]
