/**
 * The PostgreSQL `Outbox` (table `outbox`, migration 0003). Provide it to `PgEventStore.layer` and every append
 * writes one outbox row per event inside `append_events`, in the append's transaction:
 * `PgEventStore.layer().pipe(Layer.provideMerge(PgOutbox.layer()))`.
 *
 * Claims lock each stream's head row with `FOR UPDATE SKIP LOCKED` and a lease, then take the pending rows right
 * behind it, so several relays never publish one stream out of order.
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Errors from "@eventfold/core/Errors"
import * as Outbox from "@eventfold/core/Outbox"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as internal from "./internal/sql.js"

/**
 * Where the Layer connects and what it names; every field has a default.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The PostgreSQL schema holding eventfold's tables; defaults to "eventfold". */
  readonly schema?: string | undefined
}

const RowSchema = Schema.Struct({
  id: Schema.BigInt,
  event_id: Schema.String,
  global_position: Schema.BigInt,
  stream_type: Schema.String,
  stream_id: Schema.String,
  version: Schema.Number,
  event_type: Schema.String,
  schema_version: Schema.Number,
  payload: Schema.Unknown,
  metadata: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  status: Schema.Literal("pending", "published", "failed"),
  retry_count: Schema.Number,
  last_error: Schema.NullOr(Schema.String),
  next_attempt_at: Schema.DateFromSelf,
  claimed_by: Schema.NullOr(Schema.String),
  claimed_until: Schema.NullOr(Schema.DateFromSelf),
  created_at: Schema.DateFromSelf,
  published_at: Schema.NullOr(Schema.DateFromSelf)
})

const StatsSchema = Schema.Struct({
  pending: Schema.Number,
  failed: Schema.Number,
  oldest_ms: Schema.NullOr(Schema.Number)
})

const CountSchema = Schema.Struct({ count: Schema.Number })

const decodeRows = <A, I>(operation: string, schema: Schema.Schema<A, I>) => (rows: ReadonlyArray<unknown>) =>
  Schema.decodeUnknown(Schema.Array(schema))(rows).pipe(
    Effect.mapError((e) =>
      new Errors.StoreError({
        operation,
        reason: `unexpected row shape: ${ParseResult.TreeFormatter.formatErrorSync(e)}`
      })
    )
  )

const toRow = (r: typeof RowSchema.Type): Outbox.Row => ({
  id: r.id,
  eventId: r.event_id,
  streamType: r.stream_type,
  streamId: r.stream_id,
  version: r.version,
  globalPosition: r.global_position,
  type: r.event_type,
  schemaVersion: r.schema_version,
  payload: r.payload,
  metadata: r.metadata,
  attempts: r.retry_count,
  status: r.status,
  retryCount: r.retry_count,
  lastError: r.last_error,
  nextAttemptAt: r.next_attempt_at,
  claimedBy: r.claimed_by,
  claimedUntil: r.claimed_until,
  createdAt: r.created_at,
  publishedAt: r.published_at
})

