"""Label schemes: map a dataset's emotion strings to an ordered list of classes.

A scheme keeps the rows whose (normalized) emotion it maps and drops the rest (for
example ``casme2-5`` drops CASME II's fear and sadness clips). The class order is part
of the scheme and is written into every result file.

Which datasets a scheme fits is explicit: ``SCHEMES[name].datasets`` holds base dataset
names; a synthetic twin (``synth-casme2``) fits the schemes of its real dataset.

A scheme serves one task: ``emotion`` (one class per clip) or ``au`` (``AUScheme``:
action-unit detection, a 0/1 target per AU of a declared set, stored in ``label`` as
one integer whose bit k is AU k: ``mer_bench.data.facs.au_mask``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mer_bench.errors import MerBenchError

NEGATIVE_EMOTIONS = ("repression", "anger", "contempt", "disgust", "fear", "sadness")


@dataclass(frozen=True)
class LabelScheme:
    """An ordered set of classes and the emotion -> class mapping that feeds it."""

    name: str
    classes: tuple[str, ...]
    mapping: dict[str, str] = field(hash=False)
    datasets: tuple[str, ...]
    description: str = ""
    task = "emotion"

    def fits(self, dataset: str) -> bool:
        return base_dataset(dataset) in self.datasets

    def apply(self, samples: pd.DataFrame) -> pd.DataFrame:
        """Rows whose emotion this scheme maps, with ``label`` (class index) added.

        Returns a copy; input order is kept; dropped rows are those whose emotion the
        scheme does not map (documented per scheme).
        """
        mapped = samples["emotion"].map(self.mapping)
        kept = samples.loc[mapped.notna()].copy()
        index = {c: i for i, c in enumerate(self.classes)}
        kept["label"] = mapped[mapped.notna()].map(index).astype(np.int64)
        return kept.reset_index(drop=True)


@dataclass(frozen=True)
class AUScheme(LabelScheme):
    """AU detection over ``aus`` (FACS numbers): ``classes`` are their names ("AU1", ...),
    every clip is kept (one whose cell codes none of them has no target set, as MEB's
    CD6ME keeps it) and ``label`` holds its targets as a bit mask (bit k: AU
    ``aus[k]``). Side, intensity and alternatives are read as ``facs.au_vector``."""

    aus: tuple[int, ...] = ()
    task = "au"

    def apply(self, samples: pd.DataFrame) -> pd.DataFrame:
        from mer_bench.data.facs import au_mask
        masks = []
        for sample_id, cell in zip(samples["sample_id"], samples["aus"]):
            try:
                masks.append(au_mask("" if pd.isna(cell) else str(cell), self.aus))
            except MerBenchError as err:
                raise MerBenchError(f"scheme {self.name!r}: clip {sample_id}: {err}") from None
        kept = samples.copy()
        kept["label"] = np.asarray(masks, dtype=np.int64)
        return kept.reset_index(drop=True)


def au_scheme(name: str, aus: tuple[int, ...], datasets: tuple[str, ...], description: str
              ) -> AUScheme:
    return AUScheme(name, tuple(f"AU{a}" for a in aus), {}, datasets, description, aus=aus)


AU_DATASETS = ("casme", "casme2", "samm", "mmew", "casme3a", "4dme", "cd6me")
"""Base datasets whose sheets code AUs per clip (SMIC's do not)."""


def base_dataset(dataset: str) -> str:
    """``synth-casme2`` -> ``casme2``; ``synth-smic`` -> ``smic-hs``; real names unchanged."""
    if dataset.startswith(("folder:", "folder-cropped:")):
        return "folder"
    if dataset.startswith("synth-"):
        name = dataset[len("synth-"):]
        return {"smic": "smic-hs", "megc2019": "megc2019"}.get(name, name)
    return dataset


def _identity(*classes: str) -> dict[str, str]:
    return {c: c for c in classes}


def _megc2019_mapping() -> dict[str, str]:
    mapping = {e: "negative" for e in NEGATIVE_EMOTIONS}
    mapping.update({"happiness": "positive", "surprise": "surprise",
                    # SMIC's own labels are already the three MEGC classes
                    "negative": "negative", "positive": "positive"})
    return mapping


SCHEMES: dict[str, LabelScheme] = {
    s.name: s
    for s in [
        LabelScheme("casme2-5", ("happiness", "disgust", "repression", "surprise", "others"),
                    _identity("happiness", "disgust", "repression", "surprise", "others"),
                    ("casme2",), "CASME II five classes; fear and sadness dropped (246 clips)"),
        LabelScheme("casme2-5s", ("happiness", "disgust", "repression", "surprise", "sadness"),
                    _identity("happiness", "disgust", "repression", "surprise", "sadness"),
                    ("casme2",), "the attribute paper's CASME II five classes; others and fear "
                    "dropped, sadness kept although only 7 clips from 4 subjects have it (154 "
                    "clips)"),
        LabelScheme("casme2-4", ("happiness", "disgust", "surprise", "repression"),
                    _identity("happiness", "disgust", "surprise", "repression"),
                    ("casme2",), "MCNet's CASME II four classes (147 clips)"),
        LabelScheme("samm-5", ("happiness", "anger", "contempt", "surprise", "other"),
                    _identity("happiness", "anger", "contempt", "surprise", "other"),
                    ("samm",), "MA2MI's SAMM five classes (136 clips)"),
        LabelScheme("smic-3", ("negative", "positive", "surprise"),
                    _identity("negative", "positive", "surprise"),
                    ("smic-hs", "smic-vis", "smic-nir"), "SMIC's three classes"),
        LabelScheme("mmew-6", ("happiness", "surprise", "disgust", "fear", "sadness", "anger"),
                    _identity("happiness", "surprise", "disgust", "fear", "sadness", "anger"),
                    ("mmew",), "MMEW six classes (234 clips)"),
        LabelScheme("casme-4", ("disgust", "surprise", "repression", "tense"),
                    _identity("disgust", "surprise", "repression", "tense"),
                    ("casme",), "MCNet's CASME four classes"),
        LabelScheme("megc2019", ("negative", "positive", "surprise"), _megc2019_mapping(),
                    ("megc2019", "casme2", "samm", "smic-hs", "casme-sq", "megc2019-casme3a"),
                    "MEGC2019 composite classes; 'others' dropped"),
        LabelScheme("ckplus-7", ("anger", "contempt", "disgust", "fear", "happiness", "sadness",
                                 "surprise"),
                    _identity("anger", "contempt", "disgust", "fear", "happiness", "sadness",
                              "surprise"),
                    ("ckplus",), "CK+ seven labelled emotions (neutral dropped)"),
        LabelScheme("casme3a-7", ("happiness", "disgust", "fear", "anger", "sadness", "surprise",
                                  "others"),
                    _identity("happiness", "disgust", "fear", "anger", "sadness", "surprise",
                              "others"),
                    ("casme3a",), "CAS(ME)^3-A seven classes (the CAS(ME)^3 paper's 7-class "
                    "baseline)"),
        LabelScheme("casme3a-4", ("negative", "positive", "surprise", "others"),
                    {**_megc2019_mapping(), "others": "others"},
                    ("casme3a",), "CAS(ME)^3-A four classes: negative (disgust, fear, anger, "
                    "sadness), positive (happiness), surprise, others (the paper's 4-class "
                    "baseline)"),
        LabelScheme("casme3a-3", ("negative", "positive", "surprise"), _megc2019_mapping(),
                    ("casme3a",), "CAS(ME)^3-A three classes as MEGC2019's; others dropped (the "
                    "paper's 3-class baseline)"),
        LabelScheme("4dme-5", ("negative", "positive", "surprise", "repression", "others"),
                    _identity("negative", "positive", "surprise", "repression", "others"),
                    ("4dme",), "4DME's five classes (the sheet's emotion columns as MEB lists "
                    "them; spellings of the Emotion cells not checked against a real copy)"),
        au_scheme("au12", (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17), AU_DATASETS,
                  "the 12 AUs of MEB's CD6ME protocol (AU detection, every clip kept)"),
        LabelScheme("unlabelled", ("unlabelled",), _identity("unlabelled"), ("folder",),
                    "unlabelled macro-expression videos (folder:PATH), for pre-training"),
    ]
}

DEFAULT_SCHEME = {
    "casme2": "casme2-5", "samm": "samm-5", "smic-hs": "smic-3", "smic-vis": "smic-3",
    "smic-nir": "smic-3", "mmew": "mmew-6", "casme": "casme-4", "ckplus": "ckplus-7",
    "megc2019": "megc2019", "casme-sq": "megc2019", "folder": "unlabelled",
    "casme3a": "casme3a-7", "4dme": "4dme-5", "cd6me": "au12", "megc2019-casme3a": "megc2019",
}
DEFAULT_AU_SCHEME = "au12"


def get_scheme(name: str | None, dataset: str, task: str | None = None) -> LabelScheme:
    """The scheme called ``name`` (when None: the dataset's default for ``task``, its
    emotion scheme unless ``task="au"``), checked to fit ``dataset`` and, when ``task``
    is given, to serve that task."""
    if name is None and task == "au":
        name = DEFAULT_AU_SCHEME
    if name is None:
        name = DEFAULT_SCHEME.get(base_dataset(dataset))
        if name is None:
            raise MerBenchError(f"dataset {dataset!r} has no default label scheme; pass --scheme")
    if name not in SCHEMES:
        raise MerBenchError(f"unknown label scheme {name!r}; choose from {', '.join(SCHEMES)}")
    scheme = SCHEMES[name]
    if not scheme.fits(dataset):
        valid = [s.name for s in SCHEMES.values() if s.fits(dataset)]
        raise MerBenchError(f"label scheme {name!r} does not fit dataset {dataset!r}; "
                            f"schemes for it: {', '.join(valid) or 'none'}")
    if task is not None and scheme.task != task:
        valid = [s.name for s in SCHEMES.values() if s.fits(dataset) and s.task == task]
        raise MerBenchError(f"label scheme {name!r} is for the {scheme.task} task, not {task!r}; "
                            f"{task} schemes for {dataset!r}: {', '.join(valid) or 'none'}")
    return scheme
