/**
 * Emmett 0.42 (`@event-driven-io/emmett-postgresql`) in the comparison, through its public API: one
 * `getPostgreSQLEventStore(url, { connectionOptions: { pool } })` over `pg.Pool({ max: 10 })`, its schema created by
 * `schema.migrate()`; appends with `appendToStream` at the exact expected version, commands with `CommandHandler`
 * (retrying version conflicts), loads with `aggregateStream`, the feed with `readMessagesBatch` (what its consumers
 * page with) and its consumer with a reactor.
 *
 * @since 0.5.0
 */
import { dumbo } from "@event-driven-io/dumbo"
import { CommandHandler, type Event, isExpectedVersionConflictError } from "@event-driven-io/emmett"
import { getPostgreSQLEventStore, readMessagesBatch } from "@event-driven-io/emmett-postgresql"
import pg from "pg"
import * as util from "../util.js"
import * as domain from "./domain.js"
import type * as protocol from "./protocol.js"

type Metadata = { readonly correlationId: string }
type Deposited = Event<"Deposited", { readonly amount: number; readonly note: string }, Metadata>
type Withdrawn = Event<"Withdrawn", { readonly amount: number; readonly note: string }, Metadata>
type AccountEvent = Deposited | Withdrawn
type Ping = Event<"Ping", domain.Ping>

/** The `i`th event of a stream, as `domain.newEvents` makes it for the others. */
const accountEvent = (i: number): AccountEvent => ({
  type: domain.eventTypeOf(i),
  data: domain.payloadOf(i),
  metadata: domain.metadata
})

const accountEvents = (size: number, first = 0): Array<AccountEvent> =>
  Array.from({ length: size }, (_, i) => accountEvent(first + i))

/** Emmett takes the stream type from the stream name's prefix. */
const streamName = (id: string) => `${domain.STREAM_TYPE}-${id}`

/**
 * Opens the pool and the store and creates Emmett's schema.
 *
 * @since 0.5.0
 * @category constructors
 */
