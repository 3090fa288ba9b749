"""The sample table: one row per clip, validated; and ``SampleSet``, what methods see.

Columns (DESIGN.md "Data model"): sample_id, dataset, subject, clip, emotion, aus, onset,
apex, offset, fps, n_frames, kind. ``apex`` is a nullable integer (``pd.NA`` where the
dataset has no apex annotation, e.g. SMIC). Frame indices are positions inside the
clip, 0-based: ``0 <= onset <= apex <= offset < n_frames``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from mer_bench.errors import MerBenchError

COLUMNS = ("sample_id", "dataset", "subject", "clip", "emotion", "aus", "onset", "apex",
           "offset", "fps", "n_frames", "kind")
HIDDEN_ON_TEST = ("emotion", "aus", "label", "clip", "onset", "apex", "offset", "n_frames")
"""Columns a test set does not show: the label, the annotations (action units, key
frames, duration) and the clip name, which carries the label in SMIC (``s1_ne_01``).
A test set's ``sample_id`` is replaced by an opaque row id and its rows are shuffled."""

KNOWN_EMOTIONS = frozenset({
    "happiness", "disgust", "repression", "surprise", "others", "other", "fear", "sadness",
    "anger", "contempt", "tense", "negative", "positive", "neutral",
    "unlabelled",  # macro-expression videos without labels (``folder:PATH``)
})


def normalize_emotion(raw: object) -> str:
    """Official label spellings -> lowercase names (``Happiness`` -> ``happiness``,
    CK+ ``happy`` -> ``happiness``, CAS(ME)^2 typo ``happyiness`` -> ``happiness``)."""
    text = str(raw).strip().lower()
    return {"happy": "happiness", "happyiness": "happiness", "sad": "sadness",
            "angry": "anger"}.get(text, text)


def validate_samples(table: pd.DataFrame, source: str = "sample table") -> pd.DataFrame:
    """Check a sample table and return it with canonical dtypes.

    Raises ``MerBenchError`` naming ``source`` and the offending rows for: missing
    columns, duplicate sample ids, unknown emotion strings, frame indices out of order
    (apex outside [onset, offset], offset past the clip end).
    """
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise MerBenchError(f"{source}: missing columns {missing}; expected {list(COLUMNS)}")
    table = table.copy()
    dup = table["sample_id"][table["sample_id"].duplicated()]
    if len(dup):
        raise MerBenchError(f"{source}: duplicate sample ids {sorted(set(dup))[:5]}")
    unknown = sorted(set(table["emotion"]) - KNOWN_EMOTIONS)
    if unknown:
        rows = table.index[table["emotion"].isin(unknown)].tolist()[:5]
        raise MerBenchError(f"{source}: unknown emotion strings {unknown} (rows {rows}); "
                            f"known: {sorted(KNOWN_EMOTIONS)}")
    for col in ("onset", "offset", "n_frames"):
        table[col] = table[col].astype(np.int64)
    table["apex"] = table["apex"].astype("Int64")
    apex = table["apex"]
    bad = table.index[(apex.notna() & ((apex < table["onset"]) | (apex > table["offset"])))
                      .fillna(False).to_numpy(bool)]
    if len(bad):
        ids = table.loc[bad, "sample_id"].tolist()[:5]
        raise MerBenchError(f"{source}: apex outside [onset, offset] for {ids}")
    bad = table.index[(table["onset"] < 0) | (table["offset"] < table["onset"])
                      | (table["offset"] >= table["n_frames"])]
    if len(bad):
        ids = table.loc[bad, "sample_id"].tolist()[:5]
        raise MerBenchError(f"{source}: frame range not inside the clip for {ids}")
    return table.reset_index(drop=True)


