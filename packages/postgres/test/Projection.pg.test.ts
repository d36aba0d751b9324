// Transactional projections across real processes: each event lands in the read model exactly once, while two
// processes compete for it, when the owner is SIGKILLed, and when a process dies in the middle of a batch.
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { EventStore } from "@eventfold/core"
import { PgDatabase, PgEventStore, PgTest } from "@eventfold/postgres"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const fixture = fileURLToPath(new URL("./fixtures/projectionWorker.ts", import.meta.url))
const repoRoot = path.resolve(path.dirname(fixture), "../../../..")
const SUBSCRIPTION = "rm-applied"

interface Worker {
  readonly owner: string
  readonly child: ChildProcess
  readonly phases: Array<string>
  readonly stderr: Array<string>
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

const spawnWorker = (
  url: string,
  options: {
    readonly owner: string
    readonly leaseMs: number
    readonly batchSize: number
    readonly crashAfter?: number
  }
): Effect.Effect<Worker, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync((): Worker => {
      const child = spawn(process.execPath, ["--import", "tsx", fixture], {
        cwd: repoRoot,
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          ...process.env,
          DATABASE_URL: url,
          SUBSCRIPTION_ID: SUBSCRIPTION,
          OWNER: options.owner,
          LEASE_MS: String(options.leaseMs),
          BATCH_SIZE: String(options.batchSize),
          CRASH_AFTER: String(options.crashAfter ?? 0)
        }
      })
      const phases: Array<string> = []
      const stderr: Array<string> = []
      let buffer = ""
      child.stdout!.on("data", (chunk: Buffer) => {
        buffer += chunk.toString("utf8")
        const lines = buffer.split("\n")
        buffer = lines.pop() ?? ""
        for (const line of lines) {
          if (line.trim()) phases.push((JSON.parse(line) as { readonly phase: string }).phase)
        }
      })
      child.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk.toString("utf8")))
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.once("exit", (code, signal) => resolve({ code, signal }))
      )
      return { owner: options.owner, child, phases, stderr, exited }
    }),
    (worker) =>
      Effect.promise(() => {
        if (worker.child.exitCode !== null || worker.child.signalCode !== null) return Promise.resolve()
        worker.child.kill("SIGKILL")
        return worker.exited.then(() => undefined)
      })
  )

/**
 * A fresh, migrated database with a read-model table, created by its owner; `f` gets the least-privilege role's URL
 * for the child processes and runs as that role.
 */
const withDatabase = <A, E>(
  f: (url: string) => Effect.Effect<A, E, EventStore.EventStore | SqlClient.SqlClient | Scope.Scope>
) =>
  Effect.scoped(Effect.gen(function*() {
    const { adminUrl, url } = yield* PgTest.freshDatabase()
    yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql`CREATE TABLE rm_applied (
        event_id uuid PRIMARY KEY,
        n integer NOT NULL UNIQUE,
        owner text NOT NULL,
        applied_count integer NOT NULL
      )`).pipe(Effect.provide(PgDatabase.layer({ url: adminUrl, maxConnections: 1 })))
    return yield* Effect.provide(f(url), PgEventStore.layer()).pipe(
      Effect.provide(PgDatabase.layer({ url, maxConnections: 8 }))
    )
  }))

const appendNumbered = (from: number, count: number) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    Effect.forEach(
      Array.from({ length: count }, (_, i) => from + i),
      (n) =>
        store.append({ streamType: "Item", streamId: `item-${n % 7}`, events: [{ type: "Added", payload: { n } }] }),
      { discard: true }
    ))

interface AppliedRow {
  readonly n: number
  readonly owner: string
  readonly applied_count: number
}

const applied = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql<AppliedRow>`SELECT n, owner, applied_count FROM rm_applied ORDER BY n`
)

const appliedCount = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => Effect.map(sql<{ c: number }>`SELECT count(*)::int AS c FROM rm_applied`, (rows) => rows[0]!.c)
)

const checkpointOwner = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    Effect.map(
      sql<{ owner: string | null }>`SELECT owner FROM eventfold.checkpoints WHERE subscription_id = ${SUBSCRIPTION}`,
      (rows) => rows[0]?.owner ?? null
    )
)

const waitUntil = <E, R>(
  check: Effect.Effect<boolean, E, R>,
  what: string,
  timeout: Duration.DurationInput = "60 seconds"
) =>
  check.pipe(
    Effect.filterOrFail((ok) => ok, () => `not yet: ${what}`),
    Effect.retry({ schedule: Schedule.spaced("50 millis"), while: (e) => typeof e === "string" }),
    Effect.timeoutFail({ duration: timeout, onTimeout: () => `timed out waiting for ${what}` })
  )

const assertExactlyOnce = (rows: ReadonlyArray<AppliedRow>, total: number) => {
  assert.deepStrictEqual(rows.map((r) => r.n), Array.from({ length: total }, (_, i) => i + 1))
  const doubles = rows.filter((r) => r.applied_count !== 1)
  assert.deepStrictEqual(doubles, [], "events applied more than once")
}

