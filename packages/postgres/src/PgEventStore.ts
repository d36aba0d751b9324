/**
 * The PostgreSQL `EventStore`: one round trip per append (the `append_events` function), a gap-free global feed
 * read below the xid8 horizon, over any `SqlClient` from `@effect/sql-pg`.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import type * as Statement from "@effect/sql/Statement"
import * as Errors from "@eventfold/core/Errors"
import * as EventStore from "@eventfold/core/EventStore"
import * as prepare from "@eventfold/core/EventValidation"
import type * as ExpectedVersion from "@eventfold/core/ExpectedVersion"
import * as Position from "@eventfold/core/Position"
import type * as RecordedEvent from "@eventfold/core/RecordedEvent"
import * as Tenant from "@eventfold/core/Tenant"
import * as Clock from "effect/Clock"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as eventRows from "./internal/eventRows.js"
import * as GroupCommit from "./internal/groupCommit.js"
import * as internal from "./internal/sql.js"
import * as PgConfig from "./PgConfig.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The PostgreSQL schema holding eventfold's tables; defaults to the shared `PgConfig` schema ("eventfold"). */
  readonly schema?: string | undefined
  /**
   * Send a `pg_notify` wake-up hint for appends; defaults to the shared `PgConfig` setting (true). An append inside the caller's transaction notifies
   * in that transaction (delivered at its commit). Standalone appends are coalesced to one hint per `notifyInterval`:
   * the first of an interval carries it, and appends left unannounced get one at most two intervals later. A NOTIFY in every
   * append transaction would take PostgreSQL's global notify lock at each commit and serialise concurrent writers.
   */
  readonly notify?: boolean | undefined
  /** The least time between two post-commit hints; defaults to 5 ms. */
  readonly notifyInterval?: Duration.DurationInput | undefined
  /**
   * Write an outbox row per event in the append transaction; defaults to the shared `PgConfig` setting (off). Only
   * configuration decides: an `Outbox` service in context does not turn it on, and its absence does not turn it off.
   */
  readonly outbox?: boolean | undefined
  /**
   * Group commit for appends outside a caller's transaction of up to 16 events (larger appends amortise their commit
   * already and go out on their own); defaults to the shared `PgConfig` setting (on, at most 64 appends a batch). While a batch is in flight, appends from other fibers queue, and the next batch sends them
   * all as one statement (`append_batch`) and one commit. A lone writer's append goes out at once. Each append keeps
   * its own outcome (one append's conflict or duplicate never fails another); a lost connection fails that batch's
   * appends with a retryable `StoreError`. `false` sends every append on its own.
   */
  readonly groupCommit?: boolean | GroupCommitOptions | undefined
}

/**
 * @since 0.4.0
 * @category models
 */
export interface GroupCommitOptions {
  /** The most appends in one batch; defaults to the shared `PgConfig` setting (64). */
  readonly maxBatch?: number | undefined
  /** How many batches may be in flight at once (each on its own connection); defaults to 1: fewer, larger batches
   * cost the server less per append (measured in bench/src/groupCommit.bench.ts). */
  readonly concurrency?: number | undefined
}

const AppendRow = Schema.Struct({
  status: Schema.Literal(
    "ok",
    "idempotent",
    "conflict",
    "duplicate",
    "stale",
    "blocked",
    "archived",
    "deleted",
    // append_batch and try_append_events only: a lock of the append was held elsewhere; it was not attempted.
    "busy"
  ),
  stream_version: Schema.NullOr(Schema.Number),
  transaction_id: Schema.NullOr(Schema.BigInt),
  global_position: Schema.NullOr(Schema.BigInt),
  duplicate_event_id: Schema.NullOr(Schema.String)
})

/**
 * Appends of more events than this go out on their own, in parallel on the pool: they amortise their commit already,
 * and batched they would share one backend (measured: 8 writers of 100-event appends ran at 0.72× raw pg batched).
 */
const GROUP_COMMIT_MAX_EVENTS = 16

/** undefined_function, insufficient_privilege: try_append_events is missing (0015 not applied) or not granted. */
const LONE_FALLBACK_CODES: ReadonlySet<string> = new Set(["42883", "42501"])

const BatchRow = Schema.Struct({ ...AppendRow.fields, ord: Schema.Number })

