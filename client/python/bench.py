#!/usr/bin/env python3
"""Write throughput: N Python processes through scribe vs. straight to SQLite.

Each of N processes (default 8) does W single-row inserts of a 100-byte
row, (a) through scribe (this package: HTTP to the arbiter, which commits
in groups) and (b) directly with ``sqlite3`` (one connection per process,
``busy_timeout`` 5000 set first, ``BEGIN IMMEDIATE`` per write, retried on
``database is locked``), on fresh WAL databases in the same run, for
``synchronous`` FULL and NORMAL (for scribe through ``<db>.scribe.conf``
before its arbiter starts). Prints writes/s for each and the ratio
scribe/direct.

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


def body(proc, i):
    head = "p%02d-w%08d-" % (proc, i)
    return head + "x" * (ROW_BYTES - len(head))


def scribe_worker(db, scribe_bin, proc, writes, barrier, out):
    s = Scribe(db, scribe_bin=scribe_bin)
    s.status()  # connected before the clock starts
    lat = []
    barrier.wait()
    start = time.monotonic()
    for i in range(writes):
        t = time.perf_counter()
        s.write(INSERT, [body(proc, i)])
        lat.append(time.perf_counter() - t)
    out.put((start, time.monotonic(), lat, 0))
    s.close()


def direct_worker(db, sync, proc, writes, barrier, out):
    conn = sqlite3.connect(db, timeout=5.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")  # first
    conn.execute("PRAGMA synchronous = %s" % sync)
    retries = 0
    lat = []
    barrier.wait()
    start = time.monotonic()
    for i in range(writes):
        t = time.perf_counter()
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(INSERT, [body(proc, i)])
                conn.execute("COMMIT")
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                retries += 1
                time.sleep(random.uniform(0.0005, 0.002))
        lat.append(time.perf_counter() - t)
    out.put((start, time.monotonic(), lat, retries))
    conn.close()


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
    }


def count(db):
    conn = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5.0)
    conn.execute("PRAGMA busy_timeout = 5000")
    n = conn.execute("SELECT count(*) FROM t").fetchone()[0]
    conn.close()
    return n


def bench_scribe(ctx, dirname, sync, bin_dir, procs, writes):
    db = os.path.join(dirname, "scribe-%s.db" % sync.lower())
    with open(db + ".scribe.conf", "w") as f:
        f.write("synchronous = %s\n" % sync.lower())
    scribe_bin = os.path.join(bin_dir, "scribe")
    s = Scribe(db, scribe_bin=scribe_bin)
    try:
        s.write(SCHEMA)  # auto-starts the arbiter, which reads the conf
        got = s.status()["synchronous"]
        if got != sync.lower():
            raise SystemExit("the arbiter runs with synchronous=%s, not %s" % (got, sync))
        r = run(ctx, scribe_worker, lambda p: (db, scribe_bin), procs, writes)
        st = s.status()
        r["extra"] = "%d commits, mean group %.1f" % (st["commits"], st["mean_group"])
    finally:
        s.close()
        subprocess.run([scribe_bin, "--db", db, "stop", "--grace", "0s"], stdout=subprocess.DEVNULL)
    assert count(db) == procs * writes, "rows missing"
    return r


def bench_direct(ctx, dirname, sync, procs, writes):
    db = os.path.join(dirname, "direct-%s.db" % sync.lower())
    conn = sqlite3.connect(db, timeout=5.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(SCHEMA)
    conn.close()
    r = run(ctx, direct_worker, lambda p: (db, sync), procs, writes)
    r["extra"] = "%d 'locked' retries" % r["retries"]
    assert count(db) == procs * writes, "rows missing"
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default=os.environ.get("SCRIBE_BIN_DIR") or os.path.join(HERE, "..", "..", "target", "release"))
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--writes", type=int, default=1000, help="writes per process")
    ap.add_argument("--dir", default="/tmp", help="where the temp databases go")
    args = ap.parse_args()
    bin_dir = os.path.abspath(args.bin_dir)
    ctx = mp.get_context("spawn")
    dirname = tempfile.mkdtemp(prefix="scbench", dir=args.dir)
    rows = []
    try:
        for sync in ("FULL", "NORMAL"):
            rows.append((sync, "scribe", bench_scribe(ctx, dirname, sync, bin_dir, args.procs, args.writes)))
            rows.append((sync, "direct", bench_direct(ctx, dirname, sync, args.procs, args.writes)))
    finally:
        shutil.rmtree(dirname, ignore_errors=True)
    print("%d processes x %d single-row inserts (%d-byte rows), WAL, binaries from %s"
          % (args.procs, args.writes, ROW_BYTES, bin_dir))
    print("%-11s %-7s %7s %8s %10s %8s %8s  %s" % ("synchronous", "path", "writes", "seconds", "writes/s", "p50 ms", "p99 ms", ""))
    for sync, path, r in rows:
        print("%-11s %-7s %7d %8.2f %10.0f %8.2f %8.2f  %s"
              % (sync, path, r["writes"], r["seconds"], r["rate"], r["p50"], r["p99"], r["extra"]))
    for sync in ("FULL", "NORMAL"):
        s = next(r for y, p, r in rows if y == sync and p == "scribe")
        d = next(r for y, p, r in rows if y == sync and p == "direct")
        print("ratio scribe/direct, synchronous=%s: %.2fx" % (sync, s["rate"] / d["rate"]))


if __name__ == "__main__":
    main()
