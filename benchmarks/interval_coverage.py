"""How often do the leaderboard's 95 % intervals cover the truth? (a script, not a test)

    python benchmarks/interval_coverage.py [--reps 400] [--fewshot-reps 100] [--draws 2000]
                                           [--fewshot-draws 1000] [--holdout-reps 200]
                                           [--au-reps 200]
                                           [--only pooled|fewshot|holdout|few-subjects|au]

Simulates per-subject predictions shaped like the real datasets — the subjects and
per-subject class counts of the casme2-5, smic-3, samm-5 twins and of the 68-subject
megc2019 composite (the twins copy the real files' counts) — and applies each interval
method the leaderboard uses (``mer_bench.report.intervals``), beside the percentile
subject bootstrap and the few-shot interval it replaced (reference rows).

Pooled protocols (loso, kfold5, cde, lodo): each replicate draws as many subjects as the
dataset has, with replacement, from its subjects' class profiles; subject s is correct on
a clip of class c with probability sigmoid(b_c + u_s), u_s ~ N(0, sigma²) (per-subject
accuracy heterogeneity), and errors go to the other classes with a preference for the
first class (as a classifier's bias towards a frequent class). The truth is the metric of
the expected pooled confusion matrix over the subject population (Gauss-Hermite over
u), i.e. what an infinitely large study would report.

Few-shot: 40 % of the subjects are held out (as the protocol does), N-way 5-shot 5-query
episodes are drawn from their clips, a query is correct with probability
sigmoid(b_c + u_s + v_e) (v_e ~ N(0, 0.3²): an episode's support set), errors go to the
episode's other classes. The truth is the expected per-episode metric over fresh pools
of people and episodes (Monte Carlo, 6,000 episodes from 1,500 pools).

Holdout: every replicate draws its population of subjects as for pooled shapes; each of
S seeds x 5 repeats holds out a random 40 % of them (3:2), and a subject's clips are
predicted afresh in every repeat (a retrained model: correct with probability
sigmoid(b_c + u_s + v_r), v_r ~ N(0, 0.3²) per repeat; u_s the person's, shared by all
repeats and seeds). The statistic is the protocol's: the mean over (seed, repeat) units
of each unit's metric. The truth is its expectation over fresh studies (Monte Carlo,
2,000 studies). Methods, both from ``Holdout.summarize`` (2,000 draws): the
subject-cluster bootstrap-t of the mean over units with the spread between repeats added
to its SE (the leaderboard's; one person is one cluster across repeats and seeds) beside
the t-interval over repeats it replaced.

Few subjects: pooled shapes of 2-8 subjects (the first subjects of casme2-5), to find
where the bootstrap-t stops keeping its promise (``intervals.MIN_CLUSTERS``).

AU task (``au-lodo`` on the six CD6ME twins, ``au-loso`` on the SAMM and CASME II twins):
each replicate draws, within each source dataset, as many subjects as it has, with
replacement, keeping each drawn subject's clips and their AU vectors (the twins'); a
present AU k is detected with probability sigmoid(1.0 - 0.1 k + u_s), an absent one is
falsely detected with probability sigmoid(-2.0 - u_s) (u_s ~ N(0, 1): some people are
read better than others, in both directions). The statistic is the leaderboard's (mean
over datasets of the mean over AUs of F1, and MEB's two-class F1); the truth is that
statistic of the expected counts over the subject population (Gauss-Hermite over u).
Method: the subject bootstrap-t of ``mer_bench.report.au_metrics`` (``AUWeightedMetric``).

Prints, per shape, method and metric: coverage, its Monte Carlo standard error, the share
of misses below the truth, and the mean width.
"""

from __future__ import annotations

import argparse
import time
from statistics import NormalDist

import numpy as np
import pandas as pd

from mer_bench.data.datasets import load_dataset
from mer_bench.data.schemes import get_scheme
from mer_bench.nn.episodes import eligible_classes, sample_episode
from mer_bench.protocols.holdout import Holdout
from mer_bench.report.intervals import WeightedMetric, draw_weights, studentize, unit_cells
from mer_bench.report.au_metrics import AU_HEADLINE, AUWeightedMetric
from mer_bench.report.metrics import HEADLINE, headline_from_confusion

POOLED_SHAPES = [("synth-smic", "smic-3"), ("synth-casme2", "casme2-5"),
                 ("synth-samm", "samm-5"), ("synth-megc2019", "megc2019")]
FEWSHOT_SHAPES = [("synth-smic", "smic-3", 3), ("synth-casme2", "casme2-5", 3),
                  ("synth-samm", "samm-5", 3), ("synth-megc2019", "megc2019", 3)]
