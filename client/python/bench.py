#!/usr/bin/env python3
"""Python throughput: N processes through scribe vs. straight to SQLite.

Writes: each of N processes (default 8) does W single-row autocommit
inserts of a 100-byte row, (a) through the ``scribe_client.sqlite3``
drop-in (``conn.execute(INSERT)`` with ``isolation_level=None``: one batch
through the arbiter's socket each), (b) through ``Scribe.write`` (HTTP),
and (c) directly with ``sqlite3`` (one connection per process,
``busy_timeout`` 5000 set first, ``BEGIN IMMEDIATE`` per write, retried on
``database is locked``), on fresh WAL databases in the same run, for
``synchronous`` FULL and NORMAL (for scribe through ``<db>.scribe.conf``
before its arbiter starts).

Transactions: the same inserts, each in ``BEGIN IMMEDIATE``, a read the
insert depends on (``SELECT max(id)``), the insert, ``COMMIT``: the same
code on the drop-in and on ``sqlite3`` (which retries ``database is
locked`` after a rollback; the drop-in never sees it).

Many: the same rows through ``executemany``, 100 rows a call, each call in
``BEGIN IMMEDIATE`` … ``COMMIT`` (the same code on both; sqlite3 retries
``database is locked``); p50/p99 are per call, CPU per row.

Reads: N processes read rows by primary key for a few seconds, through
the drop-in and through plain ``sqlite3``, on one database.

Prints rates, p50/p99, CPU per request (every process of the run: the
workers' user+system time, plus the arbiter's), and the ratios.

    cargo build --release
    python3 client/python/bench.py --bin-dir target/release [--procs 8] [--writes 1000]
"""

import argparse
import multiprocessing as mp
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from scribe_client import Scribe  # noqa: E402

ROW_BYTES = 100
SCHEMA = "CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT NOT NULL)"
INSERT = "INSERT INTO t(body) VALUES (?)"
TXN_READ = "SELECT coalesce(max(id), 0) FROM t"


def body(proc, i):
    head = "p%02d-w%08d-" % (proc, i)
    return head + "x" * (ROW_BYTES - len(head))


def cpu():
    t = os.times()
    return t.user + t.system


def timed(writes, write_one, barrier, out):
    """Runs ``write_one(i)`` for each write once every worker is ready;
    reports the run's span, each write's latency and the CPU it took."""
    lat = []
    barrier.wait()
    start, c0 = time.monotonic(), cpu()
    for i in range(writes):
        t = time.perf_counter()
        write_one(i)
        lat.append(time.perf_counter() - t)
    out.put((start, time.monotonic(), lat, 0, cpu() - c0))


def scribe_worker(db, scribe_bin, proc, writes, barrier, out):
    s = Scribe(db, scribe_bin=scribe_bin)
    s.status()  # connected before the clock starts
    timed(writes, lambda i: s.write(INSERT, [body(proc, i)]), barrier, out)
    s.close()


def dropin_worker(db, scribe_bin, proc, writes, barrier, out):
    conn = dropin_connect(scribe_bin, db)
    timed(writes, lambda i: conn.execute(INSERT, (body(proc, i),)), barrier, out)
    conn.close()


def reader_worker(db, module, proc, seconds, barrier, out):
    mod = __import__(module, fromlist=["connect"])
    conn = mod.connect(db, timeout=30)
    n = conn.execute("SELECT max(id) FROM t").fetchone()[0]
    rnd = random.Random(proc)
    lat = []
    barrier.wait()
    start, c0 = time.monotonic(), cpu()
    while time.monotonic() - start < seconds:
        for _ in range(100):
            conn.execute("SELECT body FROM t WHERE id = ?", (rnd.randint(1, n),)).fetchone()
        lat.append(0.0)
    end = time.monotonic()
    out.put((start, end, [0.0] * (len(lat) * 100), 0, cpu() - c0))
    conn.close()


