// Every kind of feed page is served by an index (migration 0008): EXPLAIN of exactly the statement the store runs, on
// a populated table, for the plain query (PgEventStore.readAllStatement) and for read_all under row-level security
// (the text of read_all_query, run through EXECUTE ... USING as read_all runs it). Each page also reads the same
// events as a naive query that uses no index, and so does the EventStore API, through both paths.
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, layer } from "@effect/vitest"
import type { EventStore } from "@eventfold/core"
import { Position, Tenant } from "@eventfold/core"
import { PgConfig, PgDatabase, PgEventStore, PgTest } from "@eventfold/postgres"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"

const SCHEMA = "eventfold"
/** 100 batches of 1,000 events, each batch its own transaction; the last 5,000 events are of a type new to the feed. */
const BATCHES = 100
const BATCH = 1_000
const EVENTS = BATCHES * BATCH
const BURST = 5_000
const START = Date.UTC(2026, 0, 1)
const PAGE = 500

interface Fixture {
  /** The tables' owner: it bypasses row-level security, so it sees what the plain query of a store without it sees. */
  readonly admin: SqlClient.SqlClient
  /** The application role, under row-level security. */
  readonly app: SqlClient.SqlClient
  /** The store without row-level security: it sends `readAllStatement`. */
  readonly plain: EventStore.EventStore["Type"]
  /** The store with row-level security: it calls `read_all`. */
  readonly secured: EventStore.EventStore["Type"]
}

class Populated extends Context.Tag("QueryPlans/Populated")<Populated, Fixture>() {}

/**
 * 20 event types (5 % of the events each), each of one of 4 stream types; 8 tenants; one event a second from START;
 * then BURST events of a type and stream type the feed had not seen (a type added by a later release: all its events
 * come late in the feed, where a walk of the whole feed's index reaches them last).
 */
const populate = (sql: SqlClient.SqlClient) =>
  Effect.forEach(
    Array.from({ length: BATCHES }, (_, b) => b),
    (b) =>
      sql`INSERT INTO ${sql(`${SCHEMA}.events`)}
          (tenant_id, stream_type, stream_id, version, event_id, event_type, payload, recorded_at)
        SELECT 'tenant-' || (abs(hashint4(n + 7)) % 8),
               CASE WHEN n >= ${EVENTS - BURST} THEN 'Burst' ELSE 'Stream' || (abs(hashint4(n)) % 20 / 5) END,
               's-' || (n % 1000), n + 1, gen_random_uuid(),
               CASE WHEN n >= ${EVENTS - BURST} THEN 'Burst' ELSE 'Type' || (abs(hashint4(n)) % 20) END,
               jsonb_build_object('n', n, 'note', repeat('x', 100)),
               ${new Date(START)}::timestamptz + n * interval '1 second'
          FROM generate_series(${b * BATCH}::integer, ${(b + 1) * BATCH - 1}::integer) AS n`,
    { discard: true }
  )

