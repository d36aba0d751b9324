/**
 * Feed queries by event type, by tenant and from a time, with the indexes of migration 0008 and without them, at
 * 100,000 and 1,000,000 events; and what those indexes cost appends.
 *
 * Queries: on one database, bulk-loaded with SQL (100 event types of 1 % each, 20 stream types, 10 tenants, one event
 * a second), each page timed from `pg` on one connection (median of several runs, interleaved): the statement
 * `PgEventStore.readAll` sent before 0008 with the 0008 indexes dropped ("before"), the 0008 statement with the
 * indexes dropped, and with them; then `EventStore.readAll` itself (with them, decode included). Every variant must
 * return the same events, or the run fails. Appends: two databases seeded alike, one with the three indexes dropped,
 * `EventStore.append` measured in alternating rounds.
 *
 * @since 0.4.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as EventStore from "@eventfold/core/EventStore"
import * as ExpectedVersion from "@eventfold/core/ExpectedVersion"
import * as Position from "@eventfold/core/Position"
import * as Tenant from "@eventfold/core/Tenant"
import * as PgDatabase from "@eventfold/postgres/PgDatabase"
import * as PgEventStore from "@eventfold/postgres/PgEventStore"
import * as PgMigrations from "@eventfold/postgres/PgMigrations"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Scope from "effect/Scope"
import pg from "pg"
import * as util from "./util.js"

const SIZES = [100_000, 1_000_000] as const
const BATCH = 1_000
const PAGE = 500
const RUNS = { warmup: 2, runs: 7 }
const START = Date.UTC(2026, 0, 1)
/** The events recorded since this many seconds before the last one: the "recent" window of the time query. */
const RECENT = 5_000

const APPEND_SEED = 100_000
const APPEND_ROUNDS = 7
const POOL_SIZE = 8
const appendOptions = (workers: number): util.ThroughputOptions => ({ workers, warmupMs: 250, durationMs: 1_000 })

/** The indexes of migration 0008, as it creates them. */
const INDEXES: ReadonlyArray<readonly [name: string, definition: string]> = [
  ["events_type_feed_idx", "(event_type, transaction_id, global_position, tenant_id)"],
  ["events_stream_type_feed_idx", "(stream_type, transaction_id, global_position, tenant_id)"],
  ["events_recorded_at_idx", "(recorded_at)"]
]

const dropIndexes = (client: pg.Client) =>
  client.query(`DROP INDEX ${INDEXES.map(([name]) => `eventfold.${name}`).join(", ")}`)

/** Builds the indexes again, timing each build. */
const createIndexes = async (client: pg.Client): Promise<ReadonlyArray<number>> => {
  const seconds: Array<number> = []
  for (const [name, definition] of INDEXES) {
    const started = performance.now()
    await client.query(`CREATE INDEX ${name} ON eventfold.events ${definition}`)
    seconds.push((performance.now() - started) / 1000)
  }
  return seconds
}

/** The event type of every other event in the last 5 % of a load up to `size`: a type new to the feed. */
const lateType = (size: number) => `Late${size}`

/**
 * Events `from` to `to` (exclusive), one transaction per 1,000: event type `Type<k>` for k in 0-99 (1 % each), of
 * stream type `Stream<k / 5>` (5 %), tenant `tenant-0` to `tenant-9`, event n recorded at START + n seconds; every
 * other event of the last 5 % is of `lateType(to)` instead (a type a later release added: 2.5 % of the feed, all of
 * it at its end).
 */
const load = async (client: pg.Client, from: number, to: number): Promise<void> => {
  await client.query("SET synchronous_commit = off")
  for (let first = from; first < to; first += BATCH) {
    await client.query(
      `INSERT INTO eventfold.events (tenant_id, stream_type, stream_id, version, event_id, event_type, payload,
                                     metadata, recorded_at)
       SELECT 'tenant-' || (abs(hashint4(n + 7)) % 10), 'Stream' || (abs(hashint4(n)) % 100 / 5), 's-' || (n % 10000),
              n + 1, gen_random_uuid(),
              CASE WHEN n >= $4::integer AND n % 2 = 0 THEN $5 ELSE 'Type' || (abs(hashint4(n)) % 100) END,
              jsonb_build_object('amount', n % 100 + 1, 'note', 'benchmark event'), '{"correlationId": "bench"}',
              $3::timestamptz + n * interval '1 second'
         FROM generate_series($1::integer, $2::integer) AS n`,
      [first, Math.min(first + BATCH, to) - 1, new Date(START), to - to / 20, lateType(to)]
    )
  }
  await client.query("SET synchronous_commit = on")
}