def direct_connect(db, sync):
    conn = sqlite3.connect(db, timeout=5.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")  # first
    conn.execute("PRAGMA synchronous = %s" % sync)
    return conn


def dropin_connect(scribe_bin, db):
    import scribe_client.sqlite3 as dropin

    os.environ["SCRIBE_BIN"] = scribe_bin
    conn = dropin.connect(db, isolation_level=None, timeout=30)
    conn.arbiter_sqlite_version()  # connected before the clock starts
    return conn


def immediate(conn, work):
    """Runs ``work()`` in ``BEGIN IMMEDIATE … COMMIT``, again after a
    rollback on ``database is locked``; returns how many times it retried."""
    retries = 0
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            work()
            conn.execute("COMMIT")
            return retries
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            retries += 1
            time.sleep(random.uniform(0.0005, 0.002))


def retried(conn, proc, writes, barrier, out, read_first):
    """Each write in ``BEGIN IMMEDIATE … COMMIT`` (after a read it depends
    on, with ``read_first``), retried on ``database is locked``."""
    retries = 0
    lat = []
    barrier.wait()
    start, c0 = time.monotonic(), cpu()
    for i in range(writes):
        t = time.perf_counter()

        def write():
            row = body(proc, i)
            if read_first:
                last = conn.execute(TXN_READ).fetchone()[0]
                row = row[:-12] + "%012d" % (last + 1)
            conn.execute(INSERT, [row])

        retries += immediate(conn, write)
        lat.append(time.perf_counter() - t)
    out.put((start, time.monotonic(), lat, retries, cpu() - c0))
    conn.close()


MANY_ROWS = 100


def many_loop(conn, proc, writes, barrier, out):
    """``writes`` rows in ``executemany`` calls of ``MANY_ROWS``, each in
    its own ``BEGIN IMMEDIATE`` transaction (retried on ``database is
    locked``); one latency per call, counted for each of its rows."""
    retries = 0
    lat = []
    barrier.wait()
    start, c0 = time.monotonic(), cpu()
    for first in range(0, writes, MANY_ROWS):
        rows = [(body(proc, i),) for i in range(first, min(first + MANY_ROWS, writes))]
        t = time.perf_counter()
        retries += immediate(conn, lambda: conn.executemany(INSERT, rows))
        lat.extend([time.perf_counter() - t] * len(rows))
    out.put((start, time.monotonic(), lat, retries, cpu() - c0))
    conn.close()


def direct_many_worker(db, sync, proc, writes, barrier, out):
    many_loop(direct_connect(db, sync), proc, writes, barrier, out)


def dropin_many_worker(db, scribe_bin, proc, writes, barrier, out):
    many_loop(dropin_connect(scribe_bin, db), proc, writes, barrier, out)


def direct_worker(db, sync, proc, writes, barrier, out):
    retried(direct_connect(db, sync), proc, writes, barrier, out, read_first=False)


def direct_txn_worker(db, sync, proc, writes, barrier, out):
    retried(direct_connect(db, sync), proc, writes, barrier, out, read_first=True)


def dropin_txn_worker(db, scribe_bin, proc, writes, barrier, out):
    retried(dropin_connect(scribe_bin, db), proc, writes, barrier, out, read_first=True)


def run(ctx, target, args_for, procs, writes):
    barrier = ctx.Barrier(procs)
    out = ctx.Queue()
    ps = [ctx.Process(target=target, args=args_for(p) + (p, writes, barrier, out)) for p in range(procs)]
    for p in ps:
        p.start()
    results = [out.get(timeout=600) for _ in ps]
    for p in ps:
        p.join()
        if p.exitcode != 0:
            raise SystemExit("a worker failed (exit %s)" % p.exitcode)
    elapsed = max(r[1] for r in results) - min(r[0] for r in results)
    lat = sorted(x for r in results for x in r[2])
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
    return {
        "writes": len(lat),
        "seconds": elapsed,
        "rate": len(lat) / elapsed,
        "p50": pct(0.50),
        "p99": pct(0.99),
        "retries": sum(r[3] for r in results),
        "cpu": sum(r[4] for r in results),
    }


def count(db):
    conn = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5.0)
    conn.execute("PRAGMA busy_timeout = 5000")
    n = conn.execute("SELECT count(*) FROM t").fetchone()[0]
    conn.close()
    return n