const fixture = Layer.scoped(
  Populated,
  Effect.gen(function*() {
    const database = yield* PgTest.freshDatabase({ rowLevelSecurity: true })
    const adminContext = yield* Layer.build(PgDatabase.layer({ url: database.adminUrl, maxConnections: 2 }))
    const appContext = yield* Layer.build(PgDatabase.layer({ url: database.url, maxConnections: 2 }))
    const admin = Context.get(adminContext, SqlClient.SqlClient).withoutTransforms()
    const app = Context.get(appContext, SqlClient.SqlClient).withoutTransforms()
    // Plans must not depend on chance: no autovacuum between the statistics and the plans, and statistics from
    // every row (the default samples 30,000 at random), with the visibility map set.
    yield* admin`ALTER TABLE ${admin(`${SCHEMA}.events`)} SET (autovacuum_enabled = off)`
    yield* populate(admin)
    yield* admin.withTransaction(Effect.zipRight(
      admin`SET LOCAL default_statistics_target = 10000`,
      admin`ANALYZE ${admin(`${SCHEMA}.events`)}`
    ))
    yield* admin`VACUUM ${admin(`${SCHEMA}.events`)}`
    // Another test's transaction open on the server holds the feed horizon back: wait until every event is below it,
    // so that each read below sees all of them.
    yield* admin<{ ready: boolean }>`SELECT pg_snapshot_xmin(pg_current_snapshot()) > max(transaction_id) AS ready
      FROM ${admin(`${SCHEMA}.events`)}`.pipe(
      Effect.filterOrFail((rows) => rows[0]?.ready === true, () => "horizon" as const),
      Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 600 })
    )
    // read_all_query's statement as read_all runs it: EXECUTE ... USING, with its parameters, as the calling role.
    yield* admin.unsafe(`CREATE FUNCTION public.explain_read_all(
        p_scope text, p_after_xid xid8, p_after_position bigint, p_limit integer, p_event_types text[],
        p_stream_types text[], p_since timestamptz) RETURNS json
      LANGUAGE plpgsql SET search_path = ${SCHEMA}, pg_catalog AS $$
      DECLARE v_plan json;
      BEGIN
        EXECUTE 'EXPLAIN (FORMAT JSON) ' || read_all_query(p_scope, p_event_types, p_stream_types, p_since, false)
          INTO v_plan USING p_after_xid, p_after_position, p_limit, p_scope, p_event_types, p_stream_types, p_since;
        RETURN v_plan;
      END $$`)
    const plain = yield* PgEventStore.make().pipe(Effect.provide(adminContext))
    const secured = yield* PgEventStore.make().pipe(
      Effect.provide(appContext),
      Effect.provideService(PgConfig.PgConfig, { ...PgConfig.defaults, rowLevelSecurity: true })
    )
    return { admin, app, plain, secured }
  })
)

interface PlanNode {
  readonly "Node Type": string
  readonly "Index Name"?: string
  readonly "Relation Name"?: string
  readonly Plans?: ReadonlyArray<PlanNode>
}

const nodesOf = (node: PlanNode): ReadonlyArray<PlanNode> => [node, ...(node.Plans ?? []).flatMap(nodesOf)]

const planOf = (json: unknown): PlanNode => {
  const parsed: unknown = typeof json === "string" ? JSON.parse(json) : json
  assert.isTrue(Array.isArray(parsed), `EXPLAIN (FORMAT JSON) returned ${String(json)}`)
  return (parsed as ReadonlyArray<{ readonly Plan: PlanNode }>)[0]!.Plan
}

/**
 * The plan reads events only through `index`: index scans of it, or bitmap scans of it where the planner expects so
 * few matching events that reading them all and sorting them costs less; no other index, no sequential scan.
 */
const assertServedBy = (plan: PlanNode, indexes: ReadonlyArray<string>, label: string) => {
  const nodes = nodesOf(plan)
  const summary = JSON.stringify(nodes.map((n) => `${n["Node Type"]} ${n["Index Name"] ?? ""}`.trim()))
  const scans = nodes.filter((node) => node["Relation Name"] === "events")
  assert.isAbove(scans.length, 0, `${label}: no scan of events in ${summary}`)
  for (const scan of scans) {
    const used = scan["Node Type"] === "Bitmap Heap Scan"
      ? nodesOf(scan).filter((n) => n["Node Type"] === "Bitmap Index Scan").map((n) => n["Index Name"])
      : [scan["Index Name"]]
    assert.include(["Index Scan", "Index Only Scan", "Bitmap Heap Scan"], scan["Node Type"], `${label}: ${summary}`)
    assert.strictEqual(new Set(used).size, 1, `${label}: ${summary}`)
    assert.include(indexes, used[0], `${label}: ${summary}`)
  }
}

interface Query {
  readonly label: string
  /** The index that serves it; or, where the planner may take either, the indexes. */
  readonly index: string | ReadonlyArray<string>
  readonly scope: string
  readonly eventTypes?: ReadonlyArray<string>
  readonly streamTypes?: ReadonlyArray<string>
  readonly since?: Date
  /** Starts after the event at this 1-based global position (a page from the middle of the feed). */
  readonly afterEvent?: number
}

