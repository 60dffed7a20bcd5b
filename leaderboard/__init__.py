"""Static HTML leaderboard and comparison reports (issue 4)."""
