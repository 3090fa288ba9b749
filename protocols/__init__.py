"""Evaluation protocols (installed as ``mer_bench.protocols``), one module each."""

from __future__ import annotations

from mer_bench.errors import MerBenchError
from mer_bench.protocols.base import Fold, Protocol
from mer_bench.protocols.cde import CDE
from mer_bench.protocols.fewshot import FewShot
from mer_bench.protocols.holdout import Holdout
from mer_bench.protocols.kfold import KFold
from mer_bench.protocols.lodo import LODO
from mer_bench.protocols.loso import LOSO

PROTOCOLS: dict[str, type[Protocol]] = {p.name: p for p in (LOSO, KFold, Holdout, CDE, FewShot, LODO)}


def get_protocol(name: str, **params) -> Protocol:
    """The protocol ``name`` with ``params`` (its dataclass fields)."""
    if name not in PROTOCOLS:
        raise MerBenchError(f"unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)}")
    try:
        return PROTOCOLS[name](**params)
    except TypeError as err:
        raise MerBenchError(f"protocol {name!r}: bad parameters {params}: {err}") from None


__all__ = ["Fold", "Protocol", "PROTOCOLS", "get_protocol"]
