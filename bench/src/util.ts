/**
 * Small helpers shared by the benchmarks: a throwaway database, the account events and aggregates they append and
 * load, throughput and latency measurement, and a plain-text table. Benchmarks print; they never assert on time.
 *
 * @since 0.1.0
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Aggregate from "@eventfold/core/Aggregate"
import * as Decider from "@eventfold/core/Decider"
import type * as Errors from "@eventfold/core/Errors"
import type * as NewEvent from "@eventfold/core/NewEvent"
import * as PgDatabase from "@eventfold/postgres/PgDatabase"
import * as PgMigrations from "@eventfold/postgres/PgMigrations"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import pg from "pg"

/**
 * A database created for one benchmark, dropped (forcibly) by `drop`.
 *
 * @since 0.1.0
 * @category models
 */
export interface BenchDatabase {
  readonly url: string
  readonly name: string
  readonly drop: () => Promise<void>
}

const admin = async <A>(serverUrl: string, f: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 5_000 })
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end()
  }
}

/**
 * Creates a fresh database named `${prefix}_<random>` on the server and returns its URL.
 *
 * @since 0.1.0
 * @category constructors
 */
export const createDatabase = async (serverUrl: string, prefix: string): Promise<BenchDatabase> => {
  const name = `${prefix}_${crypto.randomUUID().replace(/-/g, "").slice(0, 12)}`
  await admin(serverUrl, (client) => client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`))
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    name,
    drop: () =>
      admin(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`))
        .then(() => undefined)
  }
}

/**
 * Runs `f` on a fresh database and drops it afterwards, also when `f` fails.
 *
 * @since 0.1.0
 * @category constructors
 */
export const withDatabase = async <A>(
  serverUrl: string,
  prefix: string,
  f: (database: BenchDatabase) => Promise<A>
): Promise<A> => {
  const database = await createDatabase(serverUrl, prefix)
  try {
    return await f(database)
  } finally {
    await database.drop()
  }
}

/**
 * The server's version and commit settings, printed above every table so numbers are never read without them.
 *
 * @since 0.1.0
 * @category utils
 */
export const describeServer = (url: string): Promise<string> =>
  admin(url, async (client) => {
    const result = await client.query<{ version: string; sync: string; fsync: string }>(
      "SELECT current_setting('server_version') AS version, current_setting('synchronous_commit') AS sync, " +
        "current_setting('fsync') AS fsync"
    )
    const row = result.rows[0]
    return row
      ? `PostgreSQL ${row.version}, synchronous_commit=${row.sync}, fsync=${row.fsync}`
      : "PostgreSQL (unknown version)"
  })

/**
 * A deposit to a benchmark account: with `Withdrawn`, the events the benchmarks append, decode and fold.
 *
 * @since 0.3.0
 * @category accounts
 */
export class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", {
  amount: Schema.Number,
  note: Schema.String
}) {}

/**
 * A withdrawal from a benchmark account.
 *
 * @since 0.3.0
 * @category accounts
 */
export class Withdrawn extends Schema.TaggedClass<Withdrawn>()("Withdrawn", {
  amount: Schema.Number,
  note: Schema.String
}) {}

/**
 * Either account event, as an aggregate decodes it (a `Schema.Union` of `TaggedClass`es).
 *
 * @since 0.3.0
 * @category accounts
 */
export const AccountEvent = Schema.Union(Deposited, Withdrawn)

/**
 * @since 0.3.0
 * @category accounts
 */
export type AccountEvent = typeof AccountEvent.Type

/**
 * The only command of the benchmark aggregates: they are loaded, never asked to decide.
 *
 * @since 0.3.0
 * @category accounts
 */
export interface Noop {
  readonly _tag: "Noop"
}

/**
 * The two account aggregates a load benchmark compares, with one stream type and one decider: `replaying` folds every
 * event; `snapshotting` also reads snapshots and writes one every `every` events, only when asked ("manual" mode,
 * `CommandHandler.snapshot`).
 *
 * @since 0.3.0
 * @category accounts
 */
export const accountAggregates = <State, StateEncoded>(options: {
  readonly name: string
  readonly state: Schema.Schema<State, StateEncoded>
  readonly initialState: State
  readonly evolve: (state: State, event: AccountEvent) => State
  readonly every: number
}) => {
  const decider = Decider.make<State, Noop, AccountEvent>({
    initialState: options.initialState,
    evolve: options.evolve,
    decide: () => Effect.succeed([])
  })
  const { name, state } = options
  return {
    replaying: Aggregate.make({ name, decider, events: AccountEvent, state }),
    snapshotting: Aggregate.make({
      name,
      decider,
      events: AccountEvent,
      state,
      snapshot: { every: options.every, schemaVersion: 1, mode: "manual" }
    })
  }
}

/**
 * A throughput measurement: units of work (appends, events) per second over the measured window.
 *
 * @since 0.1.0
 * @category models
 */
export interface Throughput {
  readonly units: number
  readonly seconds: number
  readonly perSecond: number
}

