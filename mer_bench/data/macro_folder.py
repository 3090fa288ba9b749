"""``folder:PATH``: a folder of unlabelled face videos or frame folders (DFEW, FERV39K,
AFEW as a user holds them) as a macro-expression source for pre-training.

Every video file (``.mp4 .avi .mov .mkv .webm``) and every folder that directly holds
images (``.jpg .jpeg .png .bmp``, ordered by the number in their names) under PATH, at
any depth, is one clip. A clip's subject is its first path component under PATH (its
own name when it lies at the top). Labels: none (emotion ``unlabelled``, scheme
``unlabelled``). Faces are cropped as in the micro loaders: OpenCV's Haar cascade on the
clip's first frame, the whole clip cropped to that box (``face_box``); pass a folder of
pre-cropped faces with ``folder-cropped:PATH`` to skip detection.

Clips with fewer than two readable frames are skipped with a warning naming them.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from mer_bench.data.faces import face_box
from mer_bench.data.folders import content_digests, crop_and_resize, read_rgb
from mer_bench.data.registry import Dataset
from mer_bench.data.samples import validate_samples
from mer_bench.errors import MerBenchError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
PREFIXES = ("folder:", "folder-cropped:")


def is_macro_folder(name: str) -> bool:
    return name.startswith(PREFIXES)


def _frame_order(path: Path) -> tuple[int, str]:
    numbers = re.findall(r"\d+", path.stem)
    return (int(numbers[-1]) if numbers else -1, path.name)


def _video_frame_count(path: Path) -> tuple[int, float]:
    capture = cv2.VideoCapture(str(path))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), float(capture.get(cv2.CAP_PROP_FPS) or 30.0)
    finally:
        capture.release()


class MacroFolder(Dataset):
    """Unlabelled clips found under a folder (see the module docstring)."""

    synthetic = False

    def __init__(self, name: str):
        prefix = next(p for p in PREFIXES if name.startswith(p))
        self.root = Path(name[len(prefix):]).expanduser()
        if not self.root.is_dir():
            raise MerBenchError(f"--macro-dataset {name}: {self.root} is not a folder")
        self.name, self.crop_faces = name, prefix == "folder:"
        self.sources: dict[str, Path | list[Path]] = {}
        rows = [row for row in (self._clip(p) for p in self._candidates()) if row is not None]
        if not rows:
            raise MerBenchError(f"--macro-dataset {name}: no videos ({' '.join(VIDEO_SUFFIXES)}) "
                                f"or frame folders ({' '.join(IMAGE_SUFFIXES)}) under {self.root}")
        self.samples = validate_samples(pd.DataFrame(rows), source=str(self.root))
        self._boxes: dict[str, tuple[int, int, int, int]] = {}
        files = {sid: s if isinstance(s, list) else [s] for sid, s in self.sources.items()}
        self._clips = content_digests(files, self.samples["sample_id"])
        digest = hashlib.sha256("".join(f"{sid}:{d}\n" for sid, d in self._clips.items()).encode())
        self.fingerprint = f"{name}:{self.crop_faces}:{digest.hexdigest()[:16]}"

    def _candidates(self) -> list[Path]:
        videos = [p for p in self.root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES]
        folders = {p.parent for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES}
        return sorted(videos) + sorted(folders)

    def _clip(self, path: Path) -> dict | None:
        relative = path.relative_to(self.root)
        try:
            relative.as_posix().encode("utf-8")
        except UnicodeEncodeError:
            raise MerBenchError(f"--macro-dataset {self.name}: {ascii(str(path))} is not a UTF-8 "
                                f"name (clip ids and result files are UTF-8); rename it") from None
        if path.is_dir():
            frames = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                            key=_frame_order)
            n, fps, source = len(frames), 30.0, frames
        else:
            (n, fps), source = _video_frame_count(path), path
        sample_id = f"folder/{relative.as_posix()}"
        if n < 2:
            warnings.warn(f"{path}: fewer than two frames; skipped", stacklevel=3)
            return None
        self.sources[sample_id] = source
        subject = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        return dict(sample_id=sample_id, dataset="folder", subject=f"folder/{subject}",
                    clip=relative.as_posix(), emotion="unlabelled", aus="", onset=0, apex=n - 1,
                    offset=n - 1, fps=fps, n_frames=n, kind="macro")

    def _read(self, sample_id: str, indices: np.ndarray) -> list[np.ndarray]:
        source = self.sources[sample_id]
        if isinstance(source, list):
            return [read_rgb(source[int(i)]) for i in indices]
        capture, images = cv2.VideoCapture(str(source)), []
        try:
            for i in indices:
                capture.set(cv2.CAP_PROP_POS_FRAMES, int(i))
                ok, frame = capture.read()
                if not ok:
                    raise MerBenchError(f"{source}: frame {int(i)} cannot be decoded")
                images.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        finally:
            capture.release()
        return images

    def frames(self, sample_id: str, indices: np.ndarray, size: int) -> np.ndarray:
        return crop_and_resize(self._read(sample_id, indices),
                               self._face_box(sample_id) if self.crop_faces else None, size)

    def clip_fingerprint(self, sample_id: str) -> str:
        """The content digest of the clip's frame or video files."""
        return self._clips[sample_id]

    def _face_box(self, sample_id: str) -> tuple[int, int, int, int]:
        if sample_id not in self._boxes:
            box, found = face_box(self._read(sample_id, np.array([0]))[0])
            if not found:
                warnings.warn(f"{sample_id}: no face found on the first frame; the largest "
                              f"centred square is used", stacklevel=2)
            self._boxes[sample_id] = box
        return self._boxes[sample_id]
