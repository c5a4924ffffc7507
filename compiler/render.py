"""Stage 5, render: Plan + templates/ -> {relative path: text}. No I/O beyond reading templates.

Quoting happens here and only here: every argv item and env value goes through ``sh`` exactly once,
so a recipe value reaches the engine as the literal string it was, whatever characters it holds.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path

from .escape import bash_comment, bash_word, sbatch_value
from .plan import Plan, Ref, Service

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

# Characters that need no quoting inside double quotes (no $, `, ", \ or !). Matched with
# fullmatch: `$` would also match before a trailing newline, and "x\n" would go out bare.
_DQ_SAFE = re.compile(r"[A-Za-z0-9_./:@%+,=\- ]*")
_BARE_SAFE = re.compile(r"[A-Za-z0-9_./:@%+,=-]+")


def sh(word) -> str:
    """Quote one word for bash: literals single-quoted where needed, Refs expanded in double quotes."""
    if isinstance(word, Ref):
        return f'"${{{word.name}}}"'
    if isinstance(word, str):
        return word if _BARE_SAFE.fullmatch(word) else bash_word(word)
    parts = list(word)
    if all(isinstance(p, Ref) or _DQ_SAFE.fullmatch(p) for p in parts):
        return '"' + "".join(f"${{{p.name}}}" if isinstance(p, Ref) else p for p in parts) + '"'
    return "".join(f'"${{{p.name}}}"' if isinstance(p, Ref) else bash_word(p) for p in parts if p != "")


def dq(word) -> str:
    """A word for use inside double quotes (tunable defaults). Literals must need no escaping."""
    text = plain(word)
    parts = [word] if isinstance(word, (str, Ref)) else list(word)
    if not all(isinstance(p, Ref) or _DQ_SAFE.fullmatch(p) for p in parts):
        raise ValueError(f"not safe inside double quotes: {text!r}")
    return text


def plain(word) -> str:
    """A word as a reader sees it (bundle.json, README): Refs shown as ${NAME}."""
    if isinstance(word, Ref):
        return f"${{{word.name}}}"
    if isinstance(word, str):
        return word
    return "".join(f"${{{p.name}}}" if isinstance(p, Ref) else p for p in word)


def argv_lines(argv) -> list[str]:
    """Quoted argv, one flag (with its values) a line: the command and its positionals first."""
    lines: list[list[str]] = [[]]
    for i, word in enumerate(argv):
        text = plain(word)
        if i > 0 and text.startswith("--"):
            lines.append([])
        lines[-1].append(sh(word))
    return [" ".join(line) for line in lines]


def launch_lines(svc: Service) -> list[str]:
    """A service's start, quoted, one flag a line: the container runtime's words (the image on a
    line of its own), then the service's argv from a new line."""
    if svc.container is None:
        return argv_lines(svc.argv)
    prefix = svc.container.prefix
    at = prefix.index(svc.container.image) if svc.container.image in prefix else len(prefix)
    lines = argv_lines(prefix[:at])
    lines += [sh(w) for w in prefix[at:at + 1]] + (argv_lines(prefix[at + 1:]) if prefix[at + 1:] else [])
    return lines + argv_lines(svc.argv)


def env_lines(env) -> list[str]:
    return [f"{name}={sh(value)}" for name, value in env]


def _bytecode_cache():
    """Compiled templates cached per user (compiler/cache.py): compiling them is a third of a
    build's own work. Jinja keys each entry by the template's source checksum, so an edited template
    is recompiled; an unwritable cache directory only costs the compile."""
    from jinja2 import FileSystemBytecodeCache

    from .cache import cache_dir

    folder = cache_dir("jinja")
    return FileSystemBytecodeCache(folder) if folder else None


@functools.lru_cache(maxsize=None)
def _environment(templates_dir: str):
    import jinja2  # imported here: `recipec lint` never renders

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # bash's ${#array[@]} would open a Jinja comment: templates comment with {## ... ##}.
        comment_start_string="{##",
        comment_end_string="##}",
        bytecode_cache=_bytecode_cache(),
    )
    env.filters.update(sh=sh, dq=dq, plain=plain, argv_lines=argv_lines, env_lines=env_lines,
                       launch_lines=launch_lines,
                       sbatch=sbatch_value)
    return env


