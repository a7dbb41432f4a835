"""Reading JSON and YAML that a user may have received (checkpoint metadata, ``results.json``, model
file headers, configs): size and nesting bounded, one clear error (no torch).

Both parsers recurse once per level of nesting; a hostile file nested 100,000 deep would otherwise
surface as a ``RecursionError`` traceback. The text is refused beyond ``max_bytes``, the parsed value
beyond ``MAX_DEPTH`` levels (an iterative walk); the caller's error class carries the message.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

__all__ = ["parse_json", "parse_yaml", "MAX_DEPTH", "MAX_BYTES"]

MAX_DEPTH = 32  # levels of nested mappings and lists; hadamrnn's own files use at most 8
MAX_BYTES = 16 << 20


def _height(value: Any) -> float:
    """Levels of nested dicts and lists in ``value`` (a scalar is 0; a cycle, which YAML anchors can
    build, is infinite). Iterative, and each distinct container is measured once, so a YAML alias
    bomb (a few objects shared 10⁹ times) costs what its few objects cost."""
    heights: dict[int, int] = {}
    path: set[int] = set()  # containers whose subtree is being measured: the current path
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        item, measured = stack.pop()
        children = [c for c in (item.values() if isinstance(item, dict) else item) if isinstance(c, (dict, list))]
        key = id(item)
        if measured:
            path.discard(key)
            heights[key] = 1 + max((heights[id(child)] for child in children), default=0)
            if heights[key] > MAX_DEPTH:
                return heights[key]
        elif key in path:
            return float("inf")
        elif key not in heights:
            path.add(key)
            stack.append((item, True))
            stack.extend((child, False) for child in children)
    return heights.get(id(value), 0)


def _parse(text: str | bytes, what: str, error: type[Exception], max_bytes: int, parse, kind: str,
           errors: tuple[type[Exception], ...]) -> Any:
    if len(text) > max_bytes:
        raise error(f"{what}: {len(text)} bytes of {kind}, more than the {max_bytes} this file may hold")
    try:
        value = parse(text)
    except RecursionError:
        raise error(f"{what}: {kind} nested more than {MAX_DEPTH} levels deep") from None
    except errors as problem:
        raise error(f"{what}: not valid {kind} ({type(problem).__name__}: {str(problem)[:200]})") from None
    if isinstance(value, (dict, list)) and _height(value) > MAX_DEPTH:
        raise error(f"{what}: {kind} nested more than {MAX_DEPTH} levels deep")
    return value


def parse_json(text: str | bytes, what: str, error: type[Exception] = ValueError, max_bytes: int = MAX_BYTES) -> Any:
    """``json.loads(text)``, or ``error`` naming ``what`` when it is too large, too deep or not JSON."""
    return _parse(text, what, error, max_bytes, json.loads, "JSON", (ValueError, TypeError))


def parse_yaml(text: str, what: str, error: type[Exception] = ValueError, max_bytes: int = 1 << 20) -> Any:
    """``yaml.safe_load(text)`` (no code runs), or ``error`` naming ``what`` when it is too large, too deep
    or not YAML."""
    return _parse(text, what, error, max_bytes, yaml.safe_load, "YAML", (yaml.YAMLError, ValueError))
