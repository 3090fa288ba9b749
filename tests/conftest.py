"""Shared fixtures: small labelled tables from the synthetic twins, temporary folders."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pandas as pd
import pytest

os.environ.setdefault("TQDM_DISABLE", "1")
# memos a dataset load keeps (file digests, clip checks) go to a folder of this session,
# never to the user's ~/.cache/mer-bench
os.environ["MER_BENCH_CACHE"] = tempfile.mkdtemp(prefix="mer-bench-tests-")
atexit.register(shutil.rmtree, os.environ["MER_BENCH_CACHE"], True)

from mer_bench.data.datasets import load_dataset  # noqa: E402
from mer_bench.data.schemes import get_scheme  # noqa: E402


def labelled(name: str, scheme: str | None = None) -> pd.DataFrame:
    dataset = load_dataset(name)
    return get_scheme(scheme, dataset.name).apply(dataset.samples)


@pytest.fixture(scope="session")
def casme2_table() -> pd.DataFrame:
    return labelled("synth-casme2")


@pytest.fixture(scope="session")
def megc_table() -> pd.DataFrame:
    return labelled("synth-megc2019")


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """One feature cache for the whole session (runs share features, as users' do)."""
    return tmp_path_factory.mktemp("feature-cache")
