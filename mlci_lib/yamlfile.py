"""The one YAML reader for mlci's own files (mlci.yaml, gate files, suites, drift configs).

PyYAML's safe loader builds no Python objects, but it still accepts two things mlci refuses:

- a key written twice in one mapping: PyYAML keeps the last value, so a gate file with two
  ``accuracy:`` entries silently loses the first rule. Refused with the file, the key and both lines.
- an alias bomb ("billion laughs"): a few lines whose aliases expand to billions of nodes. PyYAML
  shares the aliased objects, so loading is quick, but anything that walks the result (schema
  validation, ``${VAR}`` expansion, JSON output) would run for hours. The expanded size of the
  node graph is counted before anything is constructed (memoised, so linear in the document) and
  a document above :data:`MAX_NODES` expanded nodes, or one with an alias to itself, is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlci_lib.errors import ConfigError

if TYPE_CHECKING:
    import yaml

#: Expanded nodes (every alias counted as a copy of what it names) a document may hold. mlci's
#: own files hold a few hundred; a generated suite of thousands of columns stays far below.
MAX_NODES = 1_000_000


class _Refused(Exception):
    """Raised inside the loader; :func:`load_yaml_text` adds the file name."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def _loader_class() -> type["yaml.SafeLoader"]:
    import yaml

    class StrictLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no type hints
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: dict[Any, int] = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                        continue  # merged keys may be overridden on purpose; complex keys are PyYAML's
                    key = self.construct_object(key_node)
                    line = key_node.start_mark.line + 1
                    try:
                        first = seen.get(key)
                    except TypeError:  # an unhashable key: PyYAML itself reports it
                        continue
                    if first is None:
                        seen[key] = line
                    else:
                        raise _Refused(
                            f"key {key!r} appears twice in one mapping (lines {first} and {line})",
                            hint="keep one of them: YAML would silently keep only the last",
                        )
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def _expanded_size(root: "yaml.Node") -> int:
    """Nodes in the document with every alias expanded, without expanding anything."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    # Iterative post-order walk: a deeply nested document must not hit Python's recursion limit.
    stack: list[tuple["yaml.Node", bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            visiting.discard(key)
            children = _children(node)
            total = 1 + sum(sizes[id(c)] for c in children)
            sizes[key] = total
            if total > MAX_NODES:
                raise _Refused(
                    f"the document expands to more than {MAX_NODES} nodes through its aliases "
                    f"(an alias bomb; line {node.start_mark.line + 1})",
                    hint="write the values out instead of nesting aliases of aliases",
                )
            continue
        if key in sizes:
            continue
        if key in visiting:
            raise _Refused(
                f"an alias refers to the node that contains it (line {node.start_mark.line + 1})",
                hint="remove the recursive alias",
            )
        visiting.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in visiting:
                raise _Refused(
                    f"an alias refers to the node that contains it (line {child.start_mark.line + 1})",
                    hint="remove the recursive alias",
                )
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _children(node: "yaml.Node") -> list["yaml.Node"]:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_yaml_text(text: str, *, source: str, what: str) -> Any:
    """Parse one YAML document from ``text`` (read from ``source``); refusals are ConfigErrors."""
    import yaml

    loader = _loader_class()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        return loader.construct_document(node)
    except _Refused as exc:
        raise ConfigError(f"{what} {source}: {exc}", hint=exc.hint) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"{what} {source} is not valid YAML{where}: {problem}") from None
    finally:
        loader.dispose()
