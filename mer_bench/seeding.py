"""Seeds that are the same in every process and run (never Python's salted ``hash``)."""

from __future__ import annotations

import random
import zlib

import numpy as np


def stable_seed(*parts: object) -> list[int]:
    """A seed sequence for ``np.random.default_rng`` from strings and ints."""
    return [zlib.crc32(str(p).encode()) for p in parts]


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