interface Workload {
  readonly name: string
  /** The page's position: the start of the feed, or after its middle event. */
  readonly fromMiddle: boolean
  readonly options: (size: number) => Omit<PgEventStore.FeedPage, "after" | "limit">
}

const workloads: ReadonlyArray<Workload> = [
  {
    name: "one event type (1 %), first page",
    fromMiddle: false,
    options: () => ({ scope: Tenant.allScope, eventTypes: ["Type42"] })
  },
  {
    name: "one event type (1 %), page from the middle",
    fromMiddle: true,
    options: () => ({ scope: Tenant.allScope, eventTypes: ["Type42"] })
  },
  {
    name: "a type new to the feed (2.5 %, in its last 5 %), first page",
    fromMiddle: false,
    options: (size) => ({ scope: Tenant.allScope, eventTypes: [lateType(size)] })
  },
  {
    name: "three event types (3 %), page from the middle",
    fromMiddle: true,
    options: () => ({ scope: Tenant.allScope, eventTypes: ["Type7", "Type42", "Type77"] })
  },
  {
    name: "one event type in a tenant (0.1 %), from the middle",
    fromMiddle: true,
    options: () => ({ scope: "tenant-3", eventTypes: ["Type42"] })
  },
  {
    name: "one stream type (5 %), page from the middle",
    fromMiddle: true,
    options: () => ({ scope: Tenant.allScope, streamTypes: ["Stream8"] })
  },
  {
    name: `since the last ${util.formatNumber(RECENT)} events, first page`,
    fromMiddle: false,
    options: (size) => ({ scope: Tenant.allScope, since: new Date(START + (size - RECENT) * 1000) })
  },
  {
    name: "since the last 10 % of events, first page",
    fromMiddle: false,
    options: (size) => ({ scope: Tenant.allScope, since: new Date(START + size * 0.9 * 1000) })
  },
  {
    name: "a tenant's page from the middle (unchanged)",
    fromMiddle: true,
    options: () => ({ scope: "tenant-3" })
  },
  {
    name: "the whole feed from the middle (unchanged)",
    fromMiddle: true,
    options: () => ({ scope: Tenant.allScope })
  }
]

/** The statement of `PgEventStore.readAll` before migration 0008: every filter on a walk of the feed's index. */
const statement0007 = (page: PgEventStore.FeedPage): readonly [string, ReadonlyArray<unknown>] => {
  const params: Array<unknown> = [page.after.transactionId.toString(), page.after.globalPosition.toString(), page.limit]
  const filters: Array<string> = []
  const add = (filter: (n: number) => string, value: unknown) => {
    params.push(value)
    filters.push(filter(params.length))
  }
  if (page.eventTypes) add((n) => `event_type = ANY($${n}::text[])`, page.eventTypes)
  if (page.streamTypes) add((n) => `stream_type = ANY($${n}::text[])`, page.streamTypes)
  const oneTenant = page.scope !== Tenant.allScope
  if (oneTenant) add((n) => `tenant_id = ANY(ARRAY[$${n}::text])`, page.scope)
  if (page.since) add((n) => `recorded_at >= $${n}::timestamptz`, page.since)
  return [
    `SELECT global_position, transaction_id, event_id, tenant_id, stream_type, stream_id, version, event_type,
       schema_version, payload, metadata, recorded_at FROM eventfold.events
     WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
       AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
       ${filters.map((f) => `AND ${f}`).join(" ")}
     ORDER BY ${oneTenant ? "tenant_id, " : ""}transaction_id, global_position LIMIT $3`,
    params
  ]
}

interface Timed {
  /** Wall time from `pg`: the query, the transfer and pg's parsing of the rows. */
  readonly ms: number
  /** The server's execution time (EXPLAIN ANALYZE, without per-node timing). */
  readonly serverMs: number
  /** How the plan reads events: each scan of events, with its index, and whether the rows are then sorted. */
  readonly plan: string
  readonly ids: ReadonlyArray<string>
}

interface PlanNode {
  readonly "Node Type": string
  readonly "Relation Name"?: string
  readonly "Index Name"?: string
  readonly Plans?: ReadonlyArray<PlanNode>
}

const nodesOf = (node: PlanNode): ReadonlyArray<PlanNode> => [node, ...(node.Plans ?? []).flatMap(nodesOf)]

