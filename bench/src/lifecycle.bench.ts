/**
 * What stream lifecycle (0009) and crypto-shredding (0010) cost, in one run on one database (`PgEventfold`, pool 8):
 *
 * - `readStream` of a 100-event and of a 1-event stream, 1 and 8 readers: `PgEventStore.readStream` (read_stream of
 *   0009, which reads the stream's row first) against the raw query of 0007 (`SELECT ... FROM events WHERE tenant_id,
 *   stream_type, stream_id AND version >= $from ORDER BY version`) through the same pool; also `read_stream` and the
 *   0007 `read_stream` (recreated under another name) called bare, and both timed inside the server, to tell the
 *   stream-row lookup from the decode.
 * - A feed page of 500 by one stream type (`readAll({ streamTypes })`, which anti-joins archived streams) against the
 *   same page with `includeArchived: true` (no anti-join), with 0 archived streams, 1,000 of another stream type,
 *   1,000 of the page's own, and 7,000 of 12,016 (still 1,000 of the page's own), archived through
 *   `StreamLifecycle`, on 100,000 bulk-loaded events.
 * - Appends (1 event, 1 and 8 writers) and `CommandHandler.load` of a 20-event aggregate whose events carry two
 *   `PersonalData.field` strings: the plain stack against `PersonalData.layer` over `PgKeyStore`, and over
 *   `KeyStore.layerMemory` (the crypto's CPU without the key's round trip).
 *
 * Throughputs are medians of alternating rounds; ratios are time ratios (above 1: slower than the baseline), medians
 * of the per-round ratios.
 *
 * @since 0.4.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Aggregate from "@eventfold/core/Aggregate"
import * as CommandHandler from "@eventfold/core/CommandHandler"
import * as Decider from "@eventfold/core/Decider"
import type * as Errors from "@eventfold/core/Errors"
import * as EventStore from "@eventfold/core/EventStore"
import * as ExpectedVersion from "@eventfold/core/ExpectedVersion"
import * as KeyStore from "@eventfold/core/KeyStore"
import * as PersonalData from "@eventfold/core/PersonalData"
import * as Position from "@eventfold/core/Position"
import type * as RecordedEvent from "@eventfold/core/RecordedEvent"
import * as StreamLifecycle from "@eventfold/core/StreamLifecycle"
import * as Tenant from "@eventfold/core/Tenant"
import * as PgEventfold from "@eventfold/postgres/PgEventfold"
import * as PgEventStore from "@eventfold/postgres/PgEventStore"
import * as PgKeyStore from "@eventfold/postgres/PgKeyStore"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import pg from "pg"
import * as util from "./util.js"

const POOL_SIZE = 8
const ROUNDS = 7
const WARMUP_MS = 150
const DURATION_MS = 500
const READERS = 8
const READ_TYPE = "Account"
const LOOP_RUNS = { warmup: 2, runs: 7 } as const

const FEED_EVENTS = 100_000
const FEED_BATCH = 1_000
const PAGE = 500
const ARCHIVED = 1_000
const FEED_RUNS = { warmup: 3, runs: 21 } as const
const EXPLAIN_RUNS = 7
/** The page's stream type: 20 % of the feed, 4,000 streams of 5 events spread evenly through it. */
const FEED_TYPE = "Order"
const FEED_STREAMS = 4_000
/** The other stream types (2,000 streams of 10 events each); the second state archives streams of the first. */
const OTHER_TYPES = ["Other1", "Other2", "Other3", "Other4"] as const
/** How many streams of each other type the last state archives (with the page's own 1,000): 58 % of all streams. */
const MOSTLY_ARCHIVED = 1_500

const LOAD_EVENTS = 20
const CUSTOMER = "Customer"
const TENANT = Tenant.defaultId
const MAX_INT = 2_147_483_647

type Runtime = ManagedRuntime.ManagedRuntime<PgEventfold.Services, Errors.StoreError | Errors.InvalidInput>

/** Fails the run when a measured operation returned the wrong thing: a fast empty read proves nothing. */
class WrongResult extends Schema.TaggedError<WrongResult>()("WrongResult", { message: Schema.String }) {}
const expect = (ok: boolean, message: () => string): Effect.Effect<void, WrongResult> =>
  ok ? Effect.void : Effect.fail(new WrongResult({ message: message() }))
const check = (ok: boolean, message: () => string): void => {
  if (!ok) throw new Error(message())
}

// ---------------------------------------------------------------------------------------------------------------
// Measuring

/** One contender of a throughput workload: `op(worker, k)` is worker `worker`'s `k`-th operation. */
type Op = (worker: number, k: number) => Effect.Effect<number, unknown>

