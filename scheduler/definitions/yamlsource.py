"""YAML files read with the position of every node, so each error can say ``file:line:col``.

PyYAML composes a node tree that knows where each node starts; its constructors then throw the
marks away and silently keep the last of two equal keys. So we compose with PyYAML (the C parser
when available) and build the plain values ourselves, recording the start of every value node and
of every mapping key under a path tuple such as ``("steps", "prep", "script")``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scheduler.core.errors import DefinitionError, DefinitionErrors, SourcePosition

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Guards against documents that would exhaust memory or the stack (alias bombs, deep nesting).
_MAX_DEPTH = 100
_MAX_NODES = 200_000
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"

PathKey = tuple[Any, ...]


def display_path(path: Path) -> Path:
    """The path as users like to read it: relative to the working directory when below it."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve())
    except (ValueError, OSError):
        return Path(path)


@dataclass
class YamlDocument:
    """Plain values of a YAML file plus the start of every node, addressed by path tuples.

    A document built from plain data (``YamlDocument.from_data``) has no positions: its errors
    then name only the file.
    """

    file: Path
    data: Any
    values: dict[PathKey, SourcePosition] = field(default_factory=dict)
    keys: dict[PathKey, SourcePosition] = field(default_factory=dict)
    # Problems that leave the rest readable (duplicate keys, unreadable values): loaders report
    # them together with their own.
    errors: list[DefinitionError] = field(default_factory=list)

    @classmethod
    def from_data(cls, data: Any, file: Path) -> YamlDocument:
        return cls(file=display_path(file), data=data)

    def position(self, path: PathKey) -> SourcePosition | None:
        """Where the value at ``path`` starts, else where its closest existing parent starts."""
        for end in range(len(path), -1, -1):
            pos = self.values.get(tuple(path[:end]))
            if pos is not None:
                return pos
        return None

    def key_position(self, path: PathKey) -> SourcePosition | None:
        """Where the mapping key that leads to ``path`` starts (else the value's position)."""
        return self.keys.get(tuple(path)) or self.position(path)

    def error(
        self, path: PathKey, message: str, *, hint: str | None = None, key: bool = False
    ) -> DefinitionError:
        pos = self.key_position(path) if key else self.position(path)
        return DefinitionError(message, position=pos, file=self.file, hint=hint)

    def get(self, path: PathKey, default: Any = None) -> Any:
        """The plain value at ``path``, or ``default`` when any step of the path is missing."""
        value = self.data
        for part in path:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                return default
        return value


def read_yaml(file: Path) -> YamlDocument:
    """Parse a YAML file whose top level must be a mapping; raise DefinitionErrors otherwise."""
    shown = display_path(file)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DefinitionErrors([DefinitionError("file not found", file=shown)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionErrors([DefinitionError(f"cannot read file: {exc}", file=shown)]) from None
    return parse_yaml(text, shown)


def parse_yaml(text: str, file: Path) -> YamlDocument:
    """Parse YAML text (``file`` names it in errors); the top level must be a mapping."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = _position(file, mark) if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        err = DefinitionError(f"YAML syntax error: {problem}", position=pos, file=file)
        raise DefinitionErrors([err]) from None
    except yaml.YAMLError as exc:
        raise DefinitionErrors([DefinitionError(f"YAML error: {exc}", file=file)]) from None
    if node is None:
        raise DefinitionErrors(
            [DefinitionError("the file is empty; it must hold a YAML mapping", file=file)]
        )
    builder = _Builder(file)
    data = builder.build(node, (), 0)
    if not isinstance(node, yaml.MappingNode):
        builder.errors.append(
            DefinitionError(
                f"the top level must be a mapping (key: value lines), not {_kind(data)}",
                position=_position(file, node.start_mark),
            )
        )
        raise DefinitionErrors(builder.errors)
    return YamlDocument(
        file=file, data=data, values=builder.values, keys=builder.keys, errors=builder.errors
    )


def _position(file: Path, mark: yaml.Mark) -> SourcePosition:
    return SourcePosition(file=file, line=mark.line + 1, column=mark.column + 1)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return f"a {type(value).__name__} ({value!r})"


class _Builder:
    """Builds plain values from composed nodes, noting positions and duplicate keys."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.values: dict[PathKey, SourcePosition] = {}
        self.keys: dict[PathKey, SourcePosition] = {}
        self.errors: list[DefinitionError] = []
        self.count = 0
        self.constructor = _Loader("")
        self.active: set[int] = set()

    def fail(self, node: yaml.Node, message: str, hint: str | None = None) -> None:
        self.errors.append(
            DefinitionError(message, position=_position(self.file, node.start_mark), hint=hint)
        )

    def build(self, node: yaml.Node, path: PathKey, depth: int) -> Any:
        self.values.setdefault(path, _position(self.file, node.start_mark))
        self.count += 1
        if self.count > _MAX_NODES:
            if self.count == _MAX_NODES + 1:
                self.fail(node, f"the document is too large (more than {_MAX_NODES} values)")
            return None
        if depth > _MAX_DEPTH:
            self.fail(node, f"values are nested too deeply (more than {_MAX_DEPTH} levels)")
            return None
        if id(node) in self.active:
            self.fail(node, "an alias refers to a value that contains it")
            return None
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [
                    self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)
                ]
            assert isinstance(node, yaml.MappingNode)  # the composer makes no other kind
            return self.mapping(node, path, depth)
        finally:
            self.active.discard(id(node))

    def scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == _STR_TAG:  # most values: what PyYAML's constructor would return, sooner
            return node.value
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            self.fail(node, f"cannot read this value: {problem}")
            return None

    def mapping(self, node: yaml.MappingNode, path: PathKey, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        merged: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                for key, value, key_pos in self.merge(value_node, path, depth):
                    if key not in result or key in merged:
                        result[key] = value
                        merged.add(key)
                        self.keys.setdefault((*path, key), key_pos)
                continue
            key = self.key(key_node)
            if key is _BAD_KEY:
                continue
            if key in result and key not in merged:
                first = self.keys.get((*path, key))
                where = f" (first at line {first.line})" if first else ""
                self.fail(key_node, f"duplicate key '{key}'{where}", "remove one of them")
                continue
            merged.discard(key)
            self.keys[(*path, key)] = _position(self.file, key_node.start_mark)
            self.values.pop((*path, key), None)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result

    def merge(
        self, node: yaml.Node, path: PathKey, depth: int
    ) -> Iterator[tuple[Any, Any, SourcePosition]]:
        """The pairs a ``<<:`` merge brings in (YAML 1.1 merge keys), lowest priority first."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        pairs: list[tuple[Any, Any, SourcePosition]] = []
        for source in reversed(sources):
            if not isinstance(source, yaml.MappingNode):
                self.fail(source, "a merge key ('<<') must refer to a mapping")
                continue
            for key_node, value_node in source.value:
                key = self.key(key_node)
                if key is _BAD_KEY or key_node.tag == _MERGE_TAG:
                    continue
                value = self.build(value_node, (*path, key), depth + 1)
                pairs.append((key, value, _position(self.file, key_node.start_mark)))
        return iter(pairs)

    def key(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, "a mapping key must be a plain value, not a list or mapping")
            return _BAD_KEY
        key = self.scalar(node)
        if not isinstance(key, Hashable):
            self.fail(node, "a mapping key must be a plain value")
            return _BAD_KEY
        return key


_BAD_KEY = object()
