"""Seeds that are the same in every process and run (never Python's salted ``hash``)."""

from __future__ import annotations

import random
import zlib

import numpy as np


def stable_seed(*parts: object) -> list[int]:
    """A seed sequence for ``np.random.default_rng`` from strings and ints."""
    return [zlib.crc32(str(p).encode()) for p in parts]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) and ask torch for deterministic
    kernels where it has them."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    import torch
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
