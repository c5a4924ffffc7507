"""Stage 1, load: YAML text -> plain data plus the source position of every value.

Takes a path (or text), gives a ``Document``: the data as dicts/lists/scalars and a map from each
value's key path (a tuple of keys and indexes) to its ``Position``. Rejects what YAML would accept
silently but a recipe must not contain: duplicate keys, anchors/aliases (the expansion of an alias
bomb is the classic way a tiny file eats all memory), nesting deeper than MAX_DEPTH, files larger
than MAX_BYTES, and text that is not UTF-8.
"""

from __future__ import annotations

import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import LoadError, Position
from .yaml_depth import flow_depth

try:  # libyaml's parser is several times faster than the pure-Python one
    _Fast = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Fast = yaml.SafeLoader


class _BaseLoader(_Fast):
    """The safe loader with its implicit-tag resolver memoized.

    libyaml composes in C but calls back into Python's resolver (regexes) for every scalar; a
    recipe repeats the same few hundred scalars, so a dictionary answers most of those calls.
    The answer depends only on (kind, value, implicit), which is the cache key.
    """

    _resolved: dict = {}

    def resolve(self, kind, value, implicit):
        key = (kind, value, implicit)
        try:
            return self._resolved[key]
        except KeyError:
            tag = self._resolved[key] = super().resolve(kind, value, implicit)
            if len(self._resolved) > 100_000:  # a pathological file must not grow it forever
                self._resolved.clear()
            return tag
        except TypeError:  # an unhashable value: resolve without the cache
            return super().resolve(kind, value, implicit)


MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_NODES = 200_000
# libyaml's composer recurses in C once per nesting level and overflows the C stack somewhere past
# 20,000 levels (a segfault, not an exception). Text shorter than this cannot nest that deep; longer
# text is first walked as a flat event stream (the parser keeps its own stack) to bound the depth.
DEPTH_PRESCAN_BYTES = 16 * 1024

KeyPath = tuple  # tuple[str | int, ...]


class _Delete:
    """`key: !delete` in a file that extends others: remove the key a base set (compose.py)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "!delete"


DELETE = _Delete()
DELETE_TAG = "!delete"


class Marks(dict):
    """KeyPath -> Position. The loader stores the YAML node itself (a plain dict insert) and the
    Position is made when someone reads it: most values of a valid file are never reported on, and
    making a Position for each cost a third of a load."""

    __slots__ = ("path",)

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def __getitem__(self, keypath) -> Position:
        value = dict.__getitem__(self, keypath)
        if isinstance(value, Position):
            return value
        mark = value.start_mark
        return Position(self.path, mark.line + 1, mark.column + 1)

    def get(self, keypath, default=None):
        return self[keypath] if keypath in self else default


@dataclass
class Document:
    """Plain data of one YAML file and where each value came from."""

    path: str
    data: Any
    positions: Marks = None  # type: ignore[assignment]
    key_positions: Marks = None  # type: ignore[assignment]  # where each key is written
    deletes: tuple = ()  # key paths of `!delete` markers (compose.py removes them, or refuses them)
    sources: tuple = ()  # the files a composed document was merged from, bases first (compose.py)

    def __post_init__(self):
        self.positions = Marks(self.path) if self.positions is None else self.positions
        self.key_positions = Marks(self.path) if self.key_positions is None else self.key_positions

    def position(self, keypath: KeyPath) -> Position:
        """Position of the value at ``keypath``, or of its nearest ancestor that has one."""
        keypath = tuple(keypath)
        while keypath:
            if keypath in self.positions:
                return self.positions[keypath]
            keypath = keypath[:-1]
        return self.positions.get((), Position(self.path, 1, 1))


def read_text(path: Path, display: str, max_bytes: int = MAX_BYTES) -> str:
    """Read a file as strict UTF-8 with a size limit; errors name the file and position."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(info.st_mode):  # a FIFO blocks forever, /dev/zero never ends
            raise LoadError("not a regular file", Position(display))
        size = info.st_size
        if size > max_bytes:
            raise LoadError(f"file is {size} bytes, more than the {max_bytes} allowed",
                            Position(display, 1, 1))
        raw = path.read_bytes()
    except FileNotFoundError:
        raise LoadError("no such file", Position(display)) from None
    except IsADirectoryError:
        raise LoadError("is a directory, not a file", Position(display)) from None
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror}", Position(display)) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise LoadError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                        Position(display, line, col)) from None


def load_file(path: Path, display: str | None = None) -> Document:
    display = display or str(path)
    return load_text(read_text(path, display), display)


