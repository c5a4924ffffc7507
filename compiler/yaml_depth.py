"""Part of load: where deep flow nesting passes the depth limit, in text the YAML library refused.

load.py walks the event stream to bound nesting; a YAML library may refuse deep flow nesting in its
scanner before it hands over an event of it, and then only the text tells where the limit was
passed, so that the error is recipec's own (file, line, column), never the library's or a crash.
"""

from __future__ import annotations

import re

# What flow_depth stops at: flow brackets, quotes, comments, separators and line ends.
_FLOW_STOPS = re.compile(r"""[\[\]{}'"#,:\n]""")


def flow_depth(text: str, start: int, end: int, depth: int, max_depth: int) -> int | None:
    """Index of the first flow bracket in text[start:end] that nests deeper than max_depth, counting
    from ``depth`` levels already open, or None.

    Used only where the YAML library has already refused the text, to choose whose error to report,
    so it reads YAML coarsely: a bracket opens a level where a node may begin (after ``: ``, ``,``,
    ``[``, ``{``, ``- `` or at the start of a line outside flow), quoted scalars and comments are
    skipped, and any other text is a plain scalar.
    """
    node_start = True
    i = start
    while i < end:
        match = _FLOW_STOPS.search(text, i, end)
        if match is None:
            return None
        j = match.start()
        ch = text[j]
        before = text[i:j].strip(" \t")
        if before and before not in ("-", "?") and not before.startswith(("!", "&")):
            node_start = False  # a plain scalar (or a block indicator's own text) stood before it
        if ch in "[{" and node_start:
            depth += 1
            if depth > max_depth:
                return j
        elif ch in "]}":
            depth = max(depth - 1, 0)
            node_start = False
        elif ch in "'\"" and node_start:
            close = _quote_end(text, j, end)
            if close is None:
                return None
            j, node_start = close, False
        elif ch == "#" and (j == 0 or text[j - 1] in " \t\n"):
            newline = text.find("\n", j, end)
            if newline < 0:
                return None
            j = newline - 1
        elif ch == "," and depth:
            node_start = True
        elif ch == ":" and (j + 1 >= len(text) or text[j + 1] in " \t\n,[]{}"):
            node_start = True
        elif ch == "\n":
            node_start = node_start or not depth
        i = j + 1
    return None


def _quote_end(text: str, start: int, end: int) -> int | None:
    """Index of the quote that closes the quoted scalar opened at ``start``."""
    quote = text[start]
    i = start + 1
    while i < end:
        if text[i] == "\\" and quote == '"':
            i += 2
            continue
        if text[i] == quote:
            if quote == "'" and i + 1 < end and text[i + 1] == "'":
                i += 2
                continue
            return i
        i += 1
    return None
