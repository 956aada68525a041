"""The static HTML leaderboard: templates, assets and the renderer."""
