/**
 * The coordinator's side of the worker processes: starts one per system (`child_process.fork` of `worker.ts`, with
 * the coordinator's own Node options, so tsx and the `@eventfold/source` condition carry over), calls operations on
 * it, and stops it.
 *
 * @since 0.5.0
 */
import { fork } from "node:child_process"
import * as path from "node:path"
import * as url from "node:url"
import type * as protocol from "./protocol.js"

const workerPath = path.join(path.dirname(url.fileURLToPath(import.meta.url)), "worker.ts")

/** How long one operation may take before the coordinator gives up on the worker. */
const CALL_TIMEOUT_MS = 180_000

/**
 * A running worker process.
 *
 * @since 0.5.0
 * @category models
 */
export interface Worker {
  readonly name: protocol.SystemName
  /** Whether the system has a live consumer (`live`). */
  readonly live: boolean
  readonly call: <K extends protocol.Operation>(op: K, spec: protocol.SpecOf<K>) => Promise<protocol.ResultOf<K>>
  /** Asks the worker to release its pools and exit; kills it if it has not after 10 s. */
  readonly close: () => Promise<void>
}

const isReply = (u: unknown): u is protocol.Reply =>
  typeof u === "object" && u !== null && "kind" in u &&
  (u.kind === "ready" || u.kind === "failed" || u.kind === "reply")

/**
 * Starts the worker of `name` on the database at `databaseUrl` and waits until it is ready (its schema migrated).
 *
 * @since 0.5.0
 * @category constructors
 */
export const spawn = (name: protocol.SystemName, databaseUrl: string): Promise<Worker> =>
  new Promise((resolve, reject) => {
    const child = fork(workerPath, [name, databaseUrl], { serialization: "advanced" })
    const pending = new Map<
      number,
      { readonly resolve: (value: unknown) => void; readonly reject: (e: Error) => void }
    >()
    let nextId = 0
    let exited = false
    let started = false
    const exit = new Promise<void>((done) =>
      child.once("exit", (code, signal) => {
        exited = true
        const error = new Error(`${name} worker exited (code ${code}, signal ${signal})`)
        for (const p of pending.values()) p.reject(error)
        pending.clear()
        if (!started) reject(error)
        done()
      })
    )

    const request = (message: protocol.Request): Promise<unknown> =>
      new Promise((resolveCall, rejectCall) => {
        if (exited) return rejectCall(new Error(`${name} worker is not running`))
        const timer = setTimeout(() => {
          pending.delete(message.id)
          rejectCall(new Error(`${name} worker: ${message.op} timed out after ${CALL_TIMEOUT_MS / 1000} s`))
        }, CALL_TIMEOUT_MS)
        pending.set(message.id, {
          resolve: (value) => {
            clearTimeout(timer)
            resolveCall(value)
          },
          reject: (error) => {
            clearTimeout(timer)
            rejectCall(error)
          }
        })
        child.send(message)
      })

    const close = async () => {
      if (exited) return
      const stopped = Promise.race([
        exit.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))
      ])
      await request({ id: nextId++, op: "close" }).catch(() => undefined)
      if (!(await stopped)) {
        child.kill("SIGKILL")
        await exit
      }
    }

    child.on("message", (message: unknown) => {
      if (!isReply(message)) return
      switch (message.kind) {
        case "ready": {
          started = true
          resolve({
            name,
            live: message.live,
            // The worker answers each operation with that operation's result (see worker.ts).
            call: (op, spec) => request({ id: nextId++, op, spec }) as Promise<protocol.ResultOf<typeof op>>,
            close
          })
          return
        }
        case "failed": {
          started = true
          reject(new Error(`${name} worker failed to start: ${message.error}`))
          child.kill("SIGKILL")
          return
        }
        case "reply": {
          const p = pending.get(message.id)
          if (!p) return
          pending.delete(message.id)
          if (message.ok) p.resolve(message.value)
          else p.reject(new Error(`${name} worker: ${message.error}`))
        }
      }
    })
  })
