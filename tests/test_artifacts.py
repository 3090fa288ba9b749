"""The artefact cache never executes, never crashes, always verifies."""

import hashlib
import os
import pickle

import pytest
import torch

from mer_bench.context import ARTIFACT_VERSION, RunContext


def entry(tmp_path, key):
    digest = hashlib.sha256(f"{ARTIFACT_VERSION}:{key}".encode()).hexdigest()[:24]
    return tmp_path / f"{digest}.pt"


def fresh(tmp_path):
    return RunContext(artifact_dir=tmp_path)


def build_counter():
    calls = []

    def build():
        calls.append(1)
        return {"w": torch.ones(3, 2), "step": 7}
    return build, calls


def test_built_once_then_read_back_by_another_process_context(tmp_path):
    build, calls = build_counter()
    first = fresh(tmp_path).artifact("k", build)
    second = fresh(tmp_path).artifact("k", build)
    assert len(calls) == 1 and torch.equal(first["w"], second["w"]) and second["step"] == 7


class Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-artifact-cache",))


def test_a_planted_pickle_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    entry(tmp_path, "k").write_bytes(pickle.dumps(Payload()))
    build, calls = build_counter()
    with pytest.warns(UserWarning, match="is rebuilt"):
        value = fresh(tmp_path).artifact("k", build)
    assert not (tmp_path / "pwned-by-artifact-cache").exists()
    assert len(calls) == 1 and value["step"] == 7


@pytest.mark.parametrize("damage", ["torn", "directory", "nan", "wrong-shape", "wrong-type"])
def test_any_bad_entry_is_rebuilt_with_a_warning(tmp_path, damage):
    build, calls = build_counter()
    fresh(tmp_path).artifact("k", build)
    path = entry(tmp_path, "k")
    if damage == "torn":
        path.write_bytes(path.read_bytes()[:30])
    elif damage == "directory":
        path.unlink()
        path.mkdir()
    elif damage == "nan":
        torch.save({"w": torch.full((3, 2), float("nan")), "step": 7}, path)
    elif damage == "wrong-shape":
        torch.save({"w": torch.ones(5, 5), "step": 7}, path)
    else:
        torch.save([1, 2, 3], path)

    def check(value):
        assert value["w"].shape == (3, 2), "state does not fit the model"

    with pytest.warns(UserWarning, match="is rebuilt"):
        value = fresh(tmp_path).artifact("k", build, check=check)
    assert len(calls) == 2 and value["w"].shape == (3, 2)
    assert fresh(tmp_path).artifact("k", build, check=check)["step"] == 7 and len(calls) == 2
