"""Values and statements as the arbiter's JSON takes them, and back."""

import base64
import json
import math
import secrets
import sqlite3
from typing import Any, Dict, Iterable, Mapping, Sequence, Union

from .errors import SqlError

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1

Params = Union[None, Sequence[Any], Mapping[str, Any]]

_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode

# JSON has no infinity, but the arbiter reads 1e999 as one (and answers
# 9.0e+999, which json reads as one): an infinite parameter is given as
# one of these tokens (no caller can guess them), replaced by that
# literal once the request is encoded.
INFINITY = {"+": "scribe-inf-" + secrets.token_hex(16), "-": "scribe-ninf-" + secrets.token_hex(16)}


def dumps(request: Any) -> str:
    """A request's JSON, infinite parameters included."""
    body = _encode(request)
    if "scribe-" in body:
        body = body.replace('"%s"' % INFINITY["+"], "1e999").replace('"%s"' % INFINITY["-"], "-1e999")
    return body


def _encode_value(v: Any) -> Any:
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        if not _I64_MIN <= v <= _I64_MAX:
            raise OverflowError("integer %d does not fit in SQLite's 64-bit INTEGER" % v)
        return v
    if isinstance(v, float):
        if math.isinf(v):
            return INFINITY["+" if v > 0 else "-"]
        if math.isnan(v):
            raise ValueError("NaN cannot be sent as a parameter (SQLite would store NULL)")
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return _blob(v)
    raise TypeError(
        "a parameter is None, bool, int, float, str or bytes, not %s" % type(v).__name__
    )


def _blob(v: Any) -> Dict[str, str]:
    """Bytes as the arbiter's JSON carries a BLOB."""
    return {"$blob": base64.b64encode(bytes(v)).decode("ascii")}


def _encode_params(params: Params) -> Any:
    if params is None:
        return None
    if isinstance(params, Mapping):
        return {str(k): _encode_value(v) for k, v in params.items()}
    if isinstance(params, (str, bytes, bytearray, memoryview)):
        raise TypeError("params is a sequence (positional) or a mapping (named), not a string")
    if isinstance(params, Iterable):
        return [_encode_value(v) for v in params]
    raise TypeError("params is a sequence or a mapping, not %s" % type(params).__name__)


def _statement(s: Any) -> Dict[str, Any]:
    if isinstance(s, str):
        sql, params, expect = s, None, None
    elif isinstance(s, Mapping):
        unknown = set(s) - {"sql", "params", "expect_rows"}
        if unknown:
            raise TypeError("unknown statement field(s): %s" % ", ".join(sorted(unknown)))
        sql, params, expect = s.get("sql"), s.get("params"), s.get("expect_rows")
    elif isinstance(s, (tuple, list)) and 1 <= len(s) <= 3:
        sql = s[0]
        params = s[1] if len(s) > 1 else None
        expect = s[2] if len(s) > 2 else None
    else:
        raise TypeError("a statement is a SQL string, a dict {sql, params, expect_rows} or a tuple")
    if not isinstance(sql, str):
        raise TypeError("sql is a string, not %s" % type(sql).__name__)
    out: Dict[str, Any] = {"sql": sql}
    encoded = _encode_params(params)
    if encoded is not None:
        out["params"] = encoded
    if expect is not None:
        if isinstance(expect, bool) or not isinstance(expect, int) or expect < 0:
            raise TypeError("expect_rows is a non-negative integer")
        out["expect_rows"] = expect
    return out


def _decode_value(v: Any) -> Any:
    if isinstance(v, dict) and len(v) == 1 and "$blob" in v:
        return base64.b64decode(v["$blob"])
    return v


def _decode_receipt(receipt: Dict[str, Any]) -> Dict[str, Any]:
    for result in receipt.get("results", ()):
        rows = result.get("rows")
        if rows:
            result["rows"] = [{k: _decode_value(v) for k, v in row.items()} for row in rows]
    return receipt


def _query_params(params: Params) -> Any:
    """Parameters for ``sqlite3``: names are accepted with or without their
    ``:``/``@``/``$`` prefix, as the arbiter accepts them; the values are
    those a write takes (``TypeError``, ``ValueError`` as there)."""
    if params is None:
        return ()
    # The values a write takes, no others (sqlite3's adapters took a
    # datetime here that a write refuses, and stored NaN as NULL).
    _encode_params(params)
    if isinstance(params, Mapping):
        return {
            (k[1:] if isinstance(k, str) and k[:1] in (":", "@", "$") else k): v
            for k, v in params.items()
        }
    return params


def _sql_error(e: sqlite3.Error) -> SqlError:
    code = getattr(e, "sqlite_errorcode", None)
    return SqlError("SQL error in the query: %s" % e, statement=0, sqlite_code=code)
