"""The static HTML leaderboard: reads Inspect evaluation logs and renders a site that works offline.

``collect(sources)`` returns one row per log (a pandas DataFrame); ``build_site(sources, out_dir, title)``
writes the site and returns its index.html. Sources are run folders, folders of Inspect logs or log
files; with none, every ``runs/*/eval`` folder is read.
"""
from __future__ import annotations

from fleming.leaderboard.logs import collect
from fleming.leaderboard.site import DEFAULT_TITLE, build_site

__all__ = ["build_site", "collect", "DEFAULT_TITLE"]
