"""Validation of a step's ``params`` dict against a frozen dataclass of the same keys.

Every public entry function of the package takes its config section as a plain dict;
:func:`parse_params` turns it into the step's frozen dataclass, so an unknown key or a
value of the wrong type is a ``ValueError`` that names ``section.key``. Range checks
live in each dataclass's ``__post_init__`` and use :func:`require`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

P = TypeVar("P")


def _check_type(section: str, key: str, value: Any, annotation: Any) -> Any:
    """Return ``value`` converted to ``annotation`` (int -> float allowed) or raise."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _check_type(section, key, value, option)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0])
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{section}.{key}: expected a list, got {value!r}")
        inner = typing.get_args(annotation)
        if len(inner) == 2 and inner[1] is Ellipsis:
            return tuple(_check_type(section, key, v, inner[0]) for v in value)
        if len(value) != len(inner):
            raise ValueError(f"{section}.{key}: expected {len(inner)} values, got {value!r}")
        return tuple(_check_type(section, key, v, t) for v, t in zip(value, inner, strict=True))
    if annotation is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{section}.{key}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{section}.{key}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{section}.{key}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ValueError(f"{section}.{key}: expected a string, got {value!r}")
        return value
    return value


def parse_params(cls: type[P], params: dict | None, section: str) -> P:
    """Build the frozen dataclass ``cls`` from ``params``, checking keys and types.

    Raises:
        ValueError: ``params`` is not a mapping, has a key that ``cls`` does not define, or a
            value of the wrong type; the message names ``section.key``. Range checks are done
            by ``cls.__post_init__``.
    """
    if params is None:
        params = {}
    if not isinstance(params, dict):
        kind = type(params).__name__
        raise ValueError(f"{section}: expected a mapping of parameters, got {kind}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ValueError(
            f"{section}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(fields))})"
        )
    hints = typing.get_type_hints(cls)
    values = {k: _check_type(section, k, v, hints[k]) for k, v in params.items()}
    return cls(**values)


def require(condition: bool, section: str, key: str, expected: str, value: Any) -> None:
    """Raise ``ValueError`` naming ``section.key`` unless ``condition`` holds."""
    if not condition:
        raise ValueError(f"{section}.{key}: expected {expected}, got {value!r}")


def is_int(value: Any) -> bool:
    """True for Python and numpy integers (bool excluded)."""
    if isinstance(value, bool):
        return False
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    return isinstance(value, int) or kind in ("i", "u")


def is_number(value: Any) -> bool:
    """True for finite real numbers (bool excluded)."""
    if isinstance(value, bool):
        return False
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return number == number and abs(number) != float("inf")
