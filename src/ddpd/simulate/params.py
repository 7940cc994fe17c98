"""Turning a config section (a plain dict) into a validated frozen dataclass."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def parse_params(cls: type[T], params: dict[str, Any] | None, section: str) -> T:
    """Build ``cls(**params)``; unknown keys raise ValueError naming the key and section.

    Value checks live in the dataclass's ``__post_init__`` (they raise ValueError
    naming the key and what was expected).
    """
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise ValueError(f"{section}: parameters must be a mapping, got {type(params).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(
            f"{section}: unknown parameter(s) {unknown}; expected a subset of {sorted(known)}"
        )
    return cls(**params)


def require(condition: bool, section: str, key: str, expected: str, value: Any) -> None:
    """Raise ValueError ``<section>.<key>: expected <expected>, got <value>`` unless condition."""
    if not condition:
        raise ValueError(f"{section}.{key}: expected {expected}, got {value!r}")


def is_int(value: Any) -> bool:
    """True for Python/numpy integers (bool excluded)."""
    return isinstance(value, int) and not isinstance(value, bool) or (
        hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu"
    )


def is_number(value: Any) -> bool:
    """True for finite real numbers (bool excluded)."""
    if isinstance(value, bool):
        return False
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return number == number and abs(number) != float("inf")


def steps_of(duration: float, dt: float, section: str, key: str) -> int:
    """Number of time steps in ``duration``; it must be a whole multiple of ``dt``."""
    steps = round(duration / dt)
    if abs(steps * dt - duration) > 1e-6 * max(dt, abs(duration)):
        raise ValueError(
            f"{section}.{key}: expected a whole multiple of dt = {dt}, got {duration!r}"
        )
    return int(steps)
