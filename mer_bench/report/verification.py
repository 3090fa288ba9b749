"""Checks of a result file against the registry and its protocol, beyond "the metrics
follow from the predictions" (``mer_bench.report.results.verify_result``):

- ``synthetic`` must agree with the dataset registry (every ``synth-*`` dataset is a
  twin; a real name is real);
- the protocol, rebuilt from the stored name and parameters, regenerates its folds
  for every stored seed on the dataset (under the stored label scheme), and the
  predictions must test exactly those units (sample, seed, fold, episode) with the
  dataset's ``y_true``, ``subject`` and ``dataset`` (intervals resample subjects and
  CDE scores per source, so neither can be relabelled); the ``folds`` block must be the
  regenerated one; few-shot support sets stored in the file must be the regenerated
  ones (so ``k_shot`` and ``seeds`` cannot disagree with the predictions);
- a method that declares scores (``Method.emits_scores``) must have them on every
  prediction, and any result has them on all predictions or on none (dropping the
  scores would skip the argmax check of ``schema``);
- on the robustness track, the flagged clips must be the corruption's chosen ones.

Synthetic twins are always available, so their results are checked in full. A real
dataset is checked the same way when it is configured on this machine; otherwise the
row is marked *unverified against data* (the metrics are still recomputed), and a
``megc2019`` result must at least test exactly the clips of the official list.
"""

from __future__ import annotations

import warnings
from collections import Counter
from functools import lru_cache

import pandas as pd

from mer_bench.errors import MerBenchError

VERIFIED = "verified against data"
UNVERIFIED = "unverified against data (dataset not configured here)"


def result_problems(result: dict) -> tuple[list[str], str]:
    """What is wrong with a readable result (empty: nothing) — its metrics against its
    predictions (``verify_result``), then its predictions against the data — and its data
    status. Any exception while checking a malformed file is a problem, never a crash."""
    from mer_bench.report.results import verify_result
    try:
        problems = verify_result(result)
        if problems:
            return problems, UNVERIFIED
        return check_against_data(result)
    except Exception as err:  # a malformed file is reported, whatever it breaks
        return [f"malformed ({type(err).__name__}: {err})"], UNVERIFIED


def is_synthetic_dataset(name: str) -> bool:
    """Whether ``name`` is one of the registered synthetic twins."""
    from mer_bench.data.datasets import dataset_names
    return name.startswith("synth-") and name in dataset_names()


def _labelled(dataset: str, scheme: str) -> pd.DataFrame | None:
    """The dataset's labelled sample table under ``scheme``, or None when a real dataset
    is not configured here. Real datasets are read afresh every time (their files or
    configured folder may change within a process); twins are generated once."""
    if is_synthetic_dataset(dataset):
        return _twin_labelled(dataset, scheme)
    from mer_bench.data.datasets import load_dataset
    from mer_bench.data.schemes import get_scheme
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = load_dataset(dataset)
    except MerBenchError:
        return None
    return get_scheme(scheme, data.name).apply(data.samples)


@lru_cache(maxsize=16)
def _twin_labelled(dataset: str, scheme: str) -> pd.DataFrame:
    from mer_bench.data.datasets import load_dataset
    from mer_bench.data.schemes import get_scheme
    return get_scheme(scheme, dataset).apply(load_dataset(dataset).samples)


def check_against_data(result: dict) -> tuple[list[str], str]:
    """(problems, status): problems found checking ``result`` against the registry and
    its regenerated folds; status says whether the data was at hand."""
    dataset = result.get("dataset")
    if dataset is None:
        return ["no 'dataset' key"], UNVERIFIED
    synthetic = is_synthetic_dataset(dataset)
    if bool(result["synthetic"]) != synthetic:
        return [f"'synthetic: {str(result['synthetic']).lower()}' contradicts the registry: "
                f"{dataset!r} is {'a synthetic twin' if synthetic else 'not a synthetic twin'}"], \
            UNVERIFIED
    if any(is_synthetic_dataset(p["dataset"]) != synthetic for p in result["predictions"]):
        return ["predictions mix synthetic and real datasets"], UNVERIFIED
    try:
        samples = _labelled(dataset, result["label_scheme"]["name"])
    except MerBenchError as err:
        return [str(err)], UNVERIFIED
    problems = _score_problems(result)
    if samples is None:
        return problems + _official_list_problems(result), UNVERIFIED
    return problems + _fold_problems(result, samples), VERIFIED


def _score_problems(result: dict) -> list[str]:
    """Scores on every prediction or on none; on every one for a method that declares
    them (an installed adapter; an adapter file is not imported to ask)."""
    from mer_bench.methods import get_method_class
    with_scores = sum(p.get("scores") is not None for p in result["predictions"])
    if 0 < with_scores < len(result["predictions"]):
        return [f"{len(result['predictions']) - with_scores} predictions lack the scores the "
                f"others have"]
    if with_scores or result["method"].get("file"):
        return []
    try:
        declared = get_method_class(result["method"]["name"]).emits_scores
    except MerBenchError:
        return []
    return [f"method {result['method']['name']!r} emits scores, and these predictions have "
            f"none"] if declared else []


