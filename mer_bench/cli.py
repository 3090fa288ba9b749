"""``mer-bench`` command line: run, list, datasets, leaderboard build, plot, pretrain,
check-method, bench, compare, reproduce.

Bad input (unknown names, a scheme that does not fit the dataset, an impossible
few-shot setting) prints one line ``mer-bench: error: ...`` naming the bad value and the
valid choices, and exits with code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import sys
from pathlib import Path

from mer_bench.errors import MerBenchError, RunInterrupted


def _key_values(pairs: list[str], what: str) -> dict:
    """``["k=v", ...]`` -> {k: v} with v parsed as int, float, bool or text."""
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise MerBenchError(f"{what} {pair!r} is not KEY=VALUE")
        key, value = pair.split("=", 1)
        out[key.strip().replace("-", "_")] = _parse_value(value.strip())
    return out


def _parse_value(text: str):
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _seeds(args) -> tuple[int, ...]:
    if args.seeds is not None:
        try:
            return tuple(int(s) for s in args.seeds.split(","))
        except ValueError:
            raise MerBenchError(f"--seeds {args.seeds!r} is not a comma-separated list of "
                                f"integers") from None
    return (args.seed,)


def _apply_data_roots(args) -> None:
    from mer_bench.data.folders import set_data_roots
    pairs = _key_values(getattr(args, "data_root", None), "--data-root")
    if pairs:
        set_data_roots({k.replace("_", "-"): str(v) for k, v in pairs.items()})


def _corruption(args):
    """The robustness track's ``Corruption`` from --corrupt / --corrupt-share, or None."""
    if args.corrupt is None:
        if args.corrupt_share is not None:
            raise MerBenchError("--corrupt-share needs --corrupt mask|noise|grayscale")
        return None
    from mer_bench.features.corruptions import Corruption
    return Corruption(args.corrupt, 0.3 if args.corrupt_share is None else args.corrupt_share)


