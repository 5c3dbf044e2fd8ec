// What the reference side's scripts share: starting the reference sync server as its own
// process, reading its memory from /proc, and a TCP proxy that counts the bytes on the wire
// (as Outpost's bench counts them with its fault proxy).

import { spawn } from "node:child_process"
import fs from "node:fs"
import net from "node:net"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

export const here = path.dirname(fileURLToPath(import.meta.url))
export const serverEntry = path.join(here, "node_modules/@automerge/automerge-repo-sync-server/src/index.js")

export function readJson(file) {
  return JSON.parse(fs.readFileSync(file, "utf8"))
}

/** Flags given as `--name value` after the script's name. */
export function flags(argv) {
  const out = {}
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || argv[i + 1] === undefined) {
      throw new Error(`expected --flag value pairs, got ${argv.slice(i).join(" ")}`)
    }
    out[argv[i].slice(2)] = argv[i + 1]
  }
  return out
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/**
 * The reference sync server (its own `npm start`: node src/index.js) over `dataDir`, pinned to
 * `cpu` when given. taskset execs node, so the child's pid is the server's.
 */
export async function startServer({ dataDir: dir, cpu, log }) {
  const dataDir = path.resolve(dir)
  const port = await freePort()
  const command = cpu === undefined ? [process.execPath, serverEntry] : ["taskset", "-c", String(cpu), process.execPath, serverEntry]
  const child = spawn(command[0], command.slice(1), {
    env: { ...process.env, PORT: String(port), DATA_DIR: dataDir },
    cwd: dataDir,
    stdio: ["ignore", "pipe", "pipe"],
  })
  // Never outlive this script, whatever way it ends.
  process.on("exit", () => child.kill("SIGKILL"))
  const logStream = fs.createWriteStream(log)
  child.stderr.pipe(logStream)
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the reference server did not start within 30 s")), 30_000)
    child.once("exit", code => reject(new Error(`the reference server exited (${code}); see ${log}`)))
    child.stdout.on("data", chunk => {
      logStream.write(chunk)
      if (String(chunk).includes("Listening on port")) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
  return {
    port,
    pid: child.pid,
    memory: () => memory(child.pid),
    stop: () =>
      new Promise(resolve => {
        if (child.exitCode !== null) return resolve()
        child.once("exit", () => resolve())
        child.kill("SIGKILL")
      }),
  }
}

/** { peak, rss } resident set in bytes, from /proc/<pid>/status (VmHWM, VmRSS). */
export function memory(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
  const field = name => {
    const line = status.split("\n").find(l => l.startsWith(name))
    if (!line) throw new Error(`no ${name} in /proc/${pid}/status`)
    return parseInt(line.slice(name.length).trim(), 10) * 1024
  }
  return { peak: field("VmHWM:"), rss: field("VmRSS:") }
}

/** Forwards every connection on a loopback port to `targetPort`, counting bytes each way. */
export async function countingProxy(targetPort) {
  const counts = { up: 0, down: 0, connections: 0 }
  const server = net.createServer(client => {
    counts.connections += 1
    const upstream = net.connect(targetPort, "127.0.0.1")
    client.on("data", d => (counts.up += d.length))
    upstream.on("data", d => (counts.down += d.length))
    client.pipe(upstream)
    upstream.pipe(client)
    const close = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on("error", close)
    upstream.on("error", close)
    client.on("close", close)
    upstream.on("close", close)
  })
  await new Promise(resolve => server.listen(0, "127.0.0.1", resolve))
  return { port: server.address().port, counts, close: () => server.close() }
}

/** Nearest-rank percentile of sorted numbers, as Outpost's bench computes it. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return 0
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1]
}

export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

export function sameHeads(a, b) {
  return a.length === b.length && [...a].sort().join() === [...b].sort().join()
}

/**
 * automerge-repo's WebSocket client adapter, except that a socket error other than a refused
 * connection (a "socket hang up" from a server too busy to finish the handshake) is counted in
 * `counts.socketErrors` instead of thrown from the event handler, which ends the process. The
 * adapter's own retry reconnects, as after a refused connection.
 */
export function clientAdapter(url, counts) {
  const adapter = new WebSocketClientAdapter(url)
  adapter.onError = () => {
    counts.socketErrors = (counts.socketErrors ?? 0) + 1
  }
  return adapter
}
