/**
 * What every system of the comparison writes, reads and folds: account events with the same payloads, the same
 * balance fold, the same retry delays after a conflict, the same paced load for live latency, and the same feed seed.
 *
 * @since 0.5.0
 */
import type * as NewEvent from "@eventfold/core/NewEvent"
import * as Tenant from "@eventfold/core/Tenant"
import * as Schema from "effect/Schema"
import pg from "pg"
import * as util from "../util.js"

/**
 * The stream type of every stream (Emmett derives it from the stream name's prefix: `Account-<id>`).
 *
 * @since 0.5.0
 * @category constants
 */
export const STREAM_TYPE = "Account"

/**
 * eventfold's single-tenant store writes into the default tenant; the raw baseline and pgbench do the same.
 *
 * @since 0.5.0
 * @category constants
 */
export const TENANT = Tenant.defaultId

/**
 * The pool size of every system.
 *
 * @since 0.5.0
 * @category constants
 */
export const POOL_SIZE = 10

/**
 * The note every event carries, so that payloads have a realistic string field.
 *
 * @since 0.5.0
 * @category constants
 */
export const NOTE = "benchmark event"

/**
 * The type of the `i`th event of a stream: two deposits, then a withdrawal.
 *
 * @since 0.5.0
 * @category events
 */
export const eventTypeOf = (i: number): "Deposited" | "Withdrawn" => i % 3 === 2 ? "Withdrawn" : "Deposited"

/**
 * The payload of the `i`th event of a stream.
 *
 * @since 0.5.0
 * @category events
 */
export const payloadOf = (i: number): { readonly amount: number; readonly note: string } => ({
  amount: (i % 100) + 1,
  note: NOTE
})

/**
 * Runs `op` in a loop on each of `workers` concurrent workers until the deadline, first for the warm-up, then
 * measured, like `util.throughput`, telling `op` which phase it is in (so that it counts conflicts only when measured).
 *
 * @since 0.5.0
 * @category measuring
 */
export const phased = async (
  options: util.ThroughputOptions,
  op: (worker: number, measured: boolean) => Promise<number>
): Promise<util.Throughput> => {
  const phase = async (ms: number, measured: boolean) => {
    const deadline = performance.now() + ms
    const counts = await Promise.all(
      Array.from({ length: options.workers }, async (_, worker) => {
        let units = 0
        while (performance.now() < deadline) units += await op(worker, measured)
        return units
      })
    )
    return counts.reduce((a, b) => a + b, 0)
  }
  await phase(options.warmupMs, false)
  const started = performance.now()
  const units = await phase(options.durationMs, true)
  const seconds = (performance.now() - started) / 1000
  return { units, seconds, perSecond: units / seconds }
}

/**
 * The metadata of every event (one correlation id per process).
 *
 * @since 0.5.0
 * @category events
 */
export const metadata = { correlationId: crypto.randomUUID() }

/**
 * `size` events as eventfold and the raw baseline append them: the `i`th of type `eventTypeOf(i)`, payload
 * `payloadOf(i)`.
 *
 * @since 0.5.0
 * @category events
 */
export const newEvents = (size: number, first = 0): ReadonlyArray<NewEvent.NewEvent> =>
  Array.from({ length: size }, (_, i) => ({
    type: eventTypeOf(first + i),
    payload: payloadOf(first + i),
    metadata
  }))

/**
 * What every fold computes.
 *
 * @since 0.5.0
 * @category fold
 */
export interface Balance {
  readonly balance: number
  readonly events: number
}

/**
 * @since 0.5.0
 * @category fold
 */
export const initialBalance: Balance = { balance: 0, events: 0 }

/**
 * One step of the fold, from an event's type and amount.
 *
 * @since 0.5.0
 * @category fold
 */
export const evolveBalance = (state: Balance, type: string, amount: number): Balance => ({
  balance: type === "Withdrawn" ? state.balance - amount : state.balance + amount,
  events: state.events + 1
})

