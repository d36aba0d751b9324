/**
 * Group commit: 1-event appends from 1, 8 and 32 concurrent writers, each on its own stream, with group commit off
 * and on (1, 2 and 4 batches in flight), against the raw `pg` four-statement append, all in alternating rounds on one
 * pool size (10). Also prints the mean batch size each setting reached.
 *
 * @since 0.4.0
 */
import type * as EventStore from "@eventfold/core/EventStore"
import * as ExpectedVersion from "@eventfold/core/ExpectedVersion"
import * as PgDatabase from "@eventfold/postgres/PgDatabase"
import * as PgEventStore from "@eventfold/postgres/PgEventStore"
import * as PgMigrations from "@eventfold/postgres/PgMigrations"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Scope from "effect/Scope"
import pg from "pg"
import * as util from "./util.js"

const POOL_SIZE = 10
const ROUNDS = 3
const options = (workers: number): util.ThroughputOptions => ({ workers, warmupMs: 300, durationMs: 1_000 })
const event = [{ type: "Deposited", payload: { amount: 1, note: "benchmark event" } }]

/** The classic append in four round trips (BEGIN; INSERT or UPDATE the stream; INSERT the event; COMMIT). */
const rawAppend = (pool: pg.Pool) => async (streamId: string, expected: number): Promise<number> => {
  const client = await pool.connect()
  try {
    await client.query("BEGIN")
    const locked = expected === 0
      ? await client.query(
        `INSERT INTO eventfold.streams (tenant_id, stream_type, stream_id, version) VALUES ('default', 'Account', $1, 1)
         ON CONFLICT DO NOTHING RETURNING version`,
        [streamId]
      )
      : await client.query(
        `UPDATE eventfold.streams SET version = version + 1, updated_at = now()
         WHERE tenant_id = 'default' AND stream_type = 'Account' AND stream_id = $1 AND version = $2 RETURNING version`,
        [streamId, expected]
      )
    if (locked.rowCount !== 1) throw new Error(`raw append: conflict on ${streamId}`)
    await client.query(
      `INSERT INTO eventfold.events (tenant_id, stream_type, stream_id, version, event_id, event_type, payload, metadata)
       VALUES ('default', 'Account', $1, $2, $3::uuid, 'Deposited', $4::jsonb, '{}'::jsonb)`,
      [streamId, expected + 1, crypto.randomUUID(), JSON.stringify(event[0]!.payload)]
    )
    await client.query("COMMIT")
    return expected + 1
  } catch (error) {
    await client.query("ROLLBACK")
    throw error
  } finally {
    client.release()
  }
}

/**
 * @since 0.4.0
 * @category main
 */
export const main = (ctx: { readonly serverUrl: string }): Promise<void> =>
  util.withDatabase(ctx.serverUrl, "eventfold_bench_gc", async (database) => {
    const runtime = ManagedRuntime.make(
      PgDatabase.layer({ url: database.url, maxConnections: POOL_SIZE, applicationName: "eventfold-bench" })
    )
    await runtime.runPromise(PgMigrations.run())
    const pool = new pg.Pool({ connectionString: database.url, max: POOL_SIZE })
    const scope = await runtime.runPromise(Scope.make())
    try {
      const settings: ReadonlyArray<readonly [string, PgEventStore.Options["groupCommit"]]> = [
        ["eventfold, group commit off", false],
        ["eventfold, group commit, 1 in flight (default)", { concurrency: 1 }],
        ["eventfold, group commit, 2 in flight", { concurrency: 2 }],
        ["eventfold, group commit, 4 in flight", { concurrency: 4 }]
      ]
      const stores = await Promise.all(
        settings.map(([, groupCommit]) =>
          runtime.runPromise(Scope.extend(PgEventStore.make({ groupCommit, notify: false }), scope))
        )
      )
      const raw = rawAppend(pool)
      const table: Array<ReadonlyArray<string>> = []
      for (const workers of [1, 8, 32]) {
        const results = [...settings.map(() => [] as Array<util.Throughput>), [] as Array<util.Throughput>]
        const versions = results.map(() => new Array<number>(workers).fill(0))
        for (let round = 0; round < ROUNDS; round++) {
          for (let s = 0; s < stores.length; s++) {
            const store: EventStore.EventStore["Type"] = stores[s]!
            results[s]!.push(
              await runtime.runPromise(util.throughputEffect(options(workers), (worker) =>
                store.append({
                  streamType: "Account",
                  streamId: `s${s}-w${workers}-${worker}`,
                  expectedVersion: ExpectedVersion.Exact(versions[s]![worker]!),
                  events: event
                }).pipe(Effect.map((result) => {
                  versions[s]![worker] = result.version
                  return 1
                }))))
            )
          }
          const r = settings.length
          results[r]!.push(
            await util.throughput(options(workers), async (worker) => {
              versions[r]![worker] = await raw(`raw-w${workers}-${worker}`, versions[r]![worker]!)
              return 1
            })
          )
        }
        const perSecond = results.map((r) => util.combine(r).perSecond)
        const rawRate = perSecond[settings.length]!
        settings.forEach(([label], s) =>
          table.push([
            `${workers}`,
            label,
            util.formatNumber(perSecond[s]!),
            `${util.formatNumber(perSecond[s]! / rawRate, 2)}×`
          ])
        )
        table.push([`${workers}`, "raw pg (4 statements)", util.formatNumber(rawRate), "1.00×"])
      }
      console.log(util.formatTable(["writers", "contender", "appends/s", "vs raw pg"], table))
    } finally {
      await runtime.runPromise(Scope.close(scope, Exit.void))
      await pool.end()
      await runtime.dispose()
    }
  })
