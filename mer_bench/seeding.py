"""Seeds that are the same in every process and run (never Python's salted ``hash``)."""

from __future__ import annotations

import random
import zlib

import numpy as np


def stable_seed(*parts: object) -> list[int]:
    """A seed sequence for ``np.random.default_rng`` from strings and ints."""
    return [zlib.crc32(str(p).encode()) for p in parts]


def stable_int(*parts: object) -> int:
    """One 32-bit seed from strings and ints (for ``seed_everything``)."""
    return zlib.crc32(":".join(str(p) for p in parts).encode())


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) and pin cuDNN to deterministic
    kernels. (``torch.use_deterministic_algorithms`` is not called: it imports torch's
    compiler stack, seconds per process, and the CPU kernels used here are already
    deterministic.)"""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    import torch
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
