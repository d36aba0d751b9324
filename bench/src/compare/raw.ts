/**
 * The raw `pg` baseline of the comparison: `pg.Pool({ max: 10 })` and plain SQL into eventfold's own tables (migrated
 * by `PgMigrations`), in the default tenant. Appends are the classic four round trips (`util.rawAppender`); a
 * command reads and folds the stream, then appends at the version it read, retrying a conflict; reads select the
 * columns eventfold reads.
 *
 * @since 0.5.0
 */
import * as PgDatabase from "@eventfold/postgres/PgDatabase"
import * as PgMigrations from "@eventfold/postgres/PgMigrations"
import * as Effect from "effect/Effect"
import pg from "pg"
import * as util from "../util.js"
import * as domain from "./domain.js"
import type * as protocol from "./protocol.js"

const SCHEMA = "eventfold"
const COLUMNS = util.EVENT_COLUMNS

type RawRow = util.RawEventRow

/**
 * Migrates eventfold's schema into the database and opens the pool.
 *
 * @since 0.5.0
 * @category constructors
 */
export const make = async (url: string): Promise<protocol.System> => {
  await Effect.runPromise(
    PgMigrations.run({ schema: SCHEMA }).pipe(
      Effect.provide(PgDatabase.layer({ url, maxConnections: 1 }))
    )
  )
  const pool = new pg.Pool({
    connectionString: url,
    max: domain.POOL_SIZE,
    connectionTimeoutMillis: 5_000,
    application_name: "compare-raw"
  })
  const append = util.rawAppender(pool, { schema: SCHEMA, tenant: domain.TENANT, streamType: domain.STREAM_TYPE })
  const selectStream = `SELECT ${COLUMNS} FROM ${pg.escapeIdentifier(SCHEMA)}.events
    WHERE tenant_id = $1 AND stream_type = $2 AND stream_id = $3 ORDER BY version`
  const readStream = (streamId: string) =>
    pool.query<RawRow>(selectStream, [domain.TENANT, domain.STREAM_TYPE, streamId]).then((result) => result.rows)
  const feedPage = (limit: number) =>
    `SELECT ${COLUMNS} FROM ${pg.escapeIdentifier(SCHEMA)}.events
      WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
        AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
      ORDER BY transaction_id, global_position
      LIMIT ${limit}`

  const foldUntyped = (rows: ReadonlyArray<RawRow>): domain.Balance => {
    let state = domain.initialBalance
    for (const row of rows) state = domain.evolveBalance(state, row.event_type, domain.amountOf(row.payload))
    return state
  }
  const foldTyped = (rows: ReadonlyArray<RawRow>): domain.Balance => {
    let state = domain.initialBalance
    for (const row of rows) {
      const event = domain.decodeAccountEvent({ ...row.payload, _tag: row.event_type })
      state = domain.evolveBalance(state, event._tag, event.amount)
    }
    return state
  }

  return {
    append: (spec) => {
      const batch = domain.newEvents(spec.batchSize)
      const versions = new Array<number>(spec.workers).fill(0)
      return domain.phased(spec, async (worker) => {
        versions[worker] = await append(`${spec.label}-${worker}`, versions[worker]!, batch)
        return spec.batchSize
      })
    },

    contention: async (spec) => {
      const deposit = domain.newEvents(1)
      let conflicts = 0
      let failures = 0
      let succeeded = 0
      const command = async (measured: boolean): Promise<number> => {
        for (let attempt = 0;; attempt++) {
          const rows = await readStream(spec.streamId)
          foldUntyped(rows) // the decision needs the state; a deposit is always accepted
          const version = rows.length === 0 ? 0 : rows[rows.length - 1]!.version
          try {
            await append(spec.streamId, version, deposit)
            succeeded++
            return 1
          } catch (error) {
            if (!(error instanceof util.RawAppendConflict)) throw error
            if (measured) conflicts++
            if (attempt >= domain.MAX_RETRIES) {
              if (measured) failures++
              return 0
            }
            await domain.sleep(domain.retryDelayMs(attempt + 1))
          }
        }
      }
      const throughput = await domain.phased(
        { workers: spec.writers, warmupMs: spec.warmupMs, durationMs: spec.durationMs },
        (_, measured) => command(measured)
      )
      const rows = await readStream(spec.streamId)
      return { throughput, conflicts, failures, succeeded, finalVersion: rows[rows.length - 1]?.version ?? 0 }
    },

    seedStream: async ({ events, streamId }) => {
      for (let version = 0; version < events; version += 100) {
        await append(streamId, version, domain.newEvents(Math.min(100, events - version), version))
      }
      await pool.query(`VACUUM ANALYZE ${pg.escapeIdentifier(SCHEMA)}.events`)
    },

    fold: async (spec) => {
      let state = domain.initialBalance
      const times: Array<number> = []
      for (let run = 0; run < spec.runs; run++) {
        const started = performance.now()
        const rows = await readStream(spec.streamId)
        state = spec.typed ? foldTyped(rows) : foldUntyped(rows)
        times.push(performance.now() - started)
      }
      return { ms: util.median(times), ...state }
    },

    seedFeed: ({ events }) => domain.seedEventfoldFeed(pool, SCHEMA, events),

    feed: async (spec) => {
      if (spec.mode !== "read") throw new Error("raw pg has no consumer")
      const page = feedPage(spec.pageSize)
      const started = performance.now()
      let after: [string, string] = ["0", "0"]
      let events = 0
      for (;;) {
        const { rows } = await pool.query<RawRow>(page, after)
        events += rows.length
        const last = rows[rows.length - 1]
        if (!last || rows.length < spec.pageSize) break
        after = [last.transaction_id, last.global_position]
      }
      return { events, ms: performance.now() - started }
    },

    close: () => pool.end()
  }
}
