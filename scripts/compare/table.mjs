// Prints the side-by-side table from the JSON lines both sides wrote (and the Markdown row of
// Outpost's `sync-bench load`, read by its column names).
//
//   node table.mjs --results FILE --load FILE

import fs from "node:fs"
import { flags } from "./lib.mjs"

const args = flags(process.argv.slice(2))
const results = fs
  .readFileSync(args.results, "utf8")
  .split("\n")
  .filter(l => l.startsWith("{"))
  .map(l => JSON.parse(l))
const find = (side, job, docs) => results.find(r => r.side === side && r.job === job && (docs === undefined || r.docs === docs))

/** Outpost's load row: { span, p50, p99, max, peak, completed } from its Markdown table. */
function loadRow(file) {
  const rows = fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(l => l.startsWith("|") && !l.startsWith("|---"))
    .map(l => l.split("|").slice(1, -1).map(c => c.trim()))
  const [header, row] = [rows[0], rows.at(-1)]
  if (!header || rows.length < 2) throw new Error(`no load row in ${file}`)
  const cell = name => {
    const i = header.findIndex(h => h.includes(name))
    if (i < 0) throw new Error(`no column "${name}" in ${file}`)
    return row[i].replaceAll("*", "")
  }
  const duration = text => {
    const m = /([\d.,]+)\s*(ms|s)\b/.exec(text)
    if (!m) throw new Error(`no duration in "${text}"`)
    const n = parseFloat(m[1].replaceAll(",", ""))
    return m[2] === "ms" ? n / 1000 : n
  }
  const [p50, p99, max] = cell("latency").split("/").map(duration)
  const peak = /([\d.]+)\s*MiB/.exec(cell("peak RSS"))
  return {
    span_seconds: duration(cell("throughput").split("over")[1]),
    p50_seconds: p50,
    p99_seconds: p99,
    max_seconds: max,
    server_peak_rss: parseFloat(peak[1]) * 1024 * 1024,
    completed: parseInt(cell("completed"), 10),
  }
}

const secs = s => (s === undefined ? "—" : s < 1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(2)} s`)
const grouped = n => Math.round(n).toLocaleString("en-GB")
const mib = b => `${(b / 1024 / 1024).toFixed(1)} MiB`
const times = (ref, ours) => (ours > 0 ? `**${(ref / ours).toFixed(1)}x**` : ref > 0 ? "∞" : "—")
const ahead = (ours, ref) => (ours < ref ? "yes" : "**no**")
const aheadOrEqual = (ours, ref) => (ours <= ref ? (ours === ref ? "level" : "yes") : "**no**")

const lines = [
  "| job | figure | Outpost | reference | reference / Outpost | Outpost ahead |",
  "|---|---|---|---|---|---|",
]
const row = (job, figure, ours, ref, ratio, verdict) => lines.push(`| ${job} | ${figure} | ${ours} | ${ref} | ${ratio} | ${verdict} |`)

for (const docs of [...new Set(results.filter(r => r.job === "pull").map(r => r.docs))].sort((a, b) => a - b)) {
  const o = find("outpost", "pull", docs)
  const r = find("reference", "pull", docs)
  if (!o || !r) throw new Error(`pull of ${docs}: missing ${o ? "reference" : "Outpost"} result`)
  const job = `fresh device pulls ${grouped(docs)} documents`
  // A reference pull stopped by its deadline: its figures are what it had reached by then.
  const unfinished = r.pulled !== undefined && r.pulled < r.docs
  const partial = unfinished ? ` (**${grouped(r.pulled)} of ${grouped(r.docs)} by then**)` : ""
  row(
    job,
    "time until every document is stored, complete",
    secs(o.seconds),
    unfinished
      ? `**not finished** after ${secs(r.ready_seconds)}: ${grouped(r.pulled)} of ${grouped(r.docs)} (${r.concurrency} finds at a time)`
      : `${secs(r.seconds)} (ready ${secs(r.ready_seconds)}; ${r.concurrency} finds at a time)`,
    unfinished ? `> ${times(r.ready_seconds, o.seconds).replaceAll("*", "")}` : times(r.seconds, o.seconds),
    ahead(o.seconds, r.seconds),
  )
  row(job, "the same, Outpost's every document also loaded and verified", secs(o.verified_seconds), secs(r.seconds), times(r.seconds, o.verified_seconds), ahead(o.verified_seconds, r.seconds))
  const oBytes = o.wire_down + o.wire_up
  const rBytes = r.wire_down == null ? NaN : r.wire_down + r.wire_up
  const recorded = !Number.isNaN(rBytes)
  row(
    job,
    `bytes on the wire, both ways (saved bytes ${grouped(o.floor_bytes)})`,
    `${grouped(oBytes)} (${(oBytes / o.floor_bytes).toFixed(2)}x saved)`,
    recorded ? `${grouped(rBytes)} (${(rBytes / r.floor_bytes).toFixed(2)}x saved)${partial}` : "not recorded",
    recorded ? times(rBytes, oBytes) : "—",
    recorded ? ahead(oBytes, rBytes) : "—",
  )
  // Outpost sends each document's index rows beside it (the device lists and searches at
  // once, without loading documents); the reference has nothing like them.
  const oDocs = oBytes - o.index_bytes
  row(
    job,
    `the same less Outpost's index rows (${grouped(o.index_bytes)} bytes)`,
    `${grouped(oDocs)} (${(oDocs / o.floor_bytes).toFixed(2)}x saved)`,
    recorded ? `${grouped(rBytes)}` : "not recorded",
    recorded ? times(rBytes, oDocs) : "—",
    recorded ? ahead(oDocs, rBytes) : "—",
  )
  row(job, "retries needed", String(o.retries), String(r.retries), "—", aheadOrEqual(o.retries, r.retries))
  row(job, "server peak memory (VmHWM)", mib(o.server_peak_rss), `${mib(r.server_peak_rss)}${partial}`, times(r.server_peak_rss, o.server_peak_rss), ahead(o.server_peak_rss, r.server_peak_rss))
}

const r = find("reference", "days-work")
if (r && args.load) {
  const o = loadRow(args.load)
  const job = `${r.devices} devices push a day's work, arriving over ${r.arrival_seconds} s`
  row(job, "completed", String(o.completed), String(r.completed), "—", aheadOrEqual(r.completed - o.completed, 0))
  row(job, "time, first arrival to last device done", secs(o.span_seconds), secs(r.span_seconds), times(r.span_seconds, o.span_seconds), ahead(o.span_seconds, r.span_seconds))
  row(job, "latency p50 per device", secs(o.p50_seconds), secs(r.p50_seconds), times(r.p50_seconds, o.p50_seconds), ahead(o.p50_seconds, r.p50_seconds))
  row(job, "latency p99 per device", secs(o.p99_seconds), secs(r.p99_seconds), times(r.p99_seconds, o.p99_seconds), ahead(o.p99_seconds, r.p99_seconds))
  row(job, "server peak memory (VmHWM)", mib(o.server_peak_rss), mib(r.server_peak_rss), times(r.server_peak_rss, o.server_peak_rss), ahead(o.server_peak_rss, r.server_peak_rss))
}
console.log(lines.join("\n"))
