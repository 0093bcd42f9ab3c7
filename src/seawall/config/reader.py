"""Reading a configuration file's YAML safely: any file, however malformed or hostile, gives one
ConfigError naming the file and where in it, quickly, never a traceback or a hang.

`${VAR}`, `${env:VAR}` and `${VAR:-default}` are replaced in scalar values, as OpenTelemetry's
declarative configuration does (never in keys or comments, and a variable cannot inject
structure); an unquoted value is then read as YAML would read it (`${N:-3}` is the number 3).
Each replaced value's key path remembers its variables, so a problem with it names them.

Bounded before anything is built: the nesting depth (PyYAML's composer recurses once per
level) and the number of values once aliases are expanded (an "alias bomb" of a few lines
expands to billions of values).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import ConfigError

MAX_DEPTH = 32  # a seawall configuration needs 5
MAX_VALUES = 100_000  # with aliases expanded; 100 dependencies need about 3,000
_TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep; a seawall configuration needs 5"


_VARIABLE = re.compile(r"\$\$|\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute(text: str, environ: Mapping[str, str]) -> tuple[str, list[str], list[str]]:
    """`text` with its variables replaced, the variables used, and those unset with no
    default (an empty value counts as unset where a default is given); `$$` is a literal `$`."""
    used: list[str] = []
    unset: list[str] = []

    def replace(found: re.Match[str]) -> str:
        if found.group(0) == "$$":
            return "$"
        name, default = found.group(1), found.group(2)
        used.append(name)
        value = environ.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                unset.append(name)
            return default or ""
        return value

    return _VARIABLE.sub(replace, text), used, unset


def scalar(text: str) -> Any:
    """`text` read as YAML reads an unquoted value (`3` an int, `0.5` a float, `5s` a str)."""
    loader = _Loader("", {})
    try:
        return loader.construct_object(ScalarNode(loader.plain_tag(text), text))
    except _Refused:
        return text
    finally:
        loader.dispose()


@dataclass
class Document:
    """A file's data, and which variables set the value at each key path."""

    data: Any
    variables: dict[str, list[str]] = field(default_factory=dict)


class _Refused(Exception):
    def __init__(self, problem: str) -> None:
        self.problem = problem


