"""recipec's per-user cache directory: compiled templates, compiled validators, checked [tool.recipec] tables.

Everything in it is derived from recipec's own sources and the installed libraries, keyed so that a
change to either is a miss, and written atomically; deleting it only costs the next run the work.
RECIPEC_NO_CACHE=1 turns it off (every run then compiles from scratch).
"""

from __future__ import annotations

import os


def cache_dir(name: str) -> str | None:
    """$XDG_CACHE_HOME/recipec/NAME (default ~/.cache), created if needed; None when caching is off
    or the directory cannot be written."""
    if os.environ.get("RECIPEC_NO_CACHE") == "1":
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "recipec", name)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None