/**
 * The amount of an untyped (parsed JSON) payload, NaN when it has none: every untyped fold reads it this way.
 *
 * @since 0.5.0
 * @category fold
 */
export const amountOf = (payload: unknown): number =>
  typeof payload === "object" && payload !== null && "amount" in payload && typeof payload.amount === "number"
    ? payload.amount
    : Number.NaN

/**
 * The typed path's decode: a payload and its type into a `Deposited` or `Withdrawn` instance, through the same
 * Schema eventfold's aggregate uses (a `Schema.Union` of `TaggedClass`es). Throws on an invalid event.
 *
 * @since 0.5.0
 * @category fold
 */
export const decodeAccountEvent: (u: unknown) => util.AccountEvent = Schema.decodeUnknownSync(util.AccountEvent)

/**
 * The balance after `n` events as written by `payloadOf` / `eventTypeOf`: every fold must reach it.
 *
 * @since 0.5.0
 * @category fold
 */
export const expectedBalance = (n: number): Balance => {
  let state = initialBalance
  for (let i = 0; i < n; i++) state = evolveBalance(state, eventTypeOf(i), payloadOf(i).amount)
  return state
}

/**
 * The delay before retry `attempt` (1-based) after a conflict, as eventfold's `CommandHandler.defaultRetry`: 5 ms
 * doubling, at most 200 ms, jittered by ±20 %; at most `MAX_RETRIES` retries.
 *
 * @since 0.5.0
 * @category retry
 */
export const retryDelayMs = (attempt: number): number =>
  Math.min(5 * 2 ** (attempt - 1), 200) * (0.8 + 0.4 * Math.random())

/**
 * @since 0.5.0
 * @category retry
 */
export const MAX_RETRIES = 20

/**
 * @since 0.5.0
 * @category utils
 */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))

/**
 * The payload of a live-latency event: when its append was called (on this process's `performance.now()` clock), and
 * whether it is a readiness probe, sent in the warm-up, or measured (scheduled inside the measured window).
 *
 * @since 0.5.0
 * @category live
 */
// A type alias, not an interface: Emmett's event data must be assignable to a string-indexed record.
export type Ping = {
  readonly sentAt: number
  readonly phase: "probe" | "warmup" | "measured"
  readonly amount: number
  readonly note: string
}

const phases: ReadonlyArray<unknown> = ["probe", "warmup", "measured"]

const isPing = (payload: unknown): payload is Ping =>
  typeof payload === "object" && payload !== null && "sentAt" in payload && typeof payload.sentAt === "number" &&
  "phase" in payload && phases.includes(payload.phase)

/**
 * How long a live consumer may take to see a probe, or to handle every appended event.
 *
 * @since 0.5.0
 * @category live
 */
export const LIVE_TIMEOUT_MS = 60_000

// Both eventfold and Emmett read below pg_snapshot_xmin: any long transaction anywhere in the cluster stalls them.
const HORIZON_HINT = " (is a long transaction elsewhere on the server holding back the xmin horizon?)"

/**
 * Collects live latencies. The handler calls `record` with each event's payload: a probe (see `ready`) only shows
 * that the consumer is live; a load event counts as handled, and its latency (handler time − append call time) is
 * kept when it was scheduled in the measured window. `settled` resolves once every load event has been handled.
 *
 * @since 0.5.0
 * @category live
 */
