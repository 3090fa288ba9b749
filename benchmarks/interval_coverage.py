"""How often do the leaderboard's 95 % intervals cover the truth? (a script, not a test)

    python benchmarks/interval_coverage.py [--reps 400] [--fewshot-reps 100] [--draws 2000]
                                           [--fewshot-draws 1000]

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

Prints, per shape, method and metric: coverage, its Monte Carlo standard error, the share
of misses below the truth, and the mean width.
"""

from __future__ import annotations

import argparse
import time
from statistics import NormalDist

import numpy as np

from mer_bench.data.datasets import load_dataset
from mer_bench.data.schemes import get_scheme
from mer_bench.nn.episodes import eligible_classes, sample_episode
from mer_bench.report.intervals import WeightedMetric, draw_weights, studentize, unit_cells
from mer_bench.report.metrics import HEADLINE, headline_from_confusion

POOLED_SHAPES = [("synth-smic", "smic-3"), ("synth-casme2", "casme2-5"),
                 ("synth-samm", "samm-5"), ("synth-megc2019", "megc2019")]
FEWSHOT_SHAPES = [("synth-smic", "smic-3", 3), ("synth-casme2", "casme2-5", 3),
                  ("synth-samm", "samm-5", 3), ("synth-megc2019", "megc2019", 3)]
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
    chosen = studentize(WeightedMetric(cells), n_boot, seed)
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


def summarize(shape: str, truth: dict, outcomes: list[dict]) -> list[dict]:
    """One row per (method, metric): coverage, MC SE, share of misses below, width."""
    rows = []
    for method in outcomes[0]:
        for k in HEADLINE:
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
    parser.add_argument("--only", choices=["pooled", "fewshot"])
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    rows = []
    if args.only != "fewshot":
        for dataset, scheme in POOLED_SHAPES:
            rows += run_pooled(dataset, scheme, args.reps, args.draws, rng)
    if args.only != "pooled":
        for dataset, scheme, n_way in FEWSHOT_SHAPES:
            rows += run_fewshot(dataset, scheme, n_way, args.fewshot_reps, args.fewshot_draws,
                                args.episodes, rng)
    print_table(rows)
    print(f"\n{time.perf_counter() - start:.0f} s; replicates: {args.reps} pooled, "
          f"{args.fewshot_reps} few-shot; bootstrap draws: {args.draws} pooled, "
          f"{args.fewshot_draws} few-shot")


if __name__ == "__main__":
    main()