const queries: ReadonlyArray<Query> = [
  { label: "one event type", index: "events_type_feed_idx", scope: Tenant.allScope, eventTypes: ["Type7"] },
  {
    label: "one event type, from the middle of the feed",
    index: "events_type_feed_idx",
    scope: Tenant.allScope,
    eventTypes: ["Type7"],
    afterEvent: EVENTS / 2
  },
  // Given `event_type = 'Burst'` and its 5 % share, the planner walked events_feed_idx through the 95,000 older events.
  { label: "a type new to the feed", index: "events_type_feed_idx", scope: Tenant.allScope, eventTypes: ["Burst"] },
  {
    label: "several event types",
    index: "events_type_feed_idx",
    scope: Tenant.allScope,
    eventTypes: ["Type7", "Type23", "Type41", "Burst"]
  },
  { label: "one stream type", index: "events_stream_type_feed_idx", scope: Tenant.allScope, streamTypes: ["Stream3"] },
  {
    label: "several stream types",
    index: "events_stream_type_feed_idx",
    scope: Tenant.allScope,
    streamTypes: ["Stream3", "Burst"]
  },
  {
    label: "event and stream types",
    index: "events_type_feed_idx",
    scope: Tenant.allScope,
    eventTypes: ["Type7", "Type8"],
    streamTypes: ["Stream1"]
  },
  { label: "an event type in a tenant", index: "events_type_feed_idx", scope: "tenant-3", eventTypes: ["Type7"] },
  {
    label: "a stream type in a tenant",
    // Or the unique key (tenant_id, stream_type, ...), all of the tenant's events of the type sorted, when they are few.
    index: ["events_stream_type_feed_idx", "events_stream_version_key"],
    scope: "tenant-3",
    streamTypes: ["Burst"]
  },
  { label: "a tenant's page", index: "events_tenant_feed_idx", scope: "tenant-3" },
  {
    label: "a tenant's page, from the middle of the feed",
    index: "events_tenant_feed_idx",
    scope: "tenant-3",
    afterEvent: EVENTS / 2
  },
  {
    label: "since a recent time",
    index: "events_recorded_at_idx",
    scope: Tenant.allScope,
    since: new Date(START + (EVENTS - 1_000) * 1000)
  },
  {
    label: "since a recent time, in a tenant",
    index: "events_recorded_at_idx",
    scope: "tenant-3",
    since: new Date(START + (EVENTS - BURST) * 1000)
  },
  { label: "the whole feed", index: "events_feed_idx", scope: Tenant.allScope },
  {
    label: "the whole feed, from the middle",
    index: "events_feed_idx",
    scope: Tenant.allScope,
    afterEvent: EVENTS / 2
  }
]

const positionOf = (sql: SqlClient.SqlClient, globalPosition: number | undefined) =>
  globalPosition === undefined ? Effect.succeed(Position.start) : Effect.map(
    sql<{ readonly transaction_id: string; readonly global_position: string }>`
      SELECT transaction_id::text, global_position::text FROM ${sql(`${SCHEMA}.events`)}
       WHERE global_position = ${globalPosition}`,
    (rows) => Position.make(BigInt(rows[0]!.transaction_id), BigInt(rows[0]!.global_position))
  )

const pageOf = (query: Query, after: Position.Position): PgEventStore.FeedPage => ({
  scope: query.scope,
  after,
  limit: PAGE,
  eventTypes: query.eventTypes,
  streamTypes: query.streamTypes,
  since: query.since
})