export const latencyRecorder = () => {
  const latencies: Array<number> = []
  let handled = 0
  let probes = 0
  const waitFor = async (done: () => boolean, timeoutMs: number): Promise<boolean> => {
    const deadline = performance.now() + timeoutMs
    while (!done()) {
      if (performance.now() > deadline) return false
      await sleep(5)
    }
    return true
  }
  return {
    latencies,
    record: (payload: unknown): void => {
      const now = performance.now()
      if (!isPing(payload)) throw new Error(`live: not a ping: ${JSON.stringify(payload)}`)
      if (payload.phase === "probe") {
        probes++
        return
      }
      handled++
      if (payload.phase === "measured") latencies.push(now - payload.sentAt)
    },
    /** Appends probes (every 500 ms) until the consumer has handled one: it is live from then on. */
    ready: async (probe: (payload: Ping) => Promise<void>, timeoutMs = LIVE_TIMEOUT_MS): Promise<void> => {
      const deadline = performance.now() + timeoutMs
      while (probes === 0) {
        if (performance.now() > deadline) {
          throw new Error(`live: no probe handled within ${timeoutMs} ms${HORIZON_HINT}`)
        }
        await probe({ sentAt: performance.now(), phase: "probe", amount: 0, note: NOTE })
        await waitFor(() => probes > 0, 500)
      }
    },
    settled: async (appended: number, timeoutMs: number): Promise<void> => {
      if (!(await waitFor(() => handled >= appended, timeoutMs))) {
        throw new Error(`live: ${handled} of ${appended} appended events handled after ${timeoutMs} ms${HORIZON_HINT}`)
      }
    },
    /** How many of `appended` events the consumer has not handled after `timeoutMs` (0 once all are). */
    missed: async (appended: number, timeoutMs: number): Promise<number> => {
      await waitFor(() => handled >= appended, timeoutMs)
      return Math.max(0, appended - handled)
    }
  }
}

/**
 * Runs `writers` paced loops: writer `w` calls `append(w, payload)` every `1000 / ratePerWriter` ms (staggered, one
 * append at a time: a writer that falls behind catches up without pausing) until its schedule passes the warm-up and
 * the measured window, and returns the number of appends.
 *
 * @since 0.5.0
 * @category live
 */
export const pacedLoad = async (
  spec: {
    readonly writers: number
    readonly ratePerWriter: number
    readonly warmupMs: number
    readonly durationMs: number
  },
  append: (writer: number, payload: Ping) => Promise<void>
): Promise<{ readonly appended: number }> => {
  const interval = 1000 / spec.ratePerWriter
  const start = performance.now()
  const from = start + spec.warmupMs
  const to = from + spec.durationMs
  let appended = 0
  await Promise.all(
    Array.from({ length: spec.writers }, async (_, writer) => {
      for (let k = 0;; k++) {
        const due = start + (writer / spec.writers + k) * interval
        if (due >= to) return
        await sleep(due - performance.now())
        const phase = due < from ? "warmup" : "measured"
        await append(writer, { sentAt: performance.now(), phase, amount: 1, note: NOTE })
        appended++
      }
    })
  )
  return { appended }
}

/**
 * The nearest-rank percentile `p` (0-100) of some measurements.
 *
 * @since 0.5.0
 * @category measuring
 */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

/**
 * Seeds a feed of `events` events into eventfold's tables in `schema`: one committed transaction of 1,000 events per
 * stream, written with one statement each (seeding is not what is measured). The eventfold and raw `pg` databases
 * get the same rows.
 *
 * @since 0.5.0
 * @category feed
 */
export const seedEventfoldFeed = async (pool: pg.Pool, schema: string, events: number): Promise<void> => {
  const streams = `${pg.escapeIdentifier(schema)}.streams`
  const table = `${pg.escapeIdentifier(schema)}.events`
  for (let batch = 0; batch < events / 1_000; batch++) {
    await pool.query(
      `WITH stream AS (INSERT INTO ${streams} (tenant_id, stream_type, stream_id, version) VALUES ($1, $2, $3, 1000))
       INSERT INTO ${table} (tenant_id, stream_type, stream_id, version, event_id, event_type, payload, metadata,
                             correlation_id)
       SELECT $1, $2, $3, g, gen_random_uuid(), CASE WHEN (g - 1) % 3 = 2 THEN 'Withdrawn' ELSE 'Deposited' END,
              jsonb_build_object('amount', (g - 1) % 100 + 1, 'note', $5::text),
              jsonb_build_object('correlationId', $4::text), $4
         FROM generate_series(1, 1000) AS g`,
      [TENANT, STREAM_TYPE, `feed-${batch}`, metadata.correlationId, NOTE]
    )
  }
  await pool.query(`VACUUM ANALYZE ${table}`)
}
