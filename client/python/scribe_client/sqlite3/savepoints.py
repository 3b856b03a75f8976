"""The savepoints open in the drop-in's transaction, as SQLite keeps them:
a stack of names. Releasing a name releases the newest savepoint of that
name and every one after it; rolling back to it keeps it. When a
``SAVEPOINT`` began the transaction, releasing its last savepoint commits
the transaction, so the drop-in must know when that happens."""

from typing import List

__all__ = ["Savepoints"]

# SQLite folds the case of ASCII letters only in names.
_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class Savepoints:
    def __init__(self) -> None:
        self.names: List[str] = []
        # The transaction was begun by a SAVEPOINT (not BEGIN, not DML).
        self.began_it = False

    def clear(self) -> None:
        """A new transaction begins."""
        self.names.clear()
        self.began_it = False

    def opened(self, name: str, begins: bool) -> None:
        """``SAVEPOINT name`` ran; ``begins``: it began the transaction."""
        self.began_it = self.began_it or begins
        self.names.append(name.translate(_FOLD))

    def released(self, name: str) -> bool:
        """``RELEASE name`` ran: True when that ends a transaction a
        savepoint began (SQLite commits it)."""
        i = self._newest(name)
        if i is None:
            return False
        del self.names[i:]
        return self.began_it and not self.names

    def rolled_back_to(self, name: str) -> None:
        """``ROLLBACK TO name`` ran: the savepoints after it are gone."""
        i = self._newest(name)
        if i is not None:
            del self.names[i + 1 :]

    def _newest(self, name: str):
        name = name.translate(_FOLD)
        for i in range(len(self.names) - 1, -1, -1):
            if self.names[i] == name:
                return i
        return None