export const make = async (url: string): Promise<protocol.System> => {
  const pool = new pg.Pool({
    connectionString: url,
    max: domain.POOL_SIZE,
    connectionTimeoutMillis: 5_000,
    application_name: "compare-emmett"
  })
  const store = getPostgreSQLEventStore(url, { connectionOptions: { pool } })
  await store.schema.migrate()
  // The same pool, as the SQL executor readMessagesBatch takes.
  const executor = dumbo({ connectionString: url, pool })
  const seedPool = new pg.Pool({ connectionString: url, max: 1, application_name: "compare-emmett-seed" })
  const vacuum = () => seedPool.query("VACUUM ANALYZE emt_messages").then(() => undefined)

  const counters = { measuring: false, conflicts: 0 }
  // eventfold's default retry policy as async-retry can say it: 5 ms doubling (randomised ×1-2, so from 3.3 ms),
  // at most 200 ms, 20 retries; each conflict is counted.
  const handle = CommandHandler<domain.Balance, AccountEvent>({
    evolve: (state, event) => domain.evolveBalance(state, event.type, domain.amountOf(event.data)),
    initialState: () => domain.initialBalance,
    retry: {
      onVersionConflict: {
        retries: domain.MAX_RETRIES,
        factor: 2,
        minTimeout: 10 / 3,
        maxTimeout: 200,
        randomize: true,
        shouldRetryError: (error) => {
          if (!isExpectedVersionConflictError(error)) return false
          if (counters.measuring) counters.conflicts++
          return true
        }
      }
    }
  })

  const foldOf = (typed: boolean) => (state: domain.Balance, event: AccountEvent): domain.Balance => {
    if (!typed) return domain.evolveBalance(state, event.type, domain.amountOf(event.data))
    const decoded = domain.decodeAccountEvent({ ...event.data, _tag: event.type })
    return domain.evolveBalance(state, decoded._tag, decoded.amount)
  }

  return {
    append: (spec) => {
      const batch = accountEvents(spec.batchSize)
      const versions = new Array<bigint>(spec.workers).fill(0n)
      return domain.phased(spec, async (worker) => {
        const result = await store.appendToStream(streamName(`${spec.label}-${worker}`), batch, {
          expectedStreamVersion: versions[worker]!
        })
        versions[worker] = result.nextExpectedStreamVersion
        return spec.batchSize
      })
    },

    contention: async (spec) => {
      counters.conflicts = 0
      let failures = 0
      let succeeded = 0
      const deposit = (): Array<AccountEvent> => [{
        type: "Deposited",
        data: { amount: 1, note: domain.NOTE },
        metadata: domain.metadata
      }]
      const throughput = await domain.phased(
        { workers: spec.writers, warmupMs: spec.warmupMs, durationMs: spec.durationMs },
        async (_, measured) => {
          counters.measuring = measured
          try {
            await handle(store, streamName(spec.streamId), () => deposit())
            succeeded++
            return 1
          } catch (error) {
            if (!isExpectedVersionConflictError(error)) throw error
            if (measured) failures++
            return 0
          }
        }
      )
      counters.measuring = false
      const { currentStreamVersion } = await store.readStream(streamName(spec.streamId))
      return {
        throughput,
        conflicts: counters.conflicts,
        failures,
        succeeded,
        finalVersion: Number(currentStreamVersion)
      }
    },

    seedStream: async ({ events, streamId }) => {
      for (let version = 0; version < events; version += 100) {
        await store.appendToStream(streamName(streamId), accountEvents(Math.min(100, events - version), version), {
          expectedStreamVersion: BigInt(version)
        })
      }
      await vacuum()
    },

    fold: async (spec) => {
      const evolve = foldOf(spec.typed)
      let state = domain.initialBalance
      const times: Array<number> = []
      for (let run = 0; run < spec.runs; run++) {
        const started = performance.now()
        const result = await store.aggregateStream<domain.Balance, AccountEvent>(streamName(spec.streamId), {
          evolve,
          initialState: () => domain.initialBalance
        })
        state = result.state
        times.push(performance.now() - started)
      }
      return { ms: util.median(times), ...state }
    },

    seedFeed: async ({ events }) => {
      for (let batch = 0; batch < events / 1_000; batch++) {
        await store.appendToStream(streamName(`feed-${batch}`), accountEvents(1_000), { expectedStreamVersion: 0n })
      }
      await vacuum()
    },

    feed: async (spec) => {
      if (spec.mode === "read") {
        const started = performance.now()
        let events = 0
        let after = 0n
        for (;;) {
          const page = await readMessagesBatch<AccountEvent>(executor.execute, { after, batchSize: spec.pageSize })
          events += page.messages.length
          after = page.currentGlobalPosition
          if (!page.areMessagesLeft) break
        }
        return { events, ms: performance.now() - started }
      }
      let events = 0
      const consumer = store.consumer<AccountEvent>({
        pulling: { batchSize: spec.pageSize },
        stopWhen: { noMessagesLeft: true }
      })
      consumer.reactor<AccountEvent>({
        processorId: `catch-up-${crypto.randomUUID()}`,
        startFrom: "BEGINNING",
        eachMessage: async () => {
          events++
        }
      })
      const started = performance.now()
      await consumer.start()
      return { events, ms: performance.now() - started }
    },

    live: async (spec) => {
      const recorder = domain.latencyRecorder()
      // Emmett 0.42's startFrom "END" reads the log's first position, not its last (a missing DESC, fixed upstream
      // later), so it would replay the whole log first: start after the current last position instead.
      const { rows } = await seedPool.query<{ head: string | null }>(
        "SELECT max(global_position)::text AS head FROM emt_messages"
      )
      const consumer = store.consumer<Ping>()
      consumer.reactor<Ping>({
        processorId: `live-${spec.label}`,
        startFrom: { lastCheckpoint: BigInt(rows[0]?.head ?? "0") },
        canHandle: ["Ping"],
        eachMessage: async (message) => {
          recorder.record(message.data)
        }
      })
      const running = consumer.start()
      try {
        const ping = (writer: number, payload: domain.Ping) =>
          store.appendToStream<Ping>(`Live-${spec.label}-${writer}`, [{ type: "Ping", data: payload }])
            .then(() => undefined)
        await recorder.ready((payload) => ping(0, payload))
        const load = await domain.pacedLoad(spec, ping)
        // Emmett's reactor pages by global_position alone: an event whose transaction commits after a later
        // position was read is skipped for good. Counted and reported, not a failure of the benchmark.
        const missed = await recorder.missed(load.appended, 10_000)
        return { latencies: recorder.latencies, appended: load.appended, missed }
      } finally {
        await consumer.stop()
        await running
      }
    },

    close: async () => {
      await seedPool.end()
      await pool.end()
    }
  }
}
