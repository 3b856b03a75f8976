"""Differential scripts for virtual tables (FTS5, r-tree): the first
statement of a connection that touches one makes SQLite connect the
table while compiling it, and the module's own statements (FTS5's
``PRAGMA data_version``, the r-tree's reads of its shadow tables) must
not decide where the statement runs."""

from dropin_scripts import Log

SCHEMA = """
CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);
CREATE VIRTUAL TABLE notes_fts USING fts5(body, content=notes, content_rowid=id);
CREATE TRIGGER notes_ai AFTER INSERT ON notes BEGIN
    INSERT INTO notes_fts(rowid, body) VALUES (new.id, new.body);
END;
CREATE VIRTUAL TABLE words USING fts5(w);
CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1);
CREATE VIRTUAL TABLE old USING fts4(body);
CREATE VIRTUAL TABLE gone USING fts5(body);
"""


def made_by_another(mod, path):
    setup = mod.connect(path, isolation_level=None)
    setup.executescript(SCHEMA)
    setup.close()


def vtab_first_touch_is_a_write(mod, path):
    log = Log()
    made_by_another(mod, path)
    for first in (
        "INSERT INTO notes(body) VALUES ('apples and pears')",  # through a trigger
        "INSERT INTO words(w) VALUES ('pears')",
        "INSERT INTO words(words) VALUES ('optimize')",  # an FTS5 command
        "INSERT INTO boxes VALUES (1, 0.0, 2.0)",
    ):
        c = mod.connect(path, isolation_level=None)
        log.attempt(first, lambda: c.execute(first).rowcount)
        c.close()
    c = mod.connect(path)
    with c:
        c.execute("INSERT INTO notes(body) VALUES ('pears alone')")
    log.note("match", c.execute(
        "SELECT rowid FROM notes_fts WHERE notes_fts MATCH 'pears' ORDER BY rowid").fetchall())
    log.note("boxes", c.execute("SELECT id FROM boxes WHERE x0 < 1").fetchall())
    c.close()
    return log


def vtab_first_touch_in_a_transaction(mod, path):
    """A read of a virtual table inside a transaction sees the
    transaction's own writes, the first time as every time."""
    log = Log()
    made_by_another(mod, path)
    c = mod.connect(path, isolation_level=None)
    c.execute("BEGIN IMMEDIATE")
    log.note("empty", c.execute("SELECT count(*) FROM words").fetchall())
    c.execute("INSERT INTO words(w) VALUES ('kiwi')")
    log.note("own write", c.execute("SELECT count(*) FROM words").fetchall())
    log.note("match", c.execute("SELECT w FROM words WHERE words MATCH 'kiwi'").fetchall())
    c.execute("COMMIT")
    # Another connection changes the schema: SQLite connects the tables
    # again, and a text not seen before is compiled with them.
    other = mod.connect(path, isolation_level=None)
    other.execute("CREATE TABLE later(x)")
    other.close()
    log.note("read", c.execute("SELECT count(*) FROM notes").fetchall())
    log.attempt("new text", lambda: c.execute("INSERT INTO words(w) VALUES ('fig')").rowcount)
    log.note("after", c.execute("SELECT w FROM words ORDER BY w").fetchall())
    c.close()
    return log


def vtab_first_touch_is_ddl_or_an_empty_many(mod, path):
    """DDL and an executemany of no sets as a connection's first touch of
    a virtual table: SQLite connects it while compiling them too."""
    log = Log()
    made_by_another(mod, path)
    for first in (
        "DROP TABLE gone",
        "ALTER TABLE old RENAME TO older",
        "CREATE TABLE copied AS SELECT * FROM words",
    ):
        c = mod.connect(path, isolation_level=None)
        log.attempt(first, lambda: c.execute(first).rowcount)
        c.close()
    c = mod.connect(path)
    log.attempt("no sets", lambda: c.executemany("INSERT INTO words(w) VALUES (?)", []).rowcount)
    log.note("open", c.in_transaction)
    c.rollback()
    log.note("tables", c.execute(
        "SELECT name FROM sqlite_master WHERE name IN ('gone', 'old', 'older', 'copied') "
        "ORDER BY name").fetchall())
    c.close()
    return log


SCRIPTS = [vtab_first_touch_is_a_write, vtab_first_touch_in_a_transaction,
           vtab_first_touch_is_ddl_or_an_empty_many]
