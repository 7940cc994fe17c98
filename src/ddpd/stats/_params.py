"""Validate a config section (dict) against a frozen dataclass of the same keys."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def params_from_dict(cls: type[T], params: dict | None, section: str) -> T:
    """Build ``cls(**params)``; unknown keys raise ValueError naming ``section.key``.

    Value checks live in ``cls.__post_init__`` and must name the key.
    """
    params = {} if params is None else dict(params)
    if not isinstance(params, dict):
        raise ValueError(f"{section}: expected a mapping of parameters, got {type(params)}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"{section}: unknown key(s) {unknown}; known keys: {sorted(known)}")
    return cls(**params)


def require(condition: bool, section: str, key: str, expected: str, value: Any) -> None:
    """Raise ValueError('section.key: expected ..., got ...') unless ``condition``."""
    if not condition:
        raise ValueError(f"{section}.{key}: expected {expected}, got {value!r}")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
