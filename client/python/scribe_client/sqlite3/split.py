"""A script's statements, split where SQLite's own completeness test ends
them (``executescript`` runs them one by one)."""

import sqlite3 as _std

__all__ = ["split"]


def split(script: str):
    """The statements of a script, as SQLite's own completeness test ends them."""
    start = 0
    for i, ch in enumerate(script):
        if ch == ";" and _std.complete_statement(script[start : i + 1]):
            piece = script[start : i + 1].strip()
            if piece.strip(";").strip() and _std.complete_statement(piece):
                if not _only_comments(piece):
                    yield piece
            start = i + 1
    rest = script[start:].strip()
    if rest and not _only_comments(rest):
        yield rest


def _only_comments(piece: str) -> bool:
    for line in piece.splitlines():
        code = line.split("--", 1)[0].strip().strip(";").strip()
        if code:
            return False
    return True