def cmd_run(args) -> int:
    from mer_bench.timing import size_pools_before_load
    size_pools_before_load(args.threads)  # before numpy loads: no threadpoolctl call needed
    from mer_bench.devices import parse_devices
    from mer_bench.report.intervals import interval_label
    from mer_bench.report.leaderboard import collect, row, write
    from mer_bench.runner import RunOptions, run
    _apply_data_roots(args)
    if not args.out.strip():
        raise MerBenchError("--out is empty; name the result folder")
    params = _key_values(args.param, "--param")
    for name in ("n_way", "k_shot", "q_query", "episodes"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    options = RunOptions(
        method=args.method, protocol=args.protocol, dataset=args.dataset, scheme=args.scheme,
        preset=args.preset, seeds=_seeds(args), device=args.device, jobs=args.jobs,
        threads=args.threads, amp=args.amp, portable=args.portable,
        devices=parse_devices(args.devices) if args.devices else (),
        backend=args.backend, scheduler=args.scheduler, out_dir=Path(args.out),
        cache_dir=args.cache_dir,
        resume=args.resume, fresh=args.fresh, protocol_params=params,
        method_overrides=_key_values(args.set, "--set"),
        auxiliary={"macro": args.macro_dataset}, progress=not args.quiet, strict=args.strict,
        face_crop=args.face_crop, corruption=_corruption(args))
    path = run(options)
    results = collect(Path(args.out), skip_invalid=True)
    board = write(results, Path(args.out) / "LEADERBOARD.md")
    print(path)
    mine = [(p, r) for p, r in results if p == path]
    if mine and not args.quiet:
        m = mine[0][1]["metrics"]
        synthetic = " (synthetic data)" if mine[0][1]["synthetic"] else ""
        if "au_f1" in m:
            print(f"mean AU F1 {interval_label(m, 'au_f1')}  MEB F1 (two-class) "
                  f"{interval_label(m, 'au_f1_meb')}{synthetic}")
            print("F1 per AU: " + ", ".join(f"{au} {v['f1']:.3f}" for au, v in m["per_au"].items()))
            print("per held-out dataset: " + ", ".join(
                f"{name} {v['au_f1']:.3f}" for name, v in m["per_dataset"].items()))
        else:
            print(f"UF1 {interval_label(m, 'uf1')}  UAR {interval_label(m, 'uar')}  "
                  f"accuracy {m['accuracy']:.3f}{synthetic}")
        print(f"leaderboard row in {board}:")
        print("| " + " | ".join(map(str, row(*mine[0], board.parent))) + " |")
    return 0


def cmd_pretrain(args) -> int:
    """Run (or reuse from the artefact cache) a method's pre-training and write it to a
    checkpoint file that ``-S pretrained=PATH`` loads."""
    import time

    import torch

    from mer_bench.context import AuxiliaryLoader, RunContext, macro_only
    from mer_bench.features.cache import default_cache_dir
    from mer_bench.methods import build_method
    from mer_bench.runner import writable_folder
    from mer_bench.timing import resolve_device
    _apply_data_roots(args)
    if not 0 <= args.seed < 2**32:
        raise MerBenchError(f"--seed {args.seed}: a seed is an integer in [0, 2^32)")
    output = Path(args.output)
    if not args.output.strip() or output.is_dir():
        raise MerBenchError(f"--output {args.output!r}: name a checkpoint file, not a folder")
    writable_folder(output.parent, "--output's folder")  # before minutes of training
    method = build_method(args.method, args.preset, **_key_values(args.set, "--set"))
    if not hasattr(method, "pretrained_state"):
        raise MerBenchError(f"method {args.method!r} has no pre-training stage")
    source = macro_only(args.macro_dataset, 0)  # the guard a run applies, before training
    cache_root = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    aux = AuxiliaryLoader({"macro": args.macro_dataset}, method.input_specs, cache_root, 0)
    ctx = RunContext(device=resolve_device(args.device), seed=args.seed, preset=args.preset,
                     auxiliary_loader=aux, artifact_dir=cache_root / "artifacts")
    start = time.perf_counter()
    state = method.pretrained_state(ctx)
    if not state:
        raise MerBenchError(f"{args.method}: this configuration has no pre-training "
                            f"(pretrain=none)")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    torch.save({**state, "source": source}, args.output)
    print(f"{args.output}: pre-trained on {args.macro_dataset} (seed {args.seed}) in "
          f"{time.perf_counter() - start:.1f} s; load it with -S pretrained={args.output}")
    return 0


def cmd_datasets(args) -> int:
    """List real datasets and where they are configured; or check one."""
    import warnings

    import pandas as pd

    from mer_bench.data.datasets import load_dataset
    from mer_bench.data.folders import DATA_FOLDERS, data_root
    _apply_data_roots(args)
    if args.action is None:
        for name in DATA_FOLDERS:
            root, source = data_root(name)
            state = "found" if root is not None and root.is_dir() else "missing"
            print(f"  {name:9s} {state if root else 'not configured':15s} {root or ''} "
                  f"{f'({source})' if root else ''}")
        print("  synthetic twins (always available): synth-casme2, synth-samm, synth-smic, "
              "synth-mmew, synth-casme, synth-ckplus, synth-megc2019")
        return 0
    if not args.dataset:
        raise MerBenchError(f"datasets check needs --dataset NAME; choose from {', '.join(DATA_FOLDERS)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = load_dataset(args.dataset, strict=args.strict, face_crop=args.face_crop)
    samples = dataset.samples
    print(f"{dataset.name}: {len(samples)} clips, {samples['subject'].nunique()} subjects")
    table = pd.crosstab(samples["subject"].str.split("/").str[-1], samples["emotion"], margins=True)
    print(table.to_string())
    problems = list(dataset.problems)
    if args.all_frames and hasattr(dataset, "frame_problems"):
        problems += dataset.frame_problems()
        print("frames checked: every frame of every clip decoded and compared in size with "
              "its onset frame")
    elif hasattr(dataset, "frame_problems"):
        print("frames checked: the key frames (onset, apex, offset) of each clip decoded and "
              "compared in size; --all-frames decodes every frame (a run stops, naming the "
              "file, at a frame that does not decode or differs in size)")
    print(f"{len(problems)} problems" + (":" if problems else ""))
    for p in problems:
        print(f"  {p.line()}")
    return 0


def cmd_list(args) -> int:
    from mer_bench.data.datasets import dataset_names
    from mer_bench.data.schemes import SCHEMES
    from mer_bench.methods import get_method_class, method_names
    from mer_bench.protocols import PROTOCOLS
    what = args.what
    if what in (None, "datasets"):
        print("datasets:")
        for name, desc in dataset_names().items():
            print(f"  {name:16s} {desc}")
    if what in (None, "protocols"):
        print("protocols:")
        for name, cls in PROTOCOLS.items():
            params = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls))
            summary = (cls.__doc__ or "").strip().splitlines()[0]
            print(f"  {name:10s} [{cls.task}] {summary}" + (f" [{params}]" if params else ""))
    if what in (None, "methods"):
        print("methods (tasks: emotion classes, au detection; emotion-only adapters cannot run "
              "au-lodo / au-loso):")
        for name in method_names():
            cls = get_method_class(name)
            doc = sys.modules[cls.__module__].__doc__ or ""
            print(f"  {name:12s} [{', '.join(cls.tasks)}] "
                  f"{doc.strip().splitlines()[0] if doc.strip() else ''}")
    if what in (None, "schemes"):
        print("label schemes:")
        for s in SCHEMES.values():
            print(f"  {s.name:10s} [{s.task}] {', '.join(s.classes)}  "
                  f"(datasets: {', '.join(s.datasets)}; "
                  f"{s.description})")
    return 0


