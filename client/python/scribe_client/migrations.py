"""Schema migrations as the arbiter takes them, from a directory of
``NNNN_name.sql`` files or from the program's own list."""

import os
import re
from typing import Any, Dict, List

__all__ = ["as_list", "from_dir", "FOREIGN_KEYS_OFF"]

#: A migration file whose first line is this runs with foreign keys off
#: (SQLite's twelve-step table rebuild needs it).
FOREIGN_KEYS_OFF = "-- scribe: foreign_keys=off"

_FILE = re.compile(r"^(\d+)[_-]?(.*)\.sql$")


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
        first = sql.splitlines()[0].strip().lower() if sql else ""
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
                "foreign_keys_off": first == FOREIGN_KEYS_OFF,
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
