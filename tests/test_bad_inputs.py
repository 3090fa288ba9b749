"""Bad files and flags a user can hand ``mer-bench``: each is one line naming what is
wrong, exit 2, and no traceback; resuming is suggested only where it can help."""

import os
import shutil

import cv2
import numpy as np
import pytest
import torch

from mer_bench.cli import main
from mer_bench.errors import MerBenchError
from mer_bench.runner import RunOptions, run, worker_count
from tests.test_loaders import quiet_load, small_casme2  # noqa: F401


def one_line_error(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_a_negative_or_huge_seed_is_refused_before_any_work(tmp_path, capsys):
    for seed in ("-1", str(2**32)):
        err = one_line_error(capsys, ["run", "--method", "majority", "--protocol", "loso",
                                      "--seed", seed, "--out", str(tmp_path), "--quiet"])
        assert "seeds must be integers in [0, 2^32)" in err
    assert not list(tmp_path.glob("*.json"))


def test_absurd_thread_counts_are_refused(tmp_path, capsys):
    err = one_line_error(capsys, ["run", "--method", "majority", "--protocol", "loso",
                                  "--threads", "100000", "--out", str(tmp_path), "--quiet"])
    assert "--threads 100000" in err


def test_jobs_are_capped_at_the_number_of_tasks_and_warned_above_the_cores():
    with pytest.warns(UserWarning, match="more than this machine's"):
        assert worker_count(1000, 26) == 26
    assert worker_count(2, 26) == 2 and worker_count(8, 1) == 1


def test_a_truncated_or_doctype_coding_sheet_is_one_line(small_casme2, capsys):  # noqa: F811
    sheet = small_casme2 / "CASME2-coding-20190701.xlsx"
    original = sheet.read_bytes()
    sheet.write_bytes(original[: len(original) // 2])
    err = one_line_error(capsys, ["datasets", "check", "--dataset", "casme2"])
    assert str(sheet) in err and "BadZipFile" in err
    import zipfile
    sheet.write_bytes(original)
    with zipfile.ZipFile(sheet) as book:
        parts = {name: book.read(name) for name in book.namelist()}
    sheet_xml = next(n for n in parts if n.startswith("xl/worksheets/"))
    parts[sheet_xml] = b'<!DOCTYPE x [<!ENTITY big "' + b"A" * 64 + b'">]>' + parts[sheet_xml]
    with zipfile.ZipFile(sheet, "w") as book:
        for name, data in parts.items():
            book.writestr(name, data)
    err = one_line_error(capsys, ["datasets", "check", "--dataset", "casme2"])
    assert str(sheet) in err and "declares a DOCTYPE or entities" in err


@pytest.mark.parametrize("content", [b"garbage, not a checkpoint", "hostile"])
def test_a_garbage_or_hostile_pretrained_file_is_one_line_without_resume(tmp_path, capsys,
                                                                        content):
    path = tmp_path / "weights.pt"
    if content == "hostile":  # a pickle that would run code when unpickled
        class Boom:
            def __reduce__(self):
                return (os.system, ("touch " + str(tmp_path / "pwned"),))
        torch.save({"miacnet": Boom()}, path)
    else:
        path.write_bytes(content)
    err = one_line_error(capsys, ["run", "--method", "ma2mi", "--protocol", "holdout",
                                  "--preset", "smoke", "-P", "repeats=2", "-S",
                                  f"pretrained={path}", "--out", str(tmp_path / "out"),
                                  "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert f"pretrained={path}: not a readable weights file" in err and "--resume" not in err
    assert not (tmp_path / "pwned").exists()


def test_a_bad_text_encoder_weights_file_is_one_line(tmp_path):
    from mer_bench.nn import text
    folder = tmp_path / "encoder"
    shutil.copytree(text.text_encoder_path(text.DEFAULT_TEXT_ENCODER), folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not torch")
    with pytest.raises(MerBenchError, match=f"text encoder {folder}: cannot load it offline"):
        text.load_text_encoder(str(folder))


def test_a_macro_folder_name_that_is_not_utf8_is_one_line(tmp_path, capsys):
    folder = tmp_path / "videos"
    clip = folder / "person" / "clip"
    clip.mkdir(parents=True)
    frame = np.zeros((32, 32, 3), np.uint8)
    for k in range(3):
        cv2.imwrite(str(clip / f"f{k}.png"), frame)
    os.rename(os.fsencode(folder / "person"), os.fsencode(folder) + b"/person\xff")
    with pytest.raises(MerBenchError, match="is not a UTF-8 name"):
        quiet_load(f"folder:{folder}")


def test_a_read_only_output_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    from mer_bench.report import leaderboard

    def read_only(path, data):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(leaderboard, "atomic_write_bytes", read_only)
    results = tmp_path / "results"
    results.mkdir()
    target = tmp_path / "board" / "LEADERBOARD.md"
    err = one_line_error(capsys, ["leaderboard", "build", "--results", str(results),
                                  "--output", str(target), "--no-plots"])
    assert f"{target}: Read-only file system" in err


def test_a_full_disk_during_a_run_keeps_the_folds_and_says_resume(tmp_path, monkeypatch):
    import errno

    from mer_bench import runner
    real = runner.write_json
    calls = []

    def fill_up(path, data, indent=1):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data, indent)

    monkeypatch.setattr(runner, "write_json", fill_up)
    with pytest.raises(MerBenchError, match="No space left on device.*1 finished folds are kept"
                                            ".*--resume continues"):
        run(RunOptions(method="majority", protocol="holdout", preset="smoke",
                       out_dir=tmp_path / "out", cache_dir=tmp_path / "cache", progress=False,
                       protocol_params={"repeats": 3}))


def test_a_cache_entry_deleted_while_it_is_read_is_recomputed(tmp_path, monkeypatch):
    """A cache cleaned underneath a run (the file gone between the key and the read)
    costs a recomputation, never the run."""
    from mer_bench.data.datasets import load_dataset
    from mer_bench.features import cache as cache_module
    from mer_bench.features import onset_apex
    dataset = load_dataset("synth-casme2")
    rows = dataset.samples.head(2)
    spec = onset_apex(16, channels=("diff",))
    cache = cache_module.FeatureCache(tmp_path / "cache")
    first = cache.materialize(dataset, rows, spec, progress=False)
    shutil.rmtree(tmp_path / "cache")
    real = np.load

    def vanished(path, *args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", str(path))

    monkeypatch.setattr(cache_module.Path, "exists", lambda self: True)
    monkeypatch.setattr(cache_module.np, "load", vanished)
    with pytest.warns(UserWarning, match="corrupt entries are recomputed"):
        again = cache.materialize(dataset, rows, spec, progress=False)
    monkeypatch.setattr(cache_module.np, "load", real)
    assert np.array_equal(first, again)