def cmd_leaderboard(args) -> int:
    from mer_bench.report.leaderboard import verified, write
    results = verified(Path(args.results), Path(args.output), args.skip_invalid)
    if args.site:  # from the same verified results, collected once
        from mer_bench.report.site import build_site
        print(build_site(results, Path(args.site)))
    print(write(results, Path(args.output), plots=not args.no_plots))
    return 0


def cmd_plot(args) -> int:
    """Confusion matrix of one result file (verified first), and its learning curves
    where it has them, as PNGs."""
    from mer_bench.report.plots import confusion_plot, diagnostics_plot
    from mer_bench.report.results import load_result, verify_result
    result = load_result(Path(args.result))
    problems = verify_result(result)
    if problems:
        raise MerBenchError(f"{args.result}: {problems[0]}")
    output = Path(args.output) if args.output else Path(args.result).with_suffix(".confusion.png")
    if output.suffix.lower() != ".png" or output.is_dir():
        raise MerBenchError(f"--output {args.output}: name a .png file (the figure is a PNG)")
    if result["label_scheme"].get("task") == "au":
        raise MerBenchError(f"{args.result}: an AU result has no confusion matrix (twelve "
                            f"binary decisions per clip); its per-AU F1 is in metrics.per_au "
                            f"and on its page of the site")
    print(confusion_plot(result, output))
    curves = diagnostics_plot(result, output.with_name(output.name.replace(".confusion", "")
                                                       .replace(".png", ".learning.png")))
    if curves:
        print(curves)
    return 0


def cmd_check_method(args) -> int:
    from mer_bench.checks import check_method, resolve
    failed = 0
    for cls in resolve(args.target):
        print(f"{cls.name}:")
        for check in check_method(cls):
            print(f"  [{'ok' if check.ok else 'FAIL'}] {check.name}"
                  + (f": {check.detail}" if check.detail else ""))
            failed += not check.ok
    return 1 if failed else 0


def cmd_bench(args) -> int:
    """One method's throughput ladder, FLOPs, parameters and training-step memory
    (``mer_bench.bench``), without running a protocol."""
    from mer_bench.bench import bench, format_rows
    from mer_bench.methods import resolve_method
    if not 1 <= args.threads <= 256:
        raise MerBenchError(f"--threads {args.threads}: choose 1 to 256")
    row = bench(resolve_method(args.method), args.preset, args.device, args.threads)
    print(f"{row.method} · preset {row.preset} · {row.device_class} · one step per stage on "
          f"{row.train_clips} synth-casme2 clips")
    print(format_rows([row]))
    print(f"FLOPs: {row.flops_note}")
    return 0


def cmd_compare(args) -> int:
    """Paired comparison of two methods' verified results (``mer_bench.report.compare``)."""
    import json

    from mer_bench.report.compare import choose_pair, compare
    from mer_bench.report.leaderboard import collect
    results = collect(Path(args.results), skip_invalid=True) if Path(args.results).is_dir() else []
    try:
        (path_a, a), (path_b, b) = choose_pair(results, args.a, args.b, protocol=args.protocol,
                                               dataset=args.dataset, scheme=args.scheme,
                                               preset=args.preset)
    except MerBenchError as err:
        raise MerBenchError(f"{err} (searched --results {args.results})") from None
    if a.get("run_id") == b.get("run_id"):
        raise MerBenchError(f"A and B are the same result ({a.get('run_id')}); compare two runs")
    comparison = compare(a, b)
    if args.format == "json":
        print(json.dumps({**comparison.to_json(), "files": [str(path_a), str(path_b)]}, indent=1))
    else:
        print(comparison.markdown())
        print(f"\nA: `{path_a}`  \nB: `{path_b}`")
    return 0


