"""Method adapters (installed as ``mer_bench.methods``) and their lookup by name.

Importing this package registers the built-in adapters; adapters shipped in other
packages are loaded from the entry-point group ``mer_bench.methods``.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from mer_bench.errors import MerBenchError
from mer_bench.method import _METHODS, Method
from mer_bench.methods import flow_svm, majority, mcnet, mpfnet, protonet  # noqa: F401

ENTRY_POINT_GROUP = "mer_bench.methods"


def _load_entry_points() -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _METHODS:
            ep.load()


def method_names() -> list[str]:
    _load_entry_points()
    return sorted(_METHODS)


def get_method_class(name: str) -> type[Method]:
    _load_entry_points()
    if name not in _METHODS:
        raise MerBenchError(f"unknown method {name!r}; choose from {', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def build_method(name: str, preset: str = "paper", **overrides) -> Method:
    """An adapter instance with the preset's config (plus ``overrides``)."""
    cls = get_method_class(name)
    return cls(cls.Config.from_preset(preset, **overrides))
