"""Schema migrations as the arbiter takes them, from a directory of
``NNNN_name.sql`` files or from the program's own list."""

import os
import re
from typing import Any, Dict, List

__all__ = ["as_list", "directives", "from_dir", "FOREIGN_KEYS_OFF"]

#: A migration file whose opening comments hold this line runs with
#: foreign keys off (SQLite's twelve-step table rebuild needs it).
FOREIGN_KEYS_OFF = "-- scribe: foreign_keys=off"

# ASCII digits, any case of ".sql": as the arbiter and the CLI read a
# directory.
_FILE = re.compile(r"^([0-9]+)[_-]?(.*)\.sql$", re.IGNORECASE | re.DOTALL)


_BLANK = " \t\r\n\x0b\x0c"  # ASCII only, as SQLite's tokenizer and the Rust reader


def _lower(s: str) -> str:
    """ASCII letters lowered, nothing else (as Rust's to_ascii_lowercase)."""
    return s.translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def directives(sql: str) -> bool:
    """Whether a migration's text asks for foreign keys off: the directive
    among the comments it opens with (a byte-order mark, spacing, case and
    `-` for `_` do not matter). A comment that looks meant as one but is
    not exactly it raises ``ValueError``: a table rebuild run with foreign
    keys on deletes the rows that point at the table. The same rules as
    the arbiter's (``protocol/src/directive.rs``), checked on the same
    cases."""
    off = False
    opening = True
    in_block = False
    text = sql[1:] if sql.startswith("\ufeff") else sql
    for n, line in enumerate(text.split("\n"), 1):
        line = line.strip(_BLANK)
        if in_block:
            comment = line
        elif line.startswith("--"):
            comment = line[2:]
        elif line.startswith("/*"):
            in_block = True
            comment = line[2:]
        else:
            comment = None
        if in_block:
            in_block = "*/" not in line
        if comment is not None:
            comment = comment.split("*/")[0]
        opening = opening and (not line or comment is not None)
        said = _addressed(comment) if comment is not None else None
        if said is None:
            continue
        compact = "".join("_" if c == "-" else _lower(c) for c in said if c not in _BLANK)
        if compact != "foreign_keys=off":
            raise ValueError("line %d: `%s` is not a directive scribe knows (the one there is: `%s`)"
                             % (n, line, FOREIGN_KEYS_OFF))
        if not opening:
            raise ValueError("line %d: `%s` must be among the comments the file opens with, "
                             "before its first statement" % (n, line))
        off = True
    return off


def _addressed(comment: str):
    text = comment.lstrip(_BLANK + "-*@#")
    if _lower(text[:6]) != "scribe":
        return None
    rest = text[6:]
    if rest[:1] and (rest[:1].isascii() and (rest[:1].isalnum() or rest[:1] == "_")):
        return None  # `scribes`, `scribe_x`: another word
    said = rest.strip(_BLANK)
    said = said[1:] if said.startswith(":") else said
    lower = _lower(said)
    if "foreign" in lower or (rest.lstrip(_BLANK).startswith(":") and "=" in lower):
        return said
    return None


def from_dir(path: str) -> List[Dict[str, Any]]:
    """The migrations of a directory, in version order; ``ValueError`` when
    two files have one version (as the arbiter's own reading says)."""
    out = []
    for entry in sorted(os.listdir(path)):
        m = _FILE.match(entry)
        if not m:
            continue
        # newline="": the text as it is on disk (CRLF kept), as the CLI and
        # the arbiter read it, or their checksums would differ.
        with open(os.path.join(path, entry), encoding="utf-8", newline="") as f:
            sql = f.read()
        try:
            off = directives(sql)
        except ValueError as e:
            raise ValueError("%s: %s" % (os.path.join(path, entry), e)) from None
        version = int(m.group(1))
        twin = next((d for d in out if d["version"] == version), None)
        if twin is not None:
            raise ValueError(
                "%s: two migration files have version %d (%s and %s)"
                % (path, version, twin["name"], m.group(2) or entry[:-4])
            )
        out.append(
            {
                "version": version,
                "name": m.group(2) or entry[:-4],
                "sql": sql,
                "foreign_keys_off": off,
            }
        )
    out.sort(key=lambda d: d["version"])
    return out


def as_list(migrations: Any) -> List[Dict[str, Any]]:
    """A directory path, or a list of tuples or dicts, as the arbiter's list."""
    if isinstance(migrations, (str, bytes, os.PathLike)):
        return from_dir(os.fsdecode(migrations))
    out = []
    for m in migrations:
        if isinstance(m, dict):
            # A misspelt "foreign_keys_off" would run the step with them on.
            unknown = sorted(set(m) - {"version", "name", "sql", "foreign_keys_off"})
            if unknown:
                raise TypeError("a migration has unknown keys %s (it takes version, name, sql, "
                                "foreign_keys_off)" % ", ".join(map(repr, unknown)))
            d = {"version": m["version"], "name": m["name"], "sql": m["sql"]}
            if m.get("foreign_keys_off"):
                d["foreign_keys_off"] = True
        elif isinstance(m, (tuple, list)) and len(m) in (3, 4):
            d = {"version": m[0], "name": m[1], "sql": m[2]}
            if len(m) == 4 and m[3]:
                d["foreign_keys_off"] = True
        else:
            raise TypeError("a migration is (version, name, sql) or a dict with those keys")
        if isinstance(d["version"], bool) or not isinstance(d["version"], int):
            raise TypeError("a migration's version is an int")
        out.append(d)
    return out
