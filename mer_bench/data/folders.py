"""Real datasets on disk: where they live, their frame folders, face crops, and the
problems a loader finds.

Where datasets live (first match wins):
1. ``--data-root NAME=PATH`` on the command line (kept in ``$MER_BENCH_DATA_ROOTS`` as
   ``NAME=PATH;NAME=PATH`` so worker processes see it too);
2. the config file ``$MER_BENCH_CONFIG`` (default ``~/.config/mer-bench/datasets.ini``),
   section ``[data_roots]``, lines ``casme2 = /data/CASME2``;
3. ``$MER_BENCH_DATA/<folder>``, the folder named as in ``DATA_FOLDERS`` (``casme2/``,
   ``samm/``, ``smic/``, ...), each laid out as the dataset is distributed.

Frame indices in the sample table are positions in the clip folder's frames sorted by
their frame number; loaders convert the official (absolute) frame numbers to positions.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import threading
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from mer_bench.data import FACE_CROPS
from mer_bench.data.registry import Dataset
from mer_bench.data.samples import KNOWN_EMOTIONS, validate_samples
from mer_bench.errors import MerBenchError
from mer_bench.threads import thread_map

DATA_FOLDERS = {"casme2": "casme2", "samm": "samm", "smic-hs": "smic", "smic-vis": "smic",
                "smic-nir": "smic", "mmew": "mmew", "casme": "casme", "casme-sq": "casme-sq",
                "ckplus": "ckplus", "casme3a": "casme3", "4dme": "4dme"}
ROOTS_ENV = "MER_BENCH_DATA_ROOTS"


def set_data_roots(pairs: dict[str, str]) -> None:
    """Command-line overrides (``--data-root``), exported to worker processes."""
    unknown = sorted(set(pairs) - set(DATA_FOLDERS))
    if unknown:
        raise MerBenchError(f"--data-root names unknown datasets {unknown}; choose from "
                            f"{', '.join(DATA_FOLDERS)}")
    current = _env_roots()
    current.update(pairs)
    os.environ[ROOTS_ENV] = ";".join(f"{k}={v}" for k, v in current.items())


def _env_roots() -> dict[str, str]:
    text = os.environ.get(ROOTS_ENV, "")
    return dict(item.split("=", 1) for item in text.split(";") if "=" in item)


def _config_roots() -> dict[str, str]:
    path = Path(os.environ.get("MER_BENCH_CONFIG", Path.home() / ".config/mer-bench/datasets.ini"))
    if not path.exists():
        return {}
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except configparser.Error as err:
        raise MerBenchError(f"{path}: unreadable config ({err})") from None
    return dict(parser["data_roots"]) if parser.has_section("data_roots") else {}


def data_root(name: str) -> tuple[Path | None, str]:
    """(folder, how it was configured) for dataset ``name``; folder None if unset."""
    for source, roots in (("--data-root", _env_roots()), ("config file", _config_roots())):
        if name in roots:
            return Path(roots[name]).expanduser(), source
        if DATA_FOLDERS[name] in roots:
            return Path(roots[DATA_FOLDERS[name]]).expanduser(), source
    base = os.environ.get("MER_BENCH_DATA")
    if base:
        return Path(base).expanduser() / DATA_FOLDERS[name], "MER_BENCH_DATA"
    return None, "not configured"


def require_root(name: str) -> Path:
    root, source = data_root(name)
    if root is None:
        raise MerBenchError(f"dataset {name!r} is not configured: set MER_BENCH_DATA to a folder "
                            f"holding {DATA_FOLDERS[name]}/ or pass --data-root {name}=PATH")
    if not root.is_dir():
        raise MerBenchError(f"dataset {name!r}: folder {root} (from {source}) does not exist")
    return root


CORRECTED = "erratum corrected"
"""``Problem.kind`` of a published annotation error the loader fixed (MEB's errata)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a clip. ``row`` is the sheet row as a spreadsheet shows it
    (1-based, header included); None for folder-only datasets. ``skip``: the clip is
    left out (or, with ``strict``, the load fails); otherwise it is a warning and the
    clip is kept."""

    kind: str
    file: str
    row: int | None
    sample_id: str
    detail: str
    skip: bool = True

    @property
    def is_correction(self) -> bool:
        """A known erratum the loader corrected (reported, never a failure)."""
        return self.kind == CORRECTED

    def line(self) -> str:
        where = f"{self.file}" + (f" row {self.row}" if self.row is not None else "")
        action = "skipped" if self.skip else ("kept" if self.is_correction else "kept; a warning")
        return f"{where}: {self.sample_id}: {self.kind}: {self.detail} ({action})"


def frame_files(folder: Path, pattern: str) -> tuple[list[Path], list[int]]:
    """Files in ``folder`` whose name matches ``pattern`` (one group: the frame number),
    sorted by frame number; returns (paths, numbers)."""
    regex = re.compile(pattern)
    found = []
    with os.scandir(folder) if folder.is_dir() else nullcontext([]) as entries:
        for entry in entries:
            m = regex.fullmatch(entry.name)
            # only regular files (a symlink to one too): a FIFO or a device named like a
            # frame would block or never end a read; without it the clip's frames have a gap
            if m and entry.is_file():
                found.append((int(m.group(1)), Path(entry.path)))
    found.sort()
    return [p for _, p in found], [n for n, _ in found]


def read_sheet(path: Path, **kwargs) -> pd.DataFrame:
    """``pd.read_excel`` with errors that name the file: a truncated workbook
    (BadZipFile), a missing sheet, ...; a workbook part that declares a DOCTYPE is
    refused before parsing (entity expansion and external entities have no place in an
    annotation sheet)."""
    try:
        if Path(path).suffix.lower() in (".xlsx", ".xlsm"):
            refuse_doctype(Path(path))
        return pd.read_excel(path, **kwargs)
    except MerBenchError:
        raise
    except Exception as err:  # any failure to parse a user's file is that file's problem
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise MerBenchError(f"{path}: cannot read sheet ({type(err).__name__}: "
                            f"{reason[:200]})") from None


MAX_XML_PART = 256 * 2**20
"""Largest uncompressed XML part of a sheet read (a 10,000-row sheet: a few MB)."""


def refuse_doctype(path: Path) -> None:
    """Raise ``MerBenchError`` when an XML part of the workbook ``path`` declares a DOCTYPE
    anywhere, in any encoding: each part is parsed in full by expat with DTDs forbidden
    (``defusedxml``), which decodes it as any XML reader would (a BOM, UTF-16, a
    DOCTYPE after a long comment), and stops at the DOCTYPE before any entity expands.
    A part larger than ``MAX_XML_PART`` uncompressed is refused unread."""
    import zipfile

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring
    with zipfile.ZipFile(path) as book:
        for info in book.infolist():
            if not info.filename.endswith((".xml", ".rels")):
                continue
            if info.file_size > MAX_XML_PART:
                raise MerBenchError(f"{path}: {info.filename} is {info.file_size / 2**20:.0f} MiB "
                                    f"of XML; refused (an annotation sheet is far smaller)")
            with book.open(info) as part:
                data = part.read(MAX_XML_PART + 1)
            try:
                fromstring(data, forbid_dtd=True)
            except DefusedXmlException as err:
                raise MerBenchError(f"{path}: {info.filename} declares a DOCTYPE or entities "
                                    f"({type(err).__name__}); refused (an annotation sheet "
                                    f"needs none)") from None


def require_columns(table: pd.DataFrame, columns: list[str], path: Path) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise MerBenchError(f"{path}: missing columns {missing}; found {list(table.columns)}")


class BadCell(str):
    """A sheet cell that should hold a number and does not (``abc``); the builder
    turns it into a problem naming the file, row and column."""


def frame_number(value) -> int | None | BadCell:
    """A frame-number cell: a whole number as int, float or text -> int; ``/``, ``-``,
    blank or NaN -> None (not annotated); anything else, a fraction (``12.5``) included,
    -> ``BadCell``."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    if text in ("", "/", "-"):
        return None
    try:
        number = float(text)
    except ValueError:
        return BadCell(text)
    return int(number) if number.is_integer() else BadCell(text)


def required_frame(value) -> int | BadCell:
    """An onset or offset cell, which every clip needs: as ``frame_number``, but an
    empty cell is a ``BadCell`` (a problem naming the row), never the first or last
    frame on disk."""
    number = frame_number(value)
    return BadCell("" if value is None or (isinstance(value, float) and pd.isna(value))
                   else str(value).strip()) if number is None else number


class ClipBuilder:
    """Collects sample rows and problems while a loader walks an annotation sheet."""

    def __init__(self, dataset: str, kind: str = "micro"):
        self.dataset, self.kind = dataset, kind
        self.rows: list[dict] = []
        self.paths: dict[str, list[Path]] = {}
        self.problems: list[Problem] = []

    def subject(self, value, pattern: str, source: Path, row: int | None) -> str | None:
        """A subject cell (int, float or text, optionally with a letter prefix such as
        ``S01``) formatted with ``pattern`` (``sub{:02d}``), or None after recording a
        problem naming the file and row when the cell holds no number."""
        text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else \
            str(value).strip().lstrip("SsUuBb")
        try:
            return pattern.format(int(float(text)))
        except ValueError:
            self.problems.append(Problem("bad subject", str(source), row, f"{self.dataset}/?",
                                         f"Subject cell {str(value).strip()!r} is not a "
                                         f"subject number"))
            return None

    def add(self, *, subject: str, clip: str, emotion: str, aus: str, onset: int | None,
            apex: int | str | None, offset: int | None, fps: float, folder: Path, pattern: str,
            source: Path, row: int | None, apex_annotated: bool = True,
            kind: str | None = None) -> None:
        """Resolve absolute frame numbers against the folder; record a row or a problem.
        ``onset``/``offset`` None mean the first/last frame on disk; ``apex`` None means
        not annotated (the middle frame is used; a warning unless the dataset has no apex
        annotations at all, ``apex_annotated=False``); ``apex="offset"`` means the last
        annotated frame (CK+'s peak)."""
        sid = f"{self.dataset}/{subject}/{clip}"

        def report(kind: str, detail: str, skip: bool = True) -> None:
            self.problems.append(Problem(kind, str(source), row, sid, detail, skip))

        if sid in self.paths:
            report("duplicate clip", "the clip is listed twice; the first row is kept")
            return
        bad = [(name, value) for name, value in (("onset", onset), ("apex", apex),
                                                 ("offset", offset)) if isinstance(value, BadCell)]
        if bad:
            report("bad frame number", "; ".join(f"{name} cell {str(v)!r} is not a frame number"
                                                 for name, v in bad))
            return
        if emotion not in KNOWN_EMOTIONS:
            report("unknown label", f"emotion {emotion!r}; known: {sorted(KNOWN_EMOTIONS)}")
            return
        paths, numbers = frame_files(folder, pattern)
        if not paths:
            report("missing frames", f"no frames matching {pattern} in {folder}")
            return
        onset = numbers[0] if onset is None else onset
        offset = numbers[-1] if offset is None else offset
        apex = offset if apex == "offset" else apex
        position = {n: i for i, n in enumerate(numbers)}
        if onset not in position or offset not in position:
            report("range not on disk", f"annotated {onset}-{offset}, folder holds "
                                        f"{numbers[0]}-{numbers[-1]}")
            return
        if onset > offset:
            report("range reversed", f"onset {onset} after offset {offset}")
            return
        if apex is not None and not onset <= apex <= offset:
            report("apex outside range", f"apex {apex} not in [{onset}, {offset}]")
            return
        if apex is not None and apex not in position:
            report("apex not on disk", f"apex frame {apex} missing from {folder}")
            return
        if apex is None and apex_annotated:
            report("apex missing", "no apex annotation; the middle frame is used", skip=False)
        self.rows.append(dict(
            sample_id=sid, dataset=self.dataset, subject=f"{self.dataset}/{subject}", clip=clip,
            emotion=emotion, aus=aus, onset=position[onset],
            apex=pd.NA if apex is None else position[apex], offset=position[offset], fps=fps,
            n_frames=len(paths), kind=kind or self.kind))
        self.paths[sid] = paths


CHECKS_MEMO = "clip-checks.sqlite"
"""Memo of each clip's load-time checks under the cache folder (``SqliteMemo``)."""


def check_clips(builder: ClipBuilder, digests: dict[str, str], crop_faces: bool
                ) -> tuple[list[dict], dict[str, tuple[int, int, int, int]]]:
    """``builder``'s rows without the clips that fail a check, and the face box of every
    kept clip when ``crop_faces``. Checks: the key frames (onset, apex or the middle
    frame, offset) decode and are all of one size (a frame stored at another size would
    be silently resized into the clip's motion); with ``crop_faces``, a face is found on
    the onset frame (``mer_bench.data.faces``; a clip without one is a problem, never a
    silent whole-frame resize). Each failure becomes a problem naming the file.

    A clip's outcome is memoized under its content digest (``digests``), its key frames
    and the detector, so only a clip never seen decodes anything: a warm load reads no
    frame."""
    from mer_bench.data.digests import SqliteMemo
    from mer_bench.data.faces import DETECTOR
    from mer_bench.features.cache import default_cache_dir
    memo = SqliteMemo(default_cache_dir(), CHECKS_MEMO)
    keys = {row["sample_id"]: ":".join(map(str, (digests[row["sample_id"]], *_key_frames(row),
                                                 DETECTOR if crop_faces else "whole")))
            for row in builder.rows}
    known = memo.lookup(list(keys.values()))
    unseen = [row for row in builder.rows if keys[row["sample_id"]] not in known]
    checked = thread_map(lambda row: _check_clip(builder.paths[row["sample_id"]], row, crop_faces),
                         unseen)
    fresh = {keys[row["sample_id"]]: json.dumps(outcome) for row, outcome in zip(unseen, checked)}
    kept, boxes = [], {}
    for row in builder.rows:
        sid = row["sample_id"]
        problem, box = json.loads(known.get(keys[sid]) or fresh[keys[sid]])
        if problem is None:
            kept.append(row)
            if box is not None:
                boxes[sid] = tuple(box)
            continue
        kind, position, detail = problem
        builder.problems.append(Problem(kind, str(builder.paths[sid][position]), None, sid, detail))
        del builder.paths[sid]
    memo.store(fresh)
    return kept, boxes


def _key_frames(row: dict) -> list[int]:
    """Positions of a row's onset, apex (the middle frame where missing) and offset."""
    apex = row["apex"] if not pd.isna(row["apex"]) else (row["onset"] + row["offset"]) // 2
    return [row["onset"], int(apex), row["offset"]]


def _check_clip(paths: list[Path], row: dict, crop_faces: bool) -> tuple[list | None, list | None]:
    """(problem, face box) of one clip: problem None or [kind, position of the frame at
    fault, detail]; box (x, y, w, h) or None without ``crop_faces``. Key frames are
    decoded gray at 1/8 scale, the onset again at the detection scale."""
    from mer_bench.data.faces import DETECT_SIDE, frame_face_box
    keys = sorted(set(_key_frames(row)))
    images = [cv2.imread(str(paths[i]), cv2.IMREAD_REDUCED_GRAYSCALE_8) for i in keys]
    bad = [i for i, im in zip(keys, images) if im is None]
    if bad:
        return ["unreadable frame", bad[0], "a key frame cannot be decoded"], None
    sizes = {im.shape for im in images}
    if len(sizes) > 1:
        odd = next(i for i, im in zip(keys, images) if im.shape != images[0].shape)
        return ["frame size differs", odd, f"this key frame is not the size of the clip's onset "
                f"frame {paths[keys[0]].name} (1/8-scale shapes {sorted(sizes)})"], None
    if not crop_faces:
        return None, None
    height, width = (8 * n for n in images[0].shape)
    box = frame_face_box(paths[row["onset"]], width, height)
    if box is None:
        return ["no face found", row["onset"], f"no face on the onset frame (searched at "
                f"{DETECT_SIDE} px on its shorter side); a dataset of face crops needs "
                f"--face-crop none"], None
    return None, list(box)


def content_digests(paths: dict[str, list[Path]], sample_ids) -> dict[str, str]:
    """sample id -> ``clip_digest`` of its frame files' content (memoized under the
    default cache folder: warm runs only ``stat`` each file, once). The dataset's
    fingerprint and every cache key hold these, never the folder's path, so a moved or
    copied dataset keeps its run ids and cached features."""
    from mer_bench.data.digests import DigestMemo, clip_digest
    from mer_bench.features.cache import default_cache_dir
    ids = list(sample_ids)
    files = [p for sid in ids for p in paths[sid]]
    digests = iter(DigestMemo(default_cache_dir()).digests(files))
    return {sid: clip_digest([p.name for p in paths[sid]], [next(digests) for _ in paths[sid]])
            for sid in ids}


class FolderDataset(Dataset):
    """A real dataset read from its folders. ``crop_faces``: the dataset's frames are
    whole frames, so each clip is cropped to the face found on its onset frame
    (``check_clips``); ``face_crop="none"`` turns that off (frames used whole, e.g. your
    own crops). Folders of pre-cropped faces are used as they are.

    ``frames`` decodes only the frames asked for, crops and resizes each as it is
    decoded, and keeps the current clip's decoded face crops (one clip per thread), so
    that the specs of one method computed clip by clip (``FeatureCache.materialize_all``)
    decode a frame they share once; memory holds one clip's requested frames per
    thread, whatever the clip's length."""

    synthetic = False
    threadsafe = True

    def __init__(self, name: str, builder: ClipBuilder, root: Path, crop_faces: bool,
                 strict: bool | str = False, face_crop: str = "detect"):
        if face_crop not in FACE_CROPS:
            raise MerBenchError(f"--face-crop {face_crop!r}: choose from {', '.join(FACE_CROPS)}")
        self.crop_faces = crop_faces and face_crop == "detect"
        digests = content_digests(builder.paths, [row["sample_id"] for row in builder.rows])
        rows, self._boxes = check_clips(builder, digests, self.crop_faces)
        self.problems = builder.problems
        failing = [p for p in self.problems
                   if p.skip or (strict == "all" and not p.is_correction)]
        if strict and failing:
            raise MerBenchError(f"{name}: {len(failing)} problems (strict):\n  "
                                + "\n  ".join(p.line() for p in failing))
        for p in self.problems:
            warnings.warn(f"{name}: {p.line()}", stacklevel=2)
        columns = ["sample_id", "dataset", "subject", "clip", "emotion", "aus", "onset", "apex",
                   "offset", "fps", "n_frames", "kind"]
        self.samples = validate_samples(pd.DataFrame(rows, columns=columns), source=str(root))
        self._onsets = dict(zip(self.samples["sample_id"], self.samples["onset"].astype(int)))
        self.name = name
        self.paths = builder.paths
        self._clips = {sid: digests[sid] for sid in self.samples["sample_id"]}
        digest = hashlib.sha256("".join(f"{sid}:{d}\n" for sid, d in self._clips.items()).encode())
        self.fingerprint = f"{name}:{self.crop_faces}:{digest.hexdigest()[:16]}"
        self._decoded = threading.local()

    def frames(self, sample_id: str, indices: np.ndarray, size: int) -> np.ndarray:
        """Frames ``indices`` of the clip, face-cropped and resized: uint8 (n, size,
        size, 3). A frame that does not decode, or whose size is not the onset frame's
        (it would be resized silently into the clip's motion), is an error naming the
        file (``datasets check --all-frames`` lists every such frame)."""
        box = self._boxes.get(sample_id)
        if getattr(self._decoded, "clip", None) != sample_id:
            onset = self._onsets[sample_id]
            image = read_rgb(self.paths[sample_id][onset])
            self._decoded.clip, self._decoded.shape = sample_id, image.shape
            self._decoded.crops = {onset: np.ascontiguousarray(crop(image, box))}
        crops = self._decoded.crops
        for i in {int(i) for i in indices} - crops.keys():
            path = self.paths[sample_id][i]
            image = read_rgb(path)
            if image.shape != self._decoded.shape:
                raise MerBenchError(f"{path}: frame of {image.shape[1]}x{image.shape[0]} px in a "
                                    f"clip of {self._decoded.shape[1]}x{self._decoded.shape[0]}; "
                                    f"`mer-bench datasets check --dataset {self.name} "
                                    f"--all-frames` lists every such frame")
            crops[i] = np.ascontiguousarray(crop(image, box))
        return np.stack([resize_square(crops[int(i)], size) for i in indices])

    def frame_problems(self) -> list[Problem]:
        """Every frame of every kept clip decoded (gray, 1/8 scale) and compared in size
        with the clip's onset frame: one problem per clip with a frame that does not
        decode or differs in size (``datasets check --all-frames``)."""
        problems = thread_map(self._clip_frame_problem, list(self.paths))
        return [p for p in problems if p is not None]

    def _clip_frame_problem(self, sample_id: str) -> Problem | None:
        paths = self.paths[sample_id]
        onset = paths[self._onsets[sample_id]]
        expected = cv2.imread(str(onset), cv2.IMREAD_REDUCED_GRAYSCALE_8).shape
        bad = []
        for path in paths:
            image = cv2.imread(str(path), cv2.IMREAD_REDUCED_GRAYSCALE_8)
            if image is None or image.shape != expected:
                bad.append((path, "does not decode" if image is None else "differs in size"))
        if not bad:
            return None
        detail = "; ".join(f"{p.name} {why}" for p, why in bad[:5]) + (
            f" (+{len(bad) - 5} more)" if len(bad) > 5 else "")
        return Problem("bad frames", str(bad[0][0]), None, sample_id,
                       f"{len(bad)} of {len(paths)} frames: {detail}", skip=False)

    def clip_fingerprint(self, sample_id: str) -> str:
        """The content digest of the clip's frame files (``mer_bench.data.digests``)."""
        return self._clips[sample_id]

    def __getstate__(self) -> dict:
        """Pickled for worker processes without the decoded frames."""
        return {key: value for key, value in self.__dict__.items() if key != "_decoded"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _decoded=threading.local())


def crop(image: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """``image`` cut to ``box`` (x, y, w, h; None: the whole image); a view."""
    if box is None:
        return image
    x, y, w, h = box
    return image[y:y + h, x:x + w]


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` area-resized to ``size`` x ``size``."""
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def crop_and_resize(images: list[np.ndarray], box: tuple[int, int, int, int] | None,
                    size: int) -> np.ndarray:
    """RGB images cropped to ``box`` (x, y, w, h; None: whole image) and area-resized:
    uint8 (n, size, size, 3)."""
    return np.stack([resize_square(crop(im, box), size) for im in images])


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise MerBenchError(f"{path}: unreadable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
