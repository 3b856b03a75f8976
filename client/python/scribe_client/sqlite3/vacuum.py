"""``VACUUM INTO``, told from the statement's words: SQLite's authorizer
hears nothing of a VACUUM, and this one only reads the database (it
copies it into another file, a backup), so it runs on the local
connection, as sqlite3 runs it."""

from .first_word import BLANK, skip

__all__ = ["vacuum_into"]


def vacuum_into(sql: str) -> bool:
    """True for ``VACUUM [schema] INTO …``, past blanks and comments."""
    words = []
    i = 0
    while len(words) < 3:
        i += skip(sql[i:], BLANK)
        if i >= len(sql):
            break
        quote = {'"': '"', "[": "]", "`": "`"}.get(sql[i])
        if quote is not None:
            end = sql.find(quote, i + 1)
            if end < 0:
                break
            words.append(sql[i : end + 1])
            i = end + 1
            continue
        j = i
        while j < len(sql) and (sql[j].isalnum() or sql[j] == "_"):
            j += 1
        if j == i:
            break
        words.append(sql[i:j].lower())
        i = j
    return len(words) >= 2 and words[0] == "vacuum" and "into" in words[1:3]