const measure = (runtime: Runtime, workers: number, op: Op) => {
  const counts = new Array<number>(workers).fill(0)
  const options: util.ThroughputOptions = { workers, warmupMs: WARMUP_MS, durationMs: DURATION_MS }
  return () => runtime.runPromise(util.throughputEffect(options, (worker) => op(worker, counts[worker]!++)))
}

/** Per contender, its throughput in each round; round r starts with contender r mod n. */
const alternate = async (
  contenders: ReadonlyArray<() => Promise<util.Throughput>>
): Promise<ReadonlyArray<ReadonlyArray<number>>> => {
  const perRound = contenders.map((): Array<number> => [])
  for (let round = 0; round < ROUNDS; round++) {
    for (let j = 0; j < contenders.length; j++) {
      const i = (round + j) % contenders.length
      perRound[i]!.push((await contenders[i]!()).perSecond)
    }
  }
  return perRound
}

/** The time of `a` over the time of `b` (above 1: `a` is slower), the median of the per-round ratios. */
const timeRatio = (perRound: ReadonlyArray<ReadonlyArray<number>>, a: number, b: number): number =>
  util.median(perRound[b]!.map((value, round) => value / perRound[a]![round]!))

const times = (ratio: number) => `${ratio.toFixed(2)}×`
const perSecond = (values: ReadonlyArray<number>) => util.formatNumber(util.median(values))
const roundsOf = (values: ReadonlyArray<number>) => values.map((v) => util.formatNumber(v)).join(" ")

// ---------------------------------------------------------------------------------------------------------------
// readStream: read_stream of 0009 against the 0007 query

const COLUMNS = util.EVENT_COLUMNS

/** How 0007 read a stream forward, as one statement: the baseline. */
const RAW_0007 = `SELECT ${COLUMNS} FROM eventfold.events
  WHERE tenant_id = $1 AND stream_type = $2 AND stream_id = $3 AND version >= $4 ORDER BY version`

/** read_stream of 0007_tenancy.sql, verbatim but for its name: what 0009 replaced. */
const CREATE_READ_STREAM_0007 = `CREATE FUNCTION eventfold.bench_read_stream_0007(
  p_tenant_id text, p_stream_type text, p_stream_id text, p_from integer, p_limit integer, p_backward boolean
) RETURNS TABLE (
  global_position bigint, transaction_id xid8, event_id uuid, tenant_id text, stream_type text, stream_id text,
  version integer, event_type text, schema_version integer, payload jsonb, metadata jsonb, recorded_at timestamptz,
  stream_version integer
)
LANGUAGE plpgsql
SET search_path TO eventfold, pg_catalog
AS $$
#variable_conflict use_column
BEGIN
  IF p_tenant_id IS NULL OR p_tenant_id = '' OR p_tenant_id = '*' THEN
    RAISE EXCEPTION 'read_stream: invalid tenant id %', coalesce('"' || p_tenant_id || '"', 'NULL')
      USING ERRCODE = '22023';
  END IF;
  PERFORM enter_tenant(p_tenant_id);
  IF p_backward THEN
    RETURN QUERY
      SELECT e.global_position, e.transaction_id, e.event_id, e.tenant_id, e.stream_type, e.stream_id, e.version,
             e.event_type, e.schema_version, e.payload, e.metadata, e.recorded_at, NULL::integer
        FROM events e
       WHERE e.tenant_id = p_tenant_id AND e.stream_type = p_stream_type AND e.stream_id = p_stream_id
         AND e.version <= p_from
       ORDER BY e.version DESC
       LIMIT p_limit;
  ELSE
    RETURN QUERY
      SELECT e.global_position, e.transaction_id, e.event_id, e.tenant_id, e.stream_type, e.stream_id, e.version,
             e.event_type, e.schema_version, e.payload, e.metadata, e.recorded_at, NULL::integer
        FROM events e
       WHERE e.tenant_id = p_tenant_id AND e.stream_type = p_stream_type AND e.stream_id = p_stream_id
         AND e.version >= p_from
       ORDER BY e.version
       LIMIT p_limit;
  END IF;
  IF NOT FOUND THEN
    RETURN QUERY
      SELECT NULL::bigint, NULL::xid8, NULL::uuid, NULL::text, NULL::text, NULL::text, NULL::integer, NULL::text,
             NULL::integer, NULL::jsonb, NULL::jsonb, NULL::timestamptz,
             coalesce((SELECT s.version FROM streams s
                        WHERE s.tenant_id = p_tenant_id AND s.stream_type = p_stream_type
                          AND s.stream_id = p_stream_id), 0);
  END IF;
END;
$$`

