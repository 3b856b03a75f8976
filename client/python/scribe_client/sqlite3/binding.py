"""How sqlite3 binds a statement's parameters, as the classifier needs to
know it: whether they fit at all, whether they bind by name, their shape
(what a compiled statement's answers are kept under), and the names a
statement looks up."""

import sqlite3 as _std
import sys
from typing import Any

__all__ = ["UNSUPPORTED", "Asked", "named", "parameters_fit", "shape"]


class Asked(dict):
    """An empty named set that records each name sqlite3 looks up (it binds
    NULL for it)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list = []

    def __missing__(self, name: str) -> None:
        self.names.append(name)
        return None


# What sqlite3 raises for parameters that are neither a sequence nor a dict.
UNSUPPORTED = _std.ProgrammingError if sys.version_info >= (3, 11) else ValueError


def parameters_fit(params: Any) -> bool:
    """Whether sqlite3 would bind ``params``: a dict, or a sequence (what
    has ``__getitem__``: not None, a set or an iterator). Checked before a
    write is sent, since the classifier's answers are kept by the
    parameters' count only."""
    return type(params) is list or isinstance(params, dict) or hasattr(type(params), "__getitem__")


def named(params: Any) -> bool:
    """True when ``params`` bind by name: a mapping; a ``sqlite3.Row`` has
    keys yet binds by position, as any sequence."""
    return isinstance(params, dict) or (hasattr(params, "keys") and not isinstance(params, _std.Row))


def shape(params: Any) -> Any:
    if params is None:
        return 0
    if named(params):
        return frozenset(params.keys())
    try:
        return len(params)
    except TypeError:
        return None
