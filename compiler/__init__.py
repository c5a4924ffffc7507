"""recipec: compile declarative recipes for disaggregated LLM serving into guarded launch bundles.

The pipeline, one module a stage:  load -> validate -> check -> plan -> render -> write.
"""

__version__ = "0.1.0"
