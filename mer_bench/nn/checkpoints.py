"""Reading weight files a user names (``checkpoint=``, ``pretrained=``): never running code
from them, and failing with one line that names the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mer_bench.errors import MerBenchError


def load_weights(path: Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU: tensors and plain containers
    only (a pickled object that would run code is refused by torch). A missing,
    truncated, foreign or hostile file raises ``MerBenchError`` naming ``what`` and the
    file; re-running cannot help, so nothing suggests ``--resume``."""
    path = Path(path)
    if not path.is_file():
        raise MerBenchError(f"{what}={path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, RuntimeError (zip), EOFError, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MerBenchError(f"{what}={path}: not a readable weights file "
                            f"({type(err).__name__}: {reason[:200]})") from None
