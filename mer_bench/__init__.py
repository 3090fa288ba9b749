"""mer-bench: a benchmark harness and leaderboard for facial micro-expression recognition."""

__version__ = "0.1.0"
