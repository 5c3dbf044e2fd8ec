// A fresh automerge-repo client pulls the first N documents of the seeded caseload from the
// reference sync server, started for this pull alone over a copy of the seeded storage.
//
//   node pull.mjs --export DIR --storage DIR --ids FILE --docs N --work DIR [--server-cpu CPU]
//                 [--concurrency N]
//
// The client asks for the documents with repo.find, --concurrency at a time (100 unless told),
// through a byte-counting proxy, with NodeFS storage on the real disk (a phone's store). Done
// when every document is ready with the exported heads, and again once the client's storage
// is flushed. What the client had to do again on the way is counted (see `stallMs`). Prints
// one JSON line.

import fs from "node:fs"
import path from "node:path"
import * as A from "@automerge/automerge"
import { Repo } from "@automerge/automerge-repo"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import { clientAdapter, countingProxy, flags, readJson, sameHeads, sleep, startServer } from "./lib.mjs"

const args = flags(process.argv.slice(2))
const docs = parseInt(args.docs, 10)
// How many finds are in flight at once. Asking for all at once, the reference answers the
// first only after most of the rest (46 s into a 1,000-document pull here), so thousands
// outrun automerge-repo's 60 s request timeout; 100 at a time keeps answers flowing.
const concurrency = parseInt(args.concurrency ?? "100", 10)
const deadlineMs = 30 * 60 * 1000
const manifest = readJson(path.join(args.export, "caseload", "manifest.json")).docs.slice(0, docs)
const ids = readJson(args.ids).slice(0, docs)
if (ids.length !== docs || manifest.length !== docs) throw new Error(`only ${ids.length} documents seeded`)
const floor = manifest.reduce((sum, d) => sum + d.bytes, 0)

fs.rmSync(args.work, { recursive: true, force: true })
const serverDir = path.join(args.work, "server")
const clientDir = path.join(args.work, "client")
fs.mkdirSync(clientDir, { recursive: true })
// The server's storage holds just these documents, as Outpost's server database does.
for (const id of ids) {
  const dir = path.join(id.slice(0, 2), id.slice(2))
  fs.cpSync(path.join(args.storage, dir), path.join(serverDir, dir), { recursive: true })
}

const server = await startServer({
  dataDir: serverDir,
  cpu: args["server-cpu"],
  log: path.join(args.work, "server.log"),
})
const before = server.memory()
const proxy = await countingProxy(server.port)

const started = performance.now()
const elapsed = () => (performance.now() - started) / 1000
const makeRepo = () =>
  new Repo({
    network: [clientAdapter(`ws://127.0.0.1:${proxy.port}`, proxy.counts)],
    storage: new NodeFSStorageAdapter(clientDir),
  })
let repo = makeRepo()
// A handle not answered within automerge-repo's 60 s request timeout, or whose request was
// lost with a dropped connection (the server drops a client that misses its 5 s keep-alive),
// turns unavailable; it still becomes ready if the document arrives later. Each such wait
// counts as a retry. A handle can also break for good (a sync message applied while the
// socket closed leaves it "outdated"): when nothing arrives for `stallMs`, the client starts
// again, as an app restarted by its user would, with a new repo over the same storage, and
// asks for what it still lacks. Each restart counts as a retry too.
const stallMs = 120_000
let unavailable = 0
let restarts = 0
let incomplete = 0
let first
let lastProgress = performance.now()
const done = new Array(docs).fill(false)
const until = async (condition, round) => {
  while (!condition() && !round.aborted) await sleep(200)
}

async function pullOne(i, round) {
  const handle = await repo.find(ids[i], { allowableStates: ["ready", "unavailable"] })
  while (handle.state !== "ready") {
    if (round.aborted) return
    unavailable += 1
    if (unavailable <= 5) console.error(`pull: ${ids[i]} ${handle.state} at ${elapsed().toFixed(1)} s; waiting for it`)
    await handle.whenReady(["ready"]).catch(() => {})
  }
  // Ready means the first sync message applied; wait for the rest if it was not all.
  const complete = () => sameHeads(A.getHeads(handle.doc()), manifest[i].heads)
  if (!complete()) {
    incomplete += 1
    await until(complete, round)
    if (round.aborted) return
  }
  done[i] = true
  lastProgress = performance.now()
  first ??= elapsed()
}

for (;;) {
  const todo = done.flatMap((d, i) => (d ? [] : [i]))
  if (todo.length === 0) break
  const round = { aborted: false }
  let next = 0
  const workers = Promise.all(
    Array.from({ length: Math.min(concurrency, todo.length) }, async () => {
      while (!round.aborted && next < todo.length) await pullOne(todo[next++], round)
    }),
  )
  const outcome = await new Promise(resolve => {
    const watch = setInterval(() => {
      if (elapsed() * 1000 > deadlineMs) {
        clearInterval(watch)
        resolve("deadline")
      } else if (performance.now() - lastProgress > stallMs) {
        clearInterval(watch)
        resolve("stalled")
      }
    }, 1000)
    workers.then(() => {
      clearInterval(watch)
      resolve("done")
    })
  })
  if (outcome === "done") continue
  round.aborted = true
  if (outcome === "deadline") break
  restarts += 1
  console.error(
    `pull: nothing arrived for ${stallMs / 1000} s at ${elapsed().toFixed(1)} s with ` +
      `${done.filter(d => !d).length} documents missing; starting the client again`,
  )
  // A socket still connecting reports its closing as an error event, with nobody listening
  // once the adapter has let go of it.
  for (const adapter of repo.networkSubsystem.adapters) adapter.socket?.on?.("error", () => {})
  await Promise.resolve(repo.shutdown()).catch(() => {})
  repo = makeRepo()
  lastProgress = performance.now()
}
const pulled = done.filter(Boolean).length
if (pulled < docs) console.error(`pull: ${docs - pulled} of ${docs} documents still missing after ${deadlineMs / 1000} s; giving up`)
const ready = elapsed()
const readyBytes = { ...proxy.counts }
const atReady = server.memory()
await Promise.resolve(pulled === docs ? repo.flush() : undefined).catch(() => {})
const flushed = elapsed()
const after = server.memory()
const result = {
  side: "reference",
  job: "pull",
  docs,
  // Fewer than `docs` when the deadline passed first: then the times are the deadline's.
  pulled,
  concurrency,
  seconds: flushed,
  ready_seconds: ready,
  first_seconds: first,
  floor_bytes: floor,
  wire_up: readyBytes.up,
  wire_down: readyBytes.down,
  connections: proxy.counts.connections,
  socket_errors: proxy.counts.socketErrors ?? 0,
  unavailable,
  restarts,
  // Every wait for an unavailable document and every new connection (restarts included).
  retries: unavailable + Math.max(0, proxy.counts.connections - 1),
  incomplete_at_ready: incomplete,
  server_rss_before: before.rss,
  server_peak_rss: Math.max(atReady.peak, after.peak),
  server_rss_after: after.rss,
}
console.error(
  `pull: ${pulled} of ${docs} documents ready at ${ready.toFixed(2)} s (first at ${(first ?? 0).toFixed(2)} s), flushed at ${flushed.toFixed(2)} s; ` +
    `${readyBytes.down} bytes down for a floor of ${floor}; ${unavailable} unavailable, ${restarts} restarts, ${proxy.counts.connections} connections; ` +
    `server RSS ${before.rss} before, peak ${result.server_peak_rss}`,
)
console.log(JSON.stringify(result))
await server.stop()
process.exit(0)
