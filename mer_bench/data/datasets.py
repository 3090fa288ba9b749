"""Datasets by name: every built-in real loader and synthetic twin, registered on import.

``load_dataset(name)`` returns a ``Dataset`` (``mer_bench.data.registry``): a validated
sample table with lazy frame access.
"""

from __future__ import annotations

import mer_bench.data.loaders  # noqa: F401  (registers the real datasets)
import mer_bench.data.synthetic.twins  # noqa: F401  (registers the synthetic twins)
from mer_bench.data.macro_folder import MacroFolder, is_macro_folder
from mer_bench.data.registry import (
    _REGISTRY,
    CompositeDataset,
    Dataset,
    register_dataset,
)
from mer_bench.errors import MerBenchError

__all__ = ["CompositeDataset", "Dataset", "dataset_names", "load_dataset", "register_dataset"]


def dataset_names() -> dict[str, str]:
    """Registered dataset names -> one-line descriptions."""
    return {name: desc for name, (_, desc) in sorted(_REGISTRY.items())}


def load_dataset(name: str, **options) -> Dataset:
    """The dataset ``name``; ``options`` go to its factory (e.g. ``data_seed``).
    ``folder:PATH`` (or ``folder-cropped:PATH``) is a folder of unlabelled videos or
    frame folders (``mer_bench.data.macro_folder``)."""
    if is_macro_folder(name):
        return MacroFolder(name)
    if name not in _REGISTRY:
        raise MerBenchError(f"unknown dataset {name!r}; choose from {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name][0](**options)
