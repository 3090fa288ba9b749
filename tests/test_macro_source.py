"""The auxiliary macro source: macro-only, disjoint from the target, part of the run."""

import pytest

from mer_bench.cli import main
from mer_bench.context import macro_source
from mer_bench.data.datasets import load_dataset
from mer_bench.errors import MerBenchError
from mer_bench.methods import build_method
from mer_bench.runner import RunOptions, run_identity, weight_files


def test_a_micro_expression_set_is_refused_as_macro_source():
    with pytest.raises(MerBenchError, match="synth-samm: 159 of its 159 clips are not macro"):
        macro_source("synth-samm", load_dataset("synth-samm"), 0)


def test_the_cli_refuses_pretraining_on_the_target_before_any_work(capsys):
    code = main(["run", "--method", "ma2mi", "--protocol", "loso", "--dataset", "synth-samm",
                 "--preset", "smoke", "--macro-dataset", "synth-samm", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "not macro-expressions" in err and len(err.strip().splitlines()) == 1


def test_the_macro_source_and_weight_files_are_part_of_the_run_identity(tmp_path):
    from mer_bench.data.schemes import get_scheme
    from mer_bench.protocols import get_protocol
    target = load_dataset("synth-samm")
    method = build_method("ma2mi", "smoke")
    common = (method, get_protocol("loso"), target, get_scheme(None, target.name),
              RunOptions(method="ma2mi", protocol="loso"), None)
    ckplus = macro_source("synth-ckplus", target, 0)
    other = macro_source("synth-ckplus", target, 1)  # another rendering seed: other faces
    assert ckplus["fingerprint"] != other["fingerprint"] and ckplus["synthetic"]
    assert run_identity(*common, ckplus, {}) != run_identity(*common, other, {})
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"one")
    first = weight_files(build_method("ma2mi", "smoke", pretrained=str(weights)))
    weights.write_bytes(b"two")
    second = weight_files(build_method("ma2mi", "smoke", pretrained=str(weights)))
    assert first["pretrained"]["path"] == second["pretrained"]["path"]
    assert first["pretrained"]["sha256"] != second["pretrained"]["sha256"]
    with pytest.raises(MerBenchError, match="no such file"):
        weight_files(build_method("ma2mi", "smoke", pretrained=str(tmp_path / "absent.pt")))
