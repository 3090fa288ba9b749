"""Deterministic rendering of synthetic faces and action-unit (AU) motion.

Geometry is defined on a canonical 128 x 128 canvas (pixels) and scaled to the frame
size asked for, so a micro-expression of 1 px at 128 px is 0.875 px at 112 px.

A clip's frame ``t`` is the subject's face (fixed geometry, skin tone and a fixed
band-pass texture that optical flow can track) backward-warped by

    delta_t(x) = p(t) * D_au(x) + b(t) * D_blink(x) + h(t)

where ``D_au`` is the sum of the clip's AU displacement fields (Gaussian bumps anchored
at landmarks, each pushing its anchor along the AU's direction), ``p`` the
onset -> apex -> offset profile (raised cosine, 0 outside [onset, offset]), ``b`` an
optional blink unrelated to the emotion and ``h`` a small smooth head translation.
Illumination (gain, offset, a horizontal gradient) jitters per frame and Gaussian sensor
noise is added. Everything is seeded from integers, never from Python's ``hash``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

CANVAS = 128

# Landmarks relative to the face centre, in units of (face half-width, face half-height).
LANDMARKS: dict[str, tuple[float, float]] = {
    "brow_inner_L": (-0.25, -0.42), "brow_inner_R": (0.25, -0.42),
    "brow_outer_L": (-0.68, -0.38), "brow_outer_R": (0.68, -0.38),
    "eye_upper_L": (-0.45, -0.27), "eye_upper_R": (0.45, -0.27),
    "eye_lower_L": (-0.45, -0.15), "eye_lower_R": (0.45, -0.15),
    "cheek_L": (-0.58, 0.08), "cheek_R": (0.58, 0.08),
    "nose_wing_L": (-0.2, 0.08), "nose_wing_R": (0.2, 0.08),
    "mouth_L": (-0.38, 0.47), "mouth_R": (0.38, 0.47),
    "lip_upper": (0.0, 0.40), "lip_lower": (0.0, 0.55),
    "chin": (0.0, 0.80),
}

# AU -> [(landmark, (dx, dy) direction in image coordinates, y down)].
AU_FIELDS: dict[int, list[tuple[str, tuple[float, float]]]] = {
    1: [("brow_inner_L", (0.0, -1.0)), ("brow_inner_R", (0.0, -1.0))],
    2: [("brow_outer_L", (0.0, -1.0)), ("brow_outer_R", (0.0, -1.0))],
    4: [("brow_inner_L", (0.5, 0.85)), ("brow_inner_R", (-0.5, 0.85)),
        ("brow_outer_L", (0.0, 0.5)), ("brow_outer_R", (0.0, 0.5))],
    5: [("eye_upper_L", (0.0, -0.8)), ("eye_upper_R", (0.0, -0.8))],
    6: [("cheek_L", (0.0, -1.0)), ("cheek_R", (0.0, -1.0)),
        ("eye_lower_L", (0.0, -0.4)), ("eye_lower_R", (0.0, -0.4))],
    7: [("eye_lower_L", (0.0, -1.0)), ("eye_lower_R", (0.0, -1.0))],
    9: [("nose_wing_L", (0.0, -1.0)), ("nose_wing_R", (0.0, -1.0)),
        ("brow_inner_L", (0.0, 0.4)), ("brow_inner_R", (0.0, 0.4))],
    10: [("lip_upper", (0.0, -1.0)), ("nose_wing_L", (0.0, -0.4)),
         ("nose_wing_R", (0.0, -0.4))],
    12: [("mouth_L", (-0.7, -0.7)), ("mouth_R", (0.7, -0.7))],
    14: [("mouth_L", (0.9, -0.1)), ("mouth_R", (-0.9, -0.1))],
    15: [("mouth_L", (0.0, 1.0)), ("mouth_R", (0.0, 1.0))],
    17: [("chin", (0.0, -1.0)), ("lip_lower", (0.0, -0.6))],
    20: [("mouth_L", (-1.0, 0.2)), ("mouth_R", (1.0, 0.2))],
    23: [("lip_upper", (0.0, 0.5)), ("lip_lower", (0.0, -0.5)),
         ("mouth_L", (0.4, 0.0)), ("mouth_R", (-0.4, 0.0))],
    24: [("lip_upper", (0.0, 0.8)), ("lip_lower", (0.0, -0.8))],
    25: [("lip_lower", (0.0, 0.8)), ("lip_upper", (0.0, -0.3))],
    26: [("chin", (0.0, 1.0)), ("lip_lower", (0.0, 1.0))],
}
BLINK_FIELD = [("eye_upper_L", (0.0, 1.0)), ("eye_upper_R", (0.0, 1.0))]
ANCHOR_SIGMA = 6.0  # px at 128


@dataclass(frozen=True)
class FaceGeometry:
    """A subject's face, canonical 128 px units. ``landmarks`` maps name -> (x, y)."""

    center: tuple[float, float]
    half_size: tuple[float, float]
    skin: tuple[float, float, float]
    landmarks: tuple[tuple[str, tuple[float, float]], ...]

    @property
    def points(self) -> dict[str, tuple[float, float]]:
        return dict(self.landmarks)


