/**
 * The PostgreSQL `Outbox` (table `outbox`, migration 0003), the relay's side. When the outbox is configured on
 * (`PgConfig` `outbox: true`, as `PgEventfold.layer({ outbox: true })` does), every append writes one outbox row per
 * event inside `append_events`, in the append's transaction.
 *
 * Claims lock each stream's head row with `FOR UPDATE SKIP LOCKED` and a lease, then take the pending rows right
 * behind it, so several relays never publish one stream out of order. One statement marks the relay's previous batch
 * published and claims the next (one commit per batch), and may continue the streams of the batch the relay is still
 * publishing (see `Outbox.ClaimOptions`).
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Errors from "@eventfold/core/Errors"
import * as EventValidation from "@eventfold/core/EventValidation"
import * as Outbox from "@eventfold/core/Outbox"
import * as Tenant from "@eventfold/core/Tenant"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as eventRows from "./internal/eventRows.js"
import * as internal from "./internal/sql.js"
import * as PgConfig from "./PgConfig.js"

/**
 * Where the Layer connects and what it names; every field has a default.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The PostgreSQL schema holding eventfold's tables; defaults to the shared `PgConfig` schema ("eventfold"). */
  readonly schema?: string | undefined
}

/** The columns a relay needs from a claimed row. */
const ClaimRowSchema = Schema.Struct({
  id: Schema.BigInt,
  event_id: Schema.String,
  global_position: Schema.BigInt,
  tenant_id: Schema.String,
  stream_type: Schema.String,
  stream_id: Schema.String,
  version: Schema.Number,
  event_type: Schema.String,
  schema_version: Schema.Number,
  payload: Schema.Unknown,
  metadata: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  retry_count: Schema.Number
})