const PositionRow = Schema.Struct({ transaction_id: Schema.BigInt, global_position: Schema.BigInt })

const decodeAppendRows = internal.decodeRows("append", AppendRow)
const decodeBatchRows = internal.decodeRows("append", BatchRow)
const decodePositionRows = internal.decodeRows("headPosition", PositionRow)

const expectedKind = (expected: ExpectedVersion.ExpectedVersion): string => {
  switch (expected._tag) {
    case "Any":
      return "any"
    case "NoStream":
      return "no_stream"
    case "StreamExists":
      return "stream_exists"
    case "Exact":
      return "exact"
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * One page of the feed as `readAll` reads it: its options validated and its tenant scope resolved.
 *
 * @since 0.4.0
 * @category models
 */
export interface FeedPage {
  /** A tenant, or `Tenant.allScope` for every tenant. */
  readonly scope: string
  readonly after: Position.Position
  readonly limit: number
  /** Without duplicates. */
  readonly eventTypes?: ReadonlyArray<string> | undefined
  /** Without duplicates. */
  readonly streamTypes?: ReadonlyArray<string> | undefined
  readonly since?: Date | undefined
  /** Keep archived streams in a read by stream type (see `StreamLifecycle`). */
  readonly includeArchived?: boolean | undefined
}

/** The most types a page reads with one index scan each; read_all_query (0008_feed_indexes.sql) has the same. */
const MAX_TYPE_SCANS = 16

const COLUMNS = eventRows.EVENT_COLUMNS

/**
 * The statement `readAll` sends for one page without row-level security, for `EXPLAIN` (with it, `read_all` runs the
 * same shapes, built by `read_all_query` in migrations/0008_feed_indexes.sql, which says why each is what it is).
 * Event types, else stream types, up to 16 of them: one scan of `events_type_feed_idx` (or
 * `events_stream_type_feed_idx`) per type, each stopping after a page, sorted together; otherwise the whole feed's
 * index or the tenant's.
 *
 * @since 0.4.0
 * @category utils
 */
export const readAllStatement = (
  sql: SqlClient.SqlClient,
  schema: string,
  page: FeedPage
): Statement.Statement<Record<string, unknown>> => {
  const events = sql(`${schema}.events`)
  const columns = sql.literal(COLUMNS)
  const { eventTypes, scope, since, streamTypes } = page
  const limit = Math.min(page.limit, 2_147_483_647)
  if (eventTypes?.length === 0 || streamTypes?.length === 0) {
    return sql`SELECT ${columns} FROM ${events} WHERE false`
  }
  const oneTenant = scope !== Tenant.allScope
  // Only rows of transactions older than every running one: a row that commits later can never appear behind a
  // checkpoint already handed out.
  const feed =
    sql`(transaction_id, global_position) > (${page.after.transactionId.toString()}::xid8, ${page.after.globalPosition.toString()}::bigint)
    AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())`
  // A read by stream type leaves archived streams out: an anti-join on the small streams_archived_idx (0009). Once
  // most streams are archived the planner reads and sorts every event of the type instead of one page: a known limit.
  const sinceFilter = sql`${since === undefined ? sql`` : sql`AND recorded_at >= ${since}::timestamptz`} ${
    streamTypes === undefined || page.includeArchived === true
      ? sql``
      : sql`AND NOT EXISTS (SELECT 1 FROM ${sql(`${schema}.streams`)} s WHERE s.archived
          AND s.tenant_id = ${events}.tenant_id AND s.stream_type = ${events}.stream_type
          AND s.stream_id = ${events}.stream_id)`
  }`
  const byEventType = eventTypes !== undefined && eventTypes.length <= MAX_TYPE_SCANS
  const scanned = byEventType
    ? { column: sql.literal("event_type"), types: eventTypes }
    : streamTypes !== undefined && streamTypes.length <= MAX_TYPE_SCANS
    ? { column: sql.literal("stream_type"), types: streamTypes }
    : undefined
  if (scanned === undefined) {
    // One tenant's page names it as a one-element array and first in ORDER BY: only events_tenant_feed_idx gives
    // that order, so the planner cannot walk the whole feed's index instead (see read_all in 0007_tenancy.sql).
    return sql`SELECT ${columns} FROM ${events} WHERE ${feed}
      ${oneTenant ? sql`AND tenant_id = ANY(ARRAY[${scope}::text])` : sql``}
      ${eventTypes ? sql`AND event_type = ANY(${eventTypes}::text[])` : sql``}
      ${streamTypes ? sql`AND stream_type = ANY(${streamTypes}::text[])` : sql``}
      ${sinceFilter}
      ORDER BY ${oneTenant ? sql`tenant_id, ` : sql``}transaction_id, global_position
      LIMIT ${limit}`
  }
  // The filter on the other kind of type, checked on the rows the type's index yields.
  const other = byEventType
    ? (streamTypes ? sql`AND stream_type = ANY(${streamTypes}::text[])` : sql``)
    : (eventTypes ? sql`AND event_type = ANY(${eventTypes}::text[])` : sql``)
  // Each type as a one-element array and first in ORDER BY, so that only its index yields the order: given
  // `event_type = $1` the planner walks the whole feed's index instead for a type it thinks common.
  const scans = scanned.types.map((type) =>
    sql`(SELECT ${columns} FROM ${events} WHERE ${scanned.column} = ANY(ARRAY[${type}::text]) AND ${feed}
      ${oneTenant ? sql`AND tenant_id = ${scope}` : sql``} ${other} ${sinceFilter}
      ORDER BY ${scanned.column}, transaction_id, global_position LIMIT ${limit})`
  )
  return scans.length === 1
    ? scans[0]!
    : sql`SELECT * FROM (${sql.join(" UNION ALL ", false)(scans)}) page
      ORDER BY transaction_id, global_position LIMIT ${limit}`
}

const groupCommitOf = (
  option: Options["groupCommit"],
  settings: PgConfig.Settings
): Effect.Effect<
  { readonly enabled: boolean; readonly maxBatch: number; readonly concurrency: number },
  Errors.InvalidInput
> => {
  const enabled = option === undefined ? settings.groupCommit : option !== false
  const given = typeof option === "object" ? option : {}
  const maxBatch = given.maxBatch ?? settings.groupCommitMaxBatch
  const concurrency = given.concurrency ?? 1
  const positive = (name: string, n: number, max: number) =>
    Number.isInteger(n) && n >= 1 && n <= max
      ? Effect.void
      : Effect.fail(
        new Errors.InvalidInput({ reason: `groupCommit.${name} must be an integer from 1 to ${max}, got ${n}` })
      )
  return Effect.as(
    Effect.zipRight(positive("maxBatch", maxBatch, 1000), positive("concurrency", concurrency, 100)),
    { enabled, maxBatch, concurrency }
  )
}

/**
 * Builds the store over the `SqlClient` in context. Fails with a `StoreError` naming the missing table when the
 * schema is not migrated.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: Options
): Effect.Effect<
  EventStore.EventStore["Type"],
  Errors.StoreError | Errors.InvalidInput,
  SqlClient.SqlClient | Scope.Scope
> =>
  Effect.gen(function*() {
    const schema = yield* PgConfig.schema(options?.schema)
    // Name transforms would rewrite keys inside payloads; the store never uses them.
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const settings = yield* PgConfig.PgConfig
    const notify = options?.notify ?? settings.notify
    // Hints for standalone appends, at most one per interval. Leading edge: the first append of an interval carries
    // the NOTIFY in its own transaction (no extra round trip or commit). Trailing edge: if later appends of that
    // interval went unannounced and no append announces them in the next one, a `SELECT pg_notify` follows.
    const intervalMs = Duration.toMillis(Duration.decode(options?.notifyInterval ?? "5 millis"))
    let lastHintAt = Number.NEGATIVE_INFINITY
    const unannounced = yield* Queue.sliding<number>(1)
    if (notify) {
      const channel = internal.eventsChannel(schema)
      yield* Queue.take(unannounced).pipe(
        // Two intervals: under steady load the next leading-edge append announces them first, sparing a commit.
        Effect.tap(() => Effect.sleep(2 * intervalMs)),
        Effect.flatMap((since) =>
          lastHintAt > since ? Effect.void : Effect.flatMap(Clock.currentTimeMillis, (now) => {
            lastHintAt = now
            return sql`SELECT pg_notify(${channel}, '1')`
          })
        ),
        Effect.catchAllCause((cause) => Effect.logDebug("eventfold: NOTIFY hint failed; readers still poll", cause)),
        Effect.forever,
        Effect.forkScoped
      )
    }
    const outbox = options?.outbox ?? settings.outbox
    const groupCommitSettings = yield* groupCommitOf(options?.groupCommit, settings)
    const mode = settings.tenancy
    const scoped = internal.tenantScope(sql, schema, settings.rowLevelSecurity)
    const events = sql(`${schema}.events`)
    const streams = sql(`${schema}.streams`)
    const appendFn = sql(`${schema}.append_events`)
    const tryAppendFn = sql(`${schema}.try_append_events`)
    const tenantBlocks = sql(`${schema}.tenant_blocks`)
    const readStreamFn = sql(`${schema}.read_stream`)
    const readAllFn = sql(`${schema}.read_all`)

    // An outbox configured on must exist: appends would fail on the first write otherwise.
    yield* internal.requireTables(sql, schema, outbox ? ["streams", "events", "outbox"] : ["streams", "events"])

    const storeError = (operation: string) => internal.toStoreError(operation, schema)

    const currentVersion = (tenantId: string, streamType: string, streamId: string) =>
      sql<{ version: number }>`SELECT CASE WHEN soft_deleted THEN 0 ELSE version END AS version FROM ${streams}
        WHERE tenant_id = ${tenantId} AND stream_type = ${streamType} AND stream_id = ${streamId}`.pipe(
        Effect.map((rows) => rows[0]?.version ?? 0),
        scoped(tenantId)
      )

    // Only on the failure path: append_events says 'blocked', the block's row says why.
    const blocked = (tenantId: string) =>
      sql<{ readonly reason: string }>`SELECT reason FROM ${tenantBlocks} WHERE tenant_id = ${tenantId}`.pipe(
        Effect.mapError(storeError("append")),
        Effect.flatMap((rows) =>
          Effect.fail(new Errors.TenantUnavailable({ tenantId, reason: rows[0]?.reason ?? "blocked" }))
        )
      )

    const mapAppendFailure =
      (req: prepare.PreparedAppend, inTransaction: boolean) =>
      (error: SqlError.SqlError): Effect.Effect<never, EventStore.AppendError> => {
        const info = internal.pgError(error)
        if (info.code === "23505" && info.constraint === "events_event_id_key") {
          // Another stream already holds one of these ids (content equality is only checked within the stream).
          const id = /\(event_id\)=\(([0-9a-f-]+)\)/i.exec(info.detail ?? "")?.[1] ?? req.events[0]!.eventId
          return Effect.fail(
            new Errors.DuplicateEvent({ eventId: id, streamType: req.streamType, streamId: req.streamId })
          )
        }
        const versionTaken = info.code === "23505" && info.constraint === "events_stream_version_key"
        if (info.code === "40001" || (versionTaken && inTransaction)) {
          // The failure aborted the caller's transaction: nothing in it can be read now, and another connection may
          // not be free, so the actual version is reported as unknown (-1). Only a new transaction can succeed.
          return Effect.fail(
            new Errors.ConcurrencyConflict({
              tenantId: req.tenantId,
              streamType: req.streamType,
              streamId: req.streamId,
              expected: req.expectedVersion,
              actual: -1,
              reason: "serialization"
            })
          )
        }
        if (versionTaken) {
          // A writer that bypassed append_events took the version (the unique key is the backstop): read the actual.
          return currentVersion(req.tenantId, req.streamType, req.streamId).pipe(
            Effect.mapError(storeError("append")),
            Effect.flatMap((actual) =>
              Effect.fail(
                new Errors.ConcurrencyConflict({
                  tenantId: req.tenantId,
                  streamType: req.streamType,
                  streamId: req.streamId,
                  expected: req.expectedVersion,
                  actual
                })
              )
            )
          )
        }
        return Effect.fail(storeError("append")(error))
      }

    // The statement of one append, standalone or in the caller's transaction; through `tryAppendFn`, it may come
    // back 'busy' (a lock held elsewhere) without waiting.
    const appendStatement = (req: prepare.PreparedAppend, carriesHint: boolean, fn = appendFn, standalone = true) => {
      const expected = req.expectedVersion
      const statement = sql`SELECT * FROM ${fn}(
          ${req.tenantId}, ${req.streamType}, ${req.streamId}, ${expectedKind(expected)},
          ${expected._tag === "Exact" ? expected.version : 0}, ${req.idsSupplied},
          ${req.events.map((e) => e.eventId)}::uuid[],
          ${req.events.map((e) => e.type)}::text[],
          ${req.events.map((e) => e.schemaVersion)}::integer[],
          ${req.events.map((e) => e.payloadJson)}::jsonb[],
          ${req.events.map((e) => e.metadataJson)}::jsonb[],
          ${carriesHint}, ${outbox})`
      return statement.pipe(
        // A cancel meant for an interrupted fiber's statement on this connection (internal.isCancelRequest): nothing
        // was written, so a standalone append is sent once more. In a caller's transaction it is the caller's to retry.
        Effect.retry({
          times: 1,
          while: (error) => standalone && internal.isCancelRequest(error)
        }),
        Effect.flatMap(decodeAppendRows),
        Effect.flatMap((rows) =>
          rows[0]
            ? Effect.succeed(rows[0])
            : Effect.fail(new Errors.StoreError({ operation: "append", reason: "append_events returned no row" }))
        )
      )
    }

    // Whether a standalone append (or batch) sent now carries the NOTIFY hint: the first of an interval does.
    const takeHint = (now: number): boolean => {
      const carries = notify && now - lastHintAt >= intervalMs
      if (carries) lastHintAt = now
      return carries
    }

    /** A batch's answer for an append that must go out on its own. */
    const alone = "alone" as const

    interface Outcome {
      readonly row: typeof AppendRow.Type
      /** When the append went out, and whether it carried the NOTIFY hint. */
      readonly at: number
      readonly hinted: boolean
    }

    // Group commit (migrations/0011_group_commit.sql): one statement and one commit for the standalone appends that
    // queue while earlier ones are in flight. The batch never waits for a lock: an append whose stream or tenant lock
    // is held elsewhere comes back 'busy', and goes out alone from its caller's fiber, waiting on a connection of its
    // own as it would without group commit (so one blocked stream never stalls the appends behind it). A batch that
    // raises (a unique violation) wrote nothing: its appends also go out alone, each to its own outcome. A lost
    // connection fails the whole batch, retryable: nothing of it was written, or all of it (the commit's outcome is
    // unknown, as for a single append).
    const appendBatchFn = sql(`${schema}.append_batch`)
    const runBatch = (
      batch: ReadonlyArray<prepare.PreparedAppend>
    ): Effect.Effect<ReadonlyArray<Exit.Exit<Outcome | typeof alone, SqlError.SqlError | Errors.StoreError>>> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const hinted = takeHint(now)
        const events = batch.flatMap((req) => req.events)
        return sql`SELECT * FROM ${appendBatchFn}(
            ${batch.map((req) => req.tenantId)}::text[], ${batch.map((req) => req.streamType)}::text[],
            ${batch.map((req) => req.streamId)}::text[], ${
          batch.map((req) => expectedKind(req.expectedVersion))
        }::text[],
            ${batch.map((req) => req.expectedVersion._tag === "Exact" ? req.expectedVersion.version : 0)}::integer[],
            ${batch.map((req) => req.idsSupplied)}::boolean[], ${batch.map((req) => req.events.length)}::integer[],
            ${events.map((e) => e.eventId)}::uuid[], ${events.map((e) => e.type)}::text[],
            ${events.map((e) => e.schemaVersion)}::integer[], ${events.map((e) => e.payloadJson)}::jsonb[],
            ${events.map((e) => e.metadataJson)}::jsonb[], ${hinted}, ${outbox})`.pipe(
          Effect.flatMap(decodeBatchRows),
          Effect.map((rows) => {
            const byOrd = new Map(rows.map((row) => [row.ord, row]))
            return batch.map((_, i): Exit.Exit<Outcome | typeof alone, Errors.StoreError> => {
              const row = byOrd.get(i + 1)
              return row === undefined
                ? Exit.fail(new Errors.StoreError({ operation: "append", reason: "append_batch returned no row" }))
                : row.status === "busy"
                ? Exit.succeed(alone)
                : Exit.succeed({ row, at: now, hinted })
            })
          }),
          Effect.catchAll((error) =>
            Effect.succeed(
              batch.map(() =>
                error._tag === "SqlError" && internal.kindOf(error) !== "connection"
                  ? Exit.succeed(alone)
                  : Exit.fail(error)
              )
            )
          )
        )
      })
    // An append on its own: one append_events call and its own commit, its hint taken when it goes out.
    const standalone = (req: prepare.PreparedAppend): Effect.Effect<Outcome, SqlError.SqlError | Errors.StoreError> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const hinted = takeHint(now)
        return Effect.map(appendStatement(req, hinted), (row): Outcome => ({ row, at: now, hinted }))
      })
    // With group commit, an append that has the store to itself goes out at once, holding the batch slot so that the
    // appends arriving meanwhile queue behind it; through try_append_events (migrations/0015_lone_append.sql), so
    // that it never holds the slot while it waits for a lock: 'busy', it is sent again alone, outside the slot. So is
    // an append to a schema without that function (0015 not applied yet) or without the grant to call it.
    let tryAppendUnavailable = false
    const lone = (
      req: prepare.PreparedAppend
    ): Effect.Effect<Outcome | typeof alone, SqlError.SqlError | Errors.StoreError> =>
      tryAppendUnavailable ? Effect.succeed(alone) : Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const hinted = takeHint(now)
        return appendStatement(req, hinted, tryAppendFn).pipe(
          Effect.map((row): Outcome | typeof alone => row.status === "busy" ? alone : { row, at: now, hinted }),
          Effect.catchIf(
            (error) => error._tag === "SqlError" && LONE_FALLBACK_CODES.has(internal.pgError(error).code ?? ""),
            () =>
              Effect.as(
                Effect.logWarning(
                  `eventfold: ${schema}.try_append_events cannot be called (apply migration 0015 and the grants); ` +
                    "lone appends go through append_events"
                ).pipe(
                  Effect.when(() => !tryAppendUnavailable),
                  Effect.zipRight(Effect.sync(() => {
                    tryAppendUnavailable = true
                  }))
                ),
                alone
              )
          )
        )
      })
    const groupCommit = groupCommitSettings.enabled
      ? yield* GroupCommit.make({
        maxBatch: groupCommitSettings.maxBatch,
        concurrency: groupCommitSettings.concurrency,
        run: runBatch,
        runAlone: lone
      })
      : undefined

    const toResult = (
      req: prepare.PreparedAppend,
      { at, hinted, row }: Outcome
    ): Effect.Effect<EventStore.AppendResult, EventStore.AppendError> => {
      const expected = req.expectedVersion
      const ref = { tenantId: req.tenantId, streamType: req.streamType, streamId: req.streamId }
      switch (row.status) {
        case "conflict":
          return Effect.fail(new Errors.ConcurrencyConflict({ ...ref, expected, actual: row.stream_version ?? 0 }))
        case "stale":
          // Only a caller's transaction that wrote before the stream's last append committed gets here.
          return Effect.fail(
            new Errors.ConcurrencyConflict({
              ...ref,
              expected,
              actual: row.stream_version ?? 0,
              reason: "transaction-order"
            })
          )
        case "duplicate":
          return Effect.fail(
            new Errors.DuplicateEvent({ ...ref, eventId: row.duplicate_event_id ?? req.events[0]!.eventId })
          )
        case "blocked":
          return blocked(req.tenantId)
        case "archived":
          return Effect.fail(new Errors.StreamArchived(ref))
        case "deleted":
          return Effect.fail(new Errors.StreamDeleted(ref))
        default:
          if (notify && !hinted && row.status === "ok") unannounced.unsafeOffer(at)
          return Effect.succeed({
            ...ref,
            version: row.stream_version ?? 0,
            eventIds: req.events.map((e) => e.eventId),
            position: Position.make(row.transaction_id ?? 0n, row.global_position ?? 0n),
            idempotent: row.status === "idempotent"
          })
      }
    }

    const append = (appendOptions: EventStore.AppendOptions) =>
      Effect.flatMap(prepare.prepareAppend(appendOptions, mode), (req) =>
        Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (transaction) => {
          const inTransaction = Option.isSome(transaction)
          // In a caller's transaction the append is part of it, the hint riding on its commit: never batched.
          const sent: Effect.Effect<Outcome, SqlError.SqlError | Errors.StoreError> = inTransaction
            ? Effect.map(appendStatement(req, notify, appendFn, false), (row) => ({ row, at: 0, hinted: true }))
            : groupCommit && req.events.length <= GROUP_COMMIT_MAX_EVENTS
            ? Effect.flatMap(groupCommit.submit(req), (outcome) =>
              outcome === alone ? standalone(req) : Effect.succeed(outcome))
            : standalone(req)
          return sent.pipe(
            Effect.catchTag("SqlError", mapAppendFailure(req, inTransaction)),
            Effect.flatMap((outcome) =>
              toResult(req, outcome)
            )
          )
        }))

    // One round trip: read_stream enters the tenant (row-level security) and, when no event is in range, returns
    // one row with no event and the stream's version and state instead, so a missing stream needs no second query.
    // `columns` are the event columns to read, first in each (array) row.
    // A missing stream is its `StreamNotFound`, made only by a caller that fails with it (an error is not free).
    const streamRows = (
      readOptions: EventStore.ReadStreamOptions,
      columns: string
    ): Effect.Effect<ReadonlyArray<eventRows.Row> | (() => Errors.StreamNotFound), EventStore.ReadColumnsError> =>
      Effect.gen(function*() {
        yield* prepare.validateStream(readOptions)
        yield* prepare.validateFromVersion(readOptions.fromVersion)
        const limit = Math.min(yield* prepare.validateLimit(readOptions.limit, 2_147_483_647), 2_147_483_647)
        const tenantId = yield* Tenant.resolve(mode, "readStream", readOptions.tenantId)
        const { streamId, streamType } = readOptions
        const backward = readOptions.direction === "backward"
        const from = Math.min(readOptions.fromVersion ?? (backward ? 2_147_483_647 : 1), 2_147_483_647)
        const selected = sql.literal(`${columns}, stream_state, stream_version`)
        const archived = readOptions.includeArchived === true
        const rows = yield* sql`SELECT ${selected}
          FROM ${readStreamFn}(${tenantId}, ${streamType}, ${streamId}, ${from}, ${limit}, ${backward}, ${archived})`
          .values.pipe(Effect.mapError(storeError("readStream")))
        // Only that one row has a stream state.
        const state = rows.length === 1 ? rows[0]![rows[0]!.length - 2] : null
        if (state !== null) {
          const ref = { tenantId, streamType, streamId }
          switch (state) {
            case "deleted":
              return yield* new Errors.StreamDeleted(ref)
            case "archived":
              if (readOptions.includeArchived !== true) {
                return yield* new Errors.StreamArchived(ref)
              }
              break
            case "none":
            case "soft-deleted":
              return () =>
                new Errors.StreamNotFound(ref)
          }
          return []
        }
        return rows
      })

    const readStream = EventStore.withColumnReader(
      (readOptions: EventStore.ReadStreamOptions) =>
        Effect.flatMap(
          streamRows(readOptions, eventRows.EVENT_COLUMNS),
          (rows): Effect.Effect<Array<RecordedEvent.RecordedEvent>, EventStore.ReadStreamError> =>
            typeof rows === "function" ? Effect.fail(rows()) : eventRows.toEvents("readStream", rows)
        ),
      // A fold's read: only the columns it needs, no RecordedEvent per event (recorded_at, whole events on request).
      (readOptions) => {
        const { events, recordedAt, ...rest } = readOptions
        const columns = eventRows.FOLD_COLUMNS + (recordedAt === true ? ", recorded_at" : "") +
          (events === true ? `, ${eventRows.EVENT_COLUMNS}` : "")
        const toColumns = (rows: ReadonlyArray<eventRows.Row> | (() => Errors.StreamNotFound)) =>
          typeof rows === "function"
            ? Effect.succeed(EventStore.missingColumns)
            : eventRows.toColumns("readStream", rows, { recordedAt, events })
        return Effect.flatMap(streamRows({ ...rest, direction: "forward" }, columns), toColumns)
      }
    )

    const eventColumns = sql.literal(eventRows.EVENT_COLUMNS)
    const readAll = (readOptions: EventStore.ReadAllOptions = {}) =>
      Effect.gen(function*() {
        const limit = yield* prepare.validateReadAll(readOptions, 1000)
        const scope = yield* Tenant.resolveScope(mode, "readAll", readOptions)
        const after = readOptions.after ?? Position.start
        const page: FeedPage = {
          scope,
          after,
          limit,
          eventTypes: readOptions.eventTypes && Array.from(new Set(readOptions.eventTypes)),
          streamTypes: readOptions.streamTypes && Array.from(new Set(readOptions.streamTypes)),
          since: readOptions.since,
          includeArchived: readOptions.includeArchived
        }
        // Under row-level security, read_all enters the scope and reads in one round trip (the plain query would
        // need BEGIN, enter_tenant and COMMIT around it).
        const rows = yield* (settings.rowLevelSecurity
          ? sql`SELECT ${eventColumns} FROM ${readAllFn}(${scope}, ${after.transactionId.toString()}::xid8, ${after.globalPosition.toString()}::bigint, ${
            Math.min(limit, 2_147_483_647)
          }, ${page.eventTypes ?? null}::text[], ${page.streamTypes ?? null}::text[], ${
            page.since ?? null
          }::timestamptz, ${page.includeArchived === true})`
          : readAllStatement(sql, schema, page)).values.pipe(Effect.mapError(storeError("readAll")))
        return yield* eventRows.toEvents("readAll", rows)
      })

    // Over every tenant. Under row-level security through feed_head(), which sees every row and returns only the
    // position, so that a tenant's subscription (or a tenant's transaction) needs no all-tenants scope.
    const headPosition = (settings.rowLevelSecurity
      ? sql`SELECT transaction_id, global_position FROM ${sql(`${schema}.feed_head`)}()`
      : sql`SELECT transaction_id, global_position FROM ${events}
      WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
      ORDER BY transaction_id DESC, global_position DESC LIMIT 1`).pipe(
        Effect.mapError(storeError("headPosition")),
        Effect.flatMap(decodePositionRows),
        Effect.map((
          rows
        ) => (rows[0] ? Position.make(rows[0].transaction_id, rows[0].global_position) : Position.start))
      )

    const store: EventStore.EventStore["Type"] = {
      tenancy: mode,
      append,
      readStream,
      readAll,
      headPosition,
      streamVersion: (stream) =>
        Effect.zipRight(
          prepare.validateStream(stream),
          Effect.flatMap(
            Tenant.resolve(mode, "streamVersion", stream.tenantId),
            (tenantId) =>
              currentVersion(tenantId, stream.streamType, stream.streamId).pipe(
                Effect.mapError(storeError("streamVersion"))
              )
          )
        ),
      eventExists: (eventId) =>
        UUID.test(eventId)
          ? Effect.flatMap(Tenant.CurrentTenant, (tenant) =>
            // In the ambient tenant's scope (every tenant's without one): a tenant's transaction stays its own.
            sql`SELECT 1 FROM ${events} WHERE event_id = ${eventId}::uuid ${
              Option.isSome(tenant) ? sql`AND tenant_id = ${tenant.value}` : sql``
            }`.pipe(scoped(Option.getOrElse(tenant, () =>
              Tenant.allScope)))).pipe(
              Effect.map((rows) => rows.length > 0),
              Effect.mapError(storeError("eventExists"))
            )
          : Effect.succeed(false)
    }
    // The spans and metrics every EventStore reports (EventStore.append, ...), shared with the memory store.
    return EventStore.instrument(store)
  })

/**
 * The store as a Layer over the `SqlClient` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<EventStore.EventStore, Errors.StoreError | Errors.InvalidInput, SqlClient.SqlClient> =>
  Layer.scoped(EventStore.EventStore, make(options))

/**
 * The Layer with the shared settings read from the environment (`PgConfig.config`: `EVENTFOLD_SCHEMA`,
 * `EVENTFOLD_OUTBOX`, `EVENTFOLD_NOTIFY`, `EVENTFOLD_POOLER`), the same for every `layerConfig` of this package.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (): Layer.Layer<
  EventStore.EventStore,
  Errors.StoreError | Errors.InvalidInput | ConfigError.ConfigError,
  SqlClient.SqlClient
> => layer().pipe(Layer.provide(PgConfig.layerConfig()))
