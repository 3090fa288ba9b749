"""Invariants every protocol must keep (like scikit-learn's splitter checks)."""

import subprocess
import sys

import numpy as np
import pytest

from mer_bench.errors import MerBenchError
from mer_bench.protocols import PROTOCOLS, get_protocol

SETTINGS = {"loso": {}, "kfold5": {}, "holdout": {}, "cde": {}, "lodo": {},
            "fewshot": {"episodes": 20}, "au-lodo": {}, "au-loso": {}}
EXHAUSTIVE = ("loso", "kfold5", "cde", "lodo", "au-lodo", "au-loso")
COMPOSITE = ("cde", "lodo", "au-lodo")
"""Protocols over a composite's source datasets (checked on the MEGC2019 twin)."""


@pytest.fixture(params=sorted(SETTINGS))
def case(request, casme2_table, megc_table):
    name = request.param
    table = megc_table if name in COMPOSITE else casme2_table
    return name, get_protocol(name, **SETTINGS[name]), table


def test_every_protocol_is_covered():
    assert set(SETTINGS) == set(PROTOCOLS)


def test_registry_names_match_the_classes_it_imports_lazily():
    probe = ("import sys; from mer_bench.protocols import get_protocol; get_protocol('loso'); "
             "print(sorted(m for m in sys.modules if m.startswith('mer_bench.protocols.')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True).stdout
    assert "holdout" not in loaded and "fewshot" not in loaded and "mer_bench.protocols.loso" in loaded
    assert all(PROTOCOLS[name].name == name for name in PROTOCOLS)


def test_no_subject_on_both_sides(case):
    _, protocol, table = case
    subject = dict(zip(table["sample_id"], table["subject"]))
    for fold in protocol.folds(table, seed=0):
        train = {subject[s] for s in fold.train_ids}
        held = {subject[s] for s in fold.test_ids + (fold.support_ids or ())}
        assert not train & held, fold.name


@pytest.mark.parametrize("name", EXHAUSTIVE)
def test_every_sample_tested_exactly_once(name, casme2_table, megc_table):
    protocol = get_protocol(name, **SETTINGS[name])
    table = megc_table if name in COMPOSITE else casme2_table
    tested = [s for fold in protocol.folds(table, seed=3) for s in fold.test_ids]
    assert sorted(tested) == sorted(table["sample_id"])


def test_support_and_query_disjoint(case):
    _, protocol, table = case
    for fold in protocol.folds(table, seed=0):
        support = set(fold.support_ids or ())
        assert not support & set(fold.test_ids)
        assert not support & set(fold.train_ids)


def test_same_seed_same_folds(case):
    _, protocol, table = case
    assert list(protocol.folds(table, seed=7)) == list(protocol.folds(table, seed=7))


@pytest.mark.parametrize("name", ["kfold5", "holdout", "fewshot"])
def test_seed_changes_random_protocols(name, casme2_table):
    protocol = get_protocol(name, **SETTINGS[name])
    assert list(protocol.folds(casme2_table, 0)) != list(protocol.folds(casme2_table, 1))


def test_loso_one_fold_per_subject(casme2_table):
    folds = list(get_protocol("loso").folds(casme2_table, 0))
    assert len(folds) == casme2_table["subject"].nunique() == 26


def test_cde_has_68_folds(megc_table):
    assert len(list(get_protocol("cde").folds(megc_table, 0))) == 68


def test_kfold_is_five_folds_of_whole_subjects(casme2_table):
    folds = list(get_protocol("kfold5").folds(casme2_table, 0))
    assert len(folds) == 5
    sizes = [len(f.test_ids) for f in folds]
    assert max(sizes) - min(sizes) < 0.5 * np.mean(sizes)


def test_holdout_is_three_to_two_over_subjects(casme2_table):
    subject = dict(zip(casme2_table["sample_id"], casme2_table["subject"]))
    folds = list(get_protocol("holdout").folds(casme2_table, 0))
    assert len(folds) == 5
    for fold in folds:
        n_test = len({subject[s] for s in fold.test_ids})
        n_train = len({subject[s] for s in fold.train_ids})
        assert (n_train, n_test) == (16, 10)


def test_fewshot_episode_shape(casme2_table):
    label = dict(zip(casme2_table["sample_id"], casme2_table["label"]))
    protocol = get_protocol("fewshot", n_way=3, k_shot=2, q_query=3, episodes=5)
    folds = list(protocol.folds(casme2_table, 0))
    assert len(folds) == 5 and len({f.train_group for f in folds}) == 1
    for fold in folds:
        support = [label[s] for s in fold.support_ids]
        query = [label[s] for s in fold.test_ids]
        assert len(set(support)) == 3 and set(support) == set(query)
        assert len(support) == 6 and len(query) == 9


def test_fewshot_rejects_too_many_ways(casme2_table):
    with pytest.raises(MerBenchError, match="n_way=6 is not possible with 5 classes; choose 2..5"):
        list(get_protocol("fewshot", n_way=6).folds(casme2_table, 0))


def test_cde_refuses_other_datasets():
    with pytest.raises(MerBenchError, match="'synth-casme2'.*megc2019, synth-megc2019"):
        get_protocol("cde").check_dataset("synth-casme2")


def test_identity_includes_params_and_version():
    a, b = get_protocol("holdout"), get_protocol("holdout", repeats=10)
    assert a.identity()["version"] == 1 and a.identity_hash != b.identity_hash


def test_unknown_protocol_lists_choices():
    with pytest.raises(MerBenchError, match="unknown protocol 'lopo'; choose from loso, kfold5"):
        get_protocol("lopo")


def test_lodo_holds_out_one_source_dataset_per_fold(megc_table):
    folds = list(get_protocol("lodo").folds(megc_table, 0))
    assert [f.name for f in folds] == ["test-synth-casme2", "test-synth-samm", "test-synth-smic"]
    source = dict(zip(megc_table["sample_id"], megc_table["dataset"]))
    sizes = {}
    for fold in folds:
        held_out = {source[s] for s in fold.test_ids}
        assert len(held_out) == 1 and held_out.isdisjoint({source[s] for s in fold.train_ids})
        sizes[held_out.pop()] = len(fold.test_ids)
    assert sizes == {"synth-casme2": 145, "synth-samm": 133, "synth-smic": 164}
    with pytest.raises(MerBenchError, match="protocol 'lodo' leaves one source of a composite "
                                            "out; got dataset 'synth-casme2'; choose from "
                                            "megc2019, megc2019-casme3a"):
        get_protocol("lodo").check_dataset("synth-casme2")
