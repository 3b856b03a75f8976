"""A statement's first word, found as sqlite3 finds it: past blanks and
comments, by a scan (never a backtracking pattern). It decides whether
sqlite3 would begin a transaction before a statement (``begins``) and
whether there is a statement at all (``nothing``)."""

import sys

__all__ = ["begins", "nothing", "skip", "BLANK"]

BLANK = frozenset(" \t\f\n\r")
_VERBS = ("insert", "update", "delete", "replace")


def skip(sql: str, blank: frozenset) -> int:
    """Where the first word of ``sql`` starts, past ``blank`` characters
    and comments (``len(sql)`` when nothing follows them); a scan, as
    sqlite3's own, never a backtracking pattern."""
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in blank:
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i + 2)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            return i
    return n


def begins(sql: str) -> bool:
    """True when sqlite3 would begin a transaction before ``sql`` (outside
    one, with an isolation level) and count its rows in ``rowcount``: its
    first word, past whitespace and comments, is INSERT, UPDATE, DELETE or
    REPLACE. A ``WITH … INSERT`` writes rows yet runs in autocommit
    there, and must here too. (Python 3.9 skips blanks only.)"""
    if OLD_FIRST_WORD:
        rest = sql.lstrip(" \t\n\r")
        return rest[:7].lower().startswith(_VERBS)
    i = skip(sql, BLANK)
    return sql[i : i + 7].lower().startswith(_VERBS)


OLD_FIRST_WORD = sys.version_info < (3, 10)


def nothing(sql: str) -> bool:
    """True when ``sql`` holds only blanks, comments (one left open
    included), semicolons and byte-order marks (SQLite's tokenizer takes
    one for a blank; sqlite3's first-word rule does not): SQLite has no
    statement to compile, and sqlite3 runs nothing."""
    return skip(sql, NOTHING) == len(sql)


NOTHING = BLANK | {";", "\ufeff"}