const READ_STREAM_0009 = "SELECT * FROM eventfold.read_stream($1, $2, $3, $4, $5, $6, $7)"
const READ_STREAM_0007 = "SELECT * FROM eventfold.bench_read_stream_0007($1, $2, $3, $4, $5, $6)"

/** Reader `w`'s stream of `events` events. */
const readStreamId = (events: number, worker: number) => `read${events}-${worker}`

interface ReadContender {
  readonly label: string
  /** The stream's events: decoded by readStream, rows as pg parsed them otherwise. */
  readonly read: (streamId: string) => Effect.Effect<ReadonlyArray<unknown>, unknown>
  /** The ids of the events `read` returns, for the check before the measurement. */
  readonly eventIds: (streamId: string) => Effect.Effect<ReadonlyArray<string>, unknown>
}

interface EventIdRow {
  readonly event_id: string
}

/** A contender reading rows with one statement through the pool. */
const rawContender = (
  sql: SqlClient.SqlClient,
  label: string,
  text: string,
  params: (streamId: string) => ReadonlyArray<unknown>
): ReadContender => ({
  label,
  read: (streamId) => sql.unsafe(text, params(streamId)),
  eventIds: (streamId) =>
    Effect.map(sql.unsafe<EventIdRow>(text, params(streamId)), (rows) => rows.map((row) => row.event_id))
})

const readContenders = (
  store: EventStore.EventStore["Type"],
  sql: SqlClient.SqlClient
): ReadonlyArray<ReadContender> => [
  {
    label: "readStream",
    read: (streamId) => store.readStream({ streamType: READ_TYPE, streamId }),
    eventIds: (streamId) =>
      Effect.map(store.readStream({ streamType: READ_TYPE, streamId }), (events) => events.map((e) => e.eventId))
  },
  rawContender(sql, "0007 query", RAW_0007, (streamId) => [TENANT, READ_TYPE, streamId, 1]),
  rawContender(sql, "read_stream()", READ_STREAM_0009, (streamId) => [
    TENANT,
    READ_TYPE,
    streamId,
    1,
    MAX_INT,
    false,
    false
  ]),
  rawContender(sql, "0007 read_stream()", READ_STREAM_0007, (streamId) => [
    TENANT,
    READ_TYPE,
    streamId,
    1,
    MAX_INT,
    false
  ])
]

const readStreams = async (runtime: Runtime, client: pg.Client) => {
  const [store, sql] = await runtime.runPromise(Effect.all([EventStore.EventStore, SqlClient.SqlClient]))
  const raw = sql.withoutTransforms()
  await runtime.runPromise(Effect.forEach(
    [100, 1].flatMap((events) => Array.from({ length: READERS }, (_, w) => ({ events, w }))),
    ({ events, w }) =>
      store.append({
        streamType: READ_TYPE,
        streamId: readStreamId(events, w),
        expectedVersion: ExpectedVersion.NoStream,
        events: Array.from({ length: events }, (_, i) => ({
          type: i % 3 === 2 ? "Withdrawn" : "Deposited",
          payload: { amount: (i % 97) + 1, note: "benchmark event" },
          metadata: { correlationId: "bench" }
        }))
      }),
    { discard: true }
  ))
  await client.query(CREATE_READ_STREAM_0007)
  await client.query("VACUUM ANALYZE eventfold.events, eventfold.streams")
  const contenders = readContenders(store, raw)

  // Every contender reads the same events before its time means anything.
  for (const events of [100, 1]) {
    const ids = await runtime.runPromise(Effect.forEach(contenders, (c) => c.eventIds(readStreamId(events, 0))))
    for (const [i, list] of ids.entries()) {
      check(
        list.length === events && list.every((id, j) => id === ids[0]![j]),
        () => `${contenders[i]!.label}: read ${list.length} events of ${events}, or other ones`
      )
    }
  }

  const rows: Array<ReadonlyArray<string>> = []
  const detail: Array<ReadonlyArray<string>> = []
  for (const events of [100, 1]) {
    for (const workers of [1, READERS]) {
      const name = `${events}-event stream, ${workers} reader${workers === 1 ? "" : "s"}`
      const perRound = await alternate(
        contenders.map((c) =>
          measure(runtime, workers, (worker) =>
            c.read(readStreamId(events, worker)).pipe(
              Effect.flatMap((read) => expect(read.length === events, () => `${c.label}: ${read.length} events`)),
              Effect.as(1)
            ))
        )
      )
      rows.push([
        name,
        ...perRound.map(perSecond),
        times(timeRatio(perRound, 0, 1)),
        times(timeRatio(perRound, 2, 3)),
        times(timeRatio(perRound, 0, 2))
      ])
      detail.push([name, ...perRound.map(roundsOf)])
    }
  }
  return { rows, detail, inServer: await readStreamsInServer(client) }
}