/** "Index Scan events_type_feed_idx ×3, Sort": the scans of events and their indexes, in plan order. */
const summarize = (plan: PlanNode): string => {
  const counts = new Map<string, number>()
  for (const node of nodesOf(plan)) {
    const scan = node["Node Type"] === "Bitmap Index Scan" || node["Relation Name"] === "events"
    if (node["Node Type"] === "Bitmap Heap Scan" || !(scan || node["Node Type"] === "Sort")) continue
    const name = `${node["Node Type"]}${node["Index Name"] ? ` ${node["Index Name"]}` : ""}`
    counts.set(name, (counts.get(name) ?? 0) + 1)
  }
  return [...counts].map(([name, n]) => (n === 1 ? name : `${name} ×${n}`)).join(", ")
}

/** Median times of statements run from `pg`, interleaved, and the event ids each returned. */
const timeStatements = async (
  client: pg.Client,
  statements: ReadonlyArray<readonly [string, ReadonlyArray<unknown>]>
): Promise<ReadonlyArray<Timed>> => {
  const ids: Array<ReadonlyArray<string>> = statements.map(() => [])
  const ms = await util.medianMs(
    RUNS,
    statements.map(([text, params], i) => async () => {
      const result = await client.query<{ event_id: string }>(text, [...params])
      ids[i] = result.rows.map((row) => row.event_id)
    })
  )
  const server = statements.map((): Array<number> => [])
  const plans = statements.map(() => "")
  for (let run = 0; run < RUNS.runs; run++) {
    for (const [i, [text, params]] of statements.entries()) {
      const result = await client.query<{ "QUERY PLAN": ReadonlyArray<{ "Execution Time": number; Plan: PlanNode }> }>(
        `EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ${text}`,
        [...params]
      )
      const explained = result.rows[0]!["QUERY PLAN"][0]!
      server[i]!.push(explained["Execution Time"])
      plans[i] = summarize(explained.Plan)
    }
  }
  return ms.map((m, i) => ({ ms: m, serverMs: util.median(server[i]!), plan: plans[i]!, ids: ids[i]! }))
}

type Runtime = ManagedRuntime.ManagedRuntime<SqlClient.SqlClient, unknown>

interface QueryRow {
  readonly size: number
  readonly workload: string
  readonly rows: number
  readonly before: Timed | undefined
  readonly dropped: Timed
  readonly indexed: Timed
  readonly readAll: number
}

const sameIds = (label: string, a: ReadonlyArray<string>, b: ReadonlyArray<string>) => {
  if (a.length !== b.length || a.some((id, i) => id !== b[i])) {
    throw new Error(`${label}: the variants returned different events (${a.length} against ${b.length})`)
  }
}

/** Times every workload at the table's current size: with the indexes, then without (dropped, then built again). */
const measureQueries = async (
  client: pg.Client,
  runtime: Runtime,
  store: EventStore.EventStore["Type"],
  size: number
) => {
  const middle = await client.query<{ transaction_id: string; global_position: string }>(
    "SELECT transaction_id::text, global_position::text FROM eventfold.events WHERE global_position = $1",
    [size / 2]
  )
  const half = Position.make(BigInt(middle.rows[0]!.transaction_id), BigInt(middle.rows[0]!.global_position))
  const sql = await runtime.runPromise(SqlClient.SqlClient)
  const pages = workloads.map((workload): PgEventStore.FeedPage => ({
    ...workload.options(size),
    after: workload.fromMiddle ? half : Position.start,
    limit: PAGE
  }))
  const current = pages.map((page) => PgEventStore.readAllStatement(sql, "eventfold", page).compile())
  const indexed = await timeStatements(client, current)
  const readAllIds: Array<ReadonlyArray<string>> = pages.map(() => [])
  const readAll = await util.medianMs(
    RUNS,
    pages.map((page, i) => async () => {
      const events = await runtime.runPromise(store.readAll({
        after: page.after,
        limit: PAGE,
        ...(page.scope === Tenant.allScope ? {} : { tenantId: page.scope }),
        ...(page.eventTypes ? { eventTypes: page.eventTypes } : {}),
        ...(page.streamTypes ? { streamTypes: page.streamTypes } : {}),
        ...(page.since ? { since: page.since } : {})
      }))
      readAllIds[i] = events.map((e) => e.eventId)
    })
  )
  await dropIndexes(client)
  const dropped = await timeStatements(client, current)
  // The time query had no statement before 0008.
  const beforeIndexes = pages.flatMap((page, i) => (page.since === undefined ? [i] : []))
  const before = await timeStatements(client, beforeIndexes.map((i) => statement0007(pages[i]!)))
  const build = await createIndexes(client)
  return {
    build,
    rows: workloads.map((workload, i): QueryRow => {
      const b = beforeIndexes.indexOf(i)
      sameIds(workload.name, indexed[i]!.ids, dropped[i]!.ids)
      sameIds(workload.name, indexed[i]!.ids, readAllIds[i]!)
      if (b >= 0) sameIds(workload.name, indexed[i]!.ids, before[b]!.ids)
      if (indexed[i]!.ids.length === 0) throw new Error(`${workload.name}: no events`)
      return {
        size,
        workload: workload.name,
        rows: indexed[i]!.ids.length,
        before: b >= 0 ? before[b] : undefined,
        dropped: dropped[i]!,
        indexed: indexed[i]!,
        readAll: readAll[i]!
      }
    })
  }
}

