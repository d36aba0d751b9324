/**
 * The entry of a comparison worker process: `worker.ts <system> <database url>`. Builds that one system (importing
 * only its own library), answers `ready`, then serves the coordinator's requests one at a time until `close`.
 *
 * @since 0.5.0
 */
import type * as protocol from "./protocol.js"

const systems: Record<protocol.SystemName, (url: string) => Promise<protocol.System>> = {
  eventfold: (url) => import("./eventfold.js").then((m) => m.make(url)),
  raw: (url) => import("./raw.js").then((m) => m.make(url)),
  emmett: (url) => import("./emmett.js").then((m) => m.make(url))
}

const isSystemName = (s: string | undefined): s is protocol.SystemName =>
  s === "eventfold" || s === "raw" || s === "emmett"

const operations: ReadonlyArray<string> = ["append", "contention", "seedStream", "fold", "seedFeed", "feed", "live"]

const isRequest = (u: unknown): u is protocol.Request =>
  typeof u === "object" && u !== null && "id" in u && typeof u.id === "number" && "op" in u &&
  typeof u.op === "string" && (u.op === "close" || operations.includes(u.op))

const send = (reply: protocol.Reply): Promise<void> =>
  new Promise((resolve) => {
    if (!process.send) return resolve()
    process.send(reply, undefined, undefined, () => resolve())
  })

const describe = (error: unknown): string =>
  error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ""}` : String(error)

/** Runs one operation. The coordinator sends each operation the spec its signature asks for (see `protocol.ts`). */
const invoke = (system: protocol.System, op: protocol.Operation, spec: unknown): Promise<unknown> => {
  const f: ((spec: never) => Promise<unknown>) | undefined = system[op]
  if (!f) return Promise.reject(new Error(`${op} is not supported by this system`))
  return (f as (spec: unknown) => Promise<unknown>)(spec)
}

const main = async () => {
  const [name, url] = process.argv.slice(2)
  if (!isSystemName(name) || !url) throw new Error(`usage: worker.ts <eventfold|raw|emmett> <url>, got ${name}`)
  const system = await systems[name](url)
  // Requests are served one at a time, in order: a workload never overlaps another in the same process.
  let queue = Promise.resolve()
  process.on("message", (message: unknown) => {
    if (!isRequest(message)) return
    queue = queue.then(async () => {
      if (message.op === "close") {
        await system.close().catch(() => undefined)
        await send({ kind: "reply", id: message.id, ok: true, value: null })
        process.exit(0)
      }
      try {
        const value = await invoke(system, message.op, message.spec)
        await send({ kind: "reply", id: message.id, ok: true, value })
      } catch (error) {
        await send({ kind: "reply", id: message.id, ok: false, error: describe(error) })
      }
    })
  })
  // Without the coordinator there is nothing left to do.
  process.on("disconnect", () => process.exit(1))
  await send({ kind: "ready", live: system.live !== undefined })
}

main().catch(async (error) => {
  await send({ kind: "failed", error: describe(error) })
  process.exit(1)
})
