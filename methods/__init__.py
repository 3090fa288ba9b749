"""Method adapters (installed as ``mer_bench.methods``) and their lookup by name.

The built-in adapters are imported only when a method of theirs is asked for (``BUILTIN``
maps each name to its module), so a scikit-learn method's run never imports torch;
adapters shipped in other packages are loaded, by name, from the entry-point group
``mer_bench.methods``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from mer_bench.errors import MerBenchError
from mer_bench.method import _METHODS, Method

BUILTIN = {
    "attr-contrast": "attr_contrast",
    "bi-woof": "bi_woof",
    "flow-svm": "flow_svm",
    "lbp-top": "lbp_top",
    "lightmannet": "lightmannet",
    "ma2mi": "ma2mi",
    "majority": "majority",
    "mcnet": "mcnet",
    "mpfnet-c": "mpfnet",
    "mpfnet-p": "mpfnet",
    "off-apexnet": "off_apexnet",
    "protonet": "protonet",
    "ststnet": "ststnet",
}
"""Built-in method name -> its module under ``mer_bench.methods``."""
ENTRY_POINT_GROUP = "mer_bench.methods"
_FILES: dict[tuple[str, str], list[str]] = {}
"""(resolved path, sha256) of an adapter file -> the method names it registered."""


@cache
def _entry_points() -> dict[str, EntryPoint]:
    """Installed adapter packages' methods by name (read once per process)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def method_names() -> list[str]:
    """Every method that can be run: built-in, installed, and registered in this process."""
    return sorted({*BUILTIN, *_entry_points(), *_METHODS})


def get_method_class(name: str) -> type[Method]:
    """The adapter class registered as ``name``, importing its module on first use."""
    if name not in _METHODS:
        if name in BUILTIN:
            importlib.import_module(f"mer_bench.methods.{BUILTIN[name]}")
        elif name in _entry_points():
            _entry_points()[name].load()
    if name not in _METHODS:
        raise MerBenchError(f"unknown method {name!r}; choose from {', '.join(method_names())}")
    return _METHODS[name]


def build_method(name: str, preset: str = "paper", **overrides) -> Method:
    """An adapter instance with the preset's config (plus ``overrides``)."""
    cls = get_method_class(name)
    return cls(cls.Config.from_preset(preset, **overrides))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_adapter_file(path: str | Path) -> list[str]:
    """Import a ``.py`` adapter file (once per process and file content) and return the
    names of the methods it registers."""
    path = Path(path).resolve()
    if not path.is_file():
        raise MerBenchError(f"{path}: no such adapter file")
    key = (str(path), file_sha256(path))
    if key in _FILES and all(n in _METHODS for n in _FILES[key]):
        return _FILES[key]
    before = set(_METHODS)
    spec = importlib.util.spec_from_file_location(f"mer_bench_user_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # SyntaxError, an exception, even SystemExit(0) at import
        sys.modules.pop(spec.name, None)
        for name in set(_METHODS) - before:
            del _METHODS[name]
        where = f" (line {err.lineno})" if isinstance(err, SyntaxError) and err.lineno else ""
        raise MerBenchError(f"{path}: importing the adapter file failed{where}: "
                            f"{type(err).__name__}: {err}") from None
    names = sorted(set(_METHODS) - before)
    taken = [n for n in names if n in BUILTIN or n in _entry_points()]
    if taken:
        for name in names:
            del _METHODS[name]
        raise MerBenchError(f"{path}: registers {', '.join(taken)}, the name of an installed "
                            f"method; an adapter file must use a name of its own")
    if not names:
        raise MerBenchError(f"{path}: registers no method (use @register_method)")
    _FILES[key] = names
    return names


def resolve_method(name_or_path: str) -> str:
    """A registered method's name, given the name or a ``.py`` file that registers
    exactly one method."""
    if not name_or_path.endswith(".py"):
        return get_method_class(name_or_path).name
    names = load_adapter_file(name_or_path)
    if len(names) != 1:
        raise MerBenchError(f"{name_or_path}: registers {len(names)} methods ({', '.join(names)}); "
                            f"run one by its name after importing the file")
    return names[0]
