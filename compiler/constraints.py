"""Cross-field constraints of the models in model.py, as plain functions of a validated object.

pydantic runs them as model validators; the compiled validator (compiled.py) calls the same
functions by name, so they must not need pydantic: attribute reads only.
"""

from __future__ import annotations

# Text that must stay on one line of a line-oriented file (#SBATCH directives, README lines): no C0
# or C1 control character (\n, \r, \x85 among them) and no Unicode line or paragraph separator.
# A JSON-Schema (ECMA) regex and a Rust one both: validate.py names it in words.
ONE_LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"


def append_only_alone(entry):
    """A changelog entry's append-only excludes the eval selectors (InferenceX's own rule)."""
    if entry.append_only and (entry.evals_only or entry.all_evals or entry.eval_min_prefill_ep is not None):
        raise ValueError("append-only cannot be combined with evals-only, all-evals or eval-min-prefill-ep")
    return entry


def one_dataset(dataset):
    """A benchmark's prompts come from exactly one source: random token sequences or a file."""
    if (dataset.random is None) == (dataset.file is None):
        raise ValueError("give exactly one of random or file")
    return dataset


def one_prompt_count(prompts):
    """Prompts per point: a multiple of the point's concurrency, or one number for every point."""
    if (prompts.per_concurrency is None) == (prompts.count is None):
        raise ValueError("give exactly one of per-concurrency or count")
    return prompts
