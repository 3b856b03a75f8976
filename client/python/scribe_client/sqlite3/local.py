"""What stays on the local connection, and what that means for the
statements the arbiter runs: functions, aggregates and collations the
program registers, extensions, its progress handler and length limit,
backup, blobs, deserialize and the authorizer. A mixin of ``Connection``
(ahead of ``sqlite3.Connection``, whose methods these wrap)."""

import sqlite3 as _std

__all__ = ["LocalOnly"]

# SQLite's own cap on a string's length, for a compile (see _quiet).
_NO_LIMIT = 1_000_000_000


class LocalOnly:
    def _quiet(self, conn: _std.Connection):
        """For the classifier's compile on ``conn``: this connection's
        progress handler and length limit off, and what puts them back.
        They are the program's, for its statements; the compile's EXPLAIN
        is not one (it counts more steps than the statement, and its rows
        carry longer strings), and a compile they stopped was taken for a
        statement only the arbiter could compile, which then committed
        outside the program's transaction."""
        if conn is not self or (self._progress is None and self._length_limit is None):
            return None
        if self._progress is not None:
            _std.Connection.set_progress_handler(self, None, 0)
        if self._length_limit is not None:
            _std.Connection.setlimit(self, _std.SQLITE_LIMIT_LENGTH, _NO_LIMIT)

        def restore() -> None:
            if self._progress is not None:
                _std.Connection.set_progress_handler(self, *self._progress)
            if self._length_limit is not None:
                _std.Connection.setlimit(self, _std.SQLITE_LIMIT_LENGTH, self._length_limit)

        return restore

    def set_progress_handler(self, *args, **kwargs):
        out = super().set_progress_handler(*args, **kwargs)
        handler = args[0] if args else kwargs.get("progress_handler")
        n = args[1] if len(args) > 1 else kwargs.get("n", 1)
        self._progress = None if handler is None else (handler, n)
        return out

    if hasattr(_std.Connection, "setlimit"):  # Python 3.11

        def setlimit(self, category, limit, /):
            old = super().setlimit(category, limit)
            if category == _std.SQLITE_LIMIT_LENGTH and limit >= 0:  # below 0 only asks
                self._length_limit = limit
            return old

    def _own_functions(self, sql: str) -> None:
        """Refuses, before it is sent, a statement for the arbiter that
        calls a function this connection registered: one SQLite also has
        (a Unicode-aware ``lower``) would otherwise run as SQLite's own
        there, silently; one it lacks fails there anyway."""
        if not self._functions:
            return
        mine = self._classifier.calls(sql) & self._functions
        if mine:
            raise _std.NotSupportedError(
                "%s() is registered on this connection (create_function): writes, and every "
                "statement inside a transaction, run in the arbiter, which would call SQLite's "
                "own %s() or none; load yours there as an extension (scribed --load-extension "
                "PATH)" % (min(mine), min(mine))
            )

    def _not_here(self, e: Exception) -> Exception:
        """A write that needs a function or extension only this process has."""
        text = str(e)
        if text.startswith(("no such function: ", "no such module: ")):
            name = text.split(": ", 1)[1].lower()
            if name in self._functions or self._extensions:
                return _std.NotSupportedError(
                    "%s: writes, and every statement inside a transaction, run in the "
                    "arbiter, which cannot call what this process registered "
                    "(create_function, load_extension); load it there as an extension "
                    "(scribed --load-extension PATH)" % text
                )
        return e

    def _also_on_twin(self, method: str, *args, **kwargs) -> None:
        """What reads compile against, registered on the twin too (it
        compiles them to classify them), under the lock: the twin's
        classifying holds its mutex while its callback waits for the GIL,
        which this thread holds."""
        if self._twin is not None:
            with self._lock:
                getattr(self._twin, method)(*args, **kwargs)

    def create_function(self, name, narg, func, *args, **kwargs):
        self._functions.add(name.lower())
        out = super().create_function(name, narg, func, *args, **kwargs)
        self._also_on_twin("create_function", name, narg, func, *args, **kwargs)
        return out

    def create_aggregate(self, name, n_arg, aggregate_class):
        self._functions.add(name.lower())
        out = super().create_aggregate(name, n_arg, aggregate_class)
        self._also_on_twin("create_aggregate", name, n_arg, aggregate_class)
        return out

    if hasattr(_std.Connection, "create_window_function"):  # Python 3.11

        def create_window_function(self, name, num_params, aggregate_class, /):
            self._functions.add(name.lower())
            out = super().create_window_function(name, num_params, aggregate_class)
            self._also_on_twin("create_window_function", name, num_params, aggregate_class)
            return out

    def create_collation(self, name, callable, /):  # noqa: A002  (sqlite3's name)
        out = super().create_collation(name, callable)
        self._also_on_twin("create_collation", name, callable)
        return out

    if hasattr(_std.Connection, "enable_load_extension"):  # not in every build

        def enable_load_extension(self, enabled, /):
            out = super().enable_load_extension(enabled)
            self._also_on_twin("enable_load_extension", enabled)
            return out

    def load_extension(self, *args, **kwargs):
        self._extensions = True
        out = super().load_extension(*args, **kwargs)
        self._also_on_twin("load_extension", *args, **kwargs)
        return out

    def backup(self, target, **kwargs):
        if target is self:
            raise ValueError("target cannot be the same connection instance")  # as sqlite3
        if isinstance(target, LocalOnly) and not target._readonly:  # a drop-in connection
            raise _std.NotSupportedError(
                "backup() into a scribe connection is not supported: only the arbiter writes "
                "that file; back up into a connection of the standard sqlite3 module"
            )
        return super().backup(target, **kwargs)

    def blobopen(self, *args, readonly=False, **kwargs):
        if not readonly and not self._readonly:
            raise _std.NotSupportedError(
                "blobopen() for writing is not supported: only the arbiter writes the file "
                "(readonly=True reads; write a blob with UPDATE … SET col = ?)"
            )
        return super().blobopen(*args, readonly=readonly, **kwargs)

    def deserialize(self, *args, **kwargs):
        if self._readonly:
            return super().deserialize(*args, **kwargs)
        raise _std.NotSupportedError(
            "deserialize() is not supported: it would replace what this connection reads "
            "while its writes still went to the file"
        )

    def set_authorizer(self, *args, **kwargs):
        raise _std.NotSupportedError(
            "set_authorizer() is not supported: scribe classifies each statement with this "
            "connection's authorizer, and the arbiter enforces its own guardrails on writes"
        )
