"""A database whose path is too long for a socket beside it is served on a
name under ``$XDG_RUNTIME_DIR`` that anyone can compute: a process that
listens there first gets nothing, and answers nothing a client believes."""

import os
import socket
import threading

import support
from support import ArbiterTest

import scribe_client.sqlite3 as dropin
from scribe_client.paths import Paths


class SquatterTest(ArbiterTest):
    def test_a_process_listening_on_the_fallback_names_hears_nothing(self):
        support.set_env(self, "XDG_RUNTIME_DIR", self.dir)
        support.set_env(self, "SCRIBE_BIN", support.SCRIBE)
        deep = os.path.join(self.dir, "d" * 60, "e" * 50)
        os.makedirs(deep)
        db = os.path.join(deep, "t.db")
        self.dbs.append(db)
        paths = Paths(db)
        self.assertTrue(paths.http_socket.startswith(self.dir + "/scribe-"))
        heard = []
        for name in (paths.socket, paths.http_socket):
            squatter = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            squatter.bind(name)
            squatter.listen(8)
            self.addCleanup(squatter.close)
            threading.Thread(target=self.listen, args=(squatter, heard), daemon=True).start()
        s = self.client(db)
        s.write("CREATE TABLE secret(x)")
        s.write("INSERT INTO secret VALUES (?)", ["hunter2"])
        c = dropin.connect(db)
        self.addCleanup(c.close)
        c.execute("INSERT INTO secret VALUES ('swordfish')")
        c.commit()
        self.assertEqual(c.execute("SELECT count(*) FROM secret").fetchone(), (2,))
        self.assertEqual(b"".join(heard), b"", "the squatter heard the SQL")

    @staticmethod
    def listen(squatter, heard):
        while True:
            try:
                conn, _ = squatter.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                while True:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    heard.append(chunk)
            except OSError:
                pass
            finally:
                conn.close()
