"""The command line: help, list, and one-line errors with exit code 2 for bad input."""

import pytest

from mer_bench.cli import main


@pytest.mark.parametrize("argv", [[], ["run"], ["list"], ["leaderboard", "build"],
                                  ["check-method"], ["compare"], ["datasets"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv + ["--help"])
    assert exit_info.value.code == 0
    assert "usage: mer-bench" in capsys.readouterr().out


def test_list_names_everything(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("synth-casme2", "synth-megc2019", "loso", "kfold5", "holdout", "cde", "fewshot",
                 "flow-svm", "majority", "protonet", "casme2-5", "megc2019", "ckplus-7"):
        assert name in out


BAD = [
    (["--method", "nope", "--protocol", "loso"], "unknown method 'nope'; choose from attr-contrast, bi-woof, flow-svm"),
    (["--method", "flow-svm", "--protocol", "lopo"], "unknown protocol 'lopo'; choose from loso"),
    (["--method", "flow-svm", "--protocol", "loso", "--dataset", "casme9"],
     "unknown dataset 'casme9'; choose from"),
    (["--method", "flow-svm", "--protocol", "loso", "--scheme", "smic-3"],
     "label scheme 'smic-3' does not fit dataset 'synth-casme2'; schemes for it: casme2-5"),
    (["--method", "flow-svm", "--protocol", "fewshot", "--n-way", "7"],
     "n_way=7 is not possible with 5 classes; choose 2..5"),
    (["--method", "flow-svm", "--protocol", "cde", "--dataset", "synth-samm"],
     "protocol 'cde' runs on the MEGC2019 composite"),
    (["--method", "flow-svm", "--protocol", "loso", "--preset", "huge"],
     "unknown preset 'huge'; choose from paper, fast, smoke"),
    (["--method", "flow-svm", "--protocol", "loso", "--seeds", "1,x"], "--seeds '1,x'"),
    (["--method", "flow-svm", "--protocol", "loso", "-S", "gamma=2"],
     "unknown config fields ['gamma']"),
    (["--method", "flow-svm", "--protocol", "loso", "--backend", "mpi"],
     "unknown joblib backend 'mpi'; registered: "),
    (["--method", "flow-svm", "--protocol", "holdout", "-P", "folds=3"],
     "protocol 'holdout': bad parameters"),
    (["--method", "flow-svm", "--protocol", "fewshot", "--k-shot", "0"], "k_shot must be an integer in [1, "),
    (["--method", "flow-svm", "--protocol", "fewshot", "--episodes", "0"], "episodes must be an integer in [1, "),
    (["--method", "flow-svm", "--protocol", "fewshot", "--episodes", "-3"], "episodes must be an integer in [1, "),
    (["--method", "flow-svm", "--protocol", "fewshot", "--q-query", "0"], "q_query must be an integer in [1, "),
    (["--method", "flow-svm", "--protocol", "holdout", "-P", "repeats=0"], "repeats must be an integer in [1, "),
    (["--method", "flow-svm", "--protocol", "holdout", "-P", "repeats=1"],
     "repeats must be >= 2, got 1: the protocol reports mean +- sd over repeats"),
    (["--method", "flow-svm", "--protocol", "holdout", "-P", "train_fraction=1.5"],
     "train_fraction must be a number in (0, 1); got 1.5"),
    (["--method", "flow-svm", "--protocol", "kfold5", "-P", "n_splits=1"], "n_splits must be an integer in [2, "),
    (["--method", "flow-svm", "--protocol", "kfold5", "-P", "n_splits=abc"], "got 'abc'"),
    (["--method", "flow-svm", "--protocol", "loso", "-S", "C=notanumber"], "C='notanumber' is not float"),
    (["--method", "flow-svm", "--protocol", "loso", "-S", "C=-1"], "C=-1 is outside"),
    (["--method", "flow-svm", "--protocol", "loso", "-S", "size=1000000"], "size=1000000 is outside"),
    (["--method", "flow-svm", "--protocol", "loso", "--jobs", "0"], "--jobs must be an integer >= 1"),
    (["--method", "flow-svm", "--protocol", "loso", "--seeds", "0,0"], "--seeds lists [0] more than once"),
    (["--method", "flow-svm", "--protocol", "holdout", "-P", "repeats=100000000"],
     "repeats must be an integer in [1, 100]"),
    (["--method", "flow-svm", "--protocol", "fewshot", "--episodes", "1000000000"],
     "episodes must be an integer in [1, 10,000]"),
    (["--method", "flow-svm", "--protocol", "loso", "--seeds", ""], "--seeds '' is not a comma"),
    (["--method", "flow-svm", "--protocol", "loso", "--seeds", ",".join(map(str, range(65)))],
     "at most 64"),
    (["--method", "flow-svm", "--protocol", "loso", "--jobs", "1000"], "local worker processes per core"),
    (["--method", "flow-svm", "--protocol", "loso", "--backend", "dask", "--jobs", "1000"],
     "local worker processes per core"),
    (["--method", "flow-svm", "--protocol", "loso", "--cache-dir", "/dev/null/cache"],
     "--cache-dir /dev/null/cache cannot be written"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_input_is_one_line_exit_2(args, message, capsys, tmp_path):
    code = main(["run", *args, "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("mer-bench: error: ") and message in err
    assert len(err.splitlines()) == 1


def test_an_empty_out_is_refused_not_the_current_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--method", "flow-svm", "--protocol", "loso", "--out", "", "--quiet"]) == 2
    assert "--out is empty" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_k_shot_minus_one_is_refused_not_run(tmp_path, capsys):
    """A negative k_shot used to slice backwards and write a plausible 3-support/1-query
    result recorded as q_query=5; it is a one-line error before any work now."""
    code = main(["run", "--method", "flow-svm", "--protocol", "fewshot", "--k-shot", "-1",
                 "--out", str(tmp_path), "--quiet"])
    assert code == 2 and "k_shot must be an integer in [1, 1,000]; got -1" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.json"))


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    code = main(["run", "--method", "flow-svm", "--protocol", "loso", "--out", str(target),
                 "--quiet"])
    assert code == 2 and f"--out {target} is a file, not a folder" in capsys.readouterr().err


def test_run_writes_result_and_leaderboard_row(tmp_path, shared_cache, capsys):
    code = main(["run", "--method", "majority", "--protocol", "loso", "--preset", "smoke",
                 "--out", str(tmp_path), "--cache-dir", str(shared_cache)])
    out = capsys.readouterr().out
    assert code == 0
    assert "(synthetic data)" in out and "| [majority](majority__loso__" in out and "| smoke |" in out
    assert (tmp_path / "LEADERBOARD.md").exists() and list(tmp_path.glob("majority__loso*.json"))
    [result] = tmp_path.glob("majority__loso*.json")
    assert main(["compare", "majority", str(result), "--protocol", "loso",
                 "--results", str(tmp_path)]) == 2  # a result against itself is refused
    assert "A and B are the same result" in capsys.readouterr().err
    board = tmp_path / "board.md"
    assert main(["leaderboard", "build", "--results", str(tmp_path), "--output", str(board)]) == 0
    assert "| [majority](majority__loso__" in board.read_text()


def test_check_method_command(capsys):
    assert main(["check-method", "majority"]) == 0
    assert "[ok] test labels never read" in capsys.readouterr().out
    assert main(["check-method", "does-not-exist"]) == 2
