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
sheets and the ``happyiness`` typo.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mer_bench.data.composite import select_official
from mer_bench.data.folders import (
    ClipBuilder,
    FolderDataset,
    Problem,
    frame_number,
    required_frame,
    read_sheet,
    require_columns,
    require_root,
)
from mer_bench.data.registry import CompositeDataset, register_dataset
from mer_bench.data.samples import normalize_emotion
from mer_bench.errors import MerBenchError

CKPLUS_CODES = {1: "anger", 2: "contempt", 3: "disgust", 4: "fear", 5: "happiness",
                6: "sadness", 7: "surprise"}


def _find(root: Path, pattern: str, what: str) -> Path:
    found = sorted(root.glob(pattern)) or sorted(root.glob(f"*/{pattern}"))
    if not found:
        raise MerBenchError(f"{root}: no {what} ({pattern}) found")
    return found[0]


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


@register_dataset("megc2019", "MEGC2019 composite: the official 442 rows of smic-hs + casme2 + samm")
def load_megc2019(data_seed: int = 0, strict: bool = False,
                  face_crop: str = "detect") -> CompositeDataset:
    parts = [load(strict=strict, face_crop=face_crop)
             for load in (load_smic_hs, load_casme2, load_samm)]
    table = pd.concat([p.samples for p in parts], ignore_index=True)
    composite = CompositeDataset("megc2019", parts, select_official(table, "megc2019"))
    composite.problems = [p for part in parts for p in part.problems]
    return composite