def make_geometry(seed: list[int]) -> FaceGeometry:
    """A random but plausible face: centre, size, skin tone (RGB 0-255), landmark jitter."""
    rng = np.random.default_rng(seed)
    cx, cy = 64 + rng.uniform(-3, 3), 66 + rng.uniform(-3, 3)
    hw, hh = rng.uniform(46, 54), rng.uniform(56, 64)
    tone = rng.uniform(0.35, 0.95)
    skin = (150 + 90 * tone, 100 + 90 * tone, 80 + 80 * tone)
    marks = tuple((name, (cx + u * hw + rng.normal(0, 1.2), cy + v * hh + rng.normal(0, 1.2)))
                  for name, (u, v) in LANDMARKS.items())
    return FaceGeometry((cx, cy), (hw, hh), skin, marks)


@lru_cache(maxsize=256)
def render_face(geometry: FaceGeometry, texture_seed: tuple[int, ...], size: int) -> np.ndarray:
    """The neutral face at ``size`` px: float32 (size, size, 3) in [0, 255]."""
    rng = np.random.default_rng(list(texture_seed))
    s = size / CANVAS
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / s
    cx, cy = geometry.center
    hw, hh = geometry.half_size
    inside = np.clip((1 - np.sqrt(((xx - cx) / hw) ** 2 + ((yy - cy) / hh) ** 2)) * 8, 0, 1)
    shade = 0.85 + 0.15 * np.exp(-(((xx - cx) / hw) ** 2 + ((yy - cy + 10) / hh) ** 2))
    skin = np.asarray(geometry.skin, np.float32)
    background = np.asarray([70.0, 80.0, 90.0], np.float32)
    img = (inside[..., None] * skin * shade[..., None]
           + (1 - inside[..., None]) * background)
    # Fixed band-pass texture (pores, freckles) that optical flow can follow.
    noise = rng.normal(0, 1, (size, size)).astype(np.float32)
    texture = cv2.GaussianBlur(noise, (0, 0), 1.2 * max(s, 0.5))
    texture *= 14.0 / (texture.std() + 1e-6)
    img += texture[..., None]
    _draw_features(img, geometry, s)
    return np.clip(img, 0, 255).astype(np.float32)


def _draw_features(img: np.ndarray, geometry: FaceGeometry, s: float) -> None:
    """Brows, eyes, nose and lips as soft dark/red strokes, in place."""
    p = geometry.points
    layer = np.zeros(img.shape[:2], np.float32)
    lips = np.zeros(img.shape[:2], np.float32)

    def pt(name: str) -> tuple[int, int]:
        x, y = p[name]
        return int(round(x * s * 16)), int(round(y * s * 16))

    thick = max(1, int(round(3 * s)))
    for side in "LR":
        cv2.line(layer, pt(f"brow_inner_{side}"), pt(f"brow_outer_{side}"), 1.0, thick,
                 cv2.LINE_AA, shift=4)
        ex, ey = p[f"eye_upper_{side}"]
        _, ly = p[f"eye_lower_{side}"]
        centre = (int(round(ex * s * 16)), int(round((ey + ly) / 2 * s * 16)))
        axes = (int(round(7 * s * 16)), int(round(max(2.0, (ly - ey) / 2 + 1) * s * 16)))
        cv2.ellipse(layer, centre, axes, 0, 0, 360, 0.8, -1, cv2.LINE_AA, shift=4)
        cv2.line(layer, pt(f"nose_wing_{side}"), pt("lip_upper"), 0.25, thick, cv2.LINE_AA,
                 shift=4)
    cv2.ellipse(lips, (int(round((p["mouth_L"][0] + p["mouth_R"][0]) / 2 * s * 16)),
                       int(round((p["lip_upper"][1] + p["lip_lower"][1]) / 2 * s * 16))),
                (int(round((p["mouth_R"][0] - p["mouth_L"][0]) / 2 * s * 16)),
                 int(round(4 * s * 16))), 0, 0, 360, 1.0, -1, cv2.LINE_AA, shift=4)
    blur = max(0.5, 0.8 * s)
    layer = cv2.GaussianBlur(layer, (0, 0), blur)[..., None]
    lips = cv2.GaussianBlur(lips, (0, 0), blur)[..., None]
    img *= 1 - 0.65 * layer
    img += lips * (np.asarray([150.0, 40.0, 50.0], np.float32) - img) * 0.5


def parse_aus(aus: str) -> list[tuple[str, int]]:
    """``"L6+12"`` -> [("L", 6), ("", 12)]; side is "", "L" or "R"."""
    out = []
    for part in filter(None, aus.split("+")):
        side = part[0] if part[0] in "LR" else ""
        out.append((side, int(part[len(side):])))
    return out