const queries = async (serverUrl: string) =>
  util.withDatabase(serverUrl, "eventfold_bench_queries", async (database) => {
    const runtime: Runtime = ManagedRuntime.make(
      PgDatabase.layer({ url: database.url, maxConnections: 2, applicationName: "bench-queries" })
    )
    const client = new pg.Client({ connectionString: database.url, connectionTimeoutMillis: 5_000 })
    await client.connect()
    const scope = Effect.runSync(Scope.make())
    try {
      await runtime.runPromise(PgMigrations.run())
      const store = await runtime.runPromise(Scope.extend(PgEventStore.make(), scope))
      const rows: Array<QueryRow> = []
      const builds: Array<ReadonlyArray<string>> = []
      let loaded = 0
      for (const size of SIZES) {
        const started = performance.now()
        await load(client, loaded, size)
        loaded = size
        await client.query("VACUUM ANALYZE eventfold.events")
        const loadSeconds = (performance.now() - started) / 1000
        const measured = await measureQueries(client, runtime, store, size)
        rows.push(...measured.rows)
        const sizes = await client.query<{ name: string; size: string }>(
          `SELECT c.relname AS name, pg_size_pretty(pg_relation_size(c.oid)) AS size FROM pg_class c
            WHERE c.relnamespace = 'eventfold'::regnamespace AND c.relname = ANY($1::text[])
               OR c.oid = 'eventfold.events'::regclass`,
          [INDEXES.map(([name]) => name)]
        )
        const sizeOf = (name: string) => sizes.rows.find((r) => r.name === name)?.size ?? "?"
        builds.push([
          util.formatNumber(size),
          `${loadSeconds.toFixed(1)} s`,
          sizeOf("events"),
          ...INDEXES.map(([name], i) => `${sizeOf(name)}, ${measured.build[i]!.toFixed(2)} s`)
        ])
      }
      return { rows, builds }
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await client.end()
      await runtime.dispose()
    }
  })

interface AppendWorkload {
  readonly name: string
  readonly unit: string
  readonly workers: number
  readonly batch: number
}

const appendWorkloads: ReadonlyArray<AppendWorkload> = [
  { name: "append 1 event, 1 writer", unit: "appends/s", workers: 1, batch: 1 },
  { name: "append 1 event, 8 writers (own streams)", unit: "appends/s", workers: 8, batch: 1 },
  { name: "append 100 events, 1 writer", unit: "events/s", workers: 1, batch: 100 }
]

/** Events of 10 types over 5 stream types, as an application appends them. */
const eventsOf = (count: number, offset: number) =>
  Array.from({ length: count }, (_, i) => ({
    type: `Type${(offset + i) % 10}`,
    payload: { amount: (i % 97) + 1, note: "benchmark event" },
    metadata: { correlationId: "bench" }
  }))

