"""Reporting: metrics and their intervals, result files, paired comparison, the
leaderboard and the papers' reported numbers."""
