// Writing to a scribe database from Node with nothing but `node:http`:
// the arbiter serves HTTP/1.1 + JSON on the Unix socket <db>.scribe.http.sock.
//
//   node scribe.mjs /path/to/app.db      (an arbiter must be running:
//                                          `scribe --db /path/to/app.db start`)
import http from "node:http";
import { randomUUID } from "node:crypto";
import { isAbsolute, join } from "node:path";

// The socket path, as protocol/src/paths.rs resolves it (for paths
// without `.`/`..` components): beside the database, or, when that is
// longer than 107 bytes, scribe-<FNV-1a 64 of the path>.http.sock under
// $XDG_RUNTIME_DIR (else /tmp).
function httpSocket(db) {
  const abs = isAbsolute(db) ? db : join(process.cwd(), db);
  const beside = `${abs}.scribe.http.sock`;
  if (Buffer.byteLength(beside) <= 107) return beside;
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(abs)) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  const name = `scribe-${h.toString(16).padStart(16, "0")}.http.sock`;
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg && Buffer.byteLength(join(xdg, name)) <= 107) return join(xdg, name);
  return join("/tmp", name);
}

const socketPath = httpSocket(process.argv[2] ?? process.env.SCRIBE_DB ?? "app.db");

// One request; resolves to { status, body } (body parsed from JSON).
function call(method, path, payload) {
  return new Promise((resolve, reject) => {
    const data = payload === undefined ? undefined : JSON.stringify(payload);
    const req = http.request(
      { socketPath, path, method, headers: data ? { "content-type": "application/json" } : {} },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (text += c));
        // JSON.parse rounds integers past 2^53 (rowids, counters): read
        // such a column as text (CAST(x AS TEXT)) or use a parser that
        // keeps them; see the README's HTTP section.
        res.on("end", () => resolve({ status: res.statusCode, body: text ? JSON.parse(text) : null }));
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

// A write: one atomic batch with an idempotency key (resending the same key
// returns the stored receipt, so a retry after a lost answer is safe).
async function write(statements, key = `node-${randomUUID()}`) {
  const { status, body } = await call("POST", "/v1/write", { statements, key });
  if (status !== 200) {
    // The answer's fields ride along (category, statement, sqlite_code…);
    // the message keeps the status and the category in front.
    const { message, ...fields } = body;
    throw Object.assign(new Error(`${status} ${body.category}: ${message}`), fields, { status });
  }
  return body;
}

// A table of its own: the README's quick start made `notes` with other columns.
await write([{ sql: "CREATE TABLE IF NOT EXISTS node_notes(id INTEGER PRIMARY KEY, body TEXT, raw BLOB)" }]);
const key = `node-${randomUUID()}`;
const batch = [
  {
    sql: "INSERT INTO node_notes(body, raw) VALUES (?, ?) RETURNING id, raw",
    params: ["hello from node", { $blob: Buffer.from([0, 1, 255]).toString("base64") }],
  },
];
const receipt = await write(batch, key);
console.log("receipt:", JSON.stringify(receipt));
const again = await write(batch, key);
if (!again.replayed || again.seq !== receipt.seq) throw new Error("the same key must replay the receipt");
console.log(`replayed with the same key: seq ${again.seq}`);

try {
  await write([{ sql: "BEGIN" }]);
  throw new Error("BEGIN must be refused");
} catch (e) {
  if (e.category !== "refused") throw e;
  console.log(`refused as expected: ${e.message}`);
}

const status = await call("GET", "/v1/status");
if (status.status !== 200) throw new Error(`status: ${status.status}`);
console.log(`status: pid ${status.body.pid}, seq ${status.body.seq}, commits ${status.body.commits}`);
