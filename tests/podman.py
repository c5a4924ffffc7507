"""Running bundles whose services run in podman: the images, the recipe settings, the leftovers.

Plain functions (no pytest), shared by tests/ and bench/. A recipe under test runs in a local image
(no registry is reachable): built by tools/containers/make-image.sh (cached by a recipe hash label,
0.1 s when present). Such an image is not on the project's allow-list, so the bundle is built from a
small project of its own (`container_project`) whose [tool.recipec] allows `localhost/`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAKE_IMAGE = ROOT / "tools" / "containers" / "make-image.sh"
STANDINS = ROOT / "tests" / "standins"
STANDIN_IMAGE = "recipec-standin:bookworm"
ENGINES_IMAGE = "recipec-engines:test"
# What the stand-ins read from their environment (a test sets them on the launcher): passed into
# every container by name, as a recipe's pass-env does.
STANDIN_VARS = ("STANDIN_CLIENT_SECS", "STANDIN_CLIENT_EXIT", "STANDIN_RECORD", "STANDIN_BENCH", "RECIPEC_TEST_TAG")


def podman_unusable() -> str | None:
    """None if podman can run containers here, else why not."""
    if shutil.which("podman") is None:
        return "podman not installed (tools/containers/setup-podman.sh)"
    if os.geteuid() != 0:
        return "the podman tests need root (make-image.sh, rootful podman)"
    proc = subprocess.run(["podman", "info"], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        return f"podman info failed: {proc.stderr.strip()[-300:]}"
    return None


def require_podman() -> None:
    """Skip the calling test without podman; fail it under RECIPEC_REQUIRE_CONTAINERS=1 (CI)."""
    import pytest

    why = podman_unusable()
    if why:
        if os.environ.get("RECIPEC_REQUIRE_CONTAINERS") == "1":
            pytest.fail(f"RECIPEC_REQUIRE_CONTAINERS=1 but {why}")
        pytest.skip(why)


def make_image(name: str, *args: str, timeout: float = 900) -> str:
    """localhost/NAME, built by make-image.sh if missing or out of date."""
    proc = subprocess.run([str(MAKE_IMAGE), name, *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"make-image.sh {name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return f"localhost/{name}"


def container_project(folder: Path, recipe: str) -> Path:
    """A project in folder allowing local images, holding a copy of the recipes and the profiles they
    extend; the path of recipes/RECIPE.yaml."""
    (folder / "recipes").mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(
        '[tool.recipec]\nrepository = "acme/recipes"\nimage-allow-list = ["localhost/", "docker.io/vllm/"]\n')
    for path in (ROOT / "recipes").glob("*.yaml"):
        shutil.copy(path, folder / "recipes" / path.name)
    shutil.copytree(ROOT / "profiles", folder / "profiles", dirs_exist_ok=True)
    return folder / "recipes" / f"{recipe}.yaml"


def standin_sets(image: str, bin_dir: Path, ports: dict) -> list[str]:
    """--set texts running every service of kimik2.5 in podman with the stand-ins of bin_dir."""
    names = [*(f"STANDIN_{p}" for p in sorted(set(ports.values()))), *STANDIN_VARS]
    return [f"image={image}", "container.runtime=podman", "container.devices=none", "container.hf-cache=null",
            f"container.mounts=[{{source: {STANDINS}}}, {{source: {bin_dir}}}]",
            f"container.env={{PATH: '{bin_dir}:/usr/local/bin:/usr/bin:/bin'}}",
            f"container.pass-env=[{', '.join(names)}]"]


def containers_named(part: str, runtime: str = "podman") -> list[str]:
    """Names of every container (running or not) of runtime whose name contains part."""
    proc = subprocess.run([runtime, "ps", "-a", "--format", "{{.Names}}", "--filter", f"name={part}"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [n for n in proc.stdout.split() if part in n]


def remove_containers(names: list[str], runtime: str = "podman") -> None:
    if names:
        force = ["--force", "--time", "0", "--ignore"] if runtime == "podman" else ["--force"]
        subprocess.run([runtime, "rm", *force, *names], capture_output=True, timeout=60)


def docker_unusable() -> str | None:
    """None if a docker daemon answers here, else why not."""
    if shutil.which("docker") is None:
        return "docker not installed (tools/containers/setup-docker.sh)"
    proc = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                          timeout=60)
    if proc.returncode != 0:
        return f"no docker daemon answers (tools/containers/setup-docker.sh): {proc.stderr.strip()[-300:]}"
    return None


def require_docker() -> None:
    """Skip the calling test without a docker daemon; fail it under RECIPEC_REQUIRE_CONTAINERS=1 (CI)."""
    import pytest

    why = podman_unusable() or docker_unusable()  # docker's images come from podman
    if why:
        if os.environ.get("RECIPEC_REQUIRE_CONTAINERS") == "1":
            pytest.fail(f"RECIPEC_REQUIRE_CONTAINERS=1 but {why}")
        pytest.skip(why)


def docker_image(name: str, *args: str) -> str:
    """localhost/NAME in docker: the podman image (make_image NAME ARGS), loaded with `podman save |
    docker load` unless docker already holds the same image ID."""
    ref = make_image(name, *args)

    def image_id(*cmd: str) -> str:
        proc = subprocess.run([*cmd, "image", "inspect", "--format", "{{.Id}}", ref], capture_output=True, text=True,
                              timeout=60)
        return proc.stdout.strip().removeprefix("sha256:") if proc.returncode == 0 else ""

    if image_id("docker") != image_id("podman"):
        save = subprocess.Popen(["podman", "save", ref], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        load = subprocess.run(["docker", "load"], stdin=save.stdout, capture_output=True, text=True, timeout=600)
        save.stdout.close()
        assert save.wait(timeout=600) == 0 and load.returncode == 0, load.stderr
    return ref