def displacement_field(geometry: FaceGeometry, anchors: list[tuple[str, tuple[float, float], float]],
                       size: int) -> np.ndarray:
    """Sum of Gaussian displacement bumps: float32 (2, size, size), pixels at ``size``.

    ``anchors`` holds (landmark, unit direction, amplitude in canonical px).
    """
    s = size / CANVAS
    coords = np.arange(size, dtype=np.float32)
    field = np.zeros((2, size, size), np.float32)
    sigma = ANCHOR_SIGMA * s
    points = geometry.points
    for name, (dx, dy), amp in anchors:
        x0, y0 = points[name][0] * s, points[name][1] * s
        gx = np.exp(-((coords - x0) ** 2) / (2 * sigma ** 2))
        gy = np.exp(-((coords - y0) ** 2) / (2 * sigma ** 2))
        bump = np.outer(gy, gx) * (amp * s)
        field[0] += dx * bump
        field[1] += dy * bump
    return field


def au_anchors(aus: str, amplitude: float) -> list[tuple[str, tuple[float, float], float]]:
    """Anchors of an AU string; a unilateral AU (``R14``) moves only that side's
    landmarks and its midline landmarks at half amplitude."""
    anchors = []
    for side, au in parse_aus(aus):
        for name, direction in AU_FIELDS[au]:
            lm_side = name[-1] if name[-2] == "_" and name[-1] in "LR" else ""
            if side and lm_side and lm_side != side:
                continue
            weight = 0.5 if side and not lm_side else 1.0
            anchors.append((name, direction, amplitude * weight))
    return anchors


def profile(t: np.ndarray, onset: int, apex: int, offset: int) -> np.ndarray:
    """Expression intensity in [0, 1]: raised cosine up onset -> apex, down to offset."""
    t = np.asarray(t, dtype=np.float64)
    out = np.zeros_like(t)
    rise = (t >= onset) & (t <= apex)
    fall = (t > apex) & (t <= offset)
    if apex > onset:
        out[rise] = 0.5 - 0.5 * np.cos(np.pi * (t[rise] - onset) / (apex - onset))
    else:
        out[rise] = 1.0
    if offset > apex:
        out[fall] = 0.5 + 0.5 * np.cos(np.pi * (t[fall] - apex) / (offset - apex))
    return out


@dataclass(frozen=True)
class ClipMotion:
    """Everything that moves in one clip, drawn once per clip (canonical px units)."""

    aus: str
    amplitude: float
    onset: int
    apex: int
    offset: int
    n_frames: int
    blink: tuple[int, float] | None     # (centre frame, amplitude px) or None
    head: tuple[float, float, float, float]  # start (x, y) and end (x, y) translation, px
    light_seed: tuple[int, ...]


def render_clip_frames(geometry: FaceGeometry, texture_seed: tuple[int, ...],
                       motion: ClipMotion, indices: np.ndarray, size: int) -> np.ndarray:
    """Frames ``indices`` of a clip: uint8 (len(indices), size, size, 3), RGB."""
    base = render_face(geometry, texture_seed, size)
    s = size / CANVAS
    au_field = displacement_field(geometry, au_anchors(motion.aus, motion.amplitude), size)
    blink_field = (displacement_field(geometry, [(n, d, motion.blink[1]) for n, d in BLINK_FIELD],
                                      size) if motion.blink else None)
    grid_y, grid_x = np.mgrid[0:size, 0:size].astype(np.float32)
    ramp = np.linspace(-1, 1, size, dtype=np.float32)[None, :, None]
    intensity = profile(indices, motion.onset, motion.apex, motion.offset)
    last = max(motion.n_frames - 1, 1)
    frames = np.empty((len(indices), size, size, 3), np.uint8)
    for k, t in enumerate(np.asarray(indices, dtype=np.int64)):
        field = au_field * np.float32(intensity[k])
        if blink_field is not None:
            b = np.exp(-0.5 * ((t - motion.blink[0]) / 1.2) ** 2)
            field = field + blink_field * np.float32(b)
        frac = t / last
        hx = float(motion.head[0] + (motion.head[2] - motion.head[0]) * frac) * s
        hy = float(motion.head[1] + (motion.head[3] - motion.head[1]) * frac) * s
        warped = cv2.remap(base, grid_x - field[0] - hx, grid_y - field[1] - hy,
                           cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        rng = np.random.default_rng(list(motion.light_seed) + [int(t)])
        gain, offset, tilt = rng.normal(1.0, 0.015), rng.normal(0, 1.5), rng.normal(0, 2.0)
        warped = warped * gain + offset + tilt * ramp
        warped += rng.normal(0, 2.0, warped.shape).astype(np.float32)
        frames[k] = np.clip(warped, 0, 255).astype(np.uint8)
    return frames
