"""Synthetic twins of the real MER datasets (the embedded default; results are synthetic).

Each twin has its real dataset's subjects and subject x emotion counts
(``data/subject_class_counts.csv`` for CASME II, SAMM, SMIC-HS and MMEW; the totals of
datasets.md for CASME and CK+, and estimated splits of MEB's clip totals for CAS(ME)^3-A
and 4DME, spread over subjects by a fixed seeded draw), label
strings, apex availability (none for SMIC) and clip naming. Clips that are in the
official MEGC2019 list carry its clip ids, so ``synth-megc2019`` selects exactly the
official 442 rows; the CASME II quirks sub04/EP12_01f (apex missing) and sub05/EP09_05f
(apex == onset) are reproduced.

Time: twins are sampled at half the real frame rate (``TIME_SCALE``), so a CASME II clip
of 61 frames at 200 fps becomes 30 frames at 100 fps; lengths are drawn log-normally
around the real median within the real range. Real ranges are from datasets.md for
CASME II and estimates elsewhere (marked below).

Expressions: each emotion has FACS-style AU variants (``EMOTION_AUS``); each subject
prefers some variants (Dirichlet weights) and has its own amplitude scale; 20 % of AUs are
unilateral; a quarter of the emotion-labelled clips move like an 'others' clip
(``AMBIGUOUS_SHARE``: label noise). Micro amplitude is 0.5-2 px at 128 px; macro (CK+) 4-10 px. Nuisances: a
blink in 30 % of clips at a random time, slow head drift, illumination jitter, noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from mer_bench.data.composite import official_key, official_list, select_official
from mer_bench.data.registry import CompositeDataset, Dataset, register_dataset
from mer_bench.data.samples import validate_samples
from mer_bench.data.schemes import SCHEMES
from mer_bench.data.synthetic.render import (
    ClipMotion,
    FaceGeometry,
    make_geometry,
    render_clip_frames,
)
from mer_bench.seeding import stable_seed

GENERATOR_VERSION = "2"
TIME_SCALE = 0.5

EMOTION_AUS: dict[str, list[str]] = {
    "happiness": ["6+12", "12", "12+25"],
    "positive": ["6+12", "12", "12+25"],
    "disgust": ["4+9", "9+10", "4+7", "10"],
    "repression": ["14", "15", "17", "24", "15+17"],
    "surprise": ["1+2", "1+2+5", "1+2+26", "1+2+25"],
    "fear": ["1+2+4+5+20", "1+4+20", "20"],
    "sadness": ["1+4+15", "15+17", "1+4"],
    "anger": ["4+5+7+23", "4+7", "23+24", "4"],
    "contempt": ["R12+R14", "L14", "R14"],
    "tense": ["4+7", "24", "23", "14"],
    "negative": ["4+9", "9+10", "14", "15+17", "1+4+15", "4+7", "24"],
    "neutral": [""],
}
OTHERS_POOL = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24, 25)
"""AUs an 'others' clip draws 1-2 of: they overlap every class on purpose."""
AMBIGUOUS_SHARE = 0.25
"""Share of emotion-labelled clips whose movement does not follow the label's AUs (drawn
like an 'others' clip): the label noise and idiosyncratic movement of real sets. Without
it the 3-class MEGC2019 twin is nearly separable (flow-svm UF1 0.98)."""


@dataclass(frozen=True)
class TwinSpec:
    """What a twin copies from its real dataset. ``length`` = (min, median, max) real
    frames; ``estimated`` marks lengths not read from the official files."""

    name: str
    real: str
    fps: float
    length: tuple[int, int, int]
    kind: str = "micro"
    has_apex: bool = True
    estimated: bool = True


SPECS = {s.name: s for s in [
    TwinSpec("synth-casme2", "casme2", 200, (24, 61, 141), estimated=False),
    TwinSpec("synth-samm", "samm", 200, (30, 70, 120)),
    TwinSpec("synth-smic", "smic-hs", 100, (11, 34, 58), has_apex=False),
    TwinSpec("synth-mmew", "mmew", 90, (20, 40, 80)),
    TwinSpec("synth-casme", "casme", 60, (10, 20, 40)),
    TwinSpec("synth-ckplus", "ckplus", 30, (10, 18, 60), kind="macro"),
    TwinSpec("synth-casme3a", "casme3a", 30, (10, 14, 16)),
    TwinSpec("synth-4dme", "4dme", 60, (12, 26, 34)),
]}

# Totals of datasets.md for the twins without per-subject counts.
CASME_COUNTS = {"tense": 69, "disgust": 44, "repression": 38, "surprise": 20, "happiness": 9,
                "sadness": 6, "fear": 2, "contempt": 1}
CKPLUS_COUNTS = {"anger": 45, "contempt": 18, "disgust": 59, "fear": 25, "happiness": 69,
                 "sadness": 28, "surprise": 83}
CASME3A_COUNTS = {"disgust": 250, "surprise": 201, "others": 161, "fear": 86, "anger": 64,
                  "sadness": 57, "happiness": 41}
"""CAS(ME)^3-A: 860 clips, the total of MEB's cross-dataset table (AU instances / mean
AUs per clip); the split over emotions and the 100 subjects ``spNO.N`` are estimates
(the label sheet could not be read offline)."""
FOURD_COUNTS = {"negative": 99, "others": 74, "surprise": 39, "positive": 34, "repression": 21}
"""4DME: 267 clips (MEB's table, as above); the split over its five classes and the 41
subjects ``S01``... are estimates."""
CDE_DROPPED = {("casme2", "sub04"): ("EP12_01f", "missing-apex"),
               ("casme2", "sub05"): ("EP09_05f", "apex-at-onset")}
"""CASME II clips absent from the official MEGC2019 list, with their annotation quirk."""


def subject_counts(real: str) -> pd.DataFrame:
    """(subject, emotion, n_clips) rows for ``real`` from the shipped counts file,
    subjects spelled as in the dataset's folders (SMIC unpadded)."""
    path = resources.files("mer_bench.data") / "subject_class_counts.csv"
    with resources.as_file(path) as p:
        table = pd.read_csv(p, dtype={"subject": str})
    table = table[table["dataset"] == real].copy()
    if real == "smic-hs":
        table["subject"] = table["subject"].str.replace(r"^s0*", "s", regex=True)
    return table[["subject", "emotion", "n_clips"]].reset_index(drop=True)


def spread_counts(totals: dict[str, int], subjects: list[str], seed: list[int],
                  concentration: float) -> pd.DataFrame:
    """Deal ``totals`` clips over ``subjects``: one each first, the rest by Dirichlet
    weights (lower ``concentration`` = more uneven). Returns (subject, emotion, n_clips)."""
    rng = np.random.default_rng(seed)
    labels = np.array([e for e, n in totals.items() for _ in range(n)])
    rng.shuffle(labels)
    owner = np.empty(len(labels), dtype=np.int64)
    owner[:len(subjects)] = np.arange(len(subjects))
    weights = rng.dirichlet(np.full(len(subjects), concentration))
    owner[len(subjects):] = rng.choice(len(subjects), len(labels) - len(subjects), p=weights)
    table = pd.DataFrame({"subject": np.array(subjects)[owner], "emotion": labels})
    return (table.groupby(["subject", "emotion"]).size().rename("n_clips").reset_index())


def twin_counts(spec: TwinSpec) -> pd.DataFrame:
    if spec.real == "casme":
        return spread_counts(CASME_COUNTS, [f"sub{i:02d}" for i in range(1, 20)],
                             stable_seed("casme-counts"), 2.0)
    if spec.real == "ckplus":
        return spread_counts(CKPLUS_COUNTS, [f"S{i:03d}" for i in range(5, 5 + 118)],
                             stable_seed("ckplus-counts"), 20.0)
    if spec.real == "casme3a":
        return spread_counts(CASME3A_COUNTS, [f"spNO.{i}" for i in range(1, 101)],
                             stable_seed("casme3a-counts"), 2.0)
    if spec.real == "4dme":
        return spread_counts(FOURD_COUNTS, [f"S{i:02d}" for i in range(1, 42)],
                             stable_seed("4dme-counts"), 2.0)
    return subject_counts(spec.real)


class ClipNamer:
    """Clip ids for a twin: official MEGC2019 ids where the clip is in the list, else
    names in the dataset's own style that cannot collide with official ones."""

    def __init__(self, real: str):
        self.real = real
        self.official: dict[tuple[str, str], list[str]] = {}
        for r in official_list().itertuples():
            base, subject, clip = official_key(r.dataset, r.subject, r.clip)
            if base == real:
                self.official.setdefault((subject, r.label), []).append(clip)
        self.extra = 0
        self.used_dropped: set[str] = set()
        self.videos: dict[tuple[str, str], int] = {}

    def take(self, subject: str, emotion: str, index: int) -> str:
        label = SCHEMES["megc2019"].mapping.get(emotion)
        pool = self.official.get((official_key(self.real, subject, "")[1], label), [])
        if pool:
            return pool.pop(0)
        dropped = CDE_DROPPED.get((self.real, subject))
        if dropped and label == "negative" and subject not in self.used_dropped:
            self.used_dropped.add(subject)
            return dropped[0]
        self.extra += 1
        if self.real == "casme3a":
            return self._in_video(subject, "abcdefg"[self.extra % 7])
        return {
            "casme2": f"EP{40 + self.extra // 10:02d}_{self.extra % 10:02d}",
            "samm": f"{subject}_9_{self.extra}",
            "smic-hs": f"{subject}_{emotion[:3]}_9{self.extra:02d}",
            "mmew": f"{subject}-{index:02d}-{self.extra:03d}",
            "casme": f"EP{self.extra:02d}_{index}",
            "ckplus": f"{self.extra:03d}",
            "4dme": f"{subject}_{self.extra:03d}",
        }[self.real]

    def _in_video(self, subject: str, video: str) -> str:
        """CAS(ME)^3-A style: several clips of one stimulus video share its file name; the
        second and later are numbered as the loader numbers them (``a``, ``a2``, ...)."""
        n = self.videos[subject, video] = self.videos.get((subject, video), 0) + 1
        return video if n == 1 else f"{video}{n}"


class SyntheticDataset(Dataset):
    """A twin: sample table built from counts; frames rendered on demand.

    Rendering is deterministic from (twin name, ``data_seed``, clip); ``data_seed`` picks
    another draw of the same design (default 0, what the leaderboard uses).
    """

    synthetic = True

    def __init__(self, spec: TwinSpec, data_seed: int = 0):
        self.spec = spec
        self.name = spec.name
        self.data_seed = data_seed
        self.fingerprint = f"{spec.name}:gen{GENERATOR_VERSION}:seed{data_seed}"
        self.samples, self._motion = self._build()

    def _build(self) -> tuple[pd.DataFrame, dict[str, ClipMotion]]:
        spec, counts = self.spec, twin_counts(self.spec)
        namer = ClipNamer(spec.real)
        rows, motions = [], {}
        for subject, group in counts.groupby("subject", sort=True):
            prefs = self._subject_preferences(subject)
            for emotion, n in zip(group["emotion"], group["n_clips"]):
                for k in range(int(n)):
                    clip = namer.take(subject, emotion, k)
                    sid = f"{spec.name}/{subject}/{clip}"
                    rng = np.random.default_rng(stable_seed(spec.name, self.data_seed, sid))
                    motion = self._draw_motion(rng, emotion, prefs)
                    quirk = CDE_DROPPED.get((spec.real, subject))
                    apex = motion.apex if spec.has_apex else pd.NA
                    if quirk and clip == quirk[0]:
                        apex = pd.NA if quirk[1] == "missing-apex" else motion.onset
                        motion = ClipMotion(**{**motion.__dict__,
                                               "apex": motion.apex if apex is pd.NA else motion.onset})
                    motions[sid] = motion
                    rows.append(dict(sample_id=sid, dataset=spec.name,
                                     subject=f"{spec.name}/{subject}", clip=clip, emotion=emotion,
                                     aus=motion.aus, onset=motion.onset, apex=apex,
                                     offset=motion.offset, fps=spec.fps * TIME_SCALE,
                                     n_frames=motion.n_frames, kind=spec.kind))
        table = validate_samples(pd.DataFrame(rows), source=spec.name)
        return table, motions

    def _subject_preferences(self, subject: str) -> dict:
        rng = np.random.default_rng(stable_seed(self.spec.name, self.data_seed, subject, "prefs"))
        return {
            "variants": {e: rng.dirichlet(np.full(len(v), 0.7)) for e, v in EMOTION_AUS.items()},
            "others": rng.dirichlet(np.full(len(OTHERS_POOL), 0.7)),
            "scale": rng.uniform(0.75, 1.3),
        }

    def _draw_motion(self, rng: np.random.Generator, emotion: str, prefs: dict) -> ClipMotion:
        spec = self.spec
        lo, med, hi = spec.length
        n = int(np.clip(round(med * np.exp(rng.normal(0, 0.35))), lo, hi) * TIME_SCALE)
        n = max(n, 5)
        if emotion in ("others", "other") or rng.random() < AMBIGUOUS_SHARE:
            k = rng.integers(1, 3)
            aus = sorted(rng.choice(OTHERS_POOL, size=k, replace=False, p=prefs["others"]))
            aus_text = "+".join(str(a) for a in aus)
        else:
            variants = EMOTION_AUS[emotion]
            aus_text = variants[rng.choice(len(variants), p=prefs["variants"][emotion])]
        aus_text = "+".join(("LR"[rng.integers(2)] + a if rng.random() < 0.2 and a[0] not in "LR"
                             else a) for a in aus_text.split("+") if a)
        if spec.kind == "macro":
            onset, apex, offset = 0, n - 1, n - 1
            amplitude = rng.uniform(4.0, 10.0)
            head = tuple(rng.normal(0, 1.0, 4))
        else:
            onset = int(rng.uniform(0.03, 0.2) * n)
            offset = min(n - 1, int(np.ceil(rng.uniform(0.8, 0.98) * n)))
            apex = onset + max(1, int(round(rng.uniform(0.35, 0.65) * (offset - onset))))
            amplitude = float(np.clip(rng.uniform(0.5, 2.0) * prefs["scale"], 0.4, 2.5))
            start = rng.normal(0, 0.3, 2)
            head = (*start, *(start + rng.normal(0, 0.5, 2)))
        blink = (int(rng.integers(0, n)), 2.5) if rng.random() < 0.3 else None
        return ClipMotion(aus_text, float(amplitude), onset, apex, offset, n, blink,
                          tuple(float(h) for h in head), tuple(stable_seed(rng.integers(2**31))))

    @lru_cache(maxsize=None)
    def _subject_face(self, subject: str) -> tuple[FaceGeometry, tuple[int, ...]]:
        seed = stable_seed(self.spec.name, self.data_seed, subject, "face")
        return make_geometry(seed), tuple(stable_seed(*seed, "texture"))

    def frames(self, sample_id: str, indices: np.ndarray, size: int) -> np.ndarray:
        motion = self._motion[sample_id]
        subject = sample_id.split("/")[1]
        geometry, texture = self._subject_face(subject)
        return render_clip_frames(geometry, texture, motion, np.asarray(indices), size)


@lru_cache(maxsize=None)
def load_twin(name: str, data_seed: int = 0) -> SyntheticDataset:
    return SyntheticDataset(SPECS[name], data_seed)


def _register(name: str) -> None:
    spec = SPECS[name]
    register_dataset(name, f"synthetic twin of {spec.real} ({spec.kind})")(
        lambda data_seed=0, strict=False, face_crop="detect": load_twin(name, data_seed))


for _name in SPECS:
    _register(_name)


@register_dataset("synth-megc2019", "synthetic MEGC2019 composite: the official 442 rows "
                                    "of synth-smic + synth-casme2 + synth-samm")
def load_synth_megc2019(data_seed: int = 0, strict: bool = False, face_crop: str = "detect"
                         ) -> CompositeDataset:
    parts = [load_twin(n, data_seed) for n in ("synth-smic", "synth-casme2", "synth-samm")]
    table = pd.concat([p.samples for p in parts], ignore_index=True)
    return CompositeDataset("synth-megc2019", parts, select_official(table, "synth-megc2019"))


@register_dataset("synth-megc2019-casme3a", "synthetic MEGC2019 composite (442 rows) and every "
                                           "clip of synth-casme3a (lodo with four sources)")
def load_synth_megc2019_casme3a(data_seed: int = 0, strict: bool = False,
                                face_crop: str = "detect") -> CompositeDataset:
    megc = load_synth_megc2019(data_seed)
    casme3a = load_twin("synth-casme3a", data_seed)
    return CompositeDataset("synth-megc2019-casme3a", [*megc.parts.values(), casme3a],
                            pd.concat([megc.samples, casme3a.samples], ignore_index=True))


CD6ME_TWINS = ("synth-casme", "synth-casme2", "synth-samm", "synth-4dme", "synth-mmew",
               "synth-casme3a")
"""The twins of MEB's CD6ME composite, in its order."""


@register_dataset("synth-cd6me", "synthetic CD6ME composite (AU task): every clip of the "
                                 "casme, casme2, samm, 4dme, mmew and casme3a twins")
def load_synth_cd6me(data_seed: int = 0, strict: bool = False, face_crop: str = "detect"
                     ) -> CompositeDataset:
    parts = [load_twin(n, data_seed) for n in CD6ME_TWINS]
    table = pd.concat([p.samples for p in parts], ignore_index=True)
    return CompositeDataset("synth-cd6me", parts, table)
