"""One memo for answers that depend on a validated recipe: kept for the last recipe asked about.

Lint plans and checks every recipe and variant of a project: a rule, a plan and both targets ask the
same recipe the same question dozens of times (each side's flag table, its connector tree, the
mounts of every container, the tunables both targets share). ``per_recipe`` answers each once per
recipe, and forgets when the next recipe comes. The memo holds the recipe itself, so its identity
cannot be reused by another object while an answer is kept; validated recipes are frozen, so the
answer cannot go stale. Other arguments must be hashable, and are part of the key.
"""

from __future__ import annotations

import functools


def per_recipe(fn):
    """fn(recipe, *args), asked once per recipe (by identity) and args."""
    last: list = [None, {}]

    @functools.wraps(fn)
    def asked(recipe, *args):
        if last[0] is not recipe:
            last[0], last[1] = recipe, {}
        answers = last[1]
        try:
            return answers[args]
        except KeyError:
            answer = answers[args] = fn(recipe, *args)
            return answer

    return asked
