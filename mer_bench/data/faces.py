"""Face boxes for datasets whose frames are not face crops (SAMM, raw CASME II, SMIC,
MMEW, CASME, CAS(ME)², CK+, macro-expression folders).

Detection is OpenCV's bundled frontal-face Haar cascade run on a *downscaled* frame:
the shorter side is brought to ``DETECT_SIDE`` pixels (area resampling) before
``detectMultiScale``. ``benchmarks/bench_realsize.py`` measured cost and recall on 54
onset frames of its real-size CASME II (640 x 480) and SAMM (2040 x 1088) trees, one
core: at a shorter side of full size / 320 / 240 / 160 / 80 px it found 54 / 54 / 54 /
52 / 0 faces in 36 / 31 / 22 / 15 / 4 ms per frame; 240 px is the smallest size above
the first miss.
A JPEG frame is decoded straight at 1/2, 1/4 or 1/8 scale (``IMREAD_REDUCED_*``: the
decoder skips the fine DCT coefficients), so a detection never decodes the full frame.

Boxes are (x, y, w, h) in pixels of the full-size frame: the largest face found, widened
by 10 % on each side and clipped to the frame.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from mer_bench.errors import MerBenchError

DETECT_SIDE = 240
"""Shorter side (px) of the frame the cascade runs on."""
DETECTOR = (f"opencv{cv2.__version__}:haar-frontalface-default:side{DETECT_SIDE}:scale1.1:"
            f"neighbours5:min1/8:pad0.1")
"""Everything that decides a box (the OpenCV build included); part of the memo key of a
clip's checks, so that another detector never reads a memoized box."""
REDUCED_GRAY = {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
                4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}
"""``cv2.imread`` flags that decode a frame in gray at 1/factor of its size."""

_LOCAL = threading.local()


def _cascade() -> cv2.CascadeClassifier:
    """This thread's cascade: ``detectMultiScale`` keeps working buffers in the
    classifier, so threads sharing one find faces in each other's frames (measured: a
    different 2 of 255 clips without a face on each of three runs)."""
    cascade = getattr(_LOCAL, "cascade", None)
    if cascade is None:
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        cascade = _LOCAL.cascade = cv2.CascadeClassifier(str(path))
        if cascade.empty():
            raise MerBenchError(f"OpenCV's face cascade {path} is missing; install "
                                f"opencv-contrib-python-headless==4.14.0.94")
    return cascade


def detect(gray: np.ndarray, side: int = DETECT_SIDE) -> tuple[float, float, float, float] | None:
    """The largest face in uint8 gray (H, W) as (x, y, w, h) in pixels of ``gray``,
    detected after area-downscaling the shorter side to ``side`` (no upscaling); None
    when no face is found."""
    scale = min(1.0, side / min(gray.shape))
    small = gray if scale == 1.0 else cv2.resize(
        gray, (round(gray.shape[1] * scale), round(gray.shape[0] * scale)),
        interpolation=cv2.INTER_AREA)
    min_face = max(24, min(small.shape) // 8)
    faces = _cascade().detectMultiScale(small, 1.1, 5, minSize=(min_face, min_face))
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return x / scale, y / scale, w / scale, h / scale


def padded_box(face: tuple[float, float, float, float], width: int, height: int
               ) -> tuple[int, int, int, int]:
    """``face`` widened by 10 % on each side and clipped to a ``width`` x ``height`` frame."""
    x, y, w, h = face
    x0, y0 = max(0, int(x - 0.1 * w)), max(0, int(y - 0.1 * h))
    x1, y1 = min(width, int(x + w + 0.1 * w)), min(height, int(y + h + 0.1 * h))
    return x0, y0, x1 - x0, y1 - y0


def centred_square(width: int, height: int) -> tuple[int, int, int, int]:
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side, side


def face_box(image: np.ndarray) -> tuple[tuple[int, int, int, int], bool]:
    """((x, y, w, h), found) for an RGB (H, W, 3) frame: the padded face box, or the
    largest centred square and ``found=False`` when no face is found."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    face = detect(gray)
    if face is None:
        return centred_square(width, height), False
    return padded_box(face, width, height), True


def reduction(width: int, height: int, side: int = DETECT_SIDE) -> int:
    """The largest JPEG decode reduction (1, 2, 4 or 8) that keeps the shorter side of
    a ``width`` x ``height`` frame at least ``side`` pixels."""
    return max(f for f in REDUCED_GRAY if f == 1 or min(width, height) / f >= side)


def frame_face_box(path: Path, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The padded face box of the frame file ``path``, about ``width`` x ``height``
    pixels at full size (a size read at 1/8 scale, times 8, will do), decoded gray at
    the reduction ``reduction`` picks; None when no face is found (or the file cannot
    be decoded). The box is in full-size pixels; a decoder that rounds a reduced side up
    can leave it at most ``factor - 1`` px past the frame's edge, which a crop ignores."""
    factor = reduction(width, height)
    gray = cv2.imread(str(path), REDUCED_GRAY[factor])
    if gray is None:
        return None
    face = detect(gray)
    if face is None:
        return None
    x, y, w, h = (v * factor for v in face)
    return padded_box((x, y, w, h), gray.shape[1] * factor, gray.shape[0] * factor)
