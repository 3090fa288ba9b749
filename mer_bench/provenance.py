"""The code a run executed, as a result records it (``code``) and the leaderboard checks it.

A run's predictions come from its adapter module and the project modules it reaches:
the closure of ``mer_bench`` imports (module-level and inside functions, read from the
source with ``ast``, never by importing) from the adapter, the runner and the protocol.
The report package and the command line are left out: they summarize predictions and do
not make them (the metrics are re-derived from the predictions by verification anyway).

``code_identity`` -> {"version": package version, "adapter": sha256 of the adapter's
source file, "core": sha256 over (module name, source) of the rest of the closure,
"modules": how many}. A result whose recorded identity differs from the one the
installed code gives is *stale* (``mer_bench.report.staleness``): it verifies (its
metrics follow from its predictions) but re-running it may give other predictions
(``mer-bench reproduce`` says which).

``feature_code`` digests the same way the code that computes a feature spec, for
feature-cache keys.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import sys
from functools import cache
from pathlib import Path

from mer_bench import __version__

PROJECT = "mer_bench"
NOT_PREDICTION_CODE = ("mer_bench.report", "mer_bench.cli")
"""Modules (and packages) that never take part in making a prediction."""
REGISTRIES = ("mer_bench", "mer_bench.methods", "mer_bench.protocols")
"""Package ``__init__`` modules that only name things (the version, the adapters and
protocols by name): adding a method must not make every other row stale."""
ROOTS = ("mer_bench.runner",)
"""Modules every run executes, whatever its method and protocol."""


def _is_core(name: str) -> bool:
    return (name == PROJECT or name.startswith(PROJECT + ".")) and name not in REGISTRIES \
        and not any(name == skip or name.startswith(skip + ".") for skip in NOT_PREDICTION_CODE)


@cache
def _package_dirs() -> dict[str, Path]:
    """Folder of each top-level project package (``mer_bench.methods`` and
    ``mer_bench.protocols`` are installed from folders of their own), found without
    importing them."""
    dirs = {PROJECT: Path(importlib.util.find_spec(PROJECT).origin).parent}
    for sub in ("methods", "protocols"):
        spec = importlib.util.find_spec(f"{PROJECT}.{sub}")
        dirs[f"{PROJECT}.{sub}"] = Path(spec.origin).parent
    return dirs


@cache
def _source_file(name: str) -> Path | None:
    """The source file of project module ``name`` (a package's ``__init__.py``), or None
    when ``name`` is not a module (``from mer_bench.x import function``)."""
    parts = name.split(".")
    top = ".".join(parts[:2]) if ".".join(parts[:2]) in _package_dirs() else parts[0]
    if top not in _package_dirs():
        return None
    folder = _package_dirs()[top].joinpath(*parts[len(top.split(".")):])
    for path in (folder / "__init__.py", folder.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _imports(path: Path, package: str) -> frozenset[str]:
    """Project modules ``path`` imports (``package``: the package its relative imports
    are resolved against)."""
    return _imported_modules(path.read_text(), str(path), package)


@cache
def _imported_modules(source: str, filename: str, package: str) -> frozenset[str]:
    """``_imports`` of a file's ``source`` text, parsed once per process and text (a
    run and its leaderboard refresh both ask)."""
    names = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    found = set()
    for name in names:
        parts = name.split(".")
        found.update(".".join(parts[:k]) for k in range(1, len(parts) + 1))
    return frozenset(n for n in found if _is_core(n) and _source_file(n) is not None)


def closure(roots: tuple[str, ...]) -> dict[str, Path]:
    """Project module name -> source file, for ``roots`` and every core module they reach."""
    seen: dict[str, Path] = {}
    todo = [r for r in roots if _source_file(r) is not None and r not in REGISTRIES]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = seen[name] = _source_file(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        todo.extend(n for n in _imports(path, package) if n not in seen)
    return seen


def _digest(items: list[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, data in items:
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def _module_file(name: str) -> Path | None:
    """The source file of any imported or project module (an adapter registered by an
    installed package or a test lives outside the project's folders)."""
    found = _source_file(name)
    if found is None and getattr(sys.modules.get(name), "__file__", None):
        found = Path(sys.modules[name].__file__)
    return found if found is not None and found.suffix == ".py" else None


def code_identity(adapter_module: str, protocol_module: str, adapter_file: Path | None = None
                  ) -> dict:
    """What a result records of the code it ran (see the module docstring).
    ``adapter_file``: a ``--method my.py`` adapter (its module is not importable by name).
    An adapter whose source cannot be read is recorded as ``"adapter": None`` (and so
    is always stale)."""
    source = Path(adapter_file) if adapter_file is not None else _module_file(adapter_module)
    extra = set(_imports(source, PROJECT)) if source is not None else set()
    if adapter_file is None and _is_core(adapter_module):
        extra.add(adapter_module)
    modules = closure(tuple(sorted({*ROOTS, protocol_module, *extra})))
    modules.pop(adapter_module, None)
    return {"version": __version__,
            "adapter": hashlib.sha256(source.read_bytes()).hexdigest() if source else None,
            "core": _digest([(n, p.read_bytes()) for n, p in sorted(modules.items())]),
            "modules": len(modules) + 1}


@cache
def feature_code(classes: tuple[type, ...]) -> str:
    """sha256 over the source of the modules that define ``classes`` (a feature spec and
    the dataset classes that read its frames, ``Dataset.reader_classes``) and of every
    project module they reach (``closure``): operators, descriptors, frame readers, the
    twins' renderer. Part of every feature-cache key, so features cached by other code
    are never served (a hand-bumped version number was once left unbumped: committed
    rows were made from features of older code). A class defined outside the project
    counts its own file; one whose source cannot be found (defined interactively)
    counts its name only."""
    roots, own = set(), []
    for cls in classes:
        name, source = cls.__module__, _module_file(cls.__module__)
        if _is_core(name):
            roots.add(name)
        elif source is None:
            own.append((f"{name}.{cls.__qualname__}", b""))
        else:
            roots.update(_imports(source, name.rpartition(".")[0]))
            own.append((name, source.read_bytes()))
    modules = closure(tuple(sorted(roots)))
    return _digest(sorted(set(own)) + [(n, p.read_bytes()) for n, p in sorted(modules.items())])
