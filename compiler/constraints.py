"""Cross-field constraints of the models in model.py, as plain functions of a validated object.

pydantic runs them as model validators; the compiled validator (compiled.py) calls the same
functions by name, so they must not need pydantic: attribute reads only.
"""

from __future__ import annotations


def append_only_alone(entry):
    """A changelog entry's append-only excludes the eval selectors (InferenceX's own rule)."""
    if entry.append_only and (entry.evals_only or entry.all_evals or entry.eval_min_prefill_ep is not None):
        raise ValueError("append-only cannot be combined with evals-only, all-evals or eval-min-prefill-ep")
    return entry
