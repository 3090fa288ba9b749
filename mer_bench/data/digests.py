"""Content digests of a real dataset's frame files, for feature-cache keys and run ids.

A key built from file names, sizes and modification times misses a frame overwritten
with other content of the same size whose mtime is restored (re-extracting an archive
does that), and one built from the absolute path changes when the folder is moved,
copied or mounted elsewhere. So keys hold the sha256 of every frame file's content.

Hashing runs at about 0.7 GB/s per core here, in batches of files over the cores
(``mer_bench.threads``: hashlib releases the GIL), so 0.59 GiB of CASME II frames take
about 0.5 s on two cores; a memo under the cache folder (``file-digests.sqlite``) keeps
each file's digest under the file's (device, inode, size, mtime, ctime) so warm runs
only ``stat``. The ctime cannot
be set from user space (``touch -r`` sets it to now), so any rewrite of a file is
re-hashed; a copied folder has new inodes and is hashed once, to the same digests.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

from mer_bench.threads import thread_map

MEMO_NAME = "file-digests.sqlite"
HASH_BATCH = 64
"""Files hashed per thread task (one task per file would cost more in scheduling than
a small frame takes to hash)."""


def _identity(stat: os.stat_result) -> str:
    return f"{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"


def _hash_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class SqliteMemo:
    """A string -> string table in an sqlite file under the cache folder (``root=None``:
    nothing kept). A memo that cannot be opened or written is bypassed: its values are
    then recomputed, never wrong."""

    def __init__(self, root: Path | None, name: str):
        self.path = None if root is None else Path(root) / name

    def _connect(self) -> sqlite3.Connection | None:
        if self.path is None:
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30)
            db.execute("CREATE TABLE IF NOT EXISTS memo (key TEXT PRIMARY KEY, value TEXT)")
            return db
        except (OSError, sqlite3.Error):
            return None

    def lookup(self, keys: list[str]) -> dict[str, str]:
        """The stored values of those ``keys`` that are stored."""
        db = self._connect()
        if db is None:
            return {}
        found = {}
        try:
            with db:
                for start in range(0, len(keys), 500):
                    part = keys[start:start + 500]
                    rows = db.execute(f"SELECT key, value FROM memo WHERE key IN "
                                      f"({','.join('?' * len(part))})", part)
                    found.update(rows.fetchall())
        except sqlite3.Error:
            return {}
        finally:
            db.close()
        return found

    def store(self, values: dict[str, str]) -> None:
        db = self._connect()
        if db is None:
            return
        try:
            with db:
                db.executemany("INSERT OR REPLACE INTO memo VALUES (?, ?)", values.items())
        except sqlite3.Error:
            pass
        finally:
            db.close()


class DigestMemo:
    """File content digests, memoized (``SqliteMemo``) under each file's identity."""

    def __init__(self, root: Path | None):
        self.memo = SqliteMemo(root, MEMO_NAME)

    def digests(self, paths: list[Path]) -> list[str]:
        """sha256 hex of each file's content, in order (one ``stat`` per file)."""
        keys = [_identity(p.stat()) for p in paths]
        known = self.memo.lookup(keys)
        todo = [(p, k) for p, k in zip(paths, keys) if k not in known]
        batches = [todo[i:i + HASH_BATCH] for i in range(0, len(todo), HASH_BATCH)]
        hashed = thread_map(lambda batch: [_hash_file(p) for p, _ in batch], batches)
        fresh = {k: digest for batch, digests in zip(batches, hashed)
                 for (_, k), digest in zip(batch, digests)}
        if fresh:
            self.memo.store(fresh)
        return [known.get(k) or fresh[k] for k in keys]


def clip_digest(names: list[str], digests: list[str]) -> str:
    """One clip's identity from its frame files' names (not folders) and digests."""
    h = hashlib.sha256()
    for name, digest in zip(names, digests):
        h.update(f"{name}:{digest}\n".encode())
    return h.hexdigest()[:24]