const toEntry = (r: typeof RowSchema.Type): Outbox.Entry => ({
  id: r.id,
  eventId: r.event_id,
  streamType: r.stream_type,
  streamId: r.stream_id,
  version: r.version,
  globalPosition: r.global_position,
  type: r.event_type,
  schemaVersion: r.schema_version,
  payload: r.payload,
  metadata: r.metadata,
  attempts: r.retry_count
})

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * Builds the outbox over the `PgClient` in context (LISTEN for wake-up hints needs the pg client itself). Fails
 * with a `StoreError` naming the missing table when migration 0003 is not applied.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: Options
): Effect.Effect<Outbox.Outbox["Type"], Errors.StoreError | Errors.InvalidInput, PgClient.PgClient> =>
  Effect.gen(function*() {
    const schema = yield* internal.validateSchema(options?.schema ?? internal.DEFAULT_SCHEMA)
    const pg = yield* PgClient.PgClient
    const sql = pg.withoutTransforms()
    const outbox = sql(`${schema}.outbox`)
    const channel = internal.eventsChannel(schema)

    yield* internal.requireTables(
      (names) =>
        sql<{ name: string; found: boolean }>`SELECT n AS name, to_regclass(n) IS NOT NULL AS found
          FROM unnest(${names}::text[]) AS n`,
      schema,
      ["outbox"]
    )

    const storeError = (operation: string) => internal.toStoreError(operation, schema)
    const columns = sql.literal(
      "o.id, o.event_id, o.global_position, o.stream_type, o.stream_id, o.version, o.event_type, o.schema_version, " +
        "o.payload, o.metadata, o.status, o.retry_count, o.last_error, o.next_attempt_at, o.claimed_by, " +
        "o.claimed_until, o.created_at, o.published_at"
    )
    const millis = (d: Duration.DurationInput) => Math.max(0, Math.round(Duration.toMillis(Duration.decode(d))))

    const claim = (claimOptions: Outbox.ClaimOptions) =>
      Effect.gen(function*() {
        const limit = Math.max(0, Math.floor(claimOptions.limit))
        if (limit === 0) return []
        const lease = millis(claimOptions.lease)
        const relayId = claimOptions.relayId
        // Heads first: each stream's earliest unpublished row, locked so two relays never both take a stream.
        // A head another transaction changed since our snapshot is re-checked on its latest version (EvalPlanQual).
        const heads = yield* sql`WITH heads AS (
            SELECT DISTINCT ON (stream_type, stream_id) id FROM ${outbox}
             WHERE status <> 'published'
             ORDER BY stream_type, stream_id, global_position
          ), locked AS (
            SELECT o.id FROM ${outbox} o JOIN heads h ON h.id = o.id
             WHERE o.status = 'pending' AND o.next_attempt_at <= now()
               AND (o.claimed_until IS NULL OR o.claimed_until < now())
             ORDER BY o.global_position
             LIMIT ${limit}
             FOR UPDATE OF o SKIP LOCKED
          )
          UPDATE ${outbox} o SET claimed_by = ${relayId}, claimed_until = now() + ${lease} * interval '1 millisecond'
            FROM locked WHERE o.id = locked.id
          RETURNING ${columns}`.pipe(Effect.flatMap(decodeRows("claim", RowSchema)))
        if (heads.length === 0 || heads.length >= limit) return heads
        // Then the contiguous run of pending rows behind each head: nobody else can claim them while we hold it.
        const followers = yield* sql`WITH heads AS (
            SELECT * FROM unnest(${heads.map((h) => h.stream_type)}::text[], ${
          heads.map((h) => h.stream_id)
        }::text[], ${
          heads.map((h) => h.global_position.toString())
        }::bigint[]) AS h(stream_type, stream_id, head_position)
          ), run AS (
            -- Per stream, an index range scan of at most the rows we could take, then the contiguous prefix.
            SELECT f.id, f.global_position, f.contiguous, f.depth
              FROM heads h
              CROSS JOIN LATERAL (
                SELECT o.id, o.global_position,
                       bool_and(o.status = 'pending' AND (o.claimed_until IS NULL OR o.claimed_until < now()
                                                          OR o.claimed_by = ${relayId}))
                         OVER (ORDER BY o.global_position) AS contiguous,
                       row_number() OVER (ORDER BY o.global_position) AS depth
                  FROM (SELECT * FROM ${outbox} x
                         WHERE x.stream_type = h.stream_type AND x.stream_id = h.stream_id
                           AND x.global_position > h.head_position AND x.status <> 'published'
                         ORDER BY x.global_position
                         LIMIT ${limit - heads.length}) o
              ) f
          ), picked AS (
            SELECT id FROM run WHERE contiguous ORDER BY depth, global_position LIMIT ${limit - heads.length}
          )
          UPDATE ${outbox} o SET claimed_by = ${relayId}, claimed_until = now() + ${lease} * interval '1 millisecond'
            FROM picked WHERE o.id = picked.id
          RETURNING ${columns}`.pipe(Effect.flatMap(decodeRows("claim", RowSchema)))
        return [...heads, ...followers]
      }).pipe(
        sql.withTransaction,
        Effect.map((rows) => [...rows].sort((a, b) => (a.global_position < b.global_position ? -1 : 1)).map(toEntry)),
        Effect.catchTag("SqlError", (e) => Effect.fail(storeError("outbox.claim")(e))),
        Effect.withSpan("PgOutbox.claim", { attributes: { relayId: claimOptions.relayId } })
      )

    const markPublished = (relayId: string, ids: ReadonlyArray<bigint>) =>
      ids.length === 0 ? Effect.succeed(0) : sql`WITH marked AS (
          UPDATE ${outbox} SET status = 'published', published_at = now(), claimed_by = NULL, claimed_until = NULL
           WHERE id = ANY(${ids.map(String)}::bigint[]) AND status = 'pending' AND claimed_by = ${relayId}
          RETURNING 1
        ) SELECT count(*)::integer AS count FROM marked`.pipe(
        Effect.catchTag("SqlError", (e) => Effect.fail(storeError("outbox.markPublished")(e))),
        Effect.flatMap(decodeRows("outbox.markPublished", CountSchema)),
        Effect.map((rows) => rows[0]?.count ?? 0)
      )

    const recordFailure = (relayId: string, id: bigint, error: string, retryIn: Option.Option<Duration.Duration>) => {
      const dead = Option.isNone(retryIn)
      const delay = Option.match(retryIn, { onNone: () => 0, onSome: millis })
      return sql`UPDATE ${outbox}
          SET retry_count = retry_count + 1, last_error = ${error}, claimed_by = NULL, claimed_until = NULL,
              status = CASE WHEN ${dead} THEN 'failed' ELSE 'pending' END,
              next_attempt_at = CASE WHEN ${dead} THEN next_attempt_at
                                     ELSE now() + ${delay} * interval '1 millisecond' END
        WHERE id = ${id.toString()}::bigint AND status = 'pending' AND claimed_by = ${relayId}
        RETURNING id`.pipe(
        Effect.map((rows) => rows.length > 0),
        Effect.catchTag("SqlError", (e) => Effect.fail(storeError("outbox.recordFailure")(e)))
      )
    }

    const renew = (relayId: string, ids: ReadonlyArray<bigint>, lease: Duration.DurationInput) =>
      ids.length === 0 ? Effect.succeed(0) : sql`WITH renewed AS (
          UPDATE ${outbox} SET claimed_until = now() + ${millis(lease)} * interval '1 millisecond'
           WHERE id = ANY(${ids.map(String)}::bigint[]) AND status = 'pending' AND claimed_by = ${relayId}
          RETURNING 1
        ) SELECT count(*)::integer AS count FROM renewed`.pipe(
        Effect.catchTag("SqlError", (e) => Effect.fail(storeError("outbox.renew")(e))),
        Effect.flatMap(decodeRows("outbox.renew", CountSchema)),
        Effect.map((rows) => rows[0]?.count ?? 0)
      )

    const release = (relayId: string, ids: ReadonlyArray<bigint>) =>
      ids.length === 0 ? Effect.void : sql`UPDATE ${outbox} SET claimed_by = NULL, claimed_until = NULL
        WHERE id = ANY(${ids.map(String)}::bigint[]) AND status = 'pending' AND claimed_by = ${relayId}`.pipe(
        Effect.asVoid,
        Effect.catchTag("SqlError", (e) => Effect.fail(storeError("outbox.release")(e)))
      )

    const retryFailed = (stream?: { readonly streamType: string; readonly streamId?: string | undefined }) =>
      sql`WITH retried AS (
          UPDATE ${outbox} SET status = 'pending', retry_count = 0, next_attempt_at = now()
           WHERE status = 'failed'
             ${stream ? sql`AND stream_type = ${stream.streamType}` : sql``}
             ${stream?.streamId !== undefined ? sql`AND stream_id = ${stream.streamId}` : sql``}
          RETURNING 1
        ) SELECT count(*)::integer AS count FROM retried`.pipe(
        Effect.flatMap(decodeRows("outbox.retryFailed", CountSchema)),
        Effect.map((rows) => rows[0]?.count ?? 0),
        Effect.tap((count) => count > 0 ? sql`SELECT pg_notify(${channel}, '1')` : Effect.void),
        Effect.catchTag("SqlError", (e) => Effect.fail(storeError("outbox.retryFailed")(e)))
      )

    const cleanup = (retention: Duration.DurationInput) =>
      sql`WITH deleted AS (
          DELETE FROM ${outbox}
           WHERE status = 'published' AND published_at < now() - ${millis(retention)} * interval '1 millisecond'
          RETURNING 1
        ) SELECT count(*)::integer AS count FROM deleted`.pipe(
        Effect.catchTag("SqlError", (e) => Effect.fail(storeError("outbox.cleanup")(e))),
        Effect.flatMap(decodeRows("outbox.cleanup", CountSchema)),
        Effect.map((rows) => rows[0]?.count ?? 0),
        Effect.withSpan("PgOutbox.cleanup")
      )

    const stats = sql`SELECT count(*) FILTER (WHERE status = 'pending')::integer AS pending,
        count(*) FILTER (WHERE status = 'failed')::integer AS failed,
        (extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending')) * 1000)::float8 AS oldest_ms
      FROM ${outbox} WHERE status <> 'published'`.pipe(
      Effect.catchTag("SqlError", (e) => Effect.fail(storeError("outbox.stats")(e))),
      Effect.flatMap(decodeRows("outbox.stats", StatsSchema)),
      Effect.map(([row]): Outbox.Stats => ({
        pending: row?.pending ?? 0,
        failed: row?.failed ?? 0,
        oldestPendingAge: Option.map(
          Option.fromNullable(row?.oldest_ms),
          (ms) => Duration.millis(Math.max(0, ms))
        )
      }))
    )

    const get = (eventId: string) =>
      UUID.test(eventId)
        ? sql`SELECT ${columns} FROM ${outbox} o WHERE o.event_id = ${eventId}::uuid`.pipe(
          Effect.catchTag("SqlError", (e) => Effect.fail(storeError("outbox.get")(e))),
          Effect.flatMap(decodeRows("outbox.get", RowSchema)),
          Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toRow))
        )
        : Effect.succeed(Option.none())

    // The sql-pg LISTEN stream can end or fail silently; the relay polls anyway and subscribes again.
    const wakeups: Stream.Stream<void> = pg.listen(channel).pipe(
      Stream.as(undefined),
      Stream.catchAll((error) => Stream.fromEffect(Effect.logDebug("outbox LISTEN failed", error)).pipe(Stream.drain))
    )

    const service: Outbox.Outbox["Type"] = {
      claim,
      markPublished,
      recordFailure,
      renew,
      release,
      retryFailed,
      cleanup,
      stats,
      get,
      wakeups
    }
    return service
  })

/**
 * The outbox as a Layer. Provide it to `PgEventStore.layer` so appends write outbox rows.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<Outbox.Outbox, Errors.StoreError | Errors.InvalidInput, PgClient.PgClient> =>
  Layer.effect(Outbox.Outbox, make(options))