HOLDOUT_SHAPES = [("synth-smic", "smic-3", 1), ("synth-casme2", "casme2-5", 1),
                  ("synth-casme2", "casme2-5", 3)]
SIGMA = 1.0
"""sd of the per-subject logit effect: subjects' accuracies spread over about ±0.2."""
K_SHOT = Q_QUERY = 5


def labelled(dataset: str, scheme: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(subject index per clip, class index per clip, number of classes) of a twin."""
    chosen = get_scheme(scheme, dataset)
    table = chosen.apply(load_dataset(dataset).samples)
    _, subjects = np.unique(table["subject"], return_inverse=True)
    return subjects, table["label"].to_numpy(), len(chosen.classes)


def class_model(n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(C,) logit of a correct answer per class and (C, C) error distribution rows."""
    logits = np.linspace(1.2, -0.6, n_classes)
    errors = np.ones((n_classes, n_classes))
    errors[:, 0] *= 3
    np.fill_diagonal(errors, 0)
    return logits, errors / errors.sum(1, keepdims=True)


def row_probabilities(logits: np.ndarray, errors: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(..., C, C) predicted-class probabilities per true class for subject effects u."""
    correct = 1 / (1 + np.exp(-(logits + u[..., None])))
    return errors * (1 - correct)[..., :, None] + np.eye(len(logits)) * correct[..., :, None]


def pooled_truth(profiles: np.ndarray, logits: np.ndarray, errors: np.ndarray) -> dict:
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    expected = np.einsum("k,kij->ij", weights / weights.sum(),
                         row_probabilities(logits, errors, SIGMA * nodes))
    return {k: float(v) for k, v in
            headline_from_confusion(profiles.sum(0)[:, None] * expected).items()}


def percentile_reference(cells: np.ndarray, n_boot: int, seed: int) -> dict:
    """The interval the leaderboard used before: percentile subject bootstrap."""
    values = WeightedMetric(cells)(draw_weights(cells.shape[1], n_boot, seed))
    return {k: np.quantile(v, [0.025, 0.975]) for k, v in values.items()}


def pooled_replicate(profiles, logits, errors, rng, n_boot) -> dict:
    n_subjects, n_classes = profiles.shape
    drawn = profiles[rng.integers(0, n_subjects, n_subjects)]
    probs = row_probabilities(logits, errors, rng.normal(0, SIGMA, n_subjects))
    cells = np.zeros((1, n_subjects, n_classes, n_classes))
    for c in range(n_classes):
        cells[0, :, c, :] = rng.multinomial(drawn[:, c], probs[:, c, :])
    seed = int(rng.integers(2 ** 31))
    chosen = studentize(WeightedMetric(cells), n_boot, seed, min_clusters=1)
    return {"bootstrap-t (leaderboard)": {k: chosen[k].interval() for k in HEADLINE},
            "percentile (reference)": percentile_reference(cells, n_boot, seed)}


def run_pooled(dataset: str, scheme: str, reps: int, n_boot: int, rng) -> list[dict]:
    subjects, labels, n_classes = labelled(dataset, scheme)
    profiles = np.zeros((subjects.max() + 1, n_classes), np.int64)
    np.add.at(profiles, (subjects, labels), 1)
    logits, errors = class_model(n_classes)
    truth = pooled_truth(profiles, logits, errors)
    outcomes = [pooled_replicate(profiles, logits, errors, rng, n_boot) for _ in range(reps)]
    return summarize(f"{scheme} ({len(profiles)} subjects, pooled)", truth, outcomes)


def held_out_pool(subjects, labels, n_way, rng) -> np.ndarray:
    """Clip positions of a random 40 % of the subjects with n_way eligible classes."""
    n = max(1, round((subjects.max() + 1) * 0.4))
    while True:
        chosen = np.isin(subjects, rng.permutation(subjects.max() + 1)[:n])
        if len(eligible_classes(labels[chosen], K_SHOT + Q_QUERY)) >= n_way:
            return np.flatnonzero(chosen)


def episode_predictions(subjects, labels, pool, n_way, n_episodes, logits, rng) -> np.ndarray:
    """int (n, 4) rows (episode, subject, y_true, y_pred) of n_episodes episodes."""
    effect = rng.normal(0, SIGMA, subjects.max() + 1)
    rows = []
    for e in range(n_episodes):
        episode = sample_episode(labels[pool], n_way, K_SHOT, Q_QUERY, rng)
        query = pool[episode.query]
        y_true = labels[query]
        p = 1 / (1 + np.exp(-(logits[y_true] + effect[subjects[query]] + rng.normal(0, 0.3))))
        y_pred = y_true.copy()
        for i in np.flatnonzero(rng.random(len(query)) >= p):
            y_pred[i] = rng.choice(episode.classes[episode.classes != y_true[i]])
        rows.append(np.stack([np.full(len(query), e), subjects[query], y_true, y_pred], 1))
    return np.concatenate(rows)


def episode_metrics(rows: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    cms = np.zeros((rows[:, 0].max() + 1, n_classes, n_classes))
    np.add.at(cms, (rows[:, 0], rows[:, 2], rows[:, 3]), 1)
    return headline_from_confusion(cms)


def fewshot_reference(rows: np.ndarray, n_classes: int, n_boot: int, seed: int) -> dict:
    """The interval the leaderboard used before: estimate ± 1.96 SE of a bootstrap that
    weights query clips by their subject's multiplicity (class balance not kept)."""
    cells = unit_cells(rows[:, 2], rows[:, 3], rows[:, 1], rows[:, 0], n_classes)
    statistic = WeightedMetric(cells)
    estimate = statistic(np.ones((1, cells.shape[1])))
    draws = statistic(draw_weights(cells.shape[1], n_boot, seed))
    z = NormalDist().inv_cdf(0.975)
    return {k: estimate[k][0] + np.array([-z, z]) * np.nanstd(draws[k], ddof=1)
            for k in HEADLINE}


def run_fewshot(dataset: str, scheme: str, n_way: int, reps: int, n_boot: int,
                n_episodes: int, rng) -> list[dict]:
    subjects, labels, n_classes = labelled(dataset, scheme)
    logits, _ = class_model(n_classes)
    truth_draws = [episode_metrics(episode_predictions(
        subjects, labels, held_out_pool(subjects, labels, n_way, rng), n_way, 4, logits, rng),
        n_classes) for _ in range(1500)]
    truth = {k: float(np.mean([d[k] for d in truth_draws])) for k in HEADLINE}
    outcomes = []
    for _ in range(reps):
        pool = held_out_pool(subjects, labels, n_way, rng)
        rows = episode_predictions(subjects, labels, pool, n_way, n_episodes, logits, rng)
        cells = unit_cells(rows[:, 2], rows[:, 3], rows[:, 1], rows[:, 0], n_classes)
        seed = int(rng.integers(2 ** 31))
        chosen = studentize(WeightedMetric(cells, balanced=True), n_boot, seed)
        outcomes.append({"bootstrap-t, class-balanced (leaderboard)":
                         {k: chosen[k].interval() for k in HEADLINE},
                         "±1.96 SE, clips reweighted (reference)":
                         fewshot_reference(rows, n_classes, n_boot, seed)})
    held_out = max(1, round((subjects.max() + 1) * 0.4))
    return summarize(f"{scheme} ({held_out} held-out subjects, {n_way}-way {K_SHOT}-shot, "
                     f"{n_episodes} episodes)", truth, outcomes)


REPEATS = 5


def holdout_units(profiles, logits, errors, effects, seeds: int, rng) -> np.ndarray:
    """int (n, 4) rows (unit, subject, y_true, y_pred): ``seeds`` x ``REPEATS`` 3:2
    splits of the subjects, each held-out subject's clips predicted afresh."""
    n_subjects, n_classes = profiles.shape
    held = max(1, round(n_subjects * 0.4))
    rows = []
    for unit in range(seeds * REPEATS):
        tested = rng.permutation(n_subjects)[:held]
        probs = row_probabilities(logits, errors, effects[tested] + rng.normal(0, 0.3))
        for k, s in enumerate(tested):
            for c in range(n_classes):
                counts = rng.multinomial(profiles[s, c], probs[k, c])
                for predicted in np.flatnonzero(counts):
                    rows += [(unit, s, c, predicted)] * int(counts[predicted])
    return np.asarray(rows, np.int64)


def holdout_replicate(profiles, logits, errors, seeds, rng) -> dict:
    """The leaderboard's interval and the t-interval over repeats it replaced, of one
    simulated holdout study, both from the protocol's own ``summarize``."""
    n_subjects, n_classes = profiles.shape
    drawn = profiles[rng.integers(0, n_subjects, n_subjects)]
    rows = holdout_units(drawn, logits, errors, rng.normal(0, SIGMA, n_subjects), seeds, rng)
    frame = pd.DataFrame({"y_true": rows[:, 2], "y_pred": rows[:, 3],
                          "subject": rows[:, 1].astype(str), "seed": rows[:, 0] // REPEATS,
                          "fold": [f"repeat{u % REPEATS}" for u in rows[:, 0]]})
    metrics = Holdout(repeats=REPEATS).summarize(frame, tuple(map(str, range(n_classes))))
    return {"bootstrap-t over subjects + repeat spread (leaderboard)": metrics["ci"],
            "t-interval over repeats (reference)": metrics["ci_repeats"]}


def run_holdout(dataset: str, scheme: str, seeds: int, reps: int, rng) -> list[dict]:
    subjects, labels, n_classes = labelled(dataset, scheme)
    profiles = np.zeros((subjects.max() + 1, n_classes), np.int64)
    np.add.at(profiles, (subjects, labels), 1)
    logits, errors = class_model(n_classes)
    studies = []
    for _ in range(2000):
        drawn = profiles[rng.integers(0, len(profiles), len(profiles))]
        rows = holdout_units(drawn, logits, errors, rng.normal(0, SIGMA, len(profiles)), 1, rng)
        studies.append({k: float(np.mean(v)) for k, v in episode_metrics(rows, n_classes).items()})
    truth = {k: float(np.mean([s[k] for s in studies])) for k in HEADLINE}
    outcomes = [holdout_replicate(profiles, logits, errors, seeds, rng) for _ in range(reps)]
    return summarize(f"{scheme} holdout ({len(profiles)} subjects, {seeds} seed"
                     f"{'s' if seeds > 1 else ''} x {REPEATS} repeats)", truth, outcomes)


def run_few_subjects(n_subjects: int, reps: int, n_boot: int, rng) -> list[dict]:
    subjects, labels, n_classes = labelled("synth-casme2", "casme2-5")
    profiles = np.zeros((subjects.max() + 1, n_classes), np.int64)
    np.add.at(profiles, (subjects, labels), 1)
    profiles = profiles[np.argsort(-profiles.sum(1))[:n_subjects]]
    logits, errors = class_model(n_classes)
    truth = pooled_truth(profiles, logits, errors)
    outcomes = [pooled_replicate(profiles, logits, errors, rng, n_boot) for _ in range(reps)]
    return summarize(f"casme2-5 pooled, {n_subjects} subjects", truth, outcomes)


AU_SHAPES = [("synth-cd6me", "au-lodo"), ("synth-samm", "au-loso"), ("synth-casme2", "au-loso")]


def au_design(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dataset index per subject, subject index per clip, uint8 (n, 12) AU targets)."""
    from mer_bench.data.facs import mask_matrix
    chosen = get_scheme(None, dataset, "au")
    table = chosen.apply(load_dataset(dataset).samples)
    names, subjects = np.unique(table["subject"], return_inverse=True)
    _, data_of_clip = np.unique(table["dataset"], return_inverse=True)
    data_of_subject = np.zeros(len(names), np.int64)
    data_of_subject[subjects] = data_of_clip
    return data_of_subject, subjects, mask_matrix(table["label"].to_numpy(), len(chosen.classes))


AU_HIT = 1.0
AU_FALSE = -2.0


def au_probabilities(n_aus: int, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P(detected | present), P(detected | absent)), each (..., A), for subject effects u."""
    hit = 1 / (1 + np.exp(-(AU_HIT - 0.1 * np.arange(n_aus) + u[..., None])))
    false = 1 / (1 + np.exp(-(AU_FALSE - u[..., None]) * np.ones(n_aus)))
    return hit, false


def au_truth(data_of_subject, subjects, targets) -> dict:
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    hit, false = (np.einsum("k,ka->a", weights / weights.sum(), p)
                  for p in au_probabilities(targets.shape[1], nodes))
    n_data = data_of_subject.max() + 1
    present = np.zeros((n_data, targets.shape[1]))
    total = np.zeros(n_data)
    np.add.at(present, data_of_subject[subjects], targets)
    np.add.at(total, data_of_subject[subjects], 1)
    absent = total[:, None] - present
    tp, fn = present * hit, present * (1 - hit)
    fp, tn = absent * false, absent * (1 - false)
    expected = np.stack([tp, fp, fn, tn], -1)[None]
    return {k: float(v[0]) for k, v in AUWeightedMetric.headline(expected).items()}


def au_replicate(data_of_subject, subjects, targets, rng, n_boot) -> dict:
    n_data, n_aus = data_of_subject.max() + 1, targets.shape[1]
    clips_of = [np.flatnonzero(subjects == s) for s in range(len(data_of_subject))]
    drawn = np.concatenate([rng.choice(np.flatnonzero(data_of_subject == d),
                                       (data_of_subject == d).sum()) for d in range(n_data)])
    cells = np.zeros((n_data, len(drawn), n_aus, 4))
    hit, false = au_probabilities(n_aus, rng.normal(0, 1, len(drawn)))
    for g, s in enumerate(drawn):
        truth = targets[clips_of[s]].astype(bool)
        guess = np.where(truth, rng.random(truth.shape) < hit[g], rng.random(truth.shape) < false[g])
        counts = np.stack([truth & guess, ~truth & guess, truth & ~guess, ~truth & ~guess], -1)
        cells[data_of_subject[s], g] = counts.sum(0)
    chosen = studentize(AUWeightedMetric(cells), n_boot, int(rng.integers(2 ** 31)))
    return {"bootstrap-t (leaderboard)": {k: chosen[k].interval() for k in AU_HEADLINE}}


def run_au(dataset: str, protocol: str, reps: int, n_boot: int, rng) -> list[dict]:
    design = au_design(dataset)
    truth = au_truth(*design)
    outcomes = [au_replicate(*design, rng, n_boot) for _ in range(reps)]
    return summarize(f"{protocol} {dataset} ({len(design[0])} subjects)", truth, outcomes,
                     AU_HEADLINE)


def summarize(shape: str, truth: dict, outcomes: list[dict], metrics=HEADLINE) -> list[dict]:
    """One row per (method, metric): coverage, MC SE, share of misses below, width."""
    rows = []
    for method in outcomes[0]:
        for k in metrics:
            bounds = np.array([o[method][k] for o in outcomes], np.float64)
            hit = (bounds[:, 0] <= truth[k]) & (truth[k] <= bounds[:, 1])
            coverage = float(hit.mean())
            rows.append({"shape": shape, "method": method, "metric": k, "truth": truth[k],
                         "coverage": coverage,
                         "mc_se": float(np.sqrt(coverage * (1 - coverage) / len(hit))),
                         "below": float((bounds[:, 0] > truth[k]).mean()),
                         "width": float(np.mean(bounds[:, 1] - bounds[:, 0]))})
    return rows


def print_table(rows: list[dict]) -> None:
    print("| shape | interval | metric | truth | coverage ± MC SE | misses below | mean width |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['method']} | {r['metric']} | {r['truth']:.3f} | "
              f"{r['coverage']:.3f} ± {r['mc_se']:.3f} | {r['below']:.3f} | {r['width']:.3f} |",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=400, help="replicates per pooled shape")
    parser.add_argument("--fewshot-reps", type=int, default=100,
                        help="replicates per few-shot shape")
    parser.add_argument("--draws", type=int, default=2000, help="bootstrap draws (leaderboard: 2000)")
    parser.add_argument("--fewshot-draws", type=int, default=1000,
                        help="bootstrap draws per few-shot replicate (leaderboard: 2000; 1000 "
                             "halves the run, the t* quantiles move by Monte Carlo noise only)")
    parser.add_argument("--episodes", type=int, default=200, help="episodes per few-shot run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--holdout-reps", type=int, default=200,
                        help="replicates per holdout shape")
    parser.add_argument("--au-reps", type=int, default=200, help="replicates per AU shape")
    parser.add_argument("--only", choices=["pooled", "fewshot", "holdout", "few-subjects", "au"])
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    rows = []
    if args.only in (None, "pooled"):
        for dataset, scheme in POOLED_SHAPES:
            rows += run_pooled(dataset, scheme, args.reps, args.draws, rng)
    if args.only in (None, "holdout"):
        for dataset, scheme, seeds in HOLDOUT_SHAPES:
            rows += run_holdout(dataset, scheme, seeds, args.holdout_reps, rng)
    if args.only in (None, "few-subjects"):
        for n_subjects in (2, 3, 4, 5, 6, 8):
            rows += run_few_subjects(n_subjects, args.reps, args.draws, rng)
    if args.only in (None, "au"):
        for dataset, protocol in AU_SHAPES:
            rows += run_au(dataset, protocol, args.au_reps, args.draws, rng)
    if args.only in (None, "fewshot"):
        for dataset, scheme, n_way in FEWSHOT_SHAPES:
            rows += run_fewshot(dataset, scheme, n_way, args.fewshot_reps, args.fewshot_draws,
                                args.episodes, rng)
    print_table(rows)
    print(f"\n{time.perf_counter() - start:.0f} s; replicates: {args.reps} pooled, "
          f"{args.holdout_reps} holdout, {args.fewshot_reps} few-shot; bootstrap draws: {args.draws} pooled, "
          f"{args.fewshot_draws} few-shot")


if __name__ == "__main__":
    main()
