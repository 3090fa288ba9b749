"""Stale rows: a result whose recorded code (``mer_bench.provenance``) is not the code
installed here. It still verifies (its metrics follow from its predictions), but
re-running it may give other predictions (``mer-bench reproduce`` says which)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from mer_bench.provenance import code_identity


def stale_parts(recorded: dict | None, current: dict) -> list[str]:
    """Which parts of the code differ between a result's ``code`` and the installed code
    (``["not recorded"]`` for a result written before results recorded it)."""
    if not isinstance(recorded, dict):
        return ["not recorded"]
    return [part for part in ("version", "adapter", "core") if recorded.get(part) != current[part]]


def installed_code(result: dict) -> dict | None:
    """``code_identity`` of the installed code for ``result``'s method and protocol (None
    when the method is not installed here, or its adapter file is gone)."""
    from mer_bench.errors import MerBenchError
    from mer_bench.methods import get_method_class
    from mer_bench.protocols import PROTOCOLS
    method, protocol = result["method"], PROTOCOLS.get(result["protocol"]["name"])
    if protocol is None:
        return None
    if method.get("file"):
        path = Path(method["file"]["path"])
        return _installed("", protocol.__module__, str(path)) if path.is_file() else None
    try:
        module = get_method_class(method["name"]).__module__
    except MerBenchError:
        return None
    return _installed(module, protocol.__module__, None)


@cache
def _installed(adapter_module: str, protocol_module: str, adapter_file: str | None) -> dict:
    """``code_identity`` once per process and (adapter, protocol): a leaderboard build
    asks for every row."""
    return code_identity(adapter_module, protocol_module,
                         None if adapter_file is None else Path(adapter_file))


def stale_label(result: dict) -> str:
    """``stale: adapter, core changed`` for a result whose recorded code is not the
    installed code (``stale: code not recorded`` for files from before results recorded
    it); empty when they agree. ``mer-bench reproduce`` says whether the predictions
    moved."""
    current = installed_code(result)
    if current is None:
        return "stale: its code is not installed here"
    parts = stale_parts(result.get("code"), current)
    if not parts:
        return ""
    return "stale: code not recorded" if parts == ["not recorded"] else \
        f"stale: {', '.join(parts)} changed"
