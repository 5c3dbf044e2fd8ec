// Seeds the reference server's storage with the exported caseload, the way Outpost's bench
// seeds its server: straight into storage, with the server's own automerge-repo and NodeFS
// adapter (the versions the sync server package depends on), one snapshot per exported file.
//
//   node seed.mjs --export DIR --storage DIR --ids FILE
//
// Writes the automerge-repo document ids, in the export's order, to --ids.

import fs from "node:fs"
import path from "node:path"
import { pathToFileURL } from "node:url"
import { flags, here, readJson, sameHeads } from "./lib.mjs"

const args = flags(process.argv.slice(2))
const nested = path.join(here, "node_modules/@automerge/automerge-repo-sync-server/node_modules/@automerge")
const { Repo, generateAutomergeUrl, parseAutomergeUrl } = await import(pathToFileURL(path.join(nested, "automerge-repo/dist/index.js")))
const { NodeFSStorageAdapter } = await import(pathToFileURL(path.join(nested, "automerge-repo-storage-nodefs/dist/index.js")))
// The same Automerge as that repo's: a document belongs to the instance that made it.
const A = await import(pathToFileURL(path.join(nested, "automerge/dist/mjs/entrypoints/fullfat_node.js")))

const caseload = path.join(args.export, "caseload")
const manifest = readJson(path.join(caseload, "manifest.json"))
fs.rmSync(args.storage, { recursive: true, force: true })
fs.mkdirSync(args.storage, { recursive: true })
const repo = new Repo({ network: [], storage: new NodeFSStorageAdapter(args.storage) })

const started = Date.now()
const ids = []
let bytes = 0
let stored = 0
for (const doc of manifest.docs) {
  const binary = fs.readFileSync(path.join(caseload, doc.file))
  bytes += binary.length
  const loaded = A.load(binary)
  const heads = A.getHeads(loaded)
  if (!sameHeads(heads, doc.heads)) {
    throw new Error(`${doc.file}: loads with heads ${heads}, exported with ${doc.heads}`)
  }
  // Saved as the server saves a document it holds whole: one snapshot (its first save of a
  // document id it has no chunks for is a compaction). One at a time: a save during another's
  // compaction would be written as an incremental chunk instead.
  const { documentId } = parseAutomergeUrl(generateAutomergeUrl())
  await repo.storageSubsystem.saveDoc(documentId, loaded)
  stored += A.save(loaded).length
  ids.push(documentId)
}
fs.writeFileSync(args.ids, JSON.stringify(ids))
console.error(
  `seed: ${ids.length} documents (${bytes} saved bytes exported, ${stored} as the reference saves them) into ${args.storage} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
)
process.exit(0)
