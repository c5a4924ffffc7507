"""recipec: compile declarative recipes for disaggregated LLM serving into guarded launch bundles.

The pipeline, one module a stage (pipeline.py wires them; docs/architecture.md draws it):
load -> validate -> check (recipe rules) -> plan (once per target) -> check (plan rules) -> render -> write.
"""

__version__ = "0.1.0"
