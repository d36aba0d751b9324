/**
 * The cost of per-stream feed order (migration 0005): `append_events` as it is now (a per-stream advisory lock
 * before the transaction takes an id, and a check of the stream's last transaction id) against the 0001 function it
 * replaced, on the same server, schema and pool, in alternating rounds. Both are called straight from `pg`, so only
 * the SQL differs.
 *
 * @since 0.2.0
 */
import * as PgDatabase from "@eventfold/postgres/PgDatabase"
import * as PgMigrations from "@eventfold/postgres/PgMigrations"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as url from "node:url"
import pg from "pg"
import * as util from "./util.js"

const POOL_SIZE = 8
const ROUNDS = 3
const options = (workers: number): util.ThroughputOptions => ({ workers, warmupMs: 400, durationMs: 1_500 })

const migrationFile = path.join(
  path.dirname(url.fileURLToPath(import.meta.url)),
  "../../migrations/0001_event_store.sql"
)

/** One `append_events` call of one event, with the expected version given by `expected` (undefined = Any). */
const appender = (pool: pg.Pool, schema: string) => {
  const text = `SELECT status, stream_version FROM ${pg.escapeIdentifier(schema)}.append_events(
    $1, $2, $3, $4, false, $5::uuid[], $6::text[], $7::integer[], $8::jsonb[], $9::jsonb[], false, false)`
  return async (streamId: string, expected: number | undefined): Promise<number> => {
    const result = await pool.query<{ status: string; stream_version: number }>(text, [
      "Account",
      streamId,
      expected === undefined ? "any" : "exact",
      expected ?? 0,
      [crypto.randomUUID()],
      ["Deposited"],
      [1],
      [JSON.stringify({ amount: 1, note: "benchmark event" })],
      [JSON.stringify({ correlationId: "bench" })]
    ])
    const row = result.rows[0]
    if (row?.status !== "ok") throw new Error(`append_events: ${row?.status ?? "no row"} on ${streamId}`)
    return row.stream_version
  }
}

interface Workload {
  readonly name: string
  readonly workers: number
  /** The stream a worker appends to; shared streams are appended with Any. */
  readonly stream: (worker: number) => string
  readonly shared: boolean
}

const workloads: ReadonlyArray<Workload> = [
  { name: "1 writer, own stream (Exact)", workers: 1, stream: () => "solo", shared: false },
  { name: "8 writers, own streams (Exact)", workers: 8, stream: (w) => `own-${w}`, shared: false },
  { name: "8 writers, 2 shared streams (Any)", workers: 8, stream: (w) => `shared-${w % 2}`, shared: true }
]

const measure = (append: ReturnType<typeof appender>, workload: Workload, label: string) => {
  const versions = new Map<string, number>()
  return () =>
    util.throughput(options(workload.workers), async (worker) => {
      const streamId = `${label}-${workload.stream(worker)}`
      const version = await append(streamId, workload.shared ? undefined : versions.get(streamId) ?? 0)
      versions.set(streamId, version)
      return 1
    })
}

/**
 * @since 0.2.0
 */
export const main = (ctx: { readonly serverUrl: string }): Promise<void> =>
  util.withDatabase(ctx.serverUrl, "eventfold_bench_order", async (database) => {
    const server = await util.describeServer(database.url)
    const migrate = (schema: string) =>
      Effect.runPromise(
        PgMigrations.run({ schema }).pipe(Effect.provide(PgDatabase.layer({ url: database.url, maxConnections: 1 })))
      )
    await migrate("after")
    await migrate("before")
    const pool = new pg.Pool({ connectionString: database.url, max: POOL_SIZE, connectionTimeoutMillis: 5_000 })
    // The database is dropped WITH (FORCE) afterwards: an idle client the server ends then is no failure of the run.
    pool.on("error", () => undefined)
    try {
      // "before": the same tables with the 0001 append_events, which neither locks ahead nor checks the order.
      await pool.query(PgMigrations.render(fs.readFileSync(migrationFile, "utf8"), "before"))
      const rows: Array<ReadonlyArray<string>> = []
      for (const workload of workloads) {
        const contenders = [
          measure(appender(pool, "before"), workload, "b"),
          measure(appender(pool, "after"), workload, "a")
        ]
        const results: Array<Array<util.Throughput>> = [[], []]
        for (let round = 0; round < ROUNDS; round++) {
          for (let i = 0; i < contenders.length; i++) results[i]!.push(await contenders[i]!())
        }
        const [before, after] = results.map((r) => util.combine(r).perSecond) as [number, number]
        rows.push([
          workload.name,
          util.formatNumber(before),
          util.formatNumber(after),
          `${(after / before).toFixed(2)}×`
        ])
      }
      console.log(
        [
          `append_events with per-stream feed order (0005) vs without (0001): ${server}; pool ${POOL_SIZE}; ` +
          `${ROUNDS} alternating rounds of 0.4 s warm-up + 1.5 s measured; 1 event per append, from pg`,
          "",
          util.formatTable(["workload", "before (appends/s)", "after (appends/s)", "after / before"], rows)
        ].join("\n")
      )
    } finally {
      await pool.end()
    }
  })
