"""Frame operators shared by every feature spec and adapter: optical flow (Farneback,
DIS, TV-L1), frame difference, temporal resampling and flow-based synthesis of frames,
flow-based motion magnification, and resizing of flow maps.

Units: frames are uint8 RGB (H, W, 3); flow is float32 (2, H, W) in pixels (channel 0 =
dx, 1 = dy); image channels are RGB scaled to [0, 1].
"""

from __future__ import annotations

import cv2
import numpy as np

from mer_bench.errors import MerBenchError

FLOW_METHODS = ("farneback", "dis", "tvl1", "tvl1-fast")


CHANNELS = {"flow": 2, "diff": 3, "onset": 3, "apex": 3}


def to_gray(frame: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> uint8 (H, W)."""
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def optical_flow(first: np.ndarray, second: np.ndarray, method: str) -> np.ndarray:
    """Dense flow from ``first`` to ``second`` (uint8 RGB frames, same size).

    Returns float32 (2, H, W) in pixels. ``tvl1-fast`` is TV-L1 with warps=1,
    nscales=3, epsilon=0.05 (about 25x faster than the defaults, see offline-assets.md).
    """
    a, b = to_gray(first), to_gray(second)
    if method == "farneback":
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 9, 3, 5, 1.1, 0)
    elif method == "dis":
        flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(a, b, None)
    elif method in ("tvl1", "tvl1-fast"):
        if not hasattr(cv2, "optflow"):
            raise MerBenchError("flow 'tvl1' needs opencv-contrib (cv2.optflow); "
                                "install opencv-contrib-python-headless")
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        if method == "tvl1-fast":
            tvl1.setWarpingsNumber(1)
            tvl1.setScalesNumber(3)
            tvl1.setEpsilon(0.05)
        flow = tvl1.calc(a, b, None)
    else:
        raise MerBenchError(f"unknown flow method {method!r}; choose from {', '.join(FLOW_METHODS)}")
    return np.ascontiguousarray(flow.transpose(2, 0, 1), dtype=np.float32)


def grid_pool(flow: np.ndarray, grid: int) -> np.ndarray:
    """float32 (2, H, W) flow -> float32 (3 * grid^2,): per cell of a ``grid`` x ``grid``
    partition (the last H % grid rows and W % grid columns dropped), mean dx, then mean dy,
    then mean |flow|, each in row-major cell order; pixels."""
    _, h, w = flow.shape
    magnitude = np.sqrt((flow ** 2).sum(0, keepdims=True))
    stacked = np.concatenate([flow, magnitude], axis=0)
    cells = stacked[:, : h - h % grid, : w - w % grid].reshape(3, grid, h // grid, grid, w // grid)
    return cells.mean((2, 4)).reshape(-1)


def frame_difference(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``second - first`` as float32 (3, H, W) on the [0, 1] scale."""
    return ((second.astype(np.float32) - first.astype(np.float32)) / 255.0).transpose(2, 0, 1)


def as_channels(frame: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (3, H, W) in [0, 1]."""
    return (frame.astype(np.float32) / 255.0).transpose(2, 0, 1)


def resample_plan(n: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How ``resample_frames`` takes ``length`` frames from ``n``: (low, high, weight),
    frame ``j`` = (1 - weight[j]) * frames[low[j]] + weight[j] * frames[high[j]] at the
    evenly spaced position j (n - 1) / (length - 1); ``high == low`` where the weight
    is 0, so ``needed_frames`` lists exactly the frames read."""
    positions = np.linspace(0, n - 1, length)
    low = np.floor(positions).astype(int)
    weight = (positions - low).astype(np.float32)
    high = np.where(weight > 0, np.minimum(low + 1, n - 1), low)
    return low, high, weight


def needed_frames(n: int, length: int) -> np.ndarray:
    """Sorted positions (of ``n``) that ``resample_frames`` to ``length`` reads."""
    low, high, _ = resample_plan(n, length)
    return np.union1d(low, high)


def resample_frames(frames: np.ndarray, length: int, n: int | None = None) -> np.ndarray:
    """(n, H, W, 3) uint8 -> (length, H, W, 3): frames at ``length`` evenly spaced
    positions in [0, n - 1], linearly interpolated between the two neighbours where a
    position falls between frames (so fewer than ``length`` frames are upsampled).
    With ``n``, ``frames`` holds only ``needed_frames(n, length)``, in that order."""
    n = len(frames) if n is None else n
    low, high, weight = resample_plan(n, length)
    if len(frames) != n:
        where = {int(i): k for k, i in enumerate(needed_frames(n, length))}
        low, high = (np.array([where[int(i)] for i in index]) for index in (low, high))
    w = weight[:, None, None, None]
    mixed = frames[low].astype(np.float32) * (1 - w) + frames[high].astype(np.float32) * w
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def warp_backward(frame: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """``frame`` moved by ``displacement`` (2, H, W) px: out(y) = frame(y - d(y))."""
    h, w = frame.shape[:2]
    grid_y, grid_x = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(frame, grid_x - displacement[0], grid_y - displacement[1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def synthesize_frames(onset: np.ndarray, apex: np.ndarray, length: int, method: str) -> np.ndarray:
    """``length`` frames from onset to apex made from those two frames alone: the onset
    warped along the onset -> apex flow by fractions 0, 1/(length-1), ..., 1 (a classic,
    flow-based stand-in for a learned frame interpolator)."""
    flow = optical_flow(onset, apex, method)
    return np.stack([warp_backward(onset, flow * (t / (length - 1))) for t in range(length)])


def magnify_frames(frames: np.ndarray, phi: float, method: str) -> np.ndarray:
    """Flow-based motion magnification ``I(x + (1 + phi) * delta_t(x))`` (Wu et al.):
    delta_t is the flow from the first frame to frame t; every frame is re-rendered from
    the first one displaced by (1 + phi) * delta_t. ``phi = 0`` re-renders the motion as
    estimated. (n, H, W, 3) uint8 in and out."""
    first = frames[0]
    out = [first]
    for frame in frames[1:]:
        out.append(warp_backward(first, (1 + phi) * optical_flow(first, frame, method)))
    return np.stack(out)


def sequence_channels(frames: np.ndarray, channels: tuple[str, ...], method: str) -> np.ndarray:
    """Per consecutive pair of (L, H, W, 3) frames: flow (2 ch, px) and/or absolute frame
    difference (3 ch, [0, 1]), stacked as float32 (C, L - 1, H, W)."""
    steps = []
    for a, b in zip(frames[:-1], frames[1:]):
        parts = []
        if "flow" in channels:
            parts.append(optical_flow(a, b, method))
        if "diff" in channels:
            parts.append(np.abs(frame_difference(a, b)))
        steps.append(np.concatenate(parts, axis=0))
    return np.stack(steps, axis=1)


def resize_channels(x: np.ndarray, size: int, channels: tuple[str, ...]) -> np.ndarray:
    """Area-resize (C, T, H, W) maps to (C, T, size, size); flow channels are rescaled
    to pixels at the new size."""
    c, t, h, _ = x.shape
    planes = [cv2.resize(plane, (size, size), interpolation=cv2.INTER_AREA)
              for plane in x.reshape(c * t, h, h)]
    out = np.stack(planes).reshape(c, t, size, size)
    if "flow" in channels:
        out[:2] *= size / h
    return out


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Optical strain magnitude of a flow field (2, H, W) px -> float32 (H, W):
    ``sqrt(u_x² + v_y² + ½ (u_y + v_x)²)``, the norm of the infinitesimal strain tensor
    ``ε = ½ (∇u + ∇uᵀ)`` (normal components u_x, v_y; shear ½ (u_y + v_x), counted twice),
    derivatives by central differences (one-sided at the border). A translation or a
    rotation of the face has zero strain; a non-rigid deformation does not."""
    u_y, u_x = np.gradient(flow[0].astype(np.float64))
    v_y, v_x = np.gradient(flow[1].astype(np.float64))
    return np.sqrt(u_x ** 2 + v_y ** 2 + 0.5 * (u_y + v_x) ** 2).astype(np.float32)

