"""Evaluation protocols (installed as ``mer_bench.protocols``), one module each.

``PROTOCOLS`` maps each name to its class and imports a protocol's module only when
that protocol is asked for, so a LOSO run loads LOSO and its base, not the five others.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from mer_bench.errors import MerBenchError
from mer_bench.protocols.base import Fold, Protocol


class ProtocolRegistry(Mapping):
    """name -> protocol class (a ``Mapping``), each module imported on first access."""

    def __init__(self, locations: dict[str, tuple[str, str]]):
        self._locations = locations

    def __getitem__(self, name: str) -> type[Protocol]:
        module, cls = self._locations[name]
        return getattr(importlib.import_module(f"mer_bench.protocols.{module}"), cls)

    def __iter__(self) -> Iterator[str]:
        return iter(self._locations)

    def __len__(self) -> int:
        return len(self._locations)


PROTOCOLS = ProtocolRegistry({
    "loso": ("loso", "LOSO"), "kfold5": ("kfold", "KFold"), "holdout": ("holdout", "Holdout"),
    "cde": ("cde", "CDE"), "fewshot": ("fewshot", "FewShot"), "lodo": ("lodo", "LODO"),
    "au-lodo": ("au", "AULODO"), "au-loso": ("au", "AULOSO"),
})
"""Protocol name -> class (module under ``mer_bench.protocols``, class name)."""


def get_protocol(name: str, **params) -> Protocol:
    """The protocol ``name`` with ``params`` (its dataclass fields)."""
    if name not in PROTOCOLS:
        raise MerBenchError(f"unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)}")
    try:
        return PROTOCOLS[name](**params)
    except TypeError as err:
        raise MerBenchError(f"protocol {name!r}: bad parameters {params}: {err}") from None


__all__ = ["Fold", "Protocol", "PROTOCOLS", "ProtocolRegistry", "get_protocol"]