/** Server time per call, from many calls in one statement (no round trip, no transfer): the SQL cost alone. */
const readStreamsInServer = async (client: pg.Client) => {
  const loops: ReadonlyArray<readonly [label: string, from: string]> = [
    ["read_stream()", "eventfold.read_stream($2, $3, $4, 1 + 0 * g, 2147483647, false, false)"],
    ["0007 read_stream()", "eventfold.bench_read_stream_0007($2, $3, $4, 1 + 0 * g, 2147483647, false)"],
    [
      "0007 query",
      `(SELECT ${COLUMNS} FROM eventfold.events WHERE tenant_id = $2 AND stream_type = $3 AND stream_id = $4
        AND version >= 1 + 0 * g ORDER BY version)`
    ]
  ]
  const rows: Array<ReadonlyArray<string>> = []
  for (const events of [100, 1]) {
    const calls = events === 100 ? 1_000 : 5_000
    const counted: Array<number> = []
    const ms = await util.medianMs(
      LOOP_RUNS,
      loops.map(([, from], i) => async () => {
        const result = await client.query<{ n: string }>(
          `SELECT count(*) AS n FROM generate_series(1, $1::integer) AS g, LATERAL ${from} AS r`,
          [calls, TENANT, READ_TYPE, readStreamId(events, 0)]
        )
        counted[i] = Number(result.rows[0]!.n)
      })
    )
    counted.forEach((n, i) => check(n === calls * events, () => `${loops[i]![0]} in the server: ${n} rows`))
    const micros = ms.map((m) => (m * 1000) / calls)
    rows.push([
      `${events}-event stream (${util.formatNumber(calls)} calls)`,
      ...micros.map((us) => util.formatNumber(us, 1)),
      times(micros[0]! / micros[1]!)
    ])
  }
  return rows
}

// ---------------------------------------------------------------------------------------------------------------
// The feed: the archived-streams anti-join

/**
 * Events 0 to FEED_EVENTS - 1, one transaction per 1,000, in the default tenant: every fifth of FEED_TYPE (stream
 * `o-<k>` for k < 4,000, 5 events each, spread evenly through the feed), the others of Other1-Other4 (2,000 streams
 * of 10 events each); then a streams row per stream, as append_events leaves it.
 */
const loadFeed = async (client: pg.Client) => {
  await client.query("SET synchronous_commit = off")
  for (let first = 0; first < FEED_EVENTS; first += FEED_BATCH) {
    await client.query(
      `INSERT INTO eventfold.events (tenant_id, stream_type, stream_id, version, event_id, event_type, payload,
                                     metadata)
       SELECT $3, CASE WHEN n % 5 = 0 THEN $4 ELSE 'Other' || (n % 5) END,
              CASE WHEN n % 5 = 0 THEN 'o-' || (n / 5 % $5::integer) ELSE 'x-' || (n / 5 % 2000) END,
              CASE WHEN n % 5 = 0 THEN n / 5 / $5::integer + 1 ELSE n / 5 / 2000 + 1 END,
              gen_random_uuid(), CASE WHEN n % 5 = 0 THEN 'OrderPlaced' ELSE 'Happened' END,
              jsonb_build_object('amount', n % 100 + 1, 'note', 'benchmark event'), '{"correlationId": "bench"}'
         FROM generate_series($1::integer, $2::integer) AS n`,
      [first, Math.min(first + FEED_BATCH, FEED_EVENTS) - 1, TENANT, FEED_TYPE, FEED_STREAMS]
    )
  }
  await client.query(
    `INSERT INTO eventfold.streams (tenant_id, stream_type, stream_id, version)
     SELECT tenant_id, stream_type, stream_id, max(version) FROM eventfold.events GROUP BY 1, 2, 3`
  )
  await client.query("SET synchronous_commit = on")
  await client.query("VACUUM ANALYZE eventfold.events, eventfold.streams")
}

interface PlanNode {
  readonly "Node Type": string
  readonly "Relation Name"?: string
  readonly "Index Name"?: string
  readonly "Join Type"?: string
  readonly "Actual Rows"?: number
  readonly "Actual Loops"?: number
  readonly Plans?: ReadonlyArray<PlanNode>
}