def arbiter_cpu(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def bench_scribe(ctx, dirname, sync, bin_dir, procs, writes, worker=scribe_worker, name="scribe"):
    db = os.path.join(dirname, "%s-%s.db" % (name, sync.lower()))
    with open(db + ".scribe.conf", "w") as f:
        f.write("synchronous = %s\n" % sync.lower())
    scribe_bin = os.path.join(bin_dir, "scribe")
    s = Scribe(db, scribe_bin=scribe_bin)
    try:
        s.write(SCHEMA)  # auto-starts the arbiter, which reads the conf
        first = s.status()
        got = first["synchronous"]
        if got != sync.lower():
            raise SystemExit("the arbiter runs with synchronous=%s, not %s" % (got, sync))
        pid = first["pid"]
        a0 = arbiter_cpu(pid)
        r = run(ctx, worker, lambda p: (db, scribe_bin), procs, writes)
        r["cpu"] += arbiter_cpu(pid) - a0
        st = s.status()
        r["extra"] = "%d commits, mean group %.1f" % (st["commits"], st["mean_group"])
    finally:
        s.close()
        subprocess.run([scribe_bin, "--db", db, "stop", "--grace", "0s"], stdout=subprocess.DEVNULL)
    assert count(db) == procs * writes, "rows missing"
    return r


def bench_direct(ctx, dirname, sync, procs, writes, worker=direct_worker, name="direct"):
    db = os.path.join(dirname, "%s-%s.db" % (name, sync.lower()))
    conn = direct_connect(db, sync)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(SCHEMA)
    conn.close()
    r = run(ctx, worker, lambda p: (db, sync), procs, writes)
    r["extra"] = "%d 'locked' retries" % r["retries"]
    assert count(db) == procs * writes, "rows missing"
    return r


def bench_reads(ctx, dirname, bin_dir, procs, seconds):
    """Reads by primary key: the drop-in against plain sqlite3, same file."""
    db = os.path.join(dirname, "reads.db")
    scribe_bin = os.path.join(bin_dir, "scribe")
    s = Scribe(db, scribe_bin=scribe_bin)
    s.write(SCHEMA)
    for k in range(10):
        s.batch([(INSERT, [body(k, i)]) for i in range(1000)])
    os.environ["SCRIBE_BIN"] = scribe_bin
    out = {}
    try:
        for module in ("sqlite3", "scribe_client.sqlite3", "sqlite3", "scribe_client.sqlite3"):
            r = run(ctx, reader_worker, lambda p: (db, module), procs, seconds)
            best = out.get(module)
            if best is None or r["rate"] > best["rate"]:
                out[module] = r
    finally:
        s.close()
        subprocess.run([scribe_bin, "--db", db, "stop", "--grace", "0s"], stdout=subprocess.DEVNULL)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default=os.environ.get("SCRIBE_BIN_DIR") or os.path.join(HERE, "..", "..", "target", "release"))
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--writes", type=int, default=1000, help="writes per process")
    ap.add_argument("--dir", default="/tmp", help="where the temp databases go")
    ap.add_argument("--read-seconds", type=float, default=3.0, help="seconds per read run")
    ap.add_argument("--workloads", default="insert,txn,reads", help="of insert, txn, many, reads (comma-separated)")
    args = ap.parse_args()
    workloads = set(args.workloads.split(","))
    bin_dir = os.path.abspath(args.bin_dir)
    ctx = mp.get_context("spawn")
    dirname = tempfile.mkdtemp(prefix="scbench", dir=args.dir)
    rows = []
    try:
        for sync in ("FULL", "NORMAL"):
            if "insert" in workloads:
                rows.append((sync, "dropin", bench_scribe(ctx, dirname, sync, bin_dir, args.procs, args.writes, dropin_worker, "dropin")))
                rows.append((sync, "direct", bench_direct(ctx, dirname, sync, args.procs, args.writes)))
                rows.append((sync, "http", bench_scribe(ctx, dirname, sync, bin_dir, args.procs, args.writes)))
            if "txn" in workloads:
                rows.append((sync, "dropin-tx", bench_scribe(ctx, dirname, sync, bin_dir, args.procs, args.writes, dropin_txn_worker, "dropin-tx")))
                rows.append((sync, "direct-tx", bench_direct(ctx, dirname, sync, args.procs, args.writes, direct_txn_worker, "direct-tx")))
            if "many" in workloads:
                many_writes = args.writes * 10  # rows: ten calls of 100 per 100 inserts
                rows.append((sync, "dropin-many", bench_scribe(ctx, dirname, sync, bin_dir, args.procs, many_writes, dropin_many_worker, "dropin-many")))
                rows.append((sync, "direct-many", bench_direct(ctx, dirname, sync, args.procs, many_writes, direct_many_worker, "direct-many")))
        reads = bench_reads(ctx, dirname, bin_dir, args.procs, args.read_seconds) if "reads" in workloads else None
    finally:
        shutil.rmtree(dirname, ignore_errors=True)
    print("%d processes x %d single-row inserts (%d-byte rows; -tx: each in BEGIN IMMEDIATE after a read), WAL, binaries from %s"
          % (args.procs, args.writes, ROW_BYTES, bin_dir))
    print("%-11s %-11s %7s %8s %10s %8s %8s %9s  %s" % ("synchronous", "path", "writes", "seconds", "writes/s", "p50 ms", "p99 ms", "CPU/w µs", ""))
    for sync, path, r in rows:
        print("%-11s %-11s %7d %8.2f %10.0f %8.2f %8.2f %9.1f  %s"
              % (sync, path, r["writes"], r["seconds"], r["rate"], r["p50"], r["p99"], r["cpu"] / r["writes"] * 1e6, r["extra"]))
    found = {(y, p): r for y, p, r in rows}
    for sync in ("FULL", "NORMAL"):
        for path, base in (("dropin", "direct"), ("http", "direct"), ("dropin-tx", "direct-tx"), ("dropin-many", "direct-many")):
            if (sync, path) in found:
                print("ratio %s/%s, synchronous=%s: %.2fx"
                      % (path, base, sync, found[sync, path]["rate"] / found[sync, base]["rate"]))
    if reads is None:
        return
    std, mine = reads["sqlite3"], reads["scribe_client.sqlite3"]
    print("reads by primary key, %d processes (best of two runs each): sqlite3 %.0f/s, drop-in %.0f/s (%.2fx; CPU/read %.1f µs vs %.1f µs)"
          % (args.procs, std["rate"], mine["rate"], mine["rate"] / std["rate"],
             std["cpu"] / std["writes"] * 1e6, mine["cpu"] / mine["writes"] * 1e6))


if __name__ == "__main__":
    main()
