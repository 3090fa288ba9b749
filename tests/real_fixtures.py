"""Fixture trees in the real datasets' official layouts, written from the synthetic twins.

Each writer copies a twin's clips (subjects, emotions, per-subject counts, clip ids) into
the folder layout and annotation sheet of the real dataset (datasets.md), with tiny
frames rendered by the twin, so the loaders are tested on the exact file formats:
int-typed subject cells, ``/`` as apex, SAMM's 13 preamble rows and capitalised labels,
SMIC's unpadded subject folders, absolute frame numbers that do not start at 0.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pandas as pd

from mer_bench.data.datasets import load_dataset

SIZE = 24


def _frames(twin, row) -> np.ndarray:
    return twin.frames(row["sample_id"], np.arange(row["n_frames"]), SIZE)


def _write(path: Path, frames_rgb: np.ndarray, names: list[str]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for frame, name in zip(frames_rgb, names):
        cv2.imwrite(str(path / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))


def _twin_rows(name: str, limit_subjects: int | None) -> tuple[object, pd.DataFrame]:
    twin = load_dataset(name)
    rows = twin.samples
    if limit_subjects:
        keep = sorted(rows["subject"].unique())[:limit_subjects]
        rows = rows[rows["subject"].isin(keep)]
    return twin, rows


def write_casme2(root: Path, limit_subjects: int | None = None) -> Path:
    twin, rows = _twin_rows("synth-casme2", limit_subjects)
    records = []
    for _, r in rows.iterrows():
        subject = r["subject"].split("/")[1]
        first = 40 + len(records) % 7  # absolute frame numbers start anywhere
        names = [f"reg_img{first + i}.jpg" for i in range(r["n_frames"])]
        _write(root / "Cropped" / subject / r["clip"], _frames(twin, r), names)
        apex = "/" if pd.isna(r["apex"]) else first + int(r["apex"])
        aus = int(r["aus"]) if r["aus"].isdigit() else r["aus"]
        records.append([int(subject[3:]), r["clip"], None, first + int(r["onset"]), apex,
                        first + int(r["offset"]), None, aus, r["emotion"]])
    columns = ["Subject", "Filename", "", "OnsetFrame", "ApexFrame", "OffsetFrame", "", "Action Units",
               "Estimated Emotion"]
    path = root / "CASME2-coding-20190701.xlsx"
    _write_rows(path, "Sheet1", [], columns, records)
    return path


def write_samm(root: Path, limit_subjects: int | None = None) -> Path:
    twin, rows = _twin_rows("synth-samm", limit_subjects)
    records = []
    for k, (_, r) in enumerate(rows.iterrows()):
        subject = r["subject"].split("/")[1]
        first, pad = 5000 + k, 5 if k % 2 else 4  # zero padding varies in the real set
        names = [f"{subject}_{first + i:0{pad}d}.jpg" for i in range(r["n_frames"])]
        _write(root / "SAMM" / subject / r["clip"], _frames(twin, r), names)
        emotion = r["emotion"].capitalize()  # 'Anger', 'Other'
        records.append([int(subject), r["clip"], "A", first + int(r["onset"]),
                        first + int(r["apex"]), first + int(r["offset"]),
                        int(r["offset"]) - int(r["onset"]) + 1, "Micro - 1/2", r["aus"], emotion,
                        "", ""])
    return _write_samm_sheet(root, records)


def _write_samm_sheet(root: Path, records: list[list]) -> Path:
    preamble = [[f"SAMM preamble line {i}"] for i in range(13)]
    columns = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
               "Duration", "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]
    path = root / "SAMM_Micro_FACS_Codes_v2.xlsx"
    _write_rows(path, "MICRO_ONLY", preamble, columns, records)
    return path


FACE_CENTRE = (210, 100)
"""(x, y) of the face's centre in scikit-image's ``astronaut`` photo (512 x 512)."""


def write_samm_faces(root: Path, width: int = 1020, height: int = 544, at: tuple = (620, 120),
                     clips: int = 2, n_frames: int = 6) -> tuple[int, int]:
    """A SAMM tree of ``clips`` clips whose whole ``width`` x ``height`` frames show the
    public-domain ``astronaut`` photo's head pasted with its top-left corner at ``at``
    on a gray background, moving right by 1 px a frame; returns the face's centre
    (x, y) in the frame."""
    from skimage import data as skimage_data
    head = skimage_data.astronaut()[:300, 60:360]
    records = []
    for k in range(clips):
        subject, clip = f"{6 + k:03d}", f"{6 + k:03d}_1_1"
        names = [f"{subject}_{100 + i:05d}.jpg" for i in range(n_frames)]
        frames = np.full((n_frames, height, width, 3), 128, np.uint8)
        for i in range(n_frames):
            x, y = at[0] + i, at[1]
            frames[i, y:y + head.shape[0], x:x + head.shape[1]] = head
        _write(root / "SAMM" / subject / clip, frames, names)
        records.append([int(subject), clip, "A", 100, 102, 100 + n_frames - 1, n_frames,
                        "Micro - 1/2", "12", "Happiness", "", ""])
    _write_samm_sheet(root, records)
    return at[0] + FACE_CENTRE[0] - 60, at[1] + FACE_CENTRE[1]


def write_smic(root: Path, limit_subjects: int | None = None) -> Path:
    twin, rows = _twin_rows("synth-smic", limit_subjects)
    base = root / "SMIC_all_cropped" / "HS"
    for _, r in rows.iterrows():
        subject = r["subject"].split("/")[1]
        first = 100 + int(subject[1:])
        names = [f"reg_image{first + i:06d}.bmp" for i in range(r["n_frames"])]
        _write(base / subject / "micro" / r["emotion"] / r["clip"], _frames(twin, r), names)
    return base


def write_mmew(root: Path, limit_subjects: int | None = None) -> Path:
    twin, rows = _twin_rows("synth-mmew", limit_subjects)
    records = []
    for _, r in rows.iterrows():
        subject = r["subject"].split("/")[1]
        names = [f"{1 + i}.jpg" for i in range(r["n_frames"])]  # onset frame is 1
        _write(root / "Micro_Expression" / r["emotion"] / r["clip"], _frames(twin, r), names)
        records.append([subject, r["clip"], 1 + int(r["onset"]), 1 + int(r["apex"]),
                        1 + int(r["offset"]), r["aus"], r["emotion"], ""])
    columns = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
               "Estimated Emotion", "remarks"]
    path = root / "MMEW_Micro_Exp.xlsx"
    _write_rows(path, "Sheet1", [], columns, records)
    return path


def write_casme(root: Path, limit_subjects: int | None = None) -> Path:
    twin, rows = _twin_rows("synth-casme", limit_subjects)
    records = []
    for k, (_, r) in enumerate(rows.iterrows()):
        subject = r["subject"].split("/")[1]
        clip = f"EP{k:03d}"
        pad = 3 if k >= 91 else 1  # zero-padded to 3 digits from the 92nd clip on
        names = [f"reg_{clip}-{1 + i:0{pad}d}.jpg" for i in range(r["n_frames"])]
        _write(root / "Cropped" / subject / clip, _frames(twin, r), names)
        records.append([int(subject[3:]), clip, 1 + int(r["onset"]), 1 + int(r["apex"]), None,
                        1 + int(r["offset"]), r["emotion"]])
    columns = ["Subject", "Filename", "OnsetF", "ApexF1", "ApexF2", "OffsetF", "Emotion"]
    path = root / "CASME_label.xlsx"
    _write_rows(path, "Sheet1", [], columns, records)
    return path


def write_ckplus(root: Path, limit_subjects: int | None = None) -> Path:
    twin, rows = _twin_rows("synth-ckplus", limit_subjects)
    codes = {"anger": 1, "contempt": 2, "disgust": 3, "fear": 4, "happiness": 5, "sadness": 6,
             "surprise": 7}
    per_subject: dict[str, int] = {}
    for _, r in rows.iterrows():
        subject = r["subject"].split("/")[1]
        per_subject[subject] = per_subject.get(subject, 0) + 1
        sequence = f"{per_subject[subject]:03d}"
        names = [f"{subject}_{sequence}_{1 + i:08d}.png" for i in range(r["n_frames"])]
        _write(root / "cohn-kanade-images" / subject / sequence, _frames(twin, r), names)
        label = root / "Emotion" / subject / sequence / f"{subject}_{sequence}_{r['n_frames']:08d}_emotion.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(f"   {codes[r['emotion']]:.7e}\n")
    return root


def _write_rows(path: Path, sheet: str, preamble: list[list], columns: list[str],
                records: list[list]) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    for line in preamble:
        ws.append(line)
    ws.append([c if c else None for c in columns])
    for record in records:
        ws.append(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)


def write_casme_sq(root: Path) -> Path:
    """A small CAS(ME)^2 tree: micro and macro rows, the 'happyiness' typo, a video that
    the naming rules do not know."""
    twin = load_dataset("synth-casme2")
    rows = twin.samples.head(5)
    videos = [("anger1_1", "negative", "micro-expression"), ("happy1_2", "happyiness", "micro-expression"),
              ("anger1_2", "negative", "macro-expression"), ("disgust2_1", "others", "micro-expression"),
              ("mystery9_1", "surprise", "micro-expression")]
    rule1 = [["anger1", 401], ["happy1", 502], ["disgust2", 102]]
    rule2 = [[401, "beatingpregnantwoman"], [502, "smilekid"], [102, "eatingworms"]]
    codes = {stem: (code, dict(rule2)[code]) for stem, code in rule1}
    records = []
    for (_, r), (video, emotion, kind) in zip(rows.iterrows(), videos):
        stem = video.rsplit("_", 1)[0]
        if stem in codes:
            code, name = codes[stem]
            names = [f"img{1 + i}.jpg" for i in range(r["n_frames"])]
            _write(root / "rawpic" / "s15" / f"15_{code:04d}{name}", _frames(twin, r), names)
        records.append([15, video, 1 + int(r["onset"]), 1 + int(r["apex"]), 1 + int(r["offset"]),
                        r["aus"], emotion, kind, "self"])
    path = root / "CAS(ME)^2code_final.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "Sheet1"
    for record in records:
        book.active.append(record)
    for title, rule in (("naming rule1", rule1), ("naming rule2", rule2)):
        ws = book.create_sheet(title)
        for line in rule:
            ws.append(line)
    book.save(path)
    return path


def _video(clip: str) -> str:
    """CAS(ME)^3-A's file name of a clip: the video's name without the loader's number."""
    return clip.rstrip("0123456789")