const nodesOf = (node: PlanNode): ReadonlyArray<PlanNode> => [node, ...(node.Plans ?? []).flatMap(nodesOf)]

/** "Nested Loop Anti, Index Scan events_stream_type_feed_idx, Index Only Scan streams_archived_idx". */
const summarize = (plan: PlanNode): string =>
  nodesOf(plan)
    .filter((node) => !["Limit", "Result", "Hash", "Materialize"].includes(node["Node Type"]))
    .map((node) =>
      `${node["Node Type"]}${
        node["Join Type"] === undefined || node["Join Type"] === "Inner" ? "" : ` ${node["Join Type"]}`
      }${node["Index Name"] ? ` ${node["Index Name"]}` : node["Relation Name"] ? ` ${node["Relation Name"]}` : ""}`
    )
    .join(", ")

/** How many rows the plan read from events: the rows its scans of events returned. */
const eventRowsRead = (plan: PlanNode): number =>
  nodesOf(plan)
    .filter((node) => node["Relation Name"] === "events")
    .reduce((sum, node) => sum + (node["Actual Rows"] ?? 0) * (node["Actual Loops"] ?? 1), 0)

interface FeedState {
  readonly name: string
  /** Whether the page leaves events out (the archived streams are of its own stream type). */
  readonly filters: boolean
}

/** The page with and without the anti-join: `EventStore.readAll` times, server times and plans. */
const measureFeedState = async (
  runtime: Runtime,
  client: pg.Client,
  after: Position.Position,
  state: FeedState,
  archivedIds: ReadonlySet<string>
) => {
  const [store, sql] = await runtime.runPromise(Effect.all([EventStore.EventStore, SqlClient.SqlClient]))
  const variants = [false, true]
  const pages = variants.map((includeArchived): PgEventStore.FeedPage => ({
    scope: Tenant.allScope,
    after,
    limit: PAGE,
    streamTypes: [FEED_TYPE],
    includeArchived
  }))
  const read: Array<ReadonlyArray<RecordedEvent.RecordedEvent>> = [[], []]
  const ms = await util.medianMs(
    FEED_RUNS,
    variants.map((includeArchived, i) => async () => {
      read[i] = await runtime.runPromise(
        store.readAll({ after, limit: PAGE, streamTypes: [FEED_TYPE], includeArchived })
      )
    })
  )
  const server = variants.map((): Array<number> => [])
  const plans = variants.map(() => ({ plan: "", rows: 0 }))
  for (let run = 0; run < EXPLAIN_RUNS; run++) {
    for (const [i, page] of pages.entries()) {
      const [text, params] = PgEventStore.readAllStatement(sql, "eventfold", page).compile()
      const result = await client.query<{ "QUERY PLAN": ReadonlyArray<{ "Execution Time": number; Plan: PlanNode }> }>(
        `EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ${text}`,
        [...params]
      )
      const explained = result.rows[0]!["QUERY PLAN"][0]!
      server[i]!.push(explained["Execution Time"])
      plans[i] = { plan: summarize(explained.Plan), rows: eventRowsRead(explained.Plan) }
    }
  }

  const filtered = read[0]!
  const all = read[1]!
  check(
    filtered.length === PAGE && all.length === PAGE,
    () => `${state.name}: pages of ${filtered.length}, ${all.length}`
  )
  check(
    filtered.every((e) => e.streamType === FEED_TYPE && !archivedIds.has(e.streamId)),
    () => `${state.name}: an archived stream's event in the page`
  )
  const archivedInAll = all.filter((e) => archivedIds.has(e.streamId)).length
  if (state.filters) {
    check(archivedInAll > 0, () => `${state.name}: the page with archived streams holds none of theirs`)
  } else {
    check(filtered.every((e, i) => e.eventId === all[i]!.eventId), () => `${state.name}: the pages differ`)
  }
  const serverMs = server.map(util.median)
  return variants.map((includeArchived, i) => [
    state.name,
    includeArchived ? "includeArchived: true" : "default (anti-join)",
    includeArchived ? String(archivedInAll) : "0",
    util.formatNumber(ms[i]!, 2),
    util.formatNumber(serverMs[i]!, 2),
    i === 0 ? times(ms[0]! / ms[1]!) : "",
    i === 0 ? times(serverMs[0]! / serverMs[1]!) : "",
    util.formatNumber(plans[i]!.rows),
    plans[i]!.plan
  ])
}