/** A whole row, for inspection (`get`). */
const RowSchema = Schema.Struct({
  ...ClaimRowSchema.fields,
  status: Schema.Literal("pending", "published", "failed"),
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

const toEntry = (r: typeof ClaimRowSchema.Type): Outbox.Entry => ({
  id: r.id,
  eventId: r.event_id,
  tenantId: r.tenant_id,
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

const toRow = (r: typeof RowSchema.Type): Outbox.Row => ({
  ...toEntry(r),
  status: r.status,
  retryCount: r.retry_count,
  lastError: r.last_error,
  nextAttemptAt: r.next_attempt_at,
  claimedBy: r.claimed_by,
  claimedUntil: r.claimed_until,
  createdAt: r.created_at,
  publishedAt: r.published_at
})

const { isRecord, toBigInt } = eventRows

/**
 * A claimed row: `claimColumns` from column 1 on (column 0 is the marked count), as an array row, checked by hand
 * rather than with a Schema (it runs once per relayed event); undefined when it does not fit.
 */
const toClaimed = (row: ReadonlyArray<unknown>): Outbox.Entry | undefined => {
  const id = toBigInt(row[1])
  const eventId = row[2]
  const globalPosition = toBigInt(row[3])
  const tenantId = row[4]
  const streamType = row[5]
  const streamId = row[6]
  const version = row[7]
  const type = row[8]
  const schemaVersion = row[9]
  const metadata = row[11]
  const attempts = row[12]
  if (
    id === undefined || typeof eventId !== "string" || globalPosition === undefined || typeof tenantId !== "string" ||
    typeof streamType !== "string" || typeof streamId !== "string" || typeof version !== "number" ||
    typeof type !== "string" || typeof schemaVersion !== "number" || !isRecord(metadata) ||
    typeof attempts !== "number"
  ) {
    return undefined
  }
  return {
    id,
    eventId,
    tenantId,
    streamType,
    streamId,
    version,
    globalPosition,
    type,
    schemaVersion,
    payload: row[10],
    metadata,
    attempts
  }
}

const show = (row: ReadonlyArray<unknown>): string =>
  JSON.stringify(row, (_, v) => (typeof v === "bigint" ? String(v) : v))

// A claim's rows: each claimed row (none: a single row whose claim columns are null), all carrying the marked count.
const decodeClaim = (
  rows: ReadonlyArray<ReadonlyArray<unknown>>
): Effect.Effect<{ readonly marked: number; readonly entries: Array<Outbox.Entry> }, Errors.StoreError> => {
  const marked = rows[0]?.[0]
  const entries: Array<Outbox.Entry> = []
  for (const row of rows) {
    if (row[1] === null) continue
    const entry = toClaimed(row)
    if (entry === undefined) {
      return Effect.fail(
        new Errors.StoreError({
          operation: "outbox.claim",
          reason: `unexpected row shape: ${show(row)}`,
          retryable: false,
          kind: "data"
        })
      )
    }
    entries.push(entry)
  }
  return Effect.succeed({ marked: typeof marked === "number" ? marked : 0, entries })
}

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
    const schema = yield* PgConfig.schema(options?.schema)
    const pg = yield* PgClient.PgClient
    const sql = pg.withoutTransforms()
    const outbox = sql(`${schema}.outbox`)
    const channel = internal.eventsChannel(schema)

    yield* internal.requireTables(sql, schema, ["outbox"])

    const storeError = (operation: string) => internal.toStoreError(operation, schema)
    // The relay works across tenants: under row-level security its statements run in the "*" scope.
    const tenantScope = internal.tenantScope(sql, schema, (yield* PgConfig.PgConfig).rowLevelSecurity)
    const acrossTenants = tenantScope(Tenant.allScope)
    // Inspection and operator actions (get, retryFailed) keep to the ambient tenant when one is set; without one
    // they cover every tenant, as the relay does.
    const ambient = <A, E, R>(f: (tenant: Option.Option<string>) => Effect.Effect<A, E, R>) =>
      Effect.flatMap(
        Tenant.CurrentTenant,
        (tenant) => tenantScope(Option.getOrElse(tenant, () => Tenant.allScope))(f(tenant))
      )
    const columns = sql.literal(
      "o.id, o.event_id, o.global_position, o.tenant_id, o.stream_type, o.stream_id, o.version, o.event_type, o.schema_version, " +
        "o.payload, o.metadata, o.status, o.retry_count, o.last_error, o.next_attempt_at, o.claimed_by, " +
        "o.claimed_until, o.created_at, o.published_at"
    )
    const millis = (d: Duration.DurationInput) => Math.max(0, Math.round(Duration.toMillis(Duration.decode(d))))

    // The claim returns only what the relay needs, decoded once per batch with this narrower schema.
    const claimColumns = sql.literal(
      "o.id, o.event_id, o.global_position, o.tenant_id, o.stream_type, o.stream_id, o.version, o.event_type, o.schema_version, " +
        "o.payload, o.metadata, o.retry_count"
    )

    // One statement, so one round trip and one commit per batch: it marks the relay's previous batch published and
    // claims the next (it used to be BEGIN, heads, followers, COMMIT, and then a second commit for the mark).
    // - marked: the previous batch, marked as `markPublished` does. The rest of the statement sees the rows as they
    //   were before it, so it leaves out exactly the rows marked here (by id) when it looks for each stream's head.
    // - streams: each stream's head (earliest unpublished row) by a skip scan over outbox_unpublished_tenant_idx, one
    //   index probe per stream, instead of reading and sorting every unpublished row for DISTINCT ON.
    // - locked: the due, unleased heads, oldest first, locked FOR UPDATE SKIP LOCKED so two relays never both take a
    //   stream; a head changed since the snapshot is re-checked on its latest version (EvalPlanQual). Found by id
    //   (the primary key), never by scanning the table, however many published rows it keeps.
    // - oldest_left: the oldest head the claim leaves waiting (beyond its limits, or locked by another claim).
    // - continued: the streams of the batch the relay is still publishing (`inFlight`), whose head is one of those
    //   rows and still held by this relay under a live lease. Nobody else can take such a stream (its head is
    //   leased), so the claim continues it after its last in-flight row: the relay claims the next batch while it
    //   publishes this one, and publishes those rows only once the in-flight ones went out. Only with rows older
    //   than oldest_left, so the streams a relay holds never keep older streams waiting.
    // - followers: behind each locked head, the contiguous run of pending rows nobody else holds, taken round-robin
    //   by depth so a cut keeps each stream's claim a prefix. Holding the head keeps other relays off them. Behind a
    //   continued stream's in-flight rows, the same run of due rows nobody holds (continuation).
    // The claiming UPDATE deliberately does not re-check status: a follower that a relay whose lease expired marks or
    // dead-letters meanwhile stays in the claim, so the claim never has a gap (which would publish out of order).
    // The result has one row per claimed row, or a single row without one, each carrying the count of marked rows.
    const claim = (claimOptions: Outbox.ClaimOptions) => {
      const limit = Math.max(0, Math.floor(claimOptions.limit))
      const toMark = claimOptions.markPublished ?? []
      if (limit === 0 && toMark.length === 0) return Effect.succeed([])
      const inFlight = (claimOptions.inFlight ?? []).map(String)
      const maxNewStreams = claimOptions.maxNewStreams === undefined
        ? limit
        : Math.max(0, Math.floor(claimOptions.maxNewStreams) || 0)
      const lease = millis(claimOptions.lease)
      const relayId = claimOptions.relayId
      return sql`WITH RECURSIVE marked AS (
          UPDATE ${outbox} SET status = 'published', published_at = now(), claimed_by = NULL, claimed_until = NULL
           WHERE id = ANY(${toMark.map(String)}::bigint[]) AND status = 'pending' AND claimed_by = ${relayId}
          RETURNING id
        ), streams AS (
          (SELECT x.id, x.tenant_id, x.stream_type, x.stream_id, x.global_position, x.status, x.next_attempt_at,
                  x.claimed_until, x.claimed_by
             FROM ${outbox} x
            WHERE x.status <> 'published' AND x.id NOT IN (SELECT id FROM marked)
            ORDER BY x.tenant_id, x.stream_type, x.stream_id, x.global_position
            LIMIT 1)
          UNION ALL
          SELECT n.* FROM streams s CROSS JOIN LATERAL (
            SELECT x.id, x.tenant_id, x.stream_type, x.stream_id, x.global_position, x.status, x.next_attempt_at,
                   x.claimed_until, x.claimed_by
              FROM ${outbox} x
             WHERE x.status <> 'published' AND x.id NOT IN (SELECT id FROM marked)
               AND (x.tenant_id, x.stream_type, x.stream_id) > (s.tenant_id, s.stream_type, s.stream_id)
             ORDER BY x.tenant_id, x.stream_type, x.stream_id, x.global_position
             LIMIT 1
          ) n
        ), locked AS (
          SELECT o.id, o.tenant_id, o.stream_type, o.stream_id, o.global_position FROM ${outbox} o
           WHERE o.id = ANY (ARRAY(
                   SELECT h.id FROM streams h
                    WHERE h.status = 'pending' AND h.next_attempt_at <= now()
                      AND (h.claimed_until IS NULL OR h.claimed_until < now())))
             AND o.status = 'pending' AND o.next_attempt_at <= now()
             AND (o.claimed_until IS NULL OR o.claimed_until < now())
           ORDER BY o.global_position
           LIMIT ${Math.min(limit, maxNewStreams)}
           FOR UPDATE OF o SKIP LOCKED
        ), oldest_left AS (
          SELECT min(h.global_position) AS global_position FROM streams h
           WHERE h.status = 'pending' AND h.next_attempt_at <= now()
             AND (h.claimed_until IS NULL OR h.claimed_until < now())
             AND h.id NOT IN (SELECT id FROM locked)
        ), in_flight AS (
          SELECT f.tenant_id, f.stream_type, f.stream_id, max(f.global_position) AS after_position
            FROM ${outbox} f WHERE f.id = ANY(${inFlight}::bigint[])
           GROUP BY f.tenant_id, f.stream_type, f.stream_id
        ), continued AS (
          SELECT i.tenant_id, i.stream_type, i.stream_id, i.after_position
            FROM in_flight i JOIN streams h
              ON h.tenant_id = i.tenant_id AND h.stream_type = i.stream_type AND h.stream_id = i.stream_id
           WHERE h.id = ANY(${inFlight}::bigint[]) AND h.status = 'pending'
             AND h.claimed_by = ${relayId} AND h.claimed_until > now()
        ), room AS (
          -- n: the slots left for followers. depth: how deep to look into each stream, at most 4 times its fair
          -- share, so the scan stays O(limit) rows in all instead of O(heads x limit) (it was 2,500 index rows and
          -- window rows for 50 streams at batch 100, the costliest part of the claim). Only very uneven streams
          -- can leave a batch short; the relay then simply claims again.
          -- cdepth: the same for continued streams, at most a quarter over their fair share: they go on behind a
          -- batch of the relay's own, so their backlog is known to be there, and the scan is most of the claim.
          SELECT ${limit}::integer - l.count AS n,
                 LEAST(${limit}::integer - l.count,
                       ceil(4.0 * (${limit}::integer - l.count) / GREATEST(l.count + c.count, 1)))::integer AS depth,
                 LEAST(${limit}::integer - l.count,
                       ceil(1.25 * (${limit}::integer - l.count) / GREATEST(l.count + c.count, 1)))::integer AS cdepth
            FROM (SELECT count(*)::integer AS count FROM locked) l, (SELECT count(*)::integer AS count FROM continued) c
        ), followers AS (
          SELECT f.id, f.global_position, f.depth
            FROM locked h
            CROSS JOIN LATERAL (
              SELECT r.id, r.global_position,
                     bool_and(r.status = 'pending' AND (r.claimed_until IS NULL OR r.claimed_until < now()
                                                        OR r.claimed_by = ${relayId}))
                       OVER (ORDER BY r.global_position) AS contiguous,
                     row_number() OVER (ORDER BY r.global_position) AS depth
                FROM (SELECT x.id, x.global_position, x.status, x.claimed_until, x.claimed_by FROM ${outbox} x
                       WHERE x.tenant_id = h.tenant_id AND x.stream_type = h.stream_type
                         AND x.stream_id = h.stream_id
                         AND x.global_position > h.global_position AND x.status <> 'published'
                       ORDER BY x.global_position
                       LIMIT (SELECT depth FROM room)) r
            ) f
           WHERE f.contiguous
        ), continuation AS (
          SELECT f.id, f.global_position, f.depth
            FROM continued c
            CROSS JOIN LATERAL (
              SELECT r.id, r.global_position,
                     bool_and(r.status = 'pending' AND r.next_attempt_at <= now()
                              AND (r.claimed_until IS NULL OR r.claimed_until < now()))
                       OVER (ORDER BY r.global_position) AS contiguous,
                     row_number() OVER (ORDER BY r.global_position) AS depth
                FROM (SELECT x.id, x.global_position, x.status, x.next_attempt_at, x.claimed_until FROM ${outbox} x
                       WHERE x.tenant_id = c.tenant_id AND x.stream_type = c.stream_type
                         AND x.stream_id = c.stream_id
                         AND x.global_position > c.after_position AND x.status <> 'published'
                         AND x.global_position
                             < coalesce((SELECT global_position FROM oldest_left), 9223372036854775807)
                       ORDER BY x.global_position
                       LIMIT (SELECT cdepth FROM room)) r
            ) f
           WHERE f.contiguous
        ), picked AS (
          SELECT id FROM locked
          UNION ALL
          (SELECT id FROM (SELECT * FROM followers UNION ALL SELECT * FROM continuation) behind
            ORDER BY depth, global_position LIMIT (SELECT n FROM room))
        ), claimed AS (
          UPDATE ${outbox} o SET claimed_by = ${relayId}, claimed_until = now() + ${lease} * interval '1 millisecond'
            FROM picked WHERE o.id = picked.id
          RETURNING ${claimColumns}
        )
        SELECT (SELECT count(*) FROM marked)::integer AS marked, claimed.* FROM (SELECT) AS one
          LEFT JOIN claimed ON true`.values.pipe(
        acrossTenants,
        Effect.catchTag("SqlError", (e) => Effect.fail(storeError("outbox.claim")(e))),
        Effect.flatMap(decodeClaim),
        Effect.tap(({ marked }) =>
          marked < toMark.length
            ? Effect.logWarning("outbox lease expired before the batch was marked; those rows will be redelivered")
              .pipe(Effect.annotateLogs({ relayId, published: toMark.length, marked }))
            : Effect.void
        ),
        // RETURNING has no order; the relay wants global position order.
        Effect.map(({ entries }) => entries.sort((a, b) => (a.globalPosition < b.globalPosition ? -1 : 1))),
        Effect.withSpan("PgOutbox.claim", { attributes: { relayId, limit, marks: toMark.length } })
      )
    }

    const markPublished = (relayId: string, ids: ReadonlyArray<bigint>) =>
      ids.length === 0 ? Effect.succeed(0) : sql`WITH marked AS (
          UPDATE ${outbox} SET status = 'published', published_at = now(), claimed_by = NULL, claimed_until = NULL
           WHERE id = ANY(${ids.map(String)}::bigint[]) AND status = 'pending' AND claimed_by = ${relayId}
          RETURNING 1
        ) SELECT count(*)::integer AS count FROM marked`.pipe(
        acrossTenants,
        Effect.catchTag("SqlError", (e) => Effect.fail(storeError("outbox.markPublished")(e))),
        Effect.flatMap(internal.decodeRows("outbox.markPublished", CountSchema)),
        Effect.map((rows) => rows[0]?.count ?? 0)
      )

    const recordFailure = (relayId: string, id: bigint, error: string, retryIn: Option.Option<Duration.Duration>) => {
      const dead = Option.isNone(retryIn)
      const delay = Option.match(retryIn, { onNone: () => 0, onSome: millis })
      return sql`UPDATE ${outbox}
          SET retry_count = retry_count + 1, last_error = ${
        EventValidation.sanitizeText(error)
      }, claimed_by = NULL, claimed_until = NULL,
              status = CASE WHEN ${dead} THEN 'failed' ELSE 'pending' END,
              next_attempt_at = CASE WHEN ${dead} THEN next_attempt_at
                                     ELSE now() + ${delay} * interval '1 millisecond' END
        WHERE id = ${id.toString()}::bigint AND status = 'pending' AND claimed_by = ${relayId}
        RETURNING id`.pipe(
        acrossTenants,
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
        acrossTenants,
        Effect.catchTag("SqlError", (e) => Effect.fail(storeError("outbox.renew")(e))),
        Effect.flatMap(internal.decodeRows("outbox.renew", CountSchema)),
        Effect.map((rows) => rows[0]?.count ?? 0)
      )

    const release = (relayId: string, ids: ReadonlyArray<bigint>) =>
      ids.length === 0 ? Effect.void : sql`UPDATE ${outbox} SET claimed_by = NULL, claimed_until = NULL
        WHERE id = ANY(${ids.map(String)}::bigint[]) AND status = 'pending' AND claimed_by = ${relayId}`.pipe(
        acrossTenants,
        Effect.asVoid,
        Effect.catchTag("SqlError", (e) => Effect.fail(storeError("outbox.release")(e)))
      )

    const retryFailed = (stream?: { readonly streamType: string; readonly streamId?: string | undefined }) =>
      ambient((tenant) =>
        sql`WITH retried AS (
          UPDATE ${outbox} SET status = 'pending', retry_count = 0, next_attempt_at = now()
           WHERE status = 'failed'
             ${Option.isSome(tenant) ? sql`AND tenant_id = ${tenant.value}` : sql``}
             ${stream ? sql`AND stream_type = ${stream.streamType}` : sql``}
             ${stream?.streamId !== undefined ? sql`AND stream_id = ${stream.streamId}` : sql``}
          RETURNING 1
        ) SELECT count(*)::integer AS count FROM retried`
      ).pipe(
        Effect.flatMap(internal.decodeRows("outbox.retryFailed", CountSchema)),
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
        acrossTenants,
        Effect.catchTag("SqlError", (e) => Effect.fail(storeError("outbox.cleanup")(e))),
        Effect.flatMap(internal.decodeRows("outbox.cleanup", CountSchema)),
        Effect.map((rows) => rows[0]?.count ?? 0),
        Effect.withSpan("PgOutbox.cleanup")
      )

    const stats = sql`SELECT count(*) FILTER (WHERE status = 'pending')::integer AS pending,
        count(*) FILTER (WHERE status = 'failed')::integer AS failed,
        (extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending')) * 1000)::float8 AS oldest_ms
      FROM ${outbox} WHERE status <> 'published'`.pipe(
      acrossTenants,
      Effect.catchTag("SqlError", (e) => Effect.fail(storeError("outbox.stats")(e))),
      Effect.flatMap(internal.decodeRows("outbox.stats", StatsSchema)),
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
        ? ambient((tenant) =>
          sql`SELECT ${columns} FROM ${outbox} o WHERE o.event_id = ${eventId}::uuid ${
            Option.isSome(tenant) ? sql`AND o.tenant_id = ${tenant.value}` : sql``
          }`
        ).pipe(
          Effect.catchTag("SqlError", (e) => Effect.fail(storeError("outbox.get")(e))),
          Effect.flatMap(internal.decodeRows("outbox.get", RowSchema)),
          Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toRow))
        )
        : Effect.succeed(Option.none())

    // The sql-pg LISTEN stream can end or fail silently; the relay polls anyway and subscribes again. Behind a pooler
    // in transaction mode there is no LISTEN at all: relays poll.
    const wakeups: Stream.Stream<void> = (yield* PgConfig.PgConfig).pooler === "transaction"
      ? Stream.never
      : pg.listen(channel).pipe(
        Stream.as(undefined),
        Stream.catchAll((error) => Stream.fromEffect(Effect.logDebug("outbox LISTEN failed", error)).pipe(Stream.drain))
      )

    const service: Outbox.Outbox["Type"] = {
      claim,
      markPublished: (relayId, ids) =>
        markPublished(relayId, ids).pipe(
          Effect.withSpan("PgOutbox.markPublished", { attributes: { relayId, rows: ids.length } })
        ),
      recordFailure: (relayId, id, error, retryIn) =>
        recordFailure(relayId, id, error, retryIn).pipe(
          Effect.withSpan("PgOutbox.recordFailure", {
            attributes: { relayId, row: id.toString(), deadLetter: Option.isNone(retryIn) }
          })
        ),
      renew: (relayId, ids, lease) =>
        renew(relayId, ids, lease).pipe(
          Effect.withSpan("PgOutbox.renew", { attributes: { relayId, rows: ids.length } })
        ),
      release: (relayId, ids) =>
        release(relayId, ids).pipe(Effect.withSpan("PgOutbox.release", { attributes: { relayId, rows: ids.length } })),
      retryFailed: (stream) =>
        retryFailed(stream).pipe(
          Effect.withSpan("PgOutbox.retryFailed", {
            attributes: stream === undefined ? {} : { streamType: stream.streamType, streamId: stream.streamId }
          })
        ),
      cleanup,
      stats: Effect.withSpan(stats, "PgOutbox.stats"),
      get: (eventId) => get(eventId).pipe(Effect.withSpan("PgOutbox.get", { attributes: { eventId } })),
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