/** The page by the definition of the feed, with no index at all: every event read, filtered, sorted. */
const reference = (sql: SqlClient.SqlClient, page: PgEventStore.FeedPage) =>
  sql.withTransaction(Effect.gen(function*() {
    for (const setting of ["enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"]) {
      yield* sql`SELECT set_config(${setting}, 'off', true)`
    }
    const rows = yield* sql<{ readonly event_id: string }>`SELECT event_id::text FROM ${sql(`${SCHEMA}.events`)}
      WHERE (transaction_id, global_position) > (${page.after.transactionId.toString()}::xid8, ${page.after.globalPosition.toString()}::bigint)
        AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        AND (${page.scope} = '*' OR tenant_id = ${page.scope})
        AND (${page.eventTypes ?? null}::text[] IS NULL OR event_type = ANY(${page.eventTypes ?? null}::text[]))
        AND (${page.streamTypes ?? null}::text[] IS NULL OR stream_type = ANY(${page.streamTypes ?? null}::text[]))
        AND (${page.since ?? null}::timestamptz IS NULL OR recorded_at >= ${page.since ?? null}::timestamptz)
      ORDER BY transaction_id, global_position LIMIT ${page.limit}`
    return rows.map((row) => row.event_id)
  }))

layer(fixture, { excludeTestServices: true, timeout: "300 seconds" })(
  `feed pages are served by an index (${PgTest.serverLabel()})`,
  (it) => {
    it.effect("the plain query (PgEventStore.readAllStatement): its plan, its rows, and readAll's", () =>
      Effect.gen(function*() {
        const { admin, plain } = yield* Populated
        for (const query of queries) {
          const after = yield* positionOf(admin, query.afterEvent)
          const page = pageOf(query, after)
          const [text, params] = PgEventStore.readAllStatement(admin, SCHEMA, page).compile()
          const explained = yield* admin.unsafe<{ readonly "QUERY PLAN": unknown }>(
            `EXPLAIN (FORMAT JSON) ${text}`,
            params
          )
          assertServedBy(planOf(explained[0]!["QUERY PLAN"]), [query.index].flat(), query.label)
          const expected = yield* reference(admin, page)
          assert.strictEqual(expected.length, PAGE, `${query.label}: the data gives a full page`)
          const rows = yield* admin.unsafe<{ readonly event_id: string }>(text, params)
          assert.deepStrictEqual(rows.map((row) => row.event_id), expected, query.label)
          const read = yield* plain.readAll({
            after,
            limit: PAGE,
            ...(query.scope === Tenant.allScope ? {} : { tenantId: query.scope }),
            ...(query.eventTypes ? { eventTypes: query.eventTypes } : {}),
            ...(query.streamTypes ? { streamTypes: query.streamTypes } : {}),
            ...(query.since ? { since: query.since } : {})
          })
          assert.deepStrictEqual(read.map((e) => e.eventId), expected, `${query.label}: readAll`)
        }
      }))

    it.effect("read_all under row-level security (read_all_query, as the application role): its plan and readAll's", () =>
      Effect.gen(function*() {
        const { admin, app, secured } = yield* Populated
        for (const query of queries) {
          const after = yield* positionOf(admin, query.afterEvent)
          const page = pageOf(query, after)
          const explained = yield* app.withTransaction(Effect.zipRight(
            app`SELECT set_config('eventfold.tenant', ${query.scope}, true)`,
            app<{ readonly plan: unknown }>`SELECT public.explain_read_all(${query.scope},
              ${after.transactionId.toString()}::xid8, ${after.globalPosition.toString()}::bigint, ${PAGE},
              ${query.eventTypes ?? null}::text[], ${query.streamTypes ?? null}::text[],
              ${query.since ?? null}::timestamptz) AS plan`
          ))
          assertServedBy(planOf(explained[0]!.plan), [query.index].flat(), `read_all: ${query.label}`)
          const read = yield* secured.readAll({
            after,
            limit: PAGE,
            ...(query.scope === Tenant.allScope ? { allTenants: true } : { tenantId: query.scope }),
            ...(query.eventTypes ? { eventTypes: query.eventTypes } : {}),
            ...(query.streamTypes ? { streamTypes: query.streamTypes } : {}),
            ...(query.since ? { since: query.since } : {})
          })
          assert.deepStrictEqual(
            read.map((e) => e.eventId),
            yield* reference(admin, page),
            `read_all: ${query.label}: readAll`
          )
        }
      }))
  }
)
