"""Loaders of the real datasets from their official files (facts: shared/datasets.md).

Each loader parses the official annotation sheet (pandas + openpyxl) or folder tree into
the sample table and checks every clip against its frames on disk (``ClipBuilder``):
missing frames, annotated ranges not on disk, apex outside [onset, offset] make the clip
skipped with a warning (recorded in the result file; ``strict=True`` makes them errors);
a missing apex is kept with the middle frame (a warning, which fails only
``strict="all"``). Cells that should hold numbers and do not (a Subject ``abc``, an
Onset ``x``) and key frames that cannot be decoded are problems naming file and row. Cropped frame folders are preferred and
used as they are; raw folders and SAMM (distributed as whole 2040 x 1088 frames) get a
Haar-cascade face crop (``mer_bench.data.faces``; ``face_crop="none"`` turns it off).

Handled quirks: CASME II subject ids read as int (re-padded ``sub01``), ``/`` as apex,
AU cells that are ints or strings; SAMM's 13 preamble rows (header on row 13),
capitalised emotions and ``Other`` singular, subjects read as int (``006``), varying
frame-number padding; SMIC's labels in folder names, unpadded subjects, no apex;
MMEW's ``Micro_Expression/{emotion}/{clip}`` layout; CASME's varying frame padding;
CK+'s float emotion codes in text files; CAS(ME)^2's header-less sheet, its naming-rule
sheets and the ``happyiness`` typo; CAS(ME)^3-A's repeated file names per subject and
4DME's ``(k)``-marked AUs.

Published annotation errors (MEB's errata, tvaranka/meb ``meb/datasets/datasets.py``)
are corrected by sheet row and reported as data problems of kind ``erratum corrected``
(file, row, old -> new; ``Problem.is_correction``), which never fail ``strict``. They
are keyed to the rows of the release MEB names (``cas(me)3_part_A_ME_label_JpgIndex_v2
.xlsx``, ``4DME_Labelling_Micro_release v1.xlsx``); a row that already holds the
corrected value is left alone and not reported.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mer_bench.data.composite import select_official
from mer_bench.data.facs import without_k_marks
from mer_bench.data.folders import (
    CORRECTED,
    ClipBuilder,
    FolderDataset,
    Problem,
    frame_number,
    read_sheet,
    require_columns,
    require_root,
    required_frame,
)
from mer_bench.data.registry import CompositeDataset, register_dataset
from mer_bench.data.samples import normalize_emotion
from mer_bench.errors import MerBenchError

CKPLUS_CODES = {1: "anger", 2: "contempt", 3: "disgust", 4: "fear", 5: "happiness",
                6: "sadness", 7: "surprise"}


def _find(root: Path, pattern: str, what: str, depth: int = 1) -> Path:
    """The first match of ``pattern`` in ``root`` or up to ``depth`` folders below it."""
    for level in range(depth + 1):
        found = sorted(root.glob("*/" * level + pattern))
        if found:
            return found[0]
    raise MerBenchError(f"{root}: no {what} ({pattern}) found")


def _frames_dir(root: Path, cropped: str, raw: str) -> tuple[Path, bool]:
    """(folder, crop_faces): the cropped folder when present, else the raw one."""
    for name, crop in ((cropped, False), (raw, True)):
        for candidate in (root / name, *root.glob(f"*/{name}")):
            if candidate.is_dir():
                return candidate, crop
    raise MerBenchError(f"{root}: neither {cropped}/ nor {raw}/ found")


def _aus(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value).strip()


@register_dataset("casme2", "CASME II from its coding sheet and Cropped/ or CASME2_RAW_selected/")
def load_casme2(data_seed: int = 0, strict: bool = False,
                face_crop: str = "detect") -> FolderDataset:
    root = require_root("casme2")
    sheet = _find(root, "CASME2-coding-*.xlsx", "coding sheet")
    table = read_sheet(sheet, sheet_name="Sheet1", header=0)
    require_columns(table, ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame",
                            "Action Units", "Estimated Emotion"], sheet)
    frames, crop = _frames_dir(root, "Cropped", "CASME2_RAW_selected")
    builder = ClipBuilder("casme2")
    for i, r in table.iterrows():
        subject = builder.subject(r["Subject"], "sub{:02d}", sheet, int(i) + 2)
        if subject is None:
            continue
        builder.add(subject=subject, clip=str(r["Filename"]).strip(),
                    emotion=normalize_emotion(r["Estimated Emotion"]), aus=_aus(r["Action Units"]),
                    onset=required_frame(r["OnsetFrame"]), apex=frame_number(r["ApexFrame"]),
                    offset=required_frame(r["OffsetFrame"]), fps=200.0,
                    folder=frames / subject / str(r["Filename"]).strip(),
                    pattern=r"(?:reg_)?img(\d+)\.jpg", source=sheet, row=int(i) + 2)
    return FolderDataset("casme2", builder, root, crop, strict, face_crop)


@register_dataset("samm", "SAMM from SAMM_Micro_FACS_Codes_v2.xlsx and its frame folders")
def load_samm(data_seed: int = 0, strict: bool = False,
              face_crop: str = "detect") -> FolderDataset:
    root = require_root("samm")
    sheet = _find(root, "SAMM_Micro_FACS_Codes*.xlsx", "FACS code sheet")
    table = read_sheet(sheet, sheet_name="MICRO_ONLY", header=13)
    require_columns(table, ["Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame",
                            "Action Units", "Estimated Emotion"], sheet)
    frames = root / "SAMM" if (root / "SAMM").is_dir() else root
    builder = ClipBuilder("samm")
    for i, r in table.iterrows():
        if pd.isna(r["Filename"]):
            continue
        subject = builder.subject(r["Subject"], "{:03d}", sheet, int(i) + 15)
        if subject is None:
            continue
        clip = str(r["Filename"]).strip()
        builder.add(subject=subject, clip=clip, emotion=normalize_emotion(r["Estimated Emotion"]),
                    aus=_aus(r["Action Units"]), onset=required_frame(r["Onset Frame"]),
                    apex=frame_number(r["Apex Frame"]), offset=required_frame(r["Offset Frame"]), fps=200.0,
                    folder=frames / subject / clip, pattern=r"\d+_(\d+)\.jpg", source=sheet,
                    row=int(i) + 15)
    return FolderDataset("samm", builder, root, True, strict, face_crop)


def _load_smic(part: str, fps: float, strict: bool, face_crop: str) -> FolderDataset:
    root = require_root(f"smic-{part.lower()}")
    candidates = [p for p in [root / part, *root.glob(f"*/{part}")] if p.is_dir()]
    if not candidates:
        raise MerBenchError(f"{root}: no {part}/ folder (SMIC is laid out as {part}/s1/micro/...)")
    cropped = [p for p in candidates if "crop" in str(p).lower()]
    base = (cropped or candidates)[0]
    name = f"smic-{part.lower()}"
    builder = ClipBuilder(name)
    for subject_dir in sorted(base.glob("s*"), key=lambda p: int(p.name[1:]) if p.name[1:].isdigit() else 0):
        for emotion_dir in sorted((subject_dir / "micro").glob("*")):
            for clip_dir in sorted(p for p in emotion_dir.iterdir() if p.is_dir()):
                builder.add(subject=subject_dir.name, clip=clip_dir.name,
                            emotion=normalize_emotion(emotion_dir.name), aus="", onset=None,
                            apex=None, offset=None, fps=fps, folder=clip_dir,
                            pattern=r"(?:reg_)?image(\d+)\.bmp", source=clip_dir, row=None,
                            apex_annotated=False)
    return FolderDataset(name, builder, root, not cropped, strict, face_crop)


@register_dataset("smic-hs", "SMIC high-speed (100 fps) from its HS/ folder tree")
def load_smic_hs(data_seed: int = 0, strict: bool = False,
                 face_crop: str = "detect") -> FolderDataset:
    return _load_smic("HS", 100.0, strict, face_crop)


@register_dataset("smic-vis", "SMIC visual (25 fps) from its VIS/ folder tree")
def load_smic_vis(data_seed: int = 0, strict: bool = False,
                  face_crop: str = "detect") -> FolderDataset:
    return _load_smic("VIS", 25.0, strict, face_crop)


@register_dataset("smic-nir", "SMIC near-infrared (25 fps) from its NIR/ folder tree")
def load_smic_nir(data_seed: int = 0, strict: bool = False,
                  face_crop: str = "detect") -> FolderDataset:
    return _load_smic("NIR", 25.0, strict, face_crop)


@register_dataset("mmew", "MMEW micro-expressions from MMEW_Micro_Exp.xlsx and Micro_Expression/")
def load_mmew(data_seed: int = 0, strict: bool = False,
              face_crop: str = "detect") -> FolderDataset:
    root = require_root("mmew")
    sheet = _find(root, "MMEW_Micro_Exp.xlsx", "annotation sheet")
    table = read_sheet(sheet, header=0)
    require_columns(table, ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame",
                            "Action Units", "Estimated Emotion"], sheet)
    frames = _find(root, "Micro_Expression", "frame folder")
    builder = ClipBuilder("mmew")
    for i, r in table.iterrows():
        subject = builder.subject(r["Subject"], "S{:02d}", sheet, int(i) + 2)
        if subject is None:
            continue
        emotion = normalize_emotion(r["Estimated Emotion"])
        clip = str(r["Filename"]).strip()
        builder.add(subject=subject, clip=clip, emotion=emotion, aus=_aus(r["Action Units"]),
                    onset=required_frame(r["OnsetFrame"]), apex=frame_number(r["ApexFrame"]),
                    offset=required_frame(r["OffsetFrame"]), fps=90.0, folder=frames / emotion / clip,
                    pattern=r"(\d+)\.jpg", source=sheet, row=int(i) + 2)
    return FolderDataset("mmew", builder, root, True, strict, face_crop)


@register_dataset("casme", "CASME from its label sheet and sub*/ frame folders")
def load_casme(data_seed: int = 0, strict: bool = False,
               face_crop: str = "detect") -> FolderDataset:
    root = require_root("casme")
    sheet = _find(root, "*.xlsx", "label sheet")
    table = read_sheet(sheet, header=0)
    require_columns(table, ["Subject", "Filename", "OnsetF", "ApexF1", "OffsetF", "Emotion"], sheet)
    frames, crop = _frames_dir(root, "Cropped", "Raw")
    builder = ClipBuilder("casme")
    for i, r in table.iterrows():
        subject = builder.subject(r["Subject"], "sub{:02d}", sheet, int(i) + 2)
        if subject is None:
            continue
        clip = str(r["Filename"]).strip()
        builder.add(subject=subject, clip=clip, emotion=normalize_emotion(r["Emotion"]), aus="",
                    onset=required_frame(r["OnsetF"]), apex=frame_number(r["ApexF1"]),
                    offset=required_frame(r["OffsetF"]), fps=60.0, folder=frames / subject / clip,
                    pattern=rf"(?:reg_)?{clip}-(\d+)\.jpg", source=sheet, row=int(i) + 2)
    return FolderDataset("casme", builder, root, crop, strict, face_crop)


@register_dataset("ckplus", "CK+ labelled sequences (macro) from cohn-kanade-images/ and Emotion/")
def load_ckplus(data_seed: int = 0, strict: bool = False,
                face_crop: str = "detect") -> FolderDataset:
    root = require_root("ckplus")
    images, labels = _find(root, "cohn-kanade-images", "image folder"), _find(root, "Emotion", "labels")
    builder = ClipBuilder("ckplus", kind="macro")
    for label_file in sorted(labels.glob("S*/*/*_emotion.txt")):
        subject, sequence = label_file.parent.parent.name, label_file.parent.name
        try:
            code = int(float(label_file.read_text().strip()))
            emotion = CKPLUS_CODES[code]
        except (ValueError, KeyError):
            raise MerBenchError(f"{label_file}: not an emotion code 1-7") from None
        folder = images / subject / sequence
        builder.add(subject=subject, clip=sequence, emotion=emotion, aus="", onset=None,
                    apex="offset", offset=None, fps=30.0, folder=folder,
                    pattern=rf"{subject}_{sequence}_(\d+)\.png", source=label_file, row=None)
    return FolderDataset("ckplus", builder, root, True, strict, face_crop)


@register_dataset("casme-sq", "CAS(ME)^2 micro and macro rows from CAS(ME)^2code_final.xlsx and rawpic/")
def load_casme_sq(data_seed: int = 0, strict: bool = False,
                  face_crop: str = "detect") -> FolderDataset:
    """CAS(ME)^2: a header-less sheet (subject, video, onset, apex, offset, AUs, emotion,
    type, self-report); the sheets ``naming rule1`` (video stem such as ``anger1`` ->
    stimulus code such as ``0401``) and ``naming rule2`` (code -> folder name) give the
    clip folder ``rawpic/s{subject}/{subject}_{code}{name}/img{N}.jpg``. The two-column
    layout of the naming sheets is our reading of the distributed file (not checked
    against every copy); a video whose stem the rules do not name is reported, not
    guessed. Raw frames: faces are cropped. Apex 0 means not annotated."""
    root = require_root("casme-sq")
    sheet = _find(root, "CAS(ME)^2code_final*.xlsx", "code sheet")
    table = read_sheet(sheet, sheet_name=0, header=None)
    if table.shape[1] < 8:
        raise MerBenchError(f"{sheet}: expected 9 columns (subject, video, onset, apex, offset, "
                            f"AUs, emotion, type, self-report); found {table.shape[1]}")
    codes = {str(k).strip(): f"{int(float(v)):04d}" for k, v in
             read_sheet(sheet, sheet_name="naming rule1", header=None).iloc[:, :2].values}
    names = {f"{int(float(k)):04d}": str(v).strip() for k, v in
             read_sheet(sheet, sheet_name="naming rule2", header=None).iloc[:, :2].values}
    frames = _find(root, "rawpic", "frame folder")
    builder = ClipBuilder("casme-sq")
    for i, r in table.iterrows():
        subject_no = int(float(r[0]))
        video = str(r[1]).strip()
        stem = video.rsplit("_", 1)[0]
        code = codes.get(stem)
        folder = frames / f"s{subject_no}" / f"{subject_no}_{code}{names.get(code, '')}"
        if code is None or code not in names:
            builder.problems.append(Problem("unknown video", str(sheet), int(i) + 1,
                                            f"casme-sq/s{subject_no}/{video}",
                                            f"{stem!r} is not in the naming rule sheets"))
            continue
        apex = frame_number(r[3])
        builder.add(subject=f"s{subject_no}", clip=video, emotion=normalize_emotion(r[6]),
                    aus=_aus(r[5]), onset=required_frame(r[2]), apex=None if apex == 0 else apex,
                    offset=required_frame(r[4]), fps=30.0, folder=folder, pattern=r"img(\d+)\.jpg",
                    source=sheet, row=int(i) + 1,
                    kind="macro" if "macro" in str(r[7]).lower() else "micro")
    return FolderDataset("casme-sq", builder, root, True, strict, face_crop)


CASME3A_ERRATA = {130: {"Apex": 123}, 751: {"Onset": 2647}, 710: {"Offset": 34},
                  798: {"Offset": 1845}, 800: {"Offset": 2403}, 752: {"Onset": 1, "Apex": 1}}
"""CAS(ME)^3-A sheet row (as a spreadsheet shows it) -> corrected cells (MEB's errata)."""
FOURD_SWAPPED_AUS = (146, 147)
"""4DME sheet rows whose AU cells are each other's (MEB's erratum)."""


def _correct(table: pd.DataFrame, errata: dict[int, dict[str, int]], builder: ClipBuilder,
             sheet: Path, sample_ids: list[str]) -> pd.DataFrame:
    """``table`` with ``errata`` applied (sheet row -> column -> value), each change
    reported as a data problem naming the file, row and clip (``sample_ids``, one per
    table row)."""
    table = table.copy()
    for row, cells in errata.items():
        index = row - 2
        if index not in table.index:
            continue
        changed = {c: (table.at[index, c], v) for c, v in cells.items()
                   if frame_number(table.at[index, c]) != v}
        for column, (_, value) in changed.items():
            table.at[index, column] = value
        if changed:
            builder.problems.append(Problem(CORRECTED, str(sheet), row, sample_ids[index], ", ".join(
                f"{c} {old} -> {new}" for c, (old, new) in changed.items()), skip=False))
    return table


def _numbered_repeats(names: list[tuple[str, str]]) -> list[str]:
    """Clip ids for (subject, file name) rows: a subject's second, third, ... row of the
    same file name (several micro-expressions in one video) gets ``name2``, ``name3``,
    as MEB numbers them (MEB numbers consecutive repeats only; every repeat here)."""
    seen: dict[tuple[str, str], int] = {}
    out = []
    for key in names:
        seen[key] = seen.get(key, 0) + 1
        out.append(key[1] if seen[key] == 1 else f"{key[1]}{seen[key]}")
    return out


@register_dataset("casme3a", "CAS(ME)^3 part A micro-expressions from its JpgIndex label sheet "
                             "and part_A/{subject}/{file}/color/")
def load_casme3a(data_seed: int = 0, strict: bool = False,
                 face_crop: str = "detect") -> FolderDataset:
    """CAS(ME)^3 part A (Li et al., TPAMI 2022): ``cas(me)3_part_A_ME_label_JpgIndex_v2
    .xlsx`` with columns Subject, Filename, Onset, Apex, Offset, AU and the emotion
    (a column named ``emotion`` in any case; MEB reads it without renaming), frame
    numbers being the jpg indices of the colour video
    ``part_A/{Subject}/{Filename}/color/{N}.jpg`` (searched up to three folders below
    the root, as in the distribution's ``data/part_A_split/part_A``). A video holds
    several micro-expressions, so one file name repeats within a subject
    (``_numbered_repeats`` names the clips). Whole frames at 30 fps: faces are
    cropped. Depth (``depth/``) is not read: no method uses it and its file naming is
    not in any file we could read."""
    root = require_root("casme3a")
    sheet = _find(root, "cas(me)3_part_A_ME_label*.xlsx", "label sheet", depth=2)
    table = read_sheet(sheet, header=0)
    emotion = next((c for c in table.columns if str(c).strip().lower() == "emotion"), None)
    require_columns(table, ["Subject", "Filename", "Onset", "Apex", "Offset", "AU",
                            emotion or "emotion"], sheet)
    frames = _find(root, "part_A", "frame folder (part_A/)", depth=3)
    builder = ClipBuilder("casme3a")
    table = table.reset_index(drop=True)
    keys = [(str(s).strip(), str(f).strip()) for s, f in zip(table["Subject"], table["Filename"])]
    clips = _numbered_repeats(keys)
    table = _correct(table, CASME3A_ERRATA, builder, sheet,
                     [f"casme3a/{s}/{c}" for (s, _), c in zip(keys, clips)])
    for (i, r), (subject, video), clip in zip(table.iterrows(), keys, clips):
        builder.add(subject=subject, clip=clip, emotion=normalize_emotion(r[emotion]),
                    aus=_aus(r["AU"]), onset=required_frame(r["Onset"]),
                    apex=frame_number(r["Apex"]), offset=required_frame(r["Offset"]), fps=30.0,
                    folder=frames / subject / video / "color", pattern=r"(\d+)\.jpg",
                    source=sheet, row=int(i) + 2)
    return FolderDataset("casme3a", builder, root, True, strict, face_crop)


@register_dataset("4dme", "4DME micro-expressions from 4DME_Labelling_Micro_release*.xlsx and "
                          "gray_micro_crop/ or gray_micro/")
def load_4dme(data_seed: int = 0, strict: bool = False, face_crop: str = "detect") -> FolderDataset:
    """4DME (Li et al., TAFFC 2022), its 2D grey videos: ``4DME_Labelling_Micro_release
    v1.xlsx`` with columns sub_ID, fold_name, Emotion, Onset, Apex, Offset, AUs (the
    one-hot AU columns beside them are not read: ``AUs`` is the source),
    ``gray_micro_crop/{sub_ID}/{fold_name}/`` (cropped) or ``gray_micro/`` (whole
    frames, faces cropped) holding one file per frame whose name ends in its frame
    number (the names are not in any file we could read; jpg, png or bmp accepted).
    ``(k)``-marked AUs are removed (``facs.without_k_marks``), as MEB does by default;
    the AU cells of rows 146 and 147 are swapped back (reported). Frame rate: 60 fps
    is assumed (not in the sheet)."""
    root = require_root("4dme")
    sheet = _find(root, "4DME_Labelling_Micro_release*.xlsx", "label sheet", depth=2)
    table = read_sheet(sheet, header=0)
    require_columns(table, ["sub_ID", "fold_name", "Emotion", "Onset", "Apex", "Offset", "AUs"],
                    sheet)
    frames, crop = _frames_dir(root, "gray_micro_crop", "gray_micro")
    builder = ClipBuilder("4dme")
    aus = table["AUs"].copy()
    first, second = (row - 2 for row in FOURD_SWAPPED_AUS)
    if second in table.index and aus[first] != aus[second]:
        aus[first], aus[second] = aus[second], aus[first]
        for row, index in zip(FOURD_SWAPPED_AUS, (first, second)):
            builder.problems.append(Problem(
                CORRECTED, str(sheet), row, f"4dme/{table.at[index, 'sub_ID']}/"
                f"{table.at[index, 'fold_name']}", f"AUs {table.at[index, 'AUs']!r} -> "
                f"{aus[index]!r} (rows {FOURD_SWAPPED_AUS[0]} and {FOURD_SWAPPED_AUS[1]} "
                f"swapped)", skip=False))
    for (i, r), cell in zip(table.iterrows(), aus):
        subject, clip = str(r["sub_ID"]).strip(), str(r["fold_name"]).strip()
        builder.add(subject=subject, clip=clip, emotion=normalize_emotion(r["Emotion"]),
                    aus=without_k_marks(_aus(cell))[0], onset=required_frame(r["Onset"]),
                    apex=frame_number(r["Apex"]), offset=required_frame(r["Offset"]), fps=60.0,
                    folder=frames / subject / clip,
                    pattern=r"(?i).*?(\d+)\.(?:jpg|jpeg|png|bmp)", source=sheet, row=int(i) + 2)
    return FolderDataset("4dme", builder, root, crop, strict, face_crop)


@register_dataset("megc2019", "MEGC2019 composite: the official 442 rows of smic-hs + casme2 + samm")
def load_megc2019(data_seed: int = 0, strict: bool = False,
                  face_crop: str = "detect") -> CompositeDataset:
    parts = [load(strict=strict, face_crop=face_crop)
             for load in (load_smic_hs, load_casme2, load_samm)]
    table = pd.concat([p.samples for p in parts], ignore_index=True)
    composite = CompositeDataset("megc2019", parts, select_official(table, "megc2019"))
    composite.problems = [p for part in parts for p in part.problems]
    return composite


@register_dataset("megc2019-casme3a", "the MEGC2019 composite's 442 rows and CAS(ME)^3 part A "
                                      "(every clip; the megc2019 scheme keeps its 3 classes)")
def load_megc2019_casme3a(data_seed: int = 0, strict: bool = False,
                          face_crop: str = "detect") -> CompositeDataset:
    megc = load_megc2019(strict=strict, face_crop=face_crop)
    casme3a = load_casme3a(strict=strict, face_crop=face_crop)
    composite = CompositeDataset("megc2019-casme3a", [*megc.parts.values(), casme3a],
                                 pd.concat([megc.samples, casme3a.samples], ignore_index=True))
    composite.problems = [*megc.problems, *casme3a.problems]
    return composite


@register_dataset("cd6me", "MEB's CD6ME composite for the AU task: every clip of casme, casme2, "
                           "samm, 4dme, mmew and casme3a")
def load_cd6me(data_seed: int = 0, strict: bool = False,
               face_crop: str = "detect") -> CompositeDataset:
    parts = [load(strict=strict, face_crop=face_crop)
             for load in (load_casme, load_casme2, load_samm, load_4dme, load_mmew, load_casme3a)]
    table = pd.concat([p.samples for p in parts], ignore_index=True)
    composite = CompositeDataset("cd6me", parts, table)
    composite.problems = [p for part in parts for p in part.problems]
    return composite
