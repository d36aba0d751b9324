/**
 * The cost of per-stream feed order (migration 0005): `append_events` as it is now (a per-stream advisory lock
 * before the transaction takes an id, and a check of the stream's last transaction id) against the same function
 * with that guard taken out, on the same server, tables and pool, in alternating rounds. Both are called straight
 * from `pg`, so only the SQL differs.
 *
 * "before" used to be the 0001 function, which no longer fits the tables since 0007 put the tenant in every key and
 * made it `append_events`' first argument. It is now derived from the current function's text (0007_tenancy.sql), so
 * the tenant keys, `enter_tenant`, the tenant's shared cut-over lock and its block check are the same on both sides,
 * and the guard is taken out as 0001 was written: the stream's advisory lock only for appends that carry ids (none
 * here), no transaction id read, checked or recorded on the stream row. Each edit must match, or the run fails.
 *
 * @since 0.2.0
 */
import * as Tenant from "@eventfold/core/Tenant"
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
  "../../migrations/0007_tenancy.sql"
)

/** The text of `append_events`' `CREATE OR REPLACE FUNCTION` statement in a migration file. */
const appendEventsFunction = (migration: string): string => {
  const start = migration.indexOf("CREATE OR REPLACE FUNCTION append_events(")
  const end = migration.indexOf("\n$$;\n", start)
  if (start < 0 || end < 0) throw new Error(`no append_events function in ${migrationFile}`)
  return migration.slice(start, end + "\n$$;".length)
}

const streamLock = "PERFORM pg_advisory_xact_lock(hashtextextended(p_tenant_id || '/' || p_stream_type || '/' || " +
  "p_stream_id, 7130));"

/** Each edit, with how often its text occurs in the current function: together they take out the 0005 guard. */
const withoutOrderGuard: ReadonlyArray<readonly [from: string, to: string, occurrences: number]> = [
  // 0001 took the stream's lock only for appends that carry ids (a retry must see the first one's rows).
  [`  ${streamLock}`, `  IF p_check_ids THEN\n    ${streamLock}\n  END IF;`, 1],
  // No transaction id read: 'stale' is never returned.
  ["v_xid := pg_current_xact_id_if_assigned();", "v_xid := NULL;", 1],
  // No check of the stream's last transaction id...
  ["\n      WHERE v_xid IS NULL OR s.last_transaction_id IS NULL OR s.last_transaction_id <= v_xid", "", 1],
  ["\n       AND (v_xid IS NULL OR last_transaction_id IS NULL OR last_transaction_id <= v_xid)", "", 2],
  // ...and none recorded.
  [", last_transaction_id = pg_current_xact_id()", "", 3],
  ["version, last_transaction_id)", "version)", 2],
  ["v_count, pg_current_xact_id())", "v_count)", 2]
]

/** The current `append_events` without migration 0005's per-stream order guard, created in `schema`. */
const beforeFunction = (schema: string): string => {
  const current = appendEventsFunction(fs.readFileSync(migrationFile, "utf8"))
  const edited = withoutOrderGuard.reduce((text, [from, to, occurrences]) => {
    const found = text.split(from).length - 1
    if (found !== occurrences) {
      throw new Error(`append_events changed: expected ${occurrences} × ${JSON.stringify(from)}, found ${found}`)
    }
    return text.replaceAll(from, to)
  }, current)
  // SET search_path FROM CURRENT captures the transaction's search_path, as when a migration creates it.
  return `BEGIN; SET LOCAL search_path TO ${pg.escapeIdentifier(schema)}, pg_catalog;\n${edited}\nCOMMIT;`
}

/** One `append_events` call of one event, with the expected version given by `expected` (undefined = Any). */
const appender = (pool: pg.Pool, schema: string) => {
  const text = `SELECT status, stream_version FROM ${pg.escapeIdentifier(schema)}.append_events(
    $1, $2, $3, $4, $5, false, $6::uuid[], $7::text[], $8::integer[], $9::jsonb[], $10::jsonb[], false, false)`
  return async (streamId: string, expected: number | undefined): Promise<number> => {
    const result = await pool.query<{ status: string; stream_version: number }>(text, [
      Tenant.defaultId,
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
      // "before": the same tables with append_events neither locking ahead nor checking the order.
      await pool.query(beforeFunction("before"))
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
          `append_events with per-stream feed order (0005) vs without (the current function without the guard, as ` +
          `0001 was): ${server}; pool ${POOL_SIZE}; ` +
          `${ROUNDS} alternating rounds of 0.4 s warm-up + 1.5 s measured; 1 event per append, from pg`,
          "",
          util.formatTable(["workload", "before (appends/s)", "after (appends/s)", "after / before"], rows)
        ].join("\n")
      )
    } finally {
      await pool.end()
    }
  })