const feed = async (runtime: Runtime, client: pg.Client) => {
  const lifecycle = await runtime.runPromise(StreamLifecycle.StreamLifecycle)
  const middle = await client.query<{ transaction_id: string; global_position: string }>(
    `SELECT transaction_id::text, global_position::text FROM eventfold.events
      WHERE stream_type = $1 ORDER BY transaction_id, global_position OFFSET $2 LIMIT 1`,
    [FEED_TYPE, FEED_EVENTS / 5 / 2]
  )
  const after = Position.make(BigInt(middle.rows[0]!.transaction_id), BigInt(middle.rows[0]!.global_position))

  const change = async (
    what: "archive" | "unarchive",
    streamType: string,
    ids: ReadonlyArray<string>
  ): Promise<number> => {
    const started = performance.now()
    await runtime.runPromise(
      Effect.forEach(ids, (streamId) => lifecycle[what]({ streamType, streamId }), {
        concurrency: POOL_SIZE,
        discard: true
      })
    )
    const seconds = (performance.now() - started) / 1000
    await client.query("VACUUM ANALYZE eventfold.streams")
    return seconds
  }
  const ids = (prefix: string, count: number, step = 1) =>
    Array.from({ length: count }, (_, k) => `${prefix}-${k * step}`)
  // Every fourth stream of the page's type: a quarter of its events, spread through the whole feed.
  const own = ids("o", ARCHIVED, FEED_STREAMS / ARCHIVED)
  const measureState = (name: string, archivedIds: ReadonlySet<string>) =>
    measureFeedState(runtime, client, after, { name, filters: archivedIds.size > 0 }, archivedIds)

  const rows: Array<ReadonlyArray<string>> = []
  rows.push(...await measureState("0 archived", new Set()))
  const archiveSeconds = await change("archive", OTHER_TYPES[0], ids("x", ARCHIVED))
  rows.push(...await measureState(`${util.formatNumber(ARCHIVED)} archived, of ${OTHER_TYPES[0]}`, new Set()))
  await change("unarchive", OTHER_TYPES[0], ids("x", ARCHIVED))
  await change("archive", FEED_TYPE, own)
  rows.push(...await measureState(`${util.formatNumber(ARCHIVED)} archived, of ${FEED_TYPE}`, new Set(own)))
  // A store where most streams ended up archived, but still only a quarter of the page's type.
  for (const type of OTHER_TYPES) await change("archive", type, ids("x", MOSTLY_ARCHIVED))
  const most = ARCHIVED + OTHER_TYPES.length * MOSTLY_ARCHIVED
  rows.push(
    ...await measureState(
      `${util.formatNumber(most)} archived (${util.formatNumber(ARCHIVED)} of ${FEED_TYPE})`,
      new Set(own)
    )
  )
  return { rows, archivesPerSecond: ARCHIVED / archiveSeconds }
}

// ---------------------------------------------------------------------------------------------------------------
// Personal data: appends and loads through PersonalData.layer

const forgottenValue = "[forgotten]"
const personal = PersonalData.field(Schema.String, { subject: "customerId", redacted: forgottenValue })

/** A customer's contact details changed: two personal fields of the customer in `customerId`. */
class ContactChanged extends Schema.TaggedClass<ContactChanged>()("ContactChanged", {
  customerId: Schema.String,
  name: personal,
  email: personal,
  visit: Schema.Number
}) {}

interface Contact {
  readonly name: string
  readonly email: string
  readonly visits: number
}

/** The same aggregate on every stack: only the Layers around it differ. */
const Customers = Aggregate.make({
  name: CUSTOMER,
  events: ContactChanged,
  decider: Decider.make<Contact, util.Noop, ContactChanged>({
    initialState: { name: "", email: "", visits: 0 },
    evolve: (state, event) => ({ name: event.name, email: event.email, visits: state.visits + event.visit }),
    decide: () => Effect.succeed([])
  })
})

const contactOf = (customerId: string, visit: number) =>
  new ContactChanged({ customerId, name: "Ada Lovelace", email: `${customerId}@example.com`, visit })

interface PersonalStack {
  readonly label: string
  readonly store: EventStore.EventStore["Type"]
  readonly handler: CommandHandler.CommandHandler<Contact, util.Noop, ContactChanged, never>
}

interface PersonalWorkload {
  readonly name: string
  readonly unit: string
  readonly workers: number
  readonly op: (stack: PersonalStack, label: string) => Op
}

/** Contender `label`'s stream for reader `w` of the load workloads. */
const loadStreamId = (label: string, worker: number) => `load-${label}-${worker}`