def write_casme3a(root: Path) -> Path:
    """The CAS(ME)^3-A layout from the whole twin (860 rows): the JpgIndex sheet (its
    emotion column named ``emotion``), ``data/part_A_split/part_A/{subject}/{video}/color/
    {N}.jpg`` with several clips per video at absolute frame numbers from 1000 on, and
    MEB's errata written in: the erratum rows' frames lie where the corrected value says,
    their sheet cells hold a value that is not (so an uncorrected load skips them)."""
    from mer_bench.data.loaders import CASME3A_ERRATA
    twin, rows = _twin_rows("synth-casme3a", None)
    frames, cursor, records = root / "data" / "part_A_split" / "part_A", {}, []
    for index, (_, r) in enumerate(rows.iterrows()):
        subject, video = r["subject"].split("/")[1], _video(r["clip"])
        key = {"Onset": int(r["onset"]), "Apex": int(r["apex"]), "Offset": int(r["offset"])}
        fix = CASME3A_ERRATA.get(index + 2, {})
        column, value = next(iter(fix.items()), (None, None))
        first = value - key[column] if column else cursor.get((subject, video), 1000)
        cursor[subject, video] = max(cursor.get((subject, video), 1000), first + r["n_frames"] + 3)
        _write(frames / subject / video / "color", _frames(twin, r),
               [f"{first + i}.jpg" for i in range(r["n_frames"])])
        cells = {k: first + v for k, v in key.items()}
        cells.update({k: cells[k] + 500 if k == "Offset" else (0 if cells[k] < 3 else cells[k] - 100)
                      for k in fix})  # the published error: a frame not on disk
        records.append([subject, video, cells["Onset"], cells["Apex"], cells["Offset"], r["aus"],
                        "Objective", r["emotion"]])
    columns = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]
    path = root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
    _write_rows(path, "Sheet1", [], columns, records)
    return path