def load_text(text: str, display: str, max_nodes: int = MAX_NODES) -> Document:
    if "\0" in text:
        at = text.index("\0")
        line = text.count("\n", 0, at) + 1
        raise LoadError("file contains a NUL character", Position(display, line, at - text.rfind("\n", 0, at)))
    if not text.isascii() and (bad := _SURROGATE.search(text)):
        # Not from a file (read_text decodes strictly) but from a command line: Python decodes
        # undecodable argv bytes to lone surrogates, which no file or process can be given.
        at = bad.start()
        line = text.count("\n", 0, at) + 1
        raise LoadError(f"not UTF-8 text (byte 0x{ord(bad.group()) - 0xdc00:02x})" if bad.group() >= "\udc80"
                        else "text contains a lone UTF-16 surrogate",
                        Position(display, line, at - text.rfind("\n", 0, at)))
    if text.startswith("\ufeff"):
        text = text[1:]
    if len(text) > DEPTH_PRESCAN_BYTES:
        _check_depth(text, display)
    loader = _BaseLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        # The YAML library may stop deep nesting itself, with its own words and position (PyYAML
        # 6.0.4 does at 1,000 flow levels): where recipec's own limit was passed first, say so.
        _check_depth(text, display)
        raise _yaml_error(exc, text, display) from None
    finally:
        loader.dispose()
    doc = Document(display, None)
    if node is None:
        doc.data = None
        doc.positions[()] = Position(display, 1, 1)
        return doc
    builder = _Builder(display, loader, doc.positions, doc.key_positions, max_nodes)
    doc.data = builder.build(node, (), 0)
    doc.deletes = tuple(builder.deletes)
    return doc


def _yaml_error(exc: yaml.YAMLError, text: str, display: str) -> LoadError:
    if not isinstance(exc, yaml.MarkedYAMLError):
        return LoadError(f"invalid YAML: {exc}", Position(display))
    mark = exc.problem_mark or exc.context_mark
    message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
    pos = Position(display, mark.line + 1, mark.column + 1) if mark else Position(display)
    hint = None
    if mark and text.splitlines()[mark.line:mark.line + 1] and "\t" in text.splitlines()[mark.line]:
        hint = "YAML does not allow tabs for indentation: use spaces"
    return LoadError(f"invalid YAML: {message}", pos, hint)


