"""Every diagnostic code recipec reports: code -> name, summary, fix hint, severity, and the stage
that reports it. `recipec rules` prints this table; tests/rules/ holds a failing and a passing
fixture for each recipe, document and plan code.

Codes are data here and nowhere else: the checks that report them (rules/, changelog.py,
history.py, live.py, load and validate) import this table, never each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]
ERROR: Severity = "error"
WARNING: Severity = "warning"

# Which stage reports a code: input (load, validate), document (rules over a recipe that did not
# validate), recipe (rules over the validated Recipe), plan (rules over the Plans), changelog, live,
# compose (extends, variants and the repository's config keys: compose.py, variants.py, lint.py).
Scope = Literal["input", "document", "recipe", "plan", "changelog", "live", "compose"]


@dataclass(frozen=True)
class Code:
    code: str
    name: str
    summary: str
    hint: str
    severity: Severity
    scope: Scope


def _code(code: str, name: str, scope: Scope, severity: Severity, summary: str, hint: str) -> Code:
    return Code(code, name, summary, hint, severity, scope)


CODES: dict[str, Code] = {c.code: c for c in (
    _code("RC001", "unreadable-input", "input", ERROR,
          "the file is not readable YAML (encoding, syntax, duplicate keys, aliases, size, depth)",
          "fix the file at the position shown"),
    _code("RC100", "schema", "input", ERROR,
          "a value does not fit the model (type, unknown key, missing key)",
          "see schema/ for what each key takes"),
    _code("RC201", "port-conflict", "plan", ERROR,
          "two services of one node use the same port",
          "give each service its own port in the recipe"),
    _code("RC202", "flag-owned-by-recipec", "recipe", ERROR,
          "an engine flag in args is one recipec sets from other keys",
          "remove it from args and set the structured key instead"),
    _code("RC301", "image-unpinned", "recipe", ERROR,
          "the container image has no tag, or a moving one like latest",
          "pin a release tag (e.g. :v0.33.0) or a digest (@sha256:...)"),
    _code("RC302", "image-not-allowed", "recipe", ERROR,
          "the container image is not from an allowed public registry/org",
          "use a public image from [tool.recipec] image-allow-list in pyproject.toml"),
    _code("RC401", "gpus-exceeded", "recipe", ERROR,
          "the GPUs a node's workers use (TP x PP x local DP, each, x workers-per-node) exceed the GPUs of a node",
          "lower workers-per-node or the parallel sizes, or raise cluster.gpus-per-node"),
    _code("RC501", "changelog-no-final-newline", "changelog", ERROR,
          "the changelog does not end with a newline",
          "add a final newline"),
    _code("RC502", "changelog-tab", "changelog", ERROR,
          "the changelog contains a tab character",
          "indent with spaces"),
    _code("RC503", "changelog-cr", "changelog", ERROR,
          "the changelog contains a carriage return",
          "use LF line endings"),
    _code("RC504", "changelog-nul", "changelog", ERROR,
          "the changelog contains a NUL character",
          "remove it"),
    _code("RC510", "pr-link-not-canonical", "changelog", ERROR,
          "pr-link is not https://github.com/OWNER/REPO/pull/N of the project's repository",
          "link the pull request itself, e.g. https://github.com/OWNER/REPO/pull/123"),
    _code("RC511", "unknown-config-key", "changelog", ERROR,
          "a new changelog entry names a config key no recipe has",
          "use the config-key of a recipe under recipes/ (globs allowed)"),
    _code("RC512", "pr-link-not-this-pr", "changelog", ERROR,
          "a new changelog entry's pr-link is not the pull request being checked (--pr-number)",
          "link this pull request: https://github.com/OWNER/REPO/pull/N"),
    _code("RC513", "pr-link-not-on-its-line", "changelog", ERROR,
          "the pr-link value does not stand on the `pr-link:` line itself (folded onto the next line, "
          "a block scalar, or a flow mapping)",
          "write the URL on the same line: `  pr-link: https://github.com/OWNER/REPO/pull/N`"),
    _code("RC520", "changelog-history-edited", "changelog", ERROR,
          "an entry that exists at the base ref was changed (only its pr-link may be corrected)",
          "restore the entry and describe the change in a new entry at the end"),
    _code("RC521", "changelog-history-deleted", "changelog", ERROR,
          "an entry that exists at the base ref was deleted",
          "restore the entry: the changelog is append-only"),
    _code("RC522", "changelog-not-appended", "changelog", ERROR,
          "a new entry was inserted before entries of the base ref",
          "move the new entry to the end of the file"),
    _code("RC601", "unknown-connector", "recipe", ERROR,
          "a kv-transfer connector is not in the pinned engine's registry",
          "use a connector the pinned vLLM registers, or set module-path for an out-of-tree class"),
    _code("RC602", "legacy-kv-transfer-key", "document", ERROR,
          "a kv-transfer mapping uses a KVTransferConfig key vLLM removed (kv_rank, kv_parallel_size, kv_ip, "
          "kv_buffer_size)",
          "delete it: vLLM's V1 connectors rank and address their peers themselves"),
    _code("RC603", "kv-role-wrong-side", "recipe", ERROR,
          "a connector's role does not fit its side (prefill: kv_producer or kv_both; decode: kv_consumer or "
          "kv_both)",
          "prefill connectors produce KV, decode connectors consume it"),
    _code("RC604", "nixl-kv-both", "recipe", WARNING,
          "a NIXL connector has role kv_both (deprecated)",
          "use kv_producer on prefill and kv_consumer on decode"),
    _code("RC605", "multiconnector-children", "recipe", ERROR,
          "a MultiConnector has no children, or a connector that is not a MultiConnector has some",
          "list the children under connectors: of a MultiConnector only"),
    _code("RC606", "mooncake-rdma-device", "recipe", ERROR,
          "a MooncakeConnector uses RDMA (the default) without device_name",
          "set extra-config device_name (e.g. mlx5_0,mlx5_1), or mooncake_protocol: tcp"),
    _code("RC607", "pd-connector-mismatch", "recipe", ERROR,
          "prefill and decode do not share one KV transfer connector",
          "use the same PD connector (Mooncake, NIXL or MoRIIO) on both sides"),
    _code("RC608", "router-kv-connector", "recipe", ERROR,
          "the router's kv-connector does not match the engines' PD connector (Mooncake: mooncake, NIXL: "
          "nixl, MoRIIO: moriio)",
          "set router.kv-connector to the engines' connector, or leave it unset when they use none"),
    _code("RC701", "lmcache-server-missing", "recipe", ERROR,
          "an LMCacheMPConnector runs on a role whose nodes have no LMCache server",
          "add the role to lmcache.roles (or add an lmcache section)"),
    _code("RC702", "lmcache-mp-mismatch", "recipe", ERROR,
          "the connector's lmcache.mp.host/port/hash_algorithm/isolated_ipc disagree with the LMCache server",
          "drop the lmcache.mp.* key: recipec fills host and port from the lmcache section; set "
          "hash-algorithm/isolated-ipc on both sides alike"),
    _code("RC703", "lmcache-mp-host-form", "recipe", ERROR,
          "lmcache.mp.host (or lmcache.host) is not a bare host: the connector wants scheme + host "
          "(tcp://127.0.0.1), the server a host without scheme or port",
          "write lmcache.mp.host as tcp://HOST and put the port in lmcache.mp.port / lmcache.port"),
    _code("RC704", "lmcache-on-decode-with-remote-prefill", "recipe", WARNING,
          "decode runs LMCache while receiving KV from a remote prefill: the LMCache lookup races the remote "
          "KV load",
          "keep LMCache on prefill only (lmcache.roles: [prefill])"),
    _code("RC705", "lmcache-l1-incomplete", "recipe", ERROR,
          "the LMCache server lacks l1-size-gb or eviction-policy (it refuses to start without both)",
          "set lmcache.l1-size-gb and lmcache.eviction-policy (e.g. LRU)"),
    _code("RC706", "lmcache-l1-exceeds-dram", "recipe", ERROR,
          "the LMCache L1 size does not fit the node's DRAM (error above it, warning above 90%)",
          "lower lmcache.l1-size-gb or fix cluster.dram-gb-per-node"),
    _code("RC707", "lmcache-server-unused", "recipe", WARNING,
          "an LMCache server runs on a role none of whose connectors is an LMCacheMPConnector",
          "drop the role from lmcache.roles, or add the connector"),
    _code("RC708", "lmcache-transfer-mode", "recipe", ERROR,
          "the connector's LMCache transfer mode is one the server does not support (the engine then hangs in "
          "start-up)",
          "set lmcache.supported-transfer-mode: auto, or the connector's lmcache.mp.mp_transfer_mode to a "
          "mode the server supports; auto means engine_driven on CPU, lmcache_driven on GPUs"),
    _code("RC801", "flag-unknown", "plan", ERROR,
          "a generated flag is not accepted by the pinned engine version",
          "fix the flag's name in args: compiler/catalog/data lists every flag of the pinned version"),
    _code("RC802", "flag-value-unexpected", "plan", ERROR,
          "a value follows a flag that takes none (a switch), or more values than the flag takes",
          "write true/false for a switch, one value for a one-value flag"),
    _code("RC803", "flag-value-missing", "plan", ERROR,
          "a generated flag lacks the value it needs",
          "give the flag its value in args"),
    _code("RC804", "flag-value-invalid", "plan", ERROR,
          "a flag's value is outside its choices, or not of its type (number, JSON)",
          "use one of the values the pinned version accepts"),
    _code("RC805", "kv-transfer-config-invalid", "plan", ERROR,
          "a generated --kv-transfer-config has a key KVTransferConfig does not have, a value outside a "
          "field's choices, or (written in args) a connector the registry lacks",
          "write KV transfer in the kv-transfer section, with the keys the pinned vLLM's KVTransferConfig has"),
    _code("RC806", "engine-catalog-missing", "plan", WARNING,
          "no engine catalog for the pinned version: its flags are not checked",
          "generate one with tools/catalog/make-all.sh, or pin a version that has one"),
    _code("RC940", "extends-missing", "compose", ERROR,
          "a base named in extends does not exist",
          "name a recipe under recipes/, a file under profiles/ (profiles/NAME), or a path starting ./ or ../"),
    _code("RC941", "extends-cycle", "compose", ERROR,
          "extends leads back to a file already being extended",
          "break the cycle: a profile must not extend the recipe (or profile) that extends it"),
    _code("RC942", "extends-invalid", "compose", ERROR,
          "extends is not a name or a list of names, or a base is not a mapping",
          "write extends: NAME or extends: [NAME, ...]; a base holds a mapping of recipe keys"),
    _code("RC943", "delete-nothing", "compose", ERROR,
          "a !delete marker removes a key that no base sets (or stands in a file that extends nothing)",
          "remove the marker: there is nothing to delete"),
    _code("RC944", "base-unknown-key", "compose", ERROR,
          "a base (profile or recipe) sets a key the recipe schema does not have",
          "fix the key in the base at the position shown (see schema/)"),
    _code("RC945", "variant-path-missing", "compose", ERROR,
          "a variant overrides a key path that the recipe it varies does not have",
          "override a key the recipe sets (recipec show RECIPE), or a key inside args/env/extra-config"),
    _code("RC946", "variants-invalid", "compose", ERROR,
          "the variants section is malformed (not a list of overrides nor a matrix, a bad or repeated name)",
          "see docs/composition.md for the shape of variants"),
    _code("RC947", "config-key-duplicate", "compose", ERROR,
          "two recipes or variants of the repository have one config key",
          "give each recipe and variant its own config-key"),
    _code("RC920", "benchmark-with-client", "recipe", ERROR,
          "the recipe has both a client step and a benchmark: a run ends with one step's status",
          "keep the benchmark for sweeps and client for any other command; CLIENT_CMD still replaces either "
          "for one run"),
    _code("RC921", "benchmark-result-dir-outside", "recipe", ERROR,
          "benchmark.result-dir is not a plain relative path under LOG_ROOT (absolute, `..`, `.`, empty parts, "
          "or characters other than letters, digits, `_`, `.`, `-`, `/`)",
          "write a relative path such as results or bench/results; LOG_ROOT moves the whole tree"),
    _code("RC922", "benchmark-flag-owned", "recipe", ERROR,
          "benchmark.args sets a client flag recipec writes from the benchmark section",
          "set it through its own key (dataset, concurrency, prompts, request-rate, warmups, ...)"),
    _code("RC923", "benchmark-concurrency-repeated", "recipe", ERROR,
          "a concurrency appears twice in benchmark.concurrency: two points would share a name and a result file",
          "list each concurrency once"),
    _code("RC924", "benchmark-prompts-below-concurrency", "recipe", WARNING,
          "a point sends fewer prompts than its concurrency: it never reaches the concurrency it is named by",
          "raise benchmark.prompts (per-concurrency, or a count of at least the largest concurrency)"),
    _code("RC900", "runtime-wrong-target", "recipe", ERROR,
          "the container runtime cannot run on the recipe's target (pyxis needs SLURM)",
          "build for the slurm target, or choose podman, docker or apptainer"),
    _code("RC901", "image-tag-version-mismatch", "recipe", ERROR,
          "the container image's tag names another version than the pinned engine.version",
          "use the image of the pinned release (e.g. :v0.33.0 for vLLM 0.33.0), or pin the image's version"),
    _code("RC902", "image-tag-version-unknown", "recipe", WARNING,
          "the container image's tag carries no version, so it cannot be checked against engine.version",
          "pin the image by a release tag that carries the version (e.g. :v0.33.0)"),
    _code("RC903", "image-reference-invalid", "recipe", ERROR,
          "a container image a runtime runs is not an image reference (it would be read as an option)",
          "write REGISTRY/NAME:TAG, NAME@sha256:..., or an absolute path (apptainer SIF, enroot squashfs)"),
    _code("RC810", "live-parser-disagrees", "live", ERROR,
          "the real parser of the installed engine and its catalog disagree about a generated argv",
          "regenerate the catalog with tools/catalog/make-all.sh from the pinned version, then fix the recipe"),
    _code("RC811", "live-version-not-installed", "live", WARNING,
          "--live cannot check an argv: the engines venv has another version of the package than the recipe "
          "pins",
          "run --live with a venv of the pinned version: RECIPEC_ENGINES_VENV or --engines-python"),
    _code("RC960", "pd-model-mismatch", "recipe", ERROR,
          "prefill and decode load the model differently (dtype, quantization, revision, tokenizer, "
          "hf-overrides): the KV one side sends is not the KV the other reads",
          "set the flag once in engine.args, not differently per side"),
    _code("RC961", "pd-block-size", "recipe", ERROR,
          "prefill and decode block sizes the PD connector cannot pair (Mooncake: equal; NIXL: decode's a "
          "multiple of prefill's)",
          "set block-size once in engine.args"),
    _code("RC962", "pd-kv-cache-dtype", "recipe", ERROR,
          "prefill and decode store the KV cache in different dtypes",
          "set kv-cache-dtype once in engine.args"),
    _code("RC963", "pd-max-model-len", "recipe", ERROR,
          "decode's max-model-len is below prefill's: a long prompt is prefilled, then refused by decode",
          "give decode at least prefill's max-model-len (set it once in engine.args)"),
    _code("RC964", "pd-tp-ratio", "recipe", ERROR,
          "prefill and decode tensor-parallel sizes the pinned connector cannot pair (neither divides the "
          "other)",
          "use TP sizes where one divides the other (e.g. 8 and 4), or equal ones"),
    _code("RC965", "pd-connector-settings", "recipe", ERROR,
          "a setting both ends of the KV transfer must share differs (Mooncake protocol, NIXL push/pull)",
          "give both sides the same value"),
    _code("RC966", "pd-kv-layout-env", "recipe", ERROR,
          "an environment variable that picks the attention backend or KV layout differs between prefill "
          "and decode",
          "set it in engine.env, once for both sides"),
    _code("RC967", "local-gpus-exceeded", "plan", ERROR,
          "the local target runs every engine on one machine, and they need more GPUs than it has",
          "build for slurm, or lower tensor-parallel-size / workers-per-node / nodes until it fits "
          "cluster.gpus-per-node"),
    _code("RC968", "platform-choice", "recipe", ERROR,
          "a flag's value is not one the recipe's accelerator family supports in the pinned engine (error), or "
          "the family's choices are not known offline (warning)",
          "use a value the platform supports: compiler/catalog/data lists them per accelerator family"),
    _code("RC969", "port-mooncake-metadata-default", "recipe", WARNING,
          "a port of a recipe that uses Mooncake is 8080, the default port of Mooncake's HTTP metadata server "
          "(mooncake_master --enable_http_metadata_server)",
          "pick another port (the seed recipe uses 8081 for LMCache's HTTP server)"),
)}


def all_codes() -> list[Code]:
    return sorted(CODES.values(), key=lambda c: c.code)