def write_4dme(root: Path) -> Path:
    """The 4DME layout from the whole twin: ``4DME_Labelling_Micro_release v1.xlsx`` (AU
    cells ``AU4+AUL10``, a ``(k)``-marked AU17 in every fifth row, the AU cells of rows 146
    and 147 swapped as in the release) and ``gray_micro_crop/{sub_ID}/{fold_name}/
    {fold_name}_{N}.jpg`` from frame 1."""
    twin, rows = _twin_rows("synth-4dme", None)
    records = []
    for index, (_, r) in enumerate(rows.iterrows()):
        subject = r["subject"].split("/")[1]
        _write(root / "gray_micro_crop" / subject / r["clip"], _frames(twin, r),
               [f"{r['clip']}_{1 + i}.jpg" for i in range(r["n_frames"])])
        aus = "+".join(f"AU{part}" for part in r["aus"].split("+") if part)
        if index % 5 == 0 and "17" not in r["aus"]:
            aus += "+AU17(k)"  # an AU of the CD6ME set the clip does not show
        records.append([subject, r["clip"], r["emotion"].capitalize(), 1 + int(r["onset"]),
                        1 + int(r["apex"]), 1 + int(r["offset"]), aus])
    records[144][6], records[145][6] = records[145][6], records[144][6]
    columns = ["sub_ID", "fold_name", "Emotion", "Onset", "Apex", "Offset", "AUs"]
    path = root / "4DME_Labelling_Micro_release v1.xlsx"
    _write_rows(path, "Sheet1", [], columns, records)
    return path
