"""Rows the arbiter answers, made what sqlite3 makes of rows it reads:
``detect_types`` converters (by ``[type]`` in a column's name, then by
its declared type) and ``text_factory``.

sqlite3 hands a converter the value's bytes as SQLite gives them (a
number as SQLite writes it as text) and never calls it for NULL or an
empty value (both read as None); a TEXT value without a converter goes
to ``text_factory`` as UTF-8 bytes. Like sqlite3, the answering cursor
converts a row when it is fetched (``row``), with the settings of that
moment."""

import re
import sqlite3 as _std
from typing import Any, Callable, List, Optional, Sequence, Tuple


Converter = Callable[[bytes], Any]


def plan(columns: List[str], decltypes: Optional[Sequence[Optional[str]]],
         detect: int) -> Tuple[List[str], Optional[List[Optional[Converter]]]]:
    """The column names as sqlite3 shows them, and each column's
    converter (None when no column has one)."""
    convs: List[Optional[Converter]] = [None] * len(columns)
    names = columns
    if detect & _std.PARSE_COLNAMES:
        convs = [_by_name(c) for c in columns]
        names = [_shown(c) for c in columns]
    # (A replayed receipt comes without them.)
    if detect & _std.PARSE_DECLTYPES and decltypes and len(decltypes) == len(columns):
        convs = [f or _by_decltype(d) for f, d in zip(convs, decltypes)]
    return names, convs if any(convs) else None


def row(values: tuple, convs: Optional[List[Optional[Converter]]], text: Callable[[bytes], Any]) -> tuple:
    """One row with its converters and ``text_factory`` applied."""
    if convs is None:
        convs = [None] * len(values)
    out = []
    for v, f in zip(values, convs):
        if v is None:
            pass
        elif f is not None:
            v = f(_as_bytes(v)) if v != "" and v != b"" else None
        elif type(v) is str and text is not str:
            v = text(v.encode("utf-8"))
        out.append(v)
    return tuple(out)


def _find(name: str) -> Optional[Converter]:
    return _std.converters.get(name.upper())


def _by_name(column: str) -> Optional[Converter]:
    """``name [type]``: the converter of ``type``."""
    first = column.find("[")
    end = column.find("]", first + 1) if first >= 0 else -1
    if end < 0:
        return None
    start = column.rfind("[", 0, end)  # the type begins after the last [ before it
    return _find(column[start + 1:end])


def _shown(column: str) -> str:
    """The name up to ``[`` (and a blank before it)."""
    at = column.find("[")
    if at < 0:
        return column
    if at > 0 and column[at - 1] == " ":
        at -= 1
    return column[:at]


def _by_decltype(decltype: Optional[str]) -> Optional[Converter]:
    """The converter of the declared type's first word (``INTEGER NOT
    NULL`` is ``INTEGER``, ``NUMBER(10)`` is ``NUMBER``)."""
    return _find(_WORD.split(decltype, 1)[0]) if decltype else None


_WORD = re.compile(r"[ (]")


def _as_bytes(v: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, float):
        return _real_text(v).encode()
    return str(v).encode()


def _real_text(v: float) -> str:
    """A real as SQLite writes it as text (``%!.15g``: always a point)."""
    if v != v or v in (float("inf"), float("-inf")):
        return "Inf" if v > 0 else "-Inf" if v < 0 else "NaN"
    s = "%.15g" % (v + 0.0)  # -0.0 + 0.0 is 0.0: SQLite writes no sign there
    mantissa, e, exponent = s.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + e + exponent
