"""Parse a hygge YAML file strictly: duplicate keys are errors, and alias expansion is bounded.

PyYAML's ``safe_load`` keeps the last of two equal keys (a second ``path:`` silently
wins) and shares aliased nodes, so a few hundred bytes of nested aliases expand to
billions of values once anything walks the tree. hygge reads its files through
this module instead, so both are errors that name the file and the line.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_EXPANDED_VALUES = 100_000
"""The most values a file may hold once aliases are expanded; real projects hold hundreds."""


class YamlProblem(Exception):
    """What is wrong with a YAML file, already phrased for the user (the caller adds the file name)."""


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` merges another mapping; its keys may be overridden here, by design
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise YamlProblem(f"line {line}: key {key!r} is given twice in one mapping (first at line {seen[key]}); keep one")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str) -> Any:
    """The document in ``text``; raises ``YamlProblem`` or PyYAML's ``YAMLError`` (syntax)."""
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_expansion(root)
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _check_expansion(root: Node) -> None:
    """Count the values the document holds with every alias expanded, stopping early past the limit.

    Aliases are shared nodes in the composed graph, so the count is the number of paths
    from the root: a node's size is computed once and reused for every alias to it.
    """
    sizes: dict[int, int] = {}

    def size(node: Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node.value, list):
            for item in node.value:
                children = item if isinstance(item, tuple) else (item,)
                for child in children:
                    total += size(child)
                    if total > MAX_EXPANDED_VALUES:
                        raise YamlProblem(
                            f"line {node.start_mark.line + 1}: aliases expand to more than {MAX_EXPANDED_VALUES:,} values; "
                            "a hygge project never needs that many (is an alias nested in itself many times?)"
                        )
        sizes[id(node)] = total
        return total

    size(root)


class KeyLines:
    """Where keys and list items sit in a YAML file (1-based lines), for pointing at an entity's definition.

    Composed without constructing values, so it costs one pass over a file ``parse_yaml`` already accepted.
    """

    def __init__(self, text: str) -> None:
        self._root = yaml.compose(text, Loader=yaml.SafeLoader)

    def key(self, *path: str) -> int | None:
        """The line of the mapping key at ``path`` (e.g. ``"flows", "sales"``); ``None`` when it is not there."""
        found = self._find(path)
        return found[0] if found else None

    def items(self, *path: str) -> list[int]:
        """The line of each item of the list under the key at ``path`` (empty when it is not a list)."""
        found = self._find(path)
        if not found or not isinstance(found[1], SequenceNode):
            return []
        return [item.start_mark.line + 1 for item in found[1].value]

    def _find(self, path: tuple[str, ...]) -> tuple[int, Node] | None:
        node, line = self._root, 1
        for part in path:
            if not isinstance(node, MappingNode):
                return None
            match = next(((k, v) for k, v in node.value if k.tag == "tag:yaml.org,2002:str" and k.value == part), None)
            if match is None:
                return None
            line, node = match[0].start_mark.line + 1, match[1]
        return (line, node) if node is not None else None