describe(`PgProjection across processes (${PgTest.serverLabel()})`, () => {
  it.live(
    "two processes run the same projection: one owns it, each event is applied exactly once",
    () =>
      withDatabase((url) =>
        Effect.gen(function*() {
          yield* appendNumbered(1, 200)
          // A lease far longer than a renewal can be late on a loaded machine: this test needs no takeover.
          const w1 = yield* spawnWorker(url, { owner: "w1", leaseMs: 10_000, batchSize: 50 })
          const w2 = yield* spawnWorker(url, { owner: "w2", leaseMs: 10_000, batchSize: 50 })
          // Appends race with both processes starting, catching up and going live.
          yield* appendNumbered(201, 300)
          yield* waitUntil(Effect.map(appliedCount, (c) => c >= 500), "500 events applied")
          yield* waitUntil(
            Effect.sync(() => [w1, w2].every((w) => w.phases.length > 0)),
            "both processes report a phase"
          )
          // Give a second owner (if the lease were broken) time to apply events again.
          yield* Effect.sleep("1500 millis")
          assertExactlyOnce(yield* applied, 500)
          const lastPhases = [w1, w2].map((w) => w.phases[w.phases.length - 1]).sort()
          assert.deepStrictEqual(lastPhases, ["live", "standby"], `phases: ${w1.phases} / ${w2.phases}`)
          const owner = yield* checkpointOwner
          const live = w1.phases[w1.phases.length - 1] === "live" ? "w1" : "w2"
          assert.strictEqual(owner, live)
          const owners = new Set((yield* applied).map((r) => r.owner))
          assert.deepStrictEqual([...owners], [live])
        })
      ),
    120_000
  )

  it.live(
    "the owning process is SIGKILLed: the other takes over within the lease bound, no gap, no double apply",
    () =>
      withDatabase((url) =>
        Effect.gen(function*() {
          yield* appendNumbered(1, 200)
          const w1 = yield* spawnWorker(url, { owner: "w1", leaseMs: 1_500, batchSize: 25 })
          yield* waitUntil(Effect.map(checkpointOwner, (o) => o === "w1"), "w1 owns the projection")
          const w2 = yield* spawnWorker(url, { owner: "w2", leaseMs: 1_500, batchSize: 25 })
          yield* waitUntil(Effect.sync(() => w2.phases.includes("standby")), "w2 on standby")
          // Live appends race with w1 up to the kill; the last 200 are appended only after it, so w2 has events that
          // w1 cannot have applied however fast this machine is.
          const appends = yield* Effect.fork(appendNumbered(201, 200))
          yield* waitUntil(Effect.map(appliedCount, (c) => c >= 250), "w1 applying live appends")
          w1.child.kill("SIGKILL")
          const killed = yield* Effect.promise(() => w1.exited)
          assert.strictEqual(killed.signal, "SIGKILL")
          const killedAt = Date.now()
          yield* waitUntil(Effect.map(checkpointOwner, (o) => o === "w2"), "w2 takes over", "20 seconds")
          const takeoverMs = Date.now() - killedAt
          // Bound: the lease (1.5 s) plus one standby claim interval (0.5 s), with slack for a loaded machine.
          assert.isBelow(takeoverMs, 10_000)
          yield* Fiber.join(appends)
          yield* appendNumbered(401, 200)
          yield* waitUntil(Effect.map(appliedCount, (c) => c >= 600), "600 events applied")
          yield* Effect.sleep("1 second")
          const rows = yield* applied
          assertExactlyOnce(rows, 600)
          assert.isAbove(rows.filter((r) => r.owner === "w1").length, 0)
          assert.isAbove(rows.filter((r) => r.owner === "w2").length, 0)
          assert.strictEqual(w2.phases[w2.phases.length - 1], "live")
        })
      ),
    120_000
  )

  it.live(
    "a process killed in the middle of a batch transaction leaves no partial batch and no double apply",
    () =>
      withDatabase((url) =>
        Effect.gen(function*() {
          yield* appendNumbered(1, 500)
          // Pages of 50: two pages commit, the third dies at its 30th event, inside its transaction.
          const w1 = yield* spawnWorker(url, { owner: "w1", leaseMs: 1_500, batchSize: 50, crashAfter: 130 })
          const crashed = yield* Effect.promise(() => w1.exited)
          assert.strictEqual(crashed.signal, "SIGKILL", w1.stderr.join(""))
          const rows = yield* applied
          assert.deepStrictEqual(rows.map((r) => r.n), Array.from({ length: 100 }, (_, i) => i + 1))
          const sql = yield* SqlClient.SqlClient
          const [hundredth] = yield* sql<{ transaction_id: string; global_position: string }>`
          SELECT e.transaction_id::text, e.global_position::text FROM eventfold.events e
          WHERE (e.payload ->> 'n')::int = 100`
          const [stored] = yield* sql<{ transaction_id: string; global_position: string }>`
          SELECT transaction_id::text, global_position::text FROM eventfold.checkpoints
          WHERE subscription_id = ${SUBSCRIPTION}`
          assert.deepStrictEqual(stored, hundredth)

          const w2 = yield* spawnWorker(url, { owner: "w2", leaseMs: 1_500, batchSize: 50 })
          yield* waitUntil(Effect.map(appliedCount, (c) => c >= 500), "w2 finishes the projection")
          yield* Effect.sleep("500 millis")
          const all = yield* applied
          assertExactlyOnce(all, 500)
          assert.deepStrictEqual(
            all.filter((r) => r.owner === "w2").map((r) => r.n),
            Array.from({ length: 400 }, (_, i) => i + 101)
          )
          assert.isAtLeast(w2.phases.length, 1)
        })
      ),
    120_000
  )
})
