"""The core's layout: subpackages per stage of the flow and no import circles."""

import ast
from pathlib import Path

import mer_bench

ROOT = Path(mer_bench.__file__).parent
PACKAGE_DIRS = {"mer_bench": ROOT, "mer_bench.protocols": ROOT.parent / "protocols",
                "mer_bench.methods": ROOT.parent / "methods"}


def module_files() -> dict[str, Path]:
    """Module name -> file, for the core, protocols and methods."""
    found = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if package == "mer_bench" and parts[0] in ("protocols", "methods"):
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def imports(path: Path, modules: set[str]) -> set[str]:
    """Project modules ``path`` imports anywhere: at module level, under
    ``TYPE_CHECKING`` or inside functions (a deferred import hides a circle, it does not
    remove it)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out |= {n for n in names if n in modules}
    return out


def test_core_is_grouped_by_stage():
    for package in ("data", "features", "nn", "report"):
        assert (ROOT / package / "__init__.py").exists()
    flat = sorted(p.stem for p in ROOT.glob("*.py"))
    assert flat == ["__init__", "bench", "checks", "cli", "context", "devices", "errors",
                    "method", "partial", "portable",
                    "progress", "provenance", "reproduce", "runner", "scaleout", "seeding", "threads",
                    "timing"]


def test_no_import_circles():
    files = module_files()
    graph = {name: imports(path, set(files)) - {name} for name, path in files.items()}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                cycle = trail[trail.index(dep):] + [dep] if dep in trail else [name, dep]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, trail + [dep])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