const personalData = async (runtime: Runtime, client: pg.Client, scope: Scope.Scope) => {
  const decorated = (
    keys: Layer.Layer<KeyStore.KeyStore, Errors.StoreError | Errors.InvalidInput, SqlClient.SqlClient>
  ) =>
    runtime.runPromise(
      Layer.buildWithScope(PersonalData.layer({ aggregates: [Customers] }).pipe(Layer.provideMerge(keys)), scope)
    )
  const contexts = [
    { label: "plain", context: Context.empty() },
    { label: "pii-pg", context: await decorated(PgKeyStore.layer()) },
    { label: "pii-mem", context: await decorated(KeyStore.layerMemory) }
  ]
  const stacks: ReadonlyArray<PersonalStack> = await runtime.runPromise(
    Effect.forEach(contexts, ({ context, label }) =>
      Effect.map(
        Effect.all([EventStore.EventStore, CommandHandler.make(Customers)]),
        ([store, handler]): PersonalStack => ({ label, store, handler })
      ).pipe(Effect.provide(context)))
  )

  // One 20-event stream per reader and stack, written through that stack (so encrypted on the personal ones).
  await runtime.runPromise(Effect.forEach(
    stacks.flatMap((stack) => Array.from({ length: READERS }, (_, w) => ({ stack, w }))),
    ({ stack, w }) =>
      Effect.flatMap(
        Effect.forEach(
          Array.from({ length: LOAD_EVENTS }, (_, i) => i + 1),
          (visit) => Customers.encodeEvent(contactOf(loadStreamId(stack.label, w), visit))
        ),
        (events) =>
          stack.store.append({
            streamType: CUSTOMER,
            streamId: loadStreamId(stack.label, w),
            expectedVersion: ExpectedVersion.NoStream,
            events
          })
      ),
    { discard: true }
  ))
  await client.query("VACUUM ANALYZE eventfold.events, eventfold.streams, eventfold.subject_keys")
  // The personal stacks must really have encrypted, and the plain one not.
  for (const stack of stacks) {
    const stored = await client.query<{ payload: Record<string, unknown> }>(
      "SELECT payload FROM eventfold.events WHERE stream_type = $1 AND stream_id = $2 AND version = 1",
      [CUSTOMER, loadStreamId(stack.label, 0)]
    )
    const email = stored.rows[0]?.payload.email
    const sealed = typeof email === "object" && email !== null && "$pii" in email
    check(sealed === (stack.label !== "plain"), () => `${stack.label}: stored email ${JSON.stringify(email)}`)
  }
  const expectedVisits = (LOAD_EVENTS * (LOAD_EVENTS + 1)) / 2

  const appendOp = (stack: PersonalStack, label: string): Op => {
    const versions = new Map<string, number>()
    return (worker, k) => {
      const streamId = `${label}-${stack.label}-w${worker}`
      return Customers.encodeEvent(contactOf(streamId, k)).pipe(
        Effect.flatMap((event) =>
          stack.store.append({
            streamType: CUSTOMER,
            streamId,
            expectedVersion: ExpectedVersion.Exact(versions.get(streamId) ?? 0),
            events: [event]
          })
        ),
        Effect.map((result) => {
          versions.set(streamId, result.version)
          return 1
        })
      )
    }
  }
  const loadOp = (stack: PersonalStack): Op => (worker) => {
    const streamId = loadStreamId(stack.label, worker)
    return stack.handler.load(streamId).pipe(
      Effect.flatMap((loaded) =>
        expect(
          loaded.version === LOAD_EVENTS && loaded.state.visits === expectedVisits &&
            loaded.state.email === `${streamId}@example.com`,
          () => `${stack.label}: loaded ${JSON.stringify(loaded)}`
        )
      ),
      Effect.as(1)
    )
  }

  const workloads: ReadonlyArray<PersonalWorkload> = [
    { name: "append 1 event, 1 writer", unit: "appends/s", workers: 1, op: appendOp },
    { name: "append 1 event, 8 writers (own streams)", unit: "appends/s", workers: 8, op: appendOp },
    { name: `CommandHandler.load, ${LOAD_EVENTS} events, 1 reader`, unit: "loads/s", workers: 1, op: loadOp },
    { name: `CommandHandler.load, ${LOAD_EVENTS} events, 8 readers`, unit: "loads/s", workers: 8, op: loadOp }
  ]
  const rows: Array<ReadonlyArray<string>> = []
  const detail: Array<ReadonlyArray<string>> = []
  for (const [index, workload] of workloads.entries()) {
    const perRound = await alternate(
      stacks.map((stack) => measure(runtime, workload.workers, workload.op(stack, `a${index}`)))
    )
    rows.push([
      workload.name,
      workload.unit,
      ...perRound.map(perSecond),
      times(timeRatio(perRound, 1, 0)),
      times(timeRatio(perRound, 2, 0)),
      times(timeRatio(perRound, 1, 2))
    ])
    detail.push([workload.name, ...perRound.map(roundsOf)])
  }
  return { rows, detail }
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * @since 0.4.0
 */
export const main = (ctx: { readonly serverUrl: string }): Promise<void> =>
  util.withDatabase(ctx.serverUrl, "eventfold_bench_lifecycle", async (database) => {
    const server = await util.describeServer(database.url)
    const runtime: Runtime = ManagedRuntime.make(PgEventfold.layer({
      database: { url: database.url, maxConnections: POOL_SIZE, applicationName: "bench-lifecycle" }
    }))
    const client = new pg.Client({ connectionString: database.url, connectionTimeoutMillis: 5_000 })
    const scope = Effect.runSync(Scope.make())
    try {
      await runtime.runPromise(Effect.void)
      await client.connect()
      const feedStarted = performance.now()
      await loadFeed(client)
      const loadSeconds = (performance.now() - feedStarted) / 1000
      const reads = await readStreams(runtime, client)
      const feedRows = await feed(runtime, client)
      const personal = await personalData(runtime, client, scope)
      print(server, loadSeconds, reads, feedRows, personal)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await client.end()
      await runtime.dispose()
    }
  })

const print = (
  server: string,
  loadSeconds: number,
  reads: Awaited<ReturnType<typeof readStreams>>,
  feedRows: Awaited<ReturnType<typeof feed>>,
  personal: Awaited<ReturnType<typeof personalData>>
) => {
  const rounds = `medians of ${ROUNDS} alternating rounds of ${WARMUP_MS / 1000} s warm-up + ${
    DURATION_MS / 1000
  } s measured; ratios: time against time, medians of the per-round ratios (above 1: slower)`
  console.log(
    [
      `stream lifecycle and personal data (${server}); PgEventfold, pool ${POOL_SIZE}, NOTIFY on, outbox off; ` +
      `${util.formatNumber(FEED_EVENTS)} events bulk-loaded first (${loadSeconds.toFixed(1)} s)`,
      "",
      `readStream, reads/s (${rounds}). readStream: EventStore.readStream (0009 read_stream, row decode); ` +
      "0007 query: the events SELECT of 0007 through the same pool; read_stream(): the 0009 function called bare; " +
      "0007 read_stream(): 0007's function, recreated, called bare",
      util.formatTable(
        [
          "workload",
          "readStream",
          "0007 query",
          "read_stream()",
          "0007 read_stream()",
          "readStream/0007 query",
          "read_stream()/0007 fn",
          "readStream/read_stream()"
        ],
        reads.rows
      ),
      "",
      `in the server: µs per call, from N calls in one statement (LATERAL over generate_series), medians of ` +
      `${LOOP_RUNS.runs}`,
      util.formatTable(["stream", "read_stream()", "0007 read_stream()", "0007 query", "0009/0007 fn"], reads.inServer),
      "",
      `feed page of ${PAGE} by one stream type (${FEED_TYPE}, 20 % of the feed) from its middle: EventStore.readAll ` +
      `(decode included), medians of ${FEED_RUNS.runs} interleaved runs; server: EXPLAIN (ANALYZE, TIMING OFF) of ` +
      `the same statement, median of ${EXPLAIN_RUNS}; archived through StreamLifecycle.archive ` +
      `(${util.formatNumber(feedRows.archivesPerSecond)} archives/s, ${POOL_SIZE} at a time)`,
      util.formatTable(
        [
          "archived streams",
          "page",
          "archived rows",
          "ms",
          "server ms",
          "ratio",
          "server ratio",
          "events read",
          "plan"
        ],
        feedRows.rows
      ),
      "",
      `personal data: ContactChanged with two PersonalData.field strings (name, email), ${LOAD_EVENTS}-event ` +
      `streams for loads; plain: no PersonalData.layer; pii-pg: PersonalData.layer over PgKeyStore; pii-mem: over ` +
      `KeyStore.layerMemory (${rounds})`,
      util.formatTable(
        ["workload", "unit", "plain", "pii-pg", "pii-mem", "pii-pg/plain", "pii-mem/plain", "pii-pg/pii-mem"],
        personal.rows
      ),
      "",
      "rounds (per second, in round order):",
      util.formatTable(
        ["workload", "readStream", "0007 query", "read_stream()", "0007 read_stream()"],
        reads.detail
      ),
      util.formatTable(["workload", "plain", "pii-pg", "pii-mem"], personal.detail)
    ].join("\n")
  )
}
