"""Value rules shared by the engine and the configuration: each rule returns None when a
value is fine, else what is allowed (the caller names the setting).

The engine (`nprnn_jax.train`) declares the rules of its own values with these and
checks what a direct caller passes; `nprnn_jax.config` reads the same rules for the
command line, so each rule is written once, where the value is used.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Optional

Rule = Callable[[object], Optional[str]]

# Steps, seeds and sizes live in int32 on device (and PRNG seeds in 32 bits): a larger
# value would wrap around silently.
INT_MAX = 2**31 - 1


def integer(low: int, high: int = INT_MAX) -> Rule:
    return lambda v: None if isinstance(v, int) and not isinstance(v, bool) and low <= v <= high else \
        f"must be an int >= {low} and <= {high}"


def number(low=None, high=None, low_open=False, high_open=False) -> Rule:
    def rule(v):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        ok = ok and (low is None or (v > low if low_open else v >= low))
        ok = ok and (high is None or (v < high if high_open else v <= high))
        if ok:
            return None
        lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        return "must be a finite number" + (" " + " and ".join(x for x in (lo, hi) if x) if lo or hi else "")
    return rule


def one_of(options) -> Rule:
    return lambda v: None if v in options else f"unknown value; allowed: {', '.join(map(str, options))}"


def boolean(v) -> Optional[str]:
    return None if isinstance(v, bool) else "must be true or false"


def string(v) -> Optional[str]:
    return None if isinstance(v, str) else "must be a string"


def sequence(item_rule: Rule, nonempty: bool = True, unique: bool = False) -> Rule:
    def rule(v):
        if not isinstance(v, tuple) or (nonempty and not v):
            return "must be a non-empty list" if nonempty else "must be a list"
        for item in v:
            problem = item_rule(item)
            if problem:
                return f"item {item!r} {problem}"
        if unique and len(set(v)) != len(v):
            twice = next(x for i, x in enumerate(v) if x in v[:i])
            return f"has {twice!r} twice (equal values would run, and be counted, twice)"
        return None
    return rule


def checked(name: str, value, rule: Rule, error=ValueError):
    """``value`` (a list made a tuple), or ``error`` naming ``name`` and what is allowed."""
    if isinstance(value, list):
        value = tuple(value)
    problem = rule(value)
    if problem:
        raise error(f"{name}={value!r}: {problem}")
    return value


class ConfigError(ValueError):
    """A setting with a value that is not allowed (the message names the setting)."""


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting of the command line: its name, default, one-line meaning and rule.

    Declared where the value is used: the engine's in `nprnn_jax.train`'s rules, each task's
    in its module (`nprnn_jax.tasks`), the rest in `nprnn_jax.config`. ``execution``: changes
    speed only; ``per_init``: may be overridden per init; ``location``: where data are read
    from (the data themselves are compared by their fingerprint, so a resume elsewhere works);
    ``output``: what is drawn beside the results (figures), never the results themselves.
    """

    name: str
    default: Any
    meaning: str
    check: Rule
    execution: bool = False
    per_init: bool = False
    location: bool = False
    output: bool = False