def _fold_problems(result: dict, samples: pd.DataFrame) -> list[str]:
    from mer_bench.data.schemes import get_scheme
    from mer_bench.protocols import get_protocol
    scheme = get_scheme(result["label_scheme"]["name"], result["dataset"])
    classes = list(scheme.classes)
    if classes != list(result["label_scheme"]["classes"]):
        return [f"class order {result['label_scheme']['classes']} is not the scheme's {classes}"]
    protocol = get_protocol(result["protocol"]["name"], **result["protocol"]["params"])
    task = result["label_scheme"].get("task", "emotion")
    if not scheme.task == protocol.task == task:
        return [f"task {task!r} does not match scheme {scheme.name!r} ({scheme.task}) and "
                f"protocol {protocol.name!r} ({protocol.task})"]
    if protocol.version != result["protocol"].get("version", protocol.version):
        return [f"protocol version {result['protocol'].get('version')} is not the installed "
                f"{protocol.version}; rerun to compare"]
    expected, supports, groups = Counter(), {}, {}
    for seed in result["seeds"]:
        for fold in protocol.folds(samples, seed):
            expected.update((sid, seed, fold.name, fold.episode) for sid in fold.test_ids)
            groups.setdefault((seed, fold.train_group), []).append(fold)
            if fold.support_ids is not None:
                supports[(seed, fold.episode)] = sorted(fold.support_ids)
    stored = Counter((p["sample_id"], p["seed"], p["fold"], p.get("episode"))
                     for p in result["predictions"])
    problems = []
    if stored != expected:
        missing, extra = expected - stored, stored - expected
        problems.append(f"predictions do not test the protocol's folds for seeds "
                        f"{result['seeds']}: {sum(missing.values())} expected test units missing "
                        f"(e.g. {_first(missing)}), {sum(extra.values())} unexpected "
                        f"(e.g. {_first(extra)})")
    problems += _truth_problems(result, samples)
    from mer_bench.protocols.base import fold_table
    if result["folds"] != fold_table([(seed, group, folds) for (seed, group), folds in groups.items()]):
        problems.append("the 'folds' block is not the protocol's folds (test subjects, sizes)")
    for episode in result.get("episodes", []):
        if sorted(episode["support"]) != supports.get((episode["seed"], episode["episode"])):
            problems.append(f"support set of seed {episode['seed']} episode {episode['episode']} "
                            f"is not the protocol's")
            break
    problems += _corruption_problems(result, samples)
    return problems


def _truth_problems(result: dict, samples: pd.DataFrame) -> list[str]:
    """Each prediction's ``y_true``, ``subject`` and ``dataset`` are its clip's."""
    truth = {column: dict(zip(samples["sample_id"], samples[column]))
             for column in ("label", "subject", "dataset")}
    problems = []
    for field, column in (("y_true", "label"), ("subject", "subject"), ("dataset", "dataset")):
        wrong = [p["sample_id"] for p in result["predictions"]
                 if truth[column].get(p["sample_id"]) != p[field]]
        if wrong:
            problems.append(f"{len(wrong)} '{field}' values are not the dataset's (e.g. "
                            f"{wrong[0]})")
    return problems


def _corruption_problems(result: dict, samples: pd.DataFrame) -> list[str]:
    c = result.get("corruption")
    if not c:
        return []
    from mer_bench.features.corruptions import Corruption
    chosen = set(samples.loc[Corruption(c["kind"], c["share"], c["seed"]).chosen(
        samples["sample_id"]), "sample_id"])
    flagged = {p["sample_id"] for p in result["predictions"] if p.get("corrupted")}
    tested = {p["sample_id"] for p in result["predictions"]}
    return [] if flagged == chosen & tested else \
        ["the predictions' corrupted flags are not the corruption's chosen clips"]


def _official_list_problems(result: dict) -> list[str]:
    """A real ``megc2019`` result must test exactly the official list's clips."""
    if result["dataset"] != "megc2019":
        return []
    from mer_bench.data.composite import official_key, official_list
    wanted = {official_key(r.dataset, r.subject, r.clip) for r in official_list().itertuples()}
    tested = set()
    for p in result["predictions"]:
        _, subject, clip = p["sample_id"].split("/", 2)
        tested.add(official_key(p["dataset"], subject, clip))
    return [] if tested == wanted else \
        [f"tests {len(tested)} clips, not the {len(wanted)} of the official MEGC2019 list"]


def _first(counter: Counter) -> str:
    return str(next(iter(counter), "-"))
