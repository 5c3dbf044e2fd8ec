// 200 automerge-repo devices each push a day's work (the exported 8 visits and their reviews,
// typed with the same splices as Outpost's `sync-bench load`) to the reference sync server,
// arriving at a steady rate over 30 s (open loop), as Outpost's load test does.
//
//   node days-work.mjs --export DIR --storage DIR --work DIR [--server-cpu CPU] [--seconds S]
//
// Setup (not timed): the server starts over a copy of the seeded caseload's storage; every
// device gets its own repo with NodeFS storage under /dev/shm (Outpost's phones keep their
// stores there too) holding its 16 documents, not yet connected. Timed: device i, at its
// arrival, connects (a new WebSocket) and the repo announces its documents; it is done when
// the server's heads for every one of them, as the server reports them in sync messages, are
// the device's. Latency runs from arrival. Prints one JSON line.

import fs from "node:fs"
import path from "node:path"
import { Repo } from "@automerge/automerge-repo"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import { clientAdapter, countingProxy, flags, percentile, readJson, sameHeads, sleep, startServer } from "./lib.mjs"

const args = flags(process.argv.slice(2))
const seconds = parseFloat(args.seconds ?? "30")
const exported = path.join(args.export, "days-work")
const manifest = readJson(path.join(exported, "manifest.json"))
const devices = manifest.devices.length
const graceMs = 5 * 60 * 1000

fs.rmSync(args.work, { recursive: true, force: true })
const serverDir = path.join(args.work, "server")
fs.cpSync(args.storage, serverDir, { recursive: true })
const shm = fs.existsSync("/dev/shm") ? fs.mkdtempSync("/dev/shm/outpost-compare-") : path.join(args.work, "devices")

const server = await startServer({
  dataDir: serverDir,
  cpu: args["server-cpu"],
  log: path.join(args.work, "server.log"),
})
const proxy = await countingProxy(server.port)

const setupStarted = performance.now()
const phones = []
let pushBytes = 0
for (const [i, device] of manifest.devices.entries()) {
  const repo = new Repo({ network: [], storage: new NodeFSStorageAdapter(path.join(shm, `device-${i}`)), peerId: `device-${i}` })
  const handles = device.docs.map(doc => {
    const binary = fs.readFileSync(path.join(exported, doc.file))
    pushBytes += binary.length
    return repo.import(binary)
  })
  await repo.flush()
  phones.push({ repo, handles })
}
console.error(`days-work: ${devices} devices holding their day's work in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s`)

/** Resolves when the server has reported, for every handle, heads equal to the device's. */
function whenServerHasAll(handles) {
  return Promise.all(
    handles.map(
      handle =>
        new Promise(resolve => {
          const check = ({ heads }) => {
            if (heads && sameHeads(heads, handle.heads())) {
              handle.off("remote-heads", check)
              resolve()
            }
          }
          handle.on("remote-heads", check)
        }),
    ),
  )
}

const before = server.memory()
const interval = (seconds * 1000) / devices
const t0 = performance.now() + 200
const outcomes = await Promise.all(
  phones.map(async (phone, i) => {
    const arrival = t0 + i * interval
    await sleep(Math.max(0, arrival - performance.now()))
    const arrived = performance.now()
    const done = whenServerHasAll(phone.handles)
    phone.repo.networkSubsystem.addNetworkAdapter(clientAdapter(`ws://127.0.0.1:${proxy.port}`, proxy.counts))
    const timeout = sleep(graceMs + seconds * 1000).then(() => "timeout")
    const outcome = await Promise.race([done.then(() => "done"), timeout])
    const finished = performance.now()
    return { i, ok: outcome === "done", latency: (finished - arrived) / 1000, finished }
  }),
)
const after = server.memory()
const completed = outcomes.filter(o => o.ok)
const latencies = completed.map(o => o.latency).sort((a, b) => a - b)
const span = (Math.max(...outcomes.map(o => o.finished)) - t0) / 1000
const chars = manifest.devices.reduce((s, d) => s + d.chars, 0)
const result = {
  side: "reference",
  job: "days-work",
  devices,
  arrival_seconds: seconds,
  completed: completed.length,
  failed: devices - completed.length,
  span_seconds: span,
  throughput: completed.length / span,
  p50_seconds: percentile(latencies, 50),
  p99_seconds: percentile(latencies, 99),
  max_seconds: latencies.at(-1) ?? 0,
  docs_per_device: phones[0].handles.length,
  saved_bytes: pushBytes,
  chars,
  wire_up: proxy.counts.up,
  wire_down: proxy.counts.down,
  connections: proxy.counts.connections,
  socket_errors: proxy.counts.socketErrors ?? 0,
  retries: Math.max(0, proxy.counts.connections - devices),
  server_rss_before: before.rss,
  server_peak_rss: after.peak,
  server_rss_after: after.rss,
}
const window = Math.max(1, Math.floor(devices / 6))
const byArrival = []
for (let i = 0; i < outcomes.length; i += window) {
  const chunk = outcomes.slice(i, i + window).map(o => o.latency).sort((a, b) => a - b)
  byArrival.push(`${percentile(chunk, 50).toFixed(3)} / ${chunk.at(-1).toFixed(3)} s`)
}
console.error(`days-work: latency p50 / max by arrival, ${window} at a time: ${byArrival.join("; ")}`)
console.error(
  `days-work: ${completed.length} of ${devices} done over ${span.toFixed(2)} s; p50 ${result.p50_seconds.toFixed(3)} s, ` +
    `p99 ${result.p99_seconds.toFixed(3)} s; ${proxy.counts.up} bytes up, ${proxy.counts.down} down ` +
    `(${pushBytes} saved bytes pushed); server RSS ${before.rss} before, peak ${after.peak}`,
)
console.log(JSON.stringify(result))
await server.stop()
fs.rmSync(shm, { recursive: true, force: true })
process.exit(0)