def cmd_reproduce(args) -> int:
    """Re-run what each result file records; exit 1 when any gives other predictions."""
    from mer_bench.reproduce import reproduce
    different = 0
    for path in args.results:
        outcome = reproduce(Path(path), Path(args.out) if args.out else None, jobs=args.jobs,
                            cache_dir=args.cache_dir, progress=not args.quiet,
                            adapter=Path(args.adapter) if args.adapter else None,
                            strict=args.strict)
        print(f"{path}: {outcome.summary()}")
        different += not outcome.kept
    return 1 if different else 0


def _needs_portable(args) -> bool:
    """Whether this command must run in a process started with portable mode's switches
    (``mer_bench.portable``) and this one was not: ``run --portable``, or ``reproduce`` of
    a result made in portable mode."""
    from mer_bench.portable import portable_process
    if args.command == "run":
        wanted = args.portable
    elif args.command == "reproduce":
        wanted = any(_made_portable(Path(p)) for p in args.results)
    else:
        return False
    return wanted and not portable_process()


def _made_portable(path: Path) -> bool:
    """Whether the result file at ``path`` records portable mode (False for a file that
    cannot be read: ``reproduce`` reports it)."""
    from mer_bench.report.results import load_result
    try:
        mode = load_result(path).get("numeric_mode")
    except (MerBenchError, OSError, ValueError):
        return False
    return isinstance(mode, dict) and mode.get("portable") is True