/**
 * How long to warm up and to measure a throughput workload, and with how many concurrent workers.
 *
 * @since 0.1.0
 * @category models
 */
export interface ThroughputOptions {
  readonly workers: number
  readonly warmupMs: number
  readonly durationMs: number
}

const range = (n: number): ReadonlyArray<number> => Array.from({ length: n }, (_, i) => i)

const throughputOf = (units: number, started: number): Throughput => {
  const seconds = (performance.now() - started) / 1000
  return { units, seconds, perSecond: units / seconds }
}

/**
 * Runs `op` in a loop on each worker until the deadline, first for the warm-up, then measured. `op` returns the
 * units of work it did; a worker's own state (its stream and version) lives in `op`'s closure.
 *
 * @since 0.1.0
 * @category measuring
 */
export const throughput = async (
  options: ThroughputOptions,
  op: (worker: number) => Promise<number>
): Promise<Throughput> => {
  const phase = async (ms: number) => {
    const deadline = performance.now() + ms
    const counts = await Promise.all(
      range(options.workers).map(async (worker) => {
        let units = 0
        while (performance.now() < deadline) units += await op(worker)
        return units
      })
    )
    return counts.reduce((a, b) => a + b, 0)
  }
  await phase(options.warmupMs)
  const started = performance.now()
  return throughputOf(await phase(options.durationMs), started)
}

/**
 * `throughput` for Effect code: the workers are fibers of one program, as in an Effect application, so no
 * `runPromise` per operation is counted against the library.
 *
 * @since 0.1.0
 * @category measuring
 */
export const throughputEffect = <E>(
  options: ThroughputOptions,
  op: (worker: number) => Effect.Effect<number, E>
): Effect.Effect<Throughput, E> => {
  const phase = (ms: number) =>
    Effect.suspend(() => {
      const deadline = performance.now() + ms
      return Effect.forEach(
        range(options.workers),
        (worker) =>
          Effect.gen(function*() {
            let units = 0
            while (performance.now() < deadline) units += yield* op(worker)
            return units
          }),
        { concurrency: "unbounded" }
      ).pipe(Effect.map((counts) => counts.reduce((a, b) => a + b, 0)))
    })
  return Effect.gen(function*() {
    yield* phase(options.warmupMs)
    const started = performance.now()
    return throughputOf(yield* phase(options.durationMs), started)
  })
}

/**
 * Median wall time in milliseconds of each function, run interleaved (`warmup` unmeasured rounds, then `runs`
 * measured ones) so that load from elsewhere on the machine hits every contender alike.
 *
 * @since 0.1.0
 * @category measuring
 */
export const medianMs = async (
  options: { readonly warmup: number; readonly runs: number },
  fs: ReadonlyArray<() => Promise<unknown>>
): Promise<ReadonlyArray<number>> => {
  const times = fs.map((): Array<number> => [])
  for (let round = 0; round < options.warmup + options.runs; round++) {
    for (let i = 0; i < fs.length; i++) {
      const started = performance.now()
      await fs[i]!()
      if (round >= options.warmup) times[i]!.push(performance.now() - started)
    }
  }
  return times.map(median)
}

/**
 * The median of some measurements (of their middle two when their number is even).
 *
 * @since 0.3.0
 * @category measuring
 */
export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/**
 * Sums measurements taken in several rounds into one.
 *
 * @since 0.1.0
 * @category measuring
 */
export const combine = (measurements: ReadonlyArray<Throughput>): Throughput => {
  const units = measurements.reduce((sum, m) => sum + m.units, 0)
  const seconds = measurements.reduce((sum, m) => sum + m.seconds, 0)
  return { units, seconds, perSecond: units / seconds }
}

/**
 * A number for a table: thousands separated, at most `digits` decimals.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatNumber = (value: number, digits = 0): string =>
  value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })

/**
 * A plain-text table with left-aligned columns, ready for stdout and for pasting into a README.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatTable = (
  header: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>
): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(" | ")} |`
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n")
}

/**
 * The raw baseline's append lost the optimistic-concurrency race: the stream row was not at the expected version.
 *
 * @since 0.5.0
 * @category raw baseline
 */
export class RawAppendConflict extends Error {
  constructor(readonly streamId: string, readonly expected: number) {
    super(`raw append: conflict on ${streamId} at ${expected}`)
  }
}

/**
 * The classic append from `pg`, the raw baseline of the benchmarks, into eventfold's tables in `schema`: BEGIN;
 * create the stream row (expected version 0) or UPDATE it at the expected version; one multi-row INSERT of the
 * events; COMMIT: 2 statements + BEGIN/COMMIT, 4 round trips. Returns the new version; a stream not at the expected
 * version fails with `RawAppendConflict`.
 *
 * @since 0.5.0
 * @category raw baseline
 */
