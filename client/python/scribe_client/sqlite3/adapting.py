"""Parameter values as sqlite3 binds them: the adapters registered with
``sqlite3.register_adapter`` (the one for a value's exact type first,
``__conform__`` for a subclass of a type bound as it is), NaN as NULL,
buffers as blobs, ints SQLite cannot hold refused; and a named set whose
unused names are left alone, as sqlite3 leaves them."""

import math
import sqlite3 as _std
import sys
from typing import Any, Callable, Optional

from ..values import INFINITY, _blob
from .binding import named

__all__ = ["adapt", "encode_params", "named_set"]

_BASIC = (int, float, str, bytes, type(None))
_I64 = (-(2**63), 2**63 - 1)
# Types bound as they are (sqlite3 consults no adapter for them unless one
# is registered for the type itself); a subclass of one may conform first.
_EXACT = frozenset((int, float, str, bytes, bytearray, type(None)))
_CONFORMING = (int, float, str, bytes, bytearray)
_NOTHING = object()


def named_set(
    params: Any,
    one: Callable[[Any], Any],
    unused: Optional[Callable[[str], bool]],
    asked: Optional[list] = None,
) -> dict:
    """``{name: one(value)}`` for a named parameter set; a value that
    cannot be bound is left out when ``unused(name)`` says the statement
    does not use that name (sqlite3 never looks at it), else its error is
    raised. ``asked``, when known, are the names the statement binds: a
    dict subclass is looked up by them, as sqlite3 looks it up (its
    ``__missing__`` answers a name it lacks)."""
    out = {}
    for k in params.keys() if asked is None else asked:
        try:
            out[str(k)] = one(params[k])
        except Exception as e:
            if unused is not None and unused(str(k)):
                continue
            e._param = str(k)  # type: ignore[attr-defined]  (see numbered)
            raise
    return out


def adapt(v: Any) -> Any:
    """``v`` as sqlite3 binds it: adapted, or refused as sqlite3 refuses it."""
    # An adapter registered for the value's exact type comes first, as in
    # sqlite3: for a subclass of int or str, for bool, for int itself.
    adapter = _std.adapters.get((type(v), _std.PrepareProtocol))
    if adapter is not None:
        return _adapted(v, adapter(v))
    if type(v) not in _EXACT and isinstance(v, _CONFORMING):
        # A subclass of a type bound as it is: sqlite3 lets it conform.
        out = _std.adapt(v, _std.PrepareProtocol, _NOTHING)
        if out is not _NOTHING:
            return _adapted(v, out)
    if isinstance(v, float) and math.isnan(v):
        return None  # SQLite stores a NaN bound as NULL
    if isinstance(v, _BASIC):
        _in_range(v)
        return v
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)  # bound as a blob, as sqlite3 binds any buffer
    try:
        out = _std.adapt(v)
    except _std.ProgrammingError:
        raise _unsupported(v) from None
    return _adapted(v, out)


def _adapted(v: Any, out: Any) -> Any:
    """What an adapter made of ``v``, as sqlite3 binds it."""
    if isinstance(out, (bytearray, memoryview)):
        return bytes(out)
    if isinstance(out, float) and math.isnan(out):
        return None
    if not isinstance(out, _BASIC):
        raise _unsupported(v)
    _in_range(out)
    return out


def _in_range(v: Any) -> None:
    """An int SQLite cannot hold is refused here, as sqlite3 refuses it."""
    if isinstance(v, int) and not isinstance(v, bool) and not _I64[0] <= v <= _I64[1]:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")


def _unsupported(v: Any) -> Exception:
    """sqlite3's error for a value it cannot bind (InterfaceError before
    Python 3.11), worded once the parameter is known (see ``numbered``)."""
    if sys.version_info < (3, 11):
        e: Exception = _std.InterfaceError("Error binding parameter - probably unsupported type.")
    else:
        e = _std.ProgrammingError("type %r is not supported" % type(v).__name__)
    e._unbindable = type(v).__name__  # type: ignore[attr-defined]
    return e


def numbered(e: Exception, index: int, name: Optional[str] = None) -> Exception:
    """``e`` as sqlite3 words it for the parameter at ``index`` (0-based,
    in the statement's order) named ``name``: "Error binding parameter 3:
    type 'object' is not supported" (1-based), before 3.11 "Error binding
    parameter 2 - probably unsupported type." (0-based, or ``:name``).
    Any other error is ``e`` itself."""
    kind = getattr(e, "_unbindable", None)
    if kind is None:
        return e
    if sys.version_info < (3, 11):
        which = ":%s" % name if name is not None else str(index)
        return _std.InterfaceError("Error binding parameter %s - probably unsupported type." % which)
    return _std.ProgrammingError("Error binding parameter %d: type %r is not supported" % (index + 1, kind))


def _encode(v: Any) -> Any:
    if isinstance(v, float) and math.isinf(v):
        return INFINITY["+" if v > 0 else "-"]
    if v is None or isinstance(v, (int, float, str)):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return _blob(v)
    raise TypeError(type(v).__name__)


def encode_params(params: Any, adapt, unused=None, asked=None, order=None) -> Any:
    """Parameters as the arbiter takes them, adapted as sqlite3 adapts;
    ``unused(name)`` tells a name the statement does not use, ``asked``
    the names it binds (see ``adapt.named_set``), ``order()`` the names in
    the statement's order (to name a value that cannot be bound)."""
    if params is None:
        return None
    if named(params):
        try:
            return named_set(params, lambda v: _encode(adapt(v)), unused, asked)
        except Exception as e:
            name = getattr(e, "_param", None)
            if name is None or not hasattr(e, "_unbindable"):
                raise
            given = [str(k) for k in params.keys()]
            names = (order() if order is not None else None) or given
            # (A name the statement's order lacks: its place in the set.)
            place = names if name in names else given
            raise numbered(e, place.index(name) if name in place else 0, name) from None
    out = []
    for i, v in enumerate(params):
        try:
            out.append(_encode(adapt(v)))
        except Exception as e:
            raise numbered(e, i) from None
    return out