def _check_depth(text: str, display: str) -> None:
    """Raise recipec's own error where nesting passes MAX_DEPTH, before the YAML library's limits.

    Walks the event stream (the parser keeps its own stack, so depth costs no recursion). A YAML
    library may refuse deep flow nesting in its scanner before it hands over a single event of it;
    then the text after the last event is read by ``yaml_depth.flow_depth`` to find where MAX_DEPTH was passed.
    """
    # Depth counts as the builder counts it: the top-level collection is level 0.
    depth, resume = -1, 0
    try:
        for event in yaml.parse(text, Loader=_BaseLoader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    raise LoadError(f"nested deeper than {MAX_DEPTH} levels",
                                    Position(display, mark.line + 1, mark.column + 1))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            resume = event.end_mark.index
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = flow_depth(text, resume, mark.index if mark is not None else len(text), max(depth, 0), MAX_DEPTH)
        if at is not None:
            line = text.count("\n", 0, at) + 1
            raise LoadError(f"nested deeper than {MAX_DEPTH} levels",
                            Position(display, line, at - text.rfind("\n", 0, at))) from None
        raise _yaml_error(exc, text, display) from None


_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_PLAIN_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class _Builder:
    """Turns a composed YAML node tree into plain data, recording positions on the way."""

    def __init__(self, display: str, loader, positions: dict, key_positions: dict, max_nodes: int):
        self.display = display
        self.max_nodes = max_nodes
        self.loader = loader
        self.positions = positions
        self.key_positions = key_positions
        self.count = 0
        self.seen: set[int] = set()
        self.deletes: list = []

    def pos(self, node) -> Position:
        return Position(self.display, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node, keypath: KeyPath, depth: int):
        self.count += 1
        if self.count > self.max_nodes:
            raise LoadError(f"more than {self.max_nodes} values", self.pos(node))
        if depth > MAX_DEPTH:
            raise LoadError(f"nested deeper than {MAX_DEPTH} levels", self.pos(node))
        seen = self.seen
        if id(node) in seen:  # an alias: the composer hands us the anchored node once more
            raise LoadError("YAML aliases (*name) are not allowed in recipes", self.pos(node))
        seen.add(id(node))
        self.positions[keypath] = node  # Marks makes the Position when it is read
        tag = node.tag
        if isinstance(node, yaml.ScalarNode):
            if tag == DELETE_TAG and not node.value:
                self.deletes.append(keypath)
                return DELETE
            return self.scalar(node)
        if tag not in _PLAIN_COLLECTION_TAGS:
            # Collections are built here, not by PyYAML: a tag on one (!!python/object/apply,
            # !!set, !!omap) would otherwise be dropped without a word.
            raise LoadError(f"YAML tag {tag!r} is not allowed in recipes", self.pos(node))
        if isinstance(node, yaml.MappingNode):
            out: dict = {}
            keys: dict = {}
            key_positions = self.key_positions
            for key_node, value_node in node.value:
                if key_node.tag == _STR_TAG and key_node.style != '"' and isinstance(key_node, yaml.ScalarNode):
                    key = key_node.value  # a string key (most): no escapes to check, not a merge key
                else:
                    key = self.key(key_node)
                if key in keys:
                    first = keys[key].start_mark.line + 1
                    raise LoadError(f"duplicate key '{key}' (first defined at line {first})",
                                    self.pos(key_node))
                keys[key] = key_node
                at = keypath + (key,)
                key_positions[at] = key_node
                if id(value_node) in seen:
                    raise LoadError("YAML aliases (*name) are not allowed in recipes", self.pos(key_node))
                out[key] = self.build(value_node, at, depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            if any(id(item) in seen for item in node.value):  # an alias has no mark of its own
                raise LoadError("YAML aliases (*name) are not allowed in recipes", self.pos(node))
            return [self.build(item, keypath + (i,), depth + 1) for i, item in enumerate(node.value)]
        return self.scalar(node)

    def key(self, key_node) -> str:
        """A mapping key that is not a plain string: a plain scalar of another type, made a string."""
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise LoadError("YAML merge keys (<<) are not allowed in recipes", self.pos(key_node))
        if not isinstance(key_node, yaml.ScalarNode):
            raise LoadError("mapping keys must be plain scalars", self.pos(key_node))
        key = self.scalar(key_node)
        if isinstance(key, (dict, list)) or key is None:
            raise LoadError("mapping keys must be plain scalars", self.pos(key_node))
        return str(key) if not isinstance(key, str) else key

    def scalar(self, node):
        if node.tag == _STR_TAG:  # most values: skip PyYAML's per-object bookkeeping
            if node.style == '"':  # only escapes (\0, \uD800) can make these
                self.check_string(node.value, node)
            return node.value
        if node.tag == _INT_TAG and node.value.isascii() and node.value.isdigit() and (
                node.value[0] != "0" or node.value == "0") and len(node.value) < 19:
            # A plain decimal (ports, sizes): what PyYAML's constructor makes. Long digit strings
            # take the path below, which words Python's int_max_str_digits refusal in ours.
            return int(node.value)
        if node.tag not in _SCALAR_TAGS:
            # A collection tag on a scalar (!!seq x) makes PyYAML's constructor return a generator,
            # and any other tag names a constructor a recipe has no business calling.
            raise LoadError(f"YAML tag {node.tag!r} is not allowed on a scalar", self.pos(node))
        try:
            return _SCALAR_TAGS[node.tag](self.loader, node)
        except yaml.constructor.ConstructorError as exc:
            raise LoadError(f"invalid value: {exc.problem}", self.pos(node)) from None
        except (ValueError, OverflowError) as exc:
            if "integer string conversion" in str(exc):  # said in our words: Python's vary by version
                digits = sum(c.isdigit() for c in node.value)
                raise LoadError(f"invalid value: an integer of {digits} digits (Python converts at most "
                                f"{sys.get_int_max_str_digits()})", self.pos(node)) from None
            raise LoadError(f"invalid value: {str(exc).split(';')[0]}", self.pos(node)) from None
        except (KeyError, AttributeError, TypeError, IndexError):
            # PyYAML's constructors trust their resolver: `!!bool maybe` is a KeyError, `!!timestamp
            # soon` an AttributeError. An explicit tag skips the resolver, so the text is checked here.
            short = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise LoadError(f"invalid value: {node.value[:40]!r} is not a {short}", self.pos(node)) from None

    def check_string(self, value: str, node) -> None:
        if "\0" in value:
            raise LoadError("a NUL character (\\0) cannot be passed to a process or a file",
                            self.pos(node))
        if not value.isascii() and _SURROGATE.search(value):
            raise LoadError("a lone UTF-16 surrogate (\\uD800-\\uDFFF) is not a character",
                            self.pos(node))


_SURROGATE = re.compile("[\ud800-\udfff]")
# The scalar tags a recipe may carry, explicit or resolved, and their constructors. Dates and
# binaries load (a schema field may want them) and are refused where JSON is expected (model.py).
_SCALAR_TAGS = {f"tag:yaml.org,2002:{name}": getattr(yaml.constructor.SafeConstructor, f"construct_yaml_{name}")
                for name in ("null", "bool", "int", "float", "str", "timestamp", "binary")}