export const rawAppender = (
  pool: pg.Pool,
  options: { readonly schema: string; readonly tenant: string; readonly streamType: string }
) => {
  const { streamType, tenant } = options
  const streams = `${pg.escapeIdentifier(options.schema)}.streams`
  const events = `${pg.escapeIdentifier(options.schema)}.events`
  const createStream = `INSERT INTO ${streams} (tenant_id, stream_type, stream_id, version) VALUES ($1, $2, $3, $4)
    ON CONFLICT (tenant_id, stream_type, stream_id) DO NOTHING RETURNING version`
  const updateStream = `UPDATE ${streams} SET version = version + $4, updated_at = now()
    WHERE tenant_id = $1 AND stream_type = $2 AND stream_id = $3 AND version = $5 RETURNING version`
  const insertText = new Map<number, string>()
  const insertEvents = (n: number) => {
    const cached = insertText.get(n)
    if (cached) return cached
    const values = Array.from({ length: n }, (_, r) => {
      const p = r * 9
      return `($${p + 1}, $${p + 2}, $${p + 3}, $${p + 4}, $${p + 5}::uuid, $${p + 6}, $${p + 7}::jsonb, $${
        p + 8
      }::jsonb, $${p + 9})`
    })
    const text = `INSERT INTO ${events}
      (tenant_id, stream_type, stream_id, version, event_id, event_type, payload, metadata, correlation_id)
      VALUES ${values.join(", ")}`
    insertText.set(n, text)
    return text
  }
  return async (streamId: string, expected: number, batch: ReadonlyArray<NewEvent.NewEvent>): Promise<number> => {
    const client = await pool.connect()
    try {
      await client.query("BEGIN")
      const locked = expected === 0
        ? await client.query(createStream, [tenant, streamType, streamId, batch.length])
        : await client.query(updateStream, [tenant, streamType, streamId, batch.length, expected])
      if (locked.rowCount !== 1) throw new RawAppendConflict(streamId, expected)
      const params: Array<unknown> = []
      batch.forEach((event, i) => {
        params.push(
          tenant,
          streamType,
          streamId,
          expected + i + 1,
          crypto.randomUUID(),
          event.type,
          JSON.stringify(event.payload),
          JSON.stringify(event.metadata ?? {}),
          event.metadata?.correlationId ?? null
        )
      })
      await client.query(insertEvents(batch.length), params)
      await client.query("COMMIT")
      return expected + batch.length
    } catch (error) {
      await client.query("ROLLBACK")
      throw error
    } finally {
      client.release()
    }
  }
}

/**
 * The columns of an events row as eventfold reads them, for the raw baselines' SELECTs.
 *
 * @since 0.4.0
 * @category constants
 */
export const EVENT_COLUMNS = "global_position, transaction_id, event_id, tenant_id, stream_type, stream_id, version, " +
  "event_type, schema_version, payload, metadata, recorded_at"

/**
 * An events row as a raw baseline reads it from `pg`: trusted, not validated (that is what makes it a baseline).
 *
 * @since 0.4.0
 * @category models
 */
export interface RawEventRow<Payload = Readonly<Record<string, unknown>>> {
  readonly global_position: string
  readonly transaction_id: string
  readonly version: number
  readonly event_type: string
  readonly payload: Payload
}

/**
 * What `withStack` gives a benchmark: a fresh migrated database, eventfold's pool as a runtime, and a raw `pg` pool
 * of the same size on the same database.
 *
 * @since 0.4.0
 * @category models
 */
export interface Stack {
  /** `describeServer` of the database. */
  readonly server: string
  readonly url: string
  readonly runtime: ManagedRuntime.ManagedRuntime<
    PgClient.PgClient | SqlClient.SqlClient,
    Errors.StoreError | Errors.InvalidInput
  >
  readonly pool: pg.Pool
}

/**
 * Runs `f` on a fresh database of the server (`withDatabase`) with eventfold's schema migrated into each of
 * `schemas`, an eventfold pool and a raw `pg` pool of `poolSize` connections each; closes both pools at the end.
 *
 * @since 0.4.0
 * @category setup
 */
export const withStack = <A>(
  serverUrl: string,
  options: { readonly prefix: string; readonly schemas: ReadonlyArray<string>; readonly poolSize: number },
  f: (stack: Stack) => Promise<A>
): Promise<A> =>
  withDatabase(serverUrl, options.prefix, async (database) => {
    const server = await describeServer(database.url)
    for (const schema of options.schemas) {
      await Effect.runPromise(
        PgMigrations.run({ schema }).pipe(Effect.provide(PgDatabase.layer({ url: database.url, maxConnections: 1 })))
      )
    }
    const runtime = ManagedRuntime.make(
      PgDatabase.layer({ url: database.url, maxConnections: options.poolSize, applicationName: "eventfold-bench" })
    )
    const pool = new pg.Pool({
      connectionString: database.url,
      max: options.poolSize,
      connectionTimeoutMillis: 5_000,
      application_name: "raw-bench"
    })
    try {
      return await f({ server, url: database.url, runtime, pool })
    } finally {
      await pool.end()
      await runtime.dispose()
    }
  })
