"""The MEGC2019 composite database (CDE): exactly the rows of the official list.

The official list (``data/megc2019_cde.csv``, 442 rows: dataset, subject, clip, label)
is the source of truth. Its spellings differ from the datasets' folders: SMIC subjects
and clips are zero-padded there (``s01``, ``s01_ne_01``; folders ``s1``, ``s1_ne_01``),
SAMM subjects unpadded (``6``; folders ``006``). ``official_key`` maps both spellings
to one key.
"""

from __future__ import annotations

import re
from importlib import resources

import pandas as pd

from mer_bench.data.schemes import SCHEMES, base_dataset
from mer_bench.errors import MerBenchError

SOURCES = {"smic": "smic-hs", "casme2": "casme2", "samm": "samm"}
"""Official list's dataset names -> base dataset names."""


def official_list() -> pd.DataFrame:
    """The official 442-row list as shipped with the package (all columns text)."""
    path = resources.files("mer_bench.data") / "megc2019_cde.csv"
    with resources.as_file(path) as p:
        return pd.read_csv(p, dtype=str)


def official_key(dataset: str, subject: str, clip: str) -> tuple[str, str, str]:
    """A spelling-independent key (base dataset, subject, clip) for matching."""
    base = SOURCES.get(dataset, base_dataset(dataset))
    subject = subject.rsplit("/", 1)[-1]
    if base == "smic-hs":
        subject = re.sub(r"^s0*(\d+)$", r"s\1", subject)
        clip = re.sub(r"^s0*(\d+)_", r"s\1_", clip)
    elif base == "samm":
        subject = str(int(subject))
    return base, subject, clip


def select_official(samples: pd.DataFrame, name: str) -> pd.DataFrame:
    """The rows of ``samples`` named by the official list, in its order.

    Raises ``MerBenchError`` listing clips of the official list that ``samples`` lacks
    and rows whose emotion does not map to the list's label under ``megc2019``.
    """
    official = official_list()
    keys = {official_key(r.dataset, r.subject, r.clip): i for i, r in enumerate(samples.itertuples())}
    wanted = [official_key(r.dataset, r.subject, r.clip) for r in official.itertuples()]
    missing = [k for k in wanted if k not in keys]
    if missing:
        shown = ", ".join("/".join(k) for k in missing[:8])
        raise MerBenchError(f"{name}: {len(missing)} clips of the official MEGC2019 list are "
                            f"missing: {shown}")
    chosen = samples.iloc[[keys[k] for k in wanted]].reset_index(drop=True)
    mapped = chosen["emotion"].map(SCHEMES["megc2019"].mapping)
    wrong = chosen.loc[mapped.to_numpy() != official["label"].to_numpy(), "sample_id"].tolist()
    if wrong:
        raise MerBenchError(f"{name}: emotion does not match the official MEGC2019 label for "
                            f"{wrong[:8]}")
    return chosen