def build_parser() -> argparse.ArgumentParser:
    from mer_bench.data import FACE_CROPS
    parser = argparse.ArgumentParser(prog="mer-bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one method under one protocol and write a result file")
    run.add_argument("--method", required=True, help="a registered method (mer-bench list methods)")
    run.add_argument("--protocol", required=True, help="loso, kfold5, holdout, cde, lodo or fewshot")
    run.add_argument("--dataset", help="dataset (default: synth-casme2; synth-megc2019 for cde and lodo)")
    run.add_argument("--scheme", help="label scheme (default: the dataset's)")
    run.add_argument("--preset", default="paper", help="paper, fast or smoke (default paper)")
    run.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    run.add_argument("--seeds", help="several seeds, comma-separated (overrides --seed)")
    run.add_argument("--jobs", type=int, default=1,
                     help="parallel folds (default 1); with --device cuda, folds at once on the "
                          "GPU (checked against one fold's measured memory); with --devices, "
                          "per device")
    run.add_argument("--devices", metavar="LIST",
                     help="spread folds over several GPUs: indices (0,1,...) or 'all' visible; "
                          "--jobs folds per device")
    run.add_argument("--backend", default="loky",
                     help="where folds run: loky (local processes, default), dask, ray")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="Dask scheduler for --backend dask (tcp://host:8786); default: a "
                          "local cluster of --jobs workers")
    run.add_argument("--threads", type=int, default=1,
                     help="compute threads per fold: torch and BLAS (default 1; part of the "
                          "run's identity, so --jobs never changes the numbers)")
    run.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    run.add_argument("--amp", action="store_true",
                     help="predict under bf16 autocast (torch methods; the timed and the scored "
                          "predictions both; part of the run's identity)")
    run.add_argument("--portable", action="store_true",
                     help="portable numeric mode: every library's CPU kernels pinned to AVX2 + "
                          "FMA, so the run gives the same bits on any x86-64 CPU (restarts "
                          "itself with the switches; part of the run's identity)")
    run.add_argument("--out", default="results", help="result folder (default results/)")
    run.add_argument("--cache-dir", type=Path, help="feature cache (default ~/.cache/mer-bench)")
    resume = run.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true", help="continue an interrupted run")
    resume.add_argument("--fresh", action="store_true", help="discard an interrupted run's folds")
    run.add_argument("--param", "-P", action="append", metavar="KEY=VALUE",
                     help="protocol parameter, e.g. -P repeats=10")
    run.add_argument("--set", "-S", action="append", metavar="KEY=VALUE",
                     help="method config override, e.g. -S C=0.1")
    run.add_argument("--n-way", type=int, help="fewshot: classes per episode")
    run.add_argument("--k-shot", type=int, help="fewshot: support clips per class")
    run.add_argument("--q-query", type=int, help="fewshot: query clips per class")
    run.add_argument("--episodes", type=int, help="fewshot: evaluation episodes")
    run.add_argument("--corrupt", metavar="KIND",
                     help="robustness track: corrupt test clips' frames (mask, noise, grayscale)")
    run.add_argument("--corrupt-share", type=float, metavar="P",
                     help="share of clips corrupted with --corrupt, 0 < P <= 1 (default 0.3)")
    run.add_argument("--macro-dataset", default="synth-ckplus",
                     help="auxiliary macro-expression dataset: a name or folder:PATH of "
                          "unlabelled videos / frame folders (default synth-ckplus)")
    run.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    run.add_argument("--data-root", action="append", metavar="NAME=PATH",
                     help="folder of a real dataset, e.g. --data-root casme2=/data/CASME2")
    run.add_argument("--strict", nargs="?", const=True, default=False, choices=[True, "all"],
                     type=lambda v: "all" if v == "all" else v,
                     help="a real dataset's problems (clips that would be skipped) are errors; "
                          "--strict=all: warnings about kept clips too")
    run.add_argument("--face-crop", choices=FACE_CROPS, default="detect",
                     help="detect (default): crop the face of real datasets distributed as "
                          "whole frames (SAMM, raw CASME II / SMIC, MMEW, CASME, CAS(ME)^2, "
                          "CK+); none: use the frames whole (your own face crops)")
    run.set_defaults(func=cmd_run)

    data = sub.add_parser("datasets", help="real datasets: where they are; 'check' one")
    data.add_argument("action", nargs="?", choices=["check"])
    data.add_argument("--dataset", help="with check: the dataset to check")
    data.add_argument("--data-root", action="append", metavar="NAME=PATH")
    data.add_argument("--strict", nargs="?", const=True, default=False, choices=[True, "all"],
                      type=lambda v: "all" if v == "all" else v,
                      help="with check: fail on problems (=all: on warnings too)")
    data.add_argument("--face-crop", choices=FACE_CROPS, default="detect",
                      help="detect (default): crop the face of real datasets distributed as "
                           "whole frames (SAMM, raw CASME II / SMIC, MMEW, CASME, CAS(ME)^2, "
                           "CK+); none: use the frames whole (your own face crops)")
    data.add_argument("--all-frames", action="store_true",
                      help="with check: decode every frame of every clip, not only the key "
                           "frames, and report clips with broken or wrong-size frames")
    data.set_defaults(func=cmd_datasets)

    lst = sub.add_parser("list", help="list datasets, protocols, methods and label schemes")
    lst.add_argument("what", nargs="?", choices=["datasets", "protocols", "methods", "schemes"])
    lst.set_defaults(func=cmd_list)

    board = sub.add_parser("leaderboard", help="leaderboard commands")
    board_sub = board.add_subparsers(dest="action", required=True)
    build = board_sub.add_parser("build", help="verify result files and write the markdown table")
    build.add_argument("--results", default="leaderboard/results",
                       help="folder of result files (default leaderboard/results, the committed ones)")
    build.add_argument("--output", default="leaderboard/LEADERBOARD.md",
                       help="markdown file (default leaderboard/LEADERBOARD.md)")
    build.add_argument("--skip-invalid", action="store_true",
                       help="skip (with a warning) files whose metrics do not match")
    build.add_argument("--no-plots", action="store_true",
                       help="no figures (default: plots/ beside the markdown: UF1 against "
                            "throughput per table, a confusion matrix per result)")
    build.add_argument("--site", metavar="DIR",
                       help="also write the static site (index, robustness page, a page per "
                            "result; no network) into DIR, e.g. leaderboard/site")
    build.set_defaults(func=cmd_leaderboard)

    pre = sub.add_parser("pretrain", help="run a method's pre-training stage once and write "
                                          "its checkpoint (MA2MI)")
    pre.add_argument("--method", required=True)
    pre.add_argument("--preset", default="paper", help="paper, fast or smoke (default paper)")
    pre.add_argument("--macro-dataset", default="synth-ckplus",
                     help="macro-expression source: a dataset name or folder:PATH")
    pre.add_argument("--seed", type=int, default=0)
    pre.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    pre.add_argument("--cache-dir", help="feature and artefact cache (default as for run)")
    pre.add_argument("--data-root", action="append", metavar="NAME=PATH")
    pre.add_argument("-S", "--set", action="append", metavar="KEY=VALUE",
                     help="method config override, as for run")
    pre.add_argument("--output", required=True, help="checkpoint file to write")
    pre.set_defaults(func=cmd_pretrain)

    plot = sub.add_parser("plot", help="confusion matrix and learning curves of one result "
                                       "file (PNG)")
    plot.add_argument("result", help="a result .json file")
    plot.add_argument("--output", help="PNG to write (default: RESULT.confusion.png)")
    plot.set_defaults(func=cmd_plot)

    check = sub.add_parser("check-method", help="run the adapter contract checks")
    check.add_argument("target", help="registered method name or path to a .py adapter file")
    check.set_defaults(func=cmd_check_method)

    speed = sub.add_parser("bench", help="a method's inference throughput (batch 1, 32, 256; fp32 "
                           "and bf16), FLOPs, parameters and one training step's peak memory, "
                           "without running a protocol")
    speed.add_argument("--method", required=True, help="a registered method (mer-bench list methods)")
    speed.add_argument("--preset", default="paper", help="paper, fast or smoke (default paper)")
    speed.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    speed.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                       help="CPU compute threads (default: every core; the device class "
                            "names the count)")
    speed.set_defaults(func=cmd_bench)

    compare = sub.add_parser("compare", help="is A better than B? paired bootstrap over "
                                             "subjects and McNemar's test on two results")
    compare.add_argument("a", help="method name (or a result file's path)")
    compare.add_argument("b", help="method name (or a result file's path)")
    compare.add_argument("--protocol", help="protocol of the results to compare")
    compare.add_argument("--dataset")
    compare.add_argument("--scheme")
    compare.add_argument("--preset")
    compare.add_argument("--results", default="results",
                         help="folder of result files (default results/; the committed ones: "
                              "leaderboard/results)")
    compare.add_argument("--format", choices=["markdown", "json"], default="markdown")
    compare.set_defaults(func=cmd_compare)

    again = sub.add_parser("reproduce", help="re-run what result files record and report "
                                             "identical or different predictions (exit 1)")
    again.add_argument("results", nargs="+", help="result .json files")
    again.add_argument("--out", help="folder for the re-runs' results (default: a temporary "
                                     "folder, removed)")
    again.add_argument("--jobs", type=int, default=1, help="parallel folds (default 1)")
    again.add_argument("--cache-dir", type=Path, help="feature cache (default as for run)")
    again.add_argument("--quiet", action="store_true", help="no progress bars")
    again.add_argument("--adapter", metavar="PATH",
                       help="your copy of the adapter file a result ran (its sha256 must be "
                            "the recorded one; a result file never picks the code that runs)")
    again.add_argument("--strict", action="store_true",
                       help="bit-level promise: scores within 1e-9 (default: identical classes, "
                            "scores within the cross-machine tolerance, README)")
    again.set_defaults(func=cmd_reproduce)
    return parser


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"mer-bench: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    import warnings
    warnings.formatwarning = _format_warning
    args = build_parser().parse_args(argv)
    try:
        if _needs_portable(args):
            from mer_bench.portable import restart_portable
            return restart_portable(sys.argv[1:] if argv is None else list(argv))
        return args.func(args)
    except KeyboardInterrupt:
        print("mer-bench: interrupted", file=sys.stderr)
        return 130
    except RunInterrupted as err:
        print(f"mer-bench: {err}", file=sys.stderr)
        return 130
    except MerBenchError as err:
        print(f"mer-bench: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a read-only or full disk, a file removed underneath
        where = f"{err.filename}: " if err.filename else ""
        print(f"mer-bench: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2


def entry() -> int:
    """The ``mer-bench`` command: ``main``, then ``gc.freeze()`` before the interpreter
    exits. Shutdown otherwise runs the cyclic garbage collector over every object the
    imports created (scikit-learn, SciPy, pandas: ≈ 0.4 s on a 2-core machine, a tenth of
    a small run); frozen objects are skipped, and the only effect is that cyclic garbage
    still alive at exit is not collected (Python never promises that at exit anyway;
    files are closed by their ``with`` blocks and temporary folders by ``atexit``).
    ``main`` itself leaves the collector alone, for callers in a long-lived process."""
    try:
        return main()
    finally:
        gc.freeze()


if __name__ == "__main__":
    sys.exit(entry())