def decode(data: bytes) -> str:
    """UTF-8 text (a UTF-8 byte-order mark is allowed), or _Refused saying what the bytes are."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _Refused(
            "starts with a UTF-16 byte-order mark; expected UTF-8 text (save the file as UTF-8)"
        )
    zero = data.find(b"\0")
    if zero >= 0:
        raise _Refused(
            f"{_position(data, zero)}: a NUL byte; expected UTF-8 text, and this looks "
            f"like a binary file"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _Refused(
            f"{_position(data, error.start)}: byte 0x{data[error.start]:02x} is not "
            f"UTF-8; expected UTF-8 text (save the file as UTF-8)"
        ) from None


def _position(data: bytes | str, offset: int) -> str:
    text = data.decode("latin-1") if isinstance(data, bytes) else data  # one char a byte
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1)
    return f"line {line}, column {column + 1}"


class _Loader(yaml.SafeLoader):
    """SafeLoader that counts depth and expanded values while composing, and remembers each
    node's key path for the messages."""

    def __init__(self, text: str, environ: Mapping[str, str]) -> None:
        super().__init__(text)
        self._environ = environ
        self.variables: dict[str, list[str]] = {}
        self.unset: list[str] = []
        self._path: list[str] = []
        self._values = 0
        self._deepest = 0  # the deepest level seen inside the node being composed
        self._sizes: dict[int, tuple[int, int]] = {}  # anchored node -> (values, depth)
        self.paths: dict[int, str] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if isinstance(parent, SequenceNode):
            self._path.append(f"[{index}]")
        elif isinstance(parent, MappingNode):  # index: the key node, or None for the key itself
            key = index.value if isinstance(index, ScalarNode) else ""
            self._path.append(f".{key}" if self._path and key else str(key))
        try:
            return self._compose_counted(parent, index)
        finally:
            if parent is not None:
                self._path.pop()

    def _compose_counted(self, parent: Node | None, index: Any) -> Node:
        event: yaml.Event = cast(Callable[[], yaml.Event], self.peek_event)()
        depth = len(self._path)
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(event.anchor or "")
            size = self._sizes.get(id(target)) if target is not None else None
            if target is not None and size is None:
                self._refuse(f"alias *{event.anchor} refers to a node that contains it", event)
            values, inner_depth = size or (0, 0)
            self._count(values, depth + inner_depth, event)
            return cast(Node, super().compose_node(parent, index))
        self._count(1, depth, event)
        values_before, deepest_before = self._values, self._deepest
        self._deepest = depth
        node = cast(Node, super().compose_node(parent, index))
        self.paths.setdefault(id(node), self._where())
        if (
            isinstance(node, ScalarNode)
            and "$" in node.value
            and not (isinstance(parent, MappingNode) and index is None)
        ):  # not in keys
            self._substitute(node)
        if getattr(event, "anchor", None) is not None:
            self._sizes[id(node)] = (self._values - values_before + 1, self._deepest - depth)
        self._deepest = max(self._deepest, deepest_before)
        return node

    def _substitute(self, node: ScalarNode) -> None:
        text, used, unset = substitute(node.value, self._environ)
        where = "".join(self._path) or "<top level>"
        self.unset += [
            f"{where}: ${{{name}}} is not set and has no default; set it, or give "
            f"one: ${{{name}:-value}}"
            for name in unset
        ]
        if used:
            self.variables[where] = used
        node.value = text
        if node.style is None:  # unquoted: read the result as YAML reads a plain scalar
            node.tag = self.plain_tag(text)

    def plain_tag(self, text: str) -> str:
        """The tag YAML gives `text` as an unquoted scalar (PyYAML's resolver is untyped)."""
        resolve = cast(Callable[[type[Node], str, tuple[bool, bool]], str], self.resolve)
        return resolve(ScalarNode, text, (True, False))

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # noqa: N803 (PyYAML's)
        # The scanner reads ahead of the composer, in time quadratic in the bracket depth:
        # 1,000 brackets take a second, so refuse them here, before the composer sees them.
        if self.flow_level >= MAX_DEPTH:
            self._refuse(_TOO_DEEP, self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError):  # int() of 5,000 digits: over Python's limit
            where = self.paths.get(id(node), "<top level>")
            raise _Refused(
                f"{where}: a value too large to read ({len(str(node.value)):,} "
                f"characters) ({_line(node.start_mark)})"
            ) from None

    def _count(self, values: int, depth: int, event: yaml.Event) -> None:
        self._values += values
        self._deepest = max(self._deepest, depth)
        if depth > MAX_DEPTH:
            self._refuse(_TOO_DEEP, event)
        if self._values > MAX_VALUES:
            self._refuse(
                f"more than {MAX_VALUES:,} values once aliases are expanded; refused "
                f"(an alias bomb?)",
                event,
            )

    def _where(self) -> str:
        path = "".join(self._path) or "<top level>"
        return path if len(path) <= 80 else path[:77] + "..."

    def _refuse(self, problem: str, at: yaml.Event | yaml.Mark) -> None:
        mark = at.start_mark if isinstance(at, yaml.Event) else at
        raise _Refused(f"{self._where()}: {problem} ({_line(mark)})")


def _line(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def parse(data: bytes, source: str, environ: Mapping[str, str]) -> Document:
    """The YAML document in `data` (None when empty), variables replaced from `environ`."""
    loader: _Loader | None = None
    try:
        text = decode(data)
        loader = _Loader(text, environ)
        document = Document(loader.get_single_data(), loader.variables)
        if loader.unset:
            raise ConfigError(source, loader.unset)
        return document
    except _Refused as refused:
        raise ConfigError(source, [refused.problem]) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{_line(mark)}: " if mark else ""
        problem = error.problem or error.context or "not valid YAML"
        lines = text.splitlines()
        line = lines[mark.line] if mark and mark.line < len(lines) else ""
        if "${" in line:  # YAML reads { as structure inside {...}
            problem += ' (inside {...} or [...], quote a variable: "${VAR}")'
        raise ConfigError(source, [f"{where}not valid YAML: {problem}"]) from None
    except yaml.reader.ReaderError as error:  # a control character YAML does not allow
        where = _position(text, error.position)
        raise ConfigError(
            source,
            [f"{where}: character U+{error.character:04X} is not allowed in YAML; expected text"],
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
