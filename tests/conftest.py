"""Shared test fixtures: bundles built on free ports, stand-in engines on PATH (see harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import (ENGINE_NAMES, ROOT, STANDIN, Run, build_local, free_ports,  # noqa: F401
                     make_standin_bin, port_overrides, processes_with_tag, run_bundle, run_recipec)


@pytest.fixture
def standin_bin(tmp_path: Path) -> Path:
    """A directory holding vllm, lmcache and vllm-router: all the stand-in."""
    return make_standin_bin(tmp_path / "bin")


@pytest.fixture
def local_bundle(tmp_path: Path):
    """Build kimik2.5-tp4 (kimik2.5 on one machine) for the local target on free ports; returns (bundle dir, ports)."""
    def build(*extra: str):
        out = tmp_path / "bundle"
        return out, build_local(out, *extra)
    return build