def key_frame(row: pd.Series) -> int:
    """The apex frame, or the middle of [onset, offset] where the apex is not annotated
    (what MCNet and most SMIC work do)."""
    if pd.isna(row["apex"]):
        return int((row["onset"] + row["offset"]) // 2)
    return int(row["apex"])


class LabelsHidden(PermissionError):
    """Raised when a method reads the labels of a test set."""


class SampleColumns:
    """A sample table held as one numpy array per column (strings and the nullable
    ``apex`` as object arrays) and its dtypes: gathering rows from it is a numpy take
    per column, microseconds where a pandas ``iloc`` + ``drop`` costs milliseconds (a
    LOSO run gathers two sets per fold); ``SampleSet.rows`` restores the dtypes."""

    def __init__(self, table: pd.DataFrame):
        self.arrays = {c: table[c].to_numpy() for c in table.columns}
        self.dtypes = dict(table.dtypes)

    def take(self, index: np.ndarray, hidden: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """Rows ``index`` (integer positions) of every column not in ``hidden``."""
        return {c: a[index] for c, a in self.arrays.items() if c not in hidden}


@dataclass(eq=False)
class SampleSet:
    """What a method sees: rows, their features, and (for train/support) labels.

    ``features`` is aligned with the method's ``inputs``: one array per ``FeatureSpec``,
    each of shape (n, ...) with float32 values. ``x`` is the first (or only) one.
    ``rows`` is the set's sample table (a DataFrame, index 0..n-1), built from the
    gathered columns on first use. A test set is built with ``hide_labels=True``: its
    rows lack the columns in ``HIDDEN_ON_TEST`` (they are never gathered into it) and
    reading ``labels`` raises ``LabelsHidden`` (and is recorded in ``label_reads``, so a
    contract check sees an access even if it was swallowed).

    ``task``: ``emotion`` (``labels`` are class indices into ``classes``) or ``au``
    (``classes`` are AU names; ``labels`` are bit masks, ``au_targets`` the 0/1 matrix).
    """

    _columns: dict[str, np.ndarray]
    features: tuple[np.ndarray, ...]
    classes: tuple[str, ...]
    _labels: np.ndarray | None = None
    label_reads: list[str] = field(default_factory=list)
    _dtypes: dict = field(default_factory=dict)
    task: str = "emotion"

    @classmethod
    def gather(cls, table: SampleColumns, index: np.ndarray, features: tuple[np.ndarray, ...],
               classes: tuple[str, ...], hide_labels: bool, task: str = "emotion") -> "SampleSet":
        """Rows ``index`` of ``table`` with the same rows of each of ``features`` (arrays
        aligned with the whole table): a labelled set, or with ``hide_labels`` a sealed
        one (see ``sealed``, which also shuffles; this keeps the order of ``index``)."""
        index = np.asarray(index, dtype=np.int64)
        features = tuple(f[index] for f in features)
        if hide_labels:
            columns = table.take(index, HIDDEN_ON_TEST)
            columns["sample_id"] = np.array([f"test-{k:05d}" for k in range(len(index))], object)
            labels = None
        else:
            columns = table.take(index)
            labels = np.asarray(columns["label"], dtype=np.int64)
        return cls(columns, features, classes, labels,
                   _dtypes={c: table.dtypes[c] for c in columns}, task=task)

    @classmethod
    def build(cls, rows: pd.DataFrame, features: tuple[np.ndarray, ...],
              classes: tuple[str, ...], hide_labels: bool, task: str = "emotion") -> "SampleSet":
        """``gather`` of every row of ``rows`` (``features`` aligned with it)."""
        return cls.gather(SampleColumns(rows), np.arange(len(rows)), features, classes,
                          hide_labels, task)

    @classmethod
    def sealed(cls, table: SampleColumns, index: np.ndarray, features: tuple[np.ndarray, ...],
               classes: tuple[str, ...], rng: np.random.Generator, task: str = "emotion"
               ) -> tuple["SampleSet", np.ndarray]:
        """A test set of rows ``index`` of ``table`` (``features`` aligned with the whole
        table) a method cannot read a label from: rows in a random order (tables are
        often sorted by clip name, which groups classes), opaque ids ``test-00000`` in
        that order, the ``HIDDEN_ON_TEST`` columns removed, labels unreadable.

        Returns the set and ``order`` (int64, (n,)): set row k is ``index[order[k]]``;
        ``unshuffle`` maps a prediction back to the order of ``index``."""
        index = np.asarray(index, dtype=np.int64)
        order = rng.permutation(len(index)).astype(np.int64)
        return cls.gather(table, index[order], features, classes, True, task), order

    def __len__(self) -> int:
        return len(self._columns["sample_id"])

    @cached_property
    def rows(self) -> pd.DataFrame:
        return pd.DataFrame(self._columns, index=pd.RangeIndex(len(self))).astype(self._dtypes)

    @property
    def x(self) -> np.ndarray:
        return self.features[0]

    @property
    def labels(self) -> np.ndarray:
        """Class indices, shape (n,), int64. Raises ``LabelsHidden`` on a test set."""
        if self._labels is None:
            self.label_reads.append("labels")
            raise LabelsHidden("labels of a test set are hidden from methods")
        return self._labels

    @property
    def au_targets(self) -> np.ndarray:
        """uint8 (n, n_classes) 0/1 AU targets of an ``au`` set (column k: ``classes[k]``);
        hidden on a test set like ``labels``."""
        if self.task != "au":
            raise ValueError(f"au_targets of a {self.task} set; its labels are class indices")
        from mer_bench.data.facs import mask_matrix
        return mask_matrix(self.labels, self.n_classes)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def subjects(self) -> np.ndarray:
        return np.asarray(self._columns["subject"])

    def subset(self, index: np.ndarray) -> "SampleSet":
        """Rows ``index`` (integer positions) with their features and labels."""
        index = np.asarray(index, dtype=np.int64)
        labels = None if self._labels is None else self._labels[index]
        return SampleSet({c: a[index] for c, a in self._columns.items()},
                         tuple(f[index] for f in self.features), self.classes, labels,
                         self.label_reads, self._dtypes, self.task)


def unshuffle(values: np.ndarray | None, order: np.ndarray) -> np.ndarray | None:
    """Rows of ``values`` (given in a sealed set's order) back in the input order."""
    if values is None:
        return None
    values = np.asarray(values)
    out = np.empty_like(values)
    out[order] = values
    return out