def render_bundle(plan: Plan, templates_dir: Path = TEMPLATES_DIR) -> dict[str, str]:
    env = _environment(str(templates_dir))
    by_name = {s.name: s for s in plan.services}
    if plan.client is not None:
        by_name["client"] = plan.client
    context = {"plan": plan, "recipe": plan.recipe, "svc": by_name, "header": _header(plan)}
    files = {}
    for name, template in plan.files:  # which files, from which templates: the placement's
        if not template.endswith(".j2"):  # a static file (lib.sh: one library for every bundle)
            files[name] = (templates_dir / template).read_text(encoding="utf-8")
            continue
        files[name] = env.get_template(template).render(context)
    files["bundle.json"] = json.dumps(manifest(plan, files), indent=2, sort_keys=True) + "\n"
    return files


def _header(plan: Plan) -> list[str]:
    # Each line becomes a `# ...` comment: the path and the --set texts are quoted as words, and
    # every line escaped as a comment, so no line break in them can end the comment.
    lines = [
        f"Generated by recipec {plan.version} from {sh(plan.recipe_path)}",
        f"(resolved recipe sha256 {plan.recipe_sha256}), target {plan.target}. Do not edit: change the recipe "
        "and rebuild (recipec verify DIR checks).",
        f"Recipe {plan.recipe.name}, config key {plan.recipe.config_key}.",
    ]
    if plan.overrides:
        lines.append("Built with: " + " ".join(f"--set {sh(o)}" for o in plan.overrides))
    return [bash_comment(line) for line in lines]


def _service_json(s: Service) -> dict:
    return {
        "name": s.name,
        "role": s.role,
        "node": s.node,
        "argv": [plain(w) for w in s.argv],
        "env": {k: plain(v) for k, v in s.env},
        "ports": [{"port": p.port, "purpose": p.purpose} for p in s.ports],
        "ready_url": plain(s.ready_url) if s.ready_url is not None else None,
        "log": "${LOG_DIR}/" + s.log,
        "after": list(s.after),
        **_container_json(s.container),
    }


def _container_json(c) -> dict:
    if c is None:
        return {}
    return {"container": {"runtime": c.runtime, "image": c.image,
                          "name": plain(c.name) if c.name is not None else None,
                          "argv": [plain(w) for w in c.prefix], "env": {k: plain(v) for k, v in c.env}}}


def manifest(plan: Plan, files: dict[str, str] | None = None) -> dict:
    """bundle.json: the plan, and the sha256 of every other file of the bundle (`recipec verify`
    tells a file edited by hand from a recipe or a recipec that changed)."""
    services = [_service_json(s) for s in plan.services]
    if plan.client is not None:
        services.append(_service_json(plan.client))
    return {
        "recipe": plan.recipe.name,
        "config_key": plan.recipe.config_key,
        "recipe_path": plan.recipe_path,
        "recipe_sha256": plan.recipe_sha256,
        "overrides": list(plan.overrides),
        "target": plan.target,
        "recipec_version": plan.version,
        "image": plan.recipe.image,
        "nodes_needed": plan.nodes_needed,
        "router_url": plain(plan.router_url),
        "tunables": {t.name: plain(t.default) for t in plan.tunables},
        "nodes": [{"index": n.index, "label": n.label, "services": [s.name for s in n.services]}
                  for n in plan.nodes],
        "services": services,
        "files": {name: hashlib.sha256(text.encode("utf-8")).hexdigest() for name, text in sorted((files or {}).items())},
        "benchmark": None if plan.benchmark is None else {
            "node": plan.benchmark.node,
            "env": {k: plain(v) for k, v in plan.benchmark.env},
            "points": [{"name": p.name, "concurrency": p.concurrency, "prompts": p.prompts,
                        "result_file": p.result_file, "argv": [plain(w) for w in p.argv],
                        **_container_json(p.container)}
                       for p in plan.benchmark.points],
            "reader": [plain(w) for w in plan.benchmark.reader],
        },
    }