/** Appends with the three indexes and without them, each on a database of its own seeded alike, alternating. */
const appends = async (serverUrl: string) =>
  util.withDatabase(
    serverUrl,
    "eventfold_bench_appends_with",
    (withIndexes) =>
      util.withDatabase(serverUrl, "eventfold_bench_appends_without", async (withoutIndexes) => {
        const scope = Effect.runSync(Scope.make())
        const stacks = await Promise.all([withIndexes, withoutIndexes].map(async (database, i) => {
          const runtime: Runtime = ManagedRuntime.make(
            PgDatabase.layer({ url: database.url, maxConnections: POOL_SIZE, applicationName: "bench-appends" })
          )
          await runtime.runPromise(PgMigrations.run())
          const client = new pg.Client({ connectionString: database.url, connectionTimeoutMillis: 5_000 })
          await client.connect()
          try {
            await load(client, 0, APPEND_SEED)
            if (i === 1) await dropIndexes(client)
            await client.query("VACUUM ANALYZE eventfold.events")
          } finally {
            await client.end()
          }
          // The store lives (with its NOTIFY fiber) until the end of the run.
          const store = await runtime.runPromise(Scope.extend(PgEventStore.make(), scope))
          return { runtime, store }
        }))
        try {
          const rows: Array<ReadonlyArray<string>> = []
          for (const [w, workload] of appendWorkloads.entries()) {
            const perRound = stacks.map((): Array<number> => [])
            const contenders = stacks.map(({ runtime, store }) => {
              const versions = new Array<number>(workload.workers).fill(0)
              let k = 0
              return () =>
                runtime.runPromise(util.throughputEffect(appendOptions(workload.workers), (worker) =>
                  store.append({
                    streamType: `Stream${worker % 5}`,
                    streamId: `w${w}-${worker}`,
                    expectedVersion: ExpectedVersion.Exact(versions[worker]!),
                    events: eventsOf(workload.batch, k++)
                  }).pipe(Effect.map((result) => {
                    versions[worker] = result.version
                    return workload.batch
                  }))))
            })
            for (let round = 0; round < APPEND_ROUNDS; round++) {
              for (let j = 0; j < contenders.length; j++) {
                const i = (round + j) % contenders.length
                perRound[i]!.push((await contenders[i]!()).perSecond)
              }
            }
            const [withMedian, withoutMedian] = perRound.map(util.median) as [number, number]
            const ratio = util.median(perRound[0]!.map((value, round) => value / perRound[1]![round]!))
            rows.push([
              workload.name,
              workload.unit,
              util.formatNumber(withMedian),
              util.formatNumber(withoutMedian),
              `${ratio.toFixed(2)}×`
            ])
          }
          return rows
        } finally {
          await Effect.runPromise(Scope.close(scope, Exit.void))
          for (const { runtime } of stacks) await runtime.dispose()
        }
      })
  )

const ms = (timed: Timed | undefined) =>
  timed === undefined ? "—" : `${util.formatNumber(timed.ms, 1)} (${util.formatNumber(timed.serverMs, 2)})`

/**
 * @since 0.4.0
 */
export const main = async (ctx: { readonly serverUrl: string }): Promise<void> => {
  const server = await util.describeServer(ctx.serverUrl)
  const { builds, rows } = await queries(ctx.serverUrl)
  const appendRows = await appends(ctx.serverUrl)
  console.log(
    [
      `feed queries by type, tenant and time (${server}); pages of ${PAGE}; ms from pg on one connection (the ` +
      `server's execution time, EXPLAIN ANALYZE), medians of ${RUNS.runs} interleaved runs; readAll: ` +
      "EventStore.readAll, decode included; before/indexed: the ratio of server times",
      "before: the statement of readAll before 0008, without the 0008 indexes; dropped: the 0008 statement without " +
      "them; indexed: the 0008 statement with them",
      "",
      util.formatTable(
        ["events", "page", "rows", "before", "dropped", "indexed", "readAll", "before/indexed"],
        rows.map((row) => [
          util.formatNumber(row.size),
          row.workload,
          String(row.rows),
          ms(row.before),
          ms(row.dropped),
          ms(row.indexed),
          util.formatNumber(row.readAll, 1),
          row.before === undefined ? "—" : `${(row.before.serverMs / row.indexed.serverMs).toFixed(1)}×`
        ])
      ),
      "",
      "plans (the scans of events, and a Sort above them if any), at each size:",
      util.formatTable(
        ["events", "page", "before", "indexed"],
        rows.map((row) => [util.formatNumber(row.size), row.workload, row.before?.plan ?? "—", row.indexed.plan])
      ),
      "",
      "size and build time (CREATE INDEX, after the load) of each index:",
      util.formatTable(["events", "load (SQL)", "events table", ...INDEXES.map(([name]) => name)], builds),
      "",
      `appends with and without the three indexes: EventStore.append, pool ${POOL_SIZE}, each side on its own ` +
      `database seeded with ${util.formatNumber(APPEND_SEED)} events; medians of ${APPEND_ROUNDS} alternating rounds ` +
      "of 0.25 s warm-up + 1 s measured (ratio: median of the per-round ratios)",
      util.formatTable(["workload", "unit", "with indexes", "without", "with/without"], appendRows)
    ].join("\n")
  )
}
