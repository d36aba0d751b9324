/**
 * Moves one tenant's streams from one eventfold store to another (schema to schema in one database, or database to
 * database) while the tenant keeps working. Events keep their ids, versions, types, schema versions, payloads,
 * metadata and recording times; snapshots and the streams' rows come along.
 *
 * 1. Online copy: the tenant's events in feed order, below the source's feed horizon, in batches; each batch commits
 *    in one target transaction with the move's progress (`tenant_moves`), so a rerun after a crash resumes after the
 *    last committed batch, copying nothing twice and skipping nothing. While the move runs, the target refuses the
 *    tenant's own writes (`tenant_blocks`, reason "moving"), which would collide with the copy.
 * 2. Cut-over: one source transaction takes the tenant's cut-over lock (waiting for the tenant's appends in flight,
 *    holding back new ones of that tenant only) and blocks the tenant there (reason "moved"); from then on its
 *    appends fail with `TenantUnavailable`. The move then waits until every transaction whose snapshot predates the
 *    block has ended, so none can still append unaware of it, and copies the rest.
 * 3. Verification: counts of streams and events, each stream's version, and a checksum over every event, computed
 *    alike on both sides. Then the move is "done" and the target accepts the tenant's writes.
 *
 * Not copied: outbox rows (their publication state belongs to the source's relay, which still publishes what the
 * tenant appended there), checkpoints and dead letters (positions in the source's feed mean nothing in the target's:
 * the tenant's events get new feed positions at the target's head, so its projections there start from the beginning
 * of the target's feed or are rebuilt). Reads of the tenant keep working in the source; route the tenant to the
 * target once the move is done.
 *
 * Rights: the move connects as the tables' owner on both sides (or a role with SELECT on the source's events,
 * streams and snapshots, INSERT and DELETE on its tenant_blocks; INSERT on the target's events, INSERT and UPDATE on
 * its streams, snapshots and tenant_moves, INSERT and DELETE on its tenant_blocks), and on the source it must read
 * every session's transaction horizon in `pg_stat_activity`: a superuser, or a member of `pg_read_all_stats`.
 * The source's `lockTimeout` (`PgDatabase.Options`) bounds the cut-over's wait for the tenant's lock.
 *
 * @since 0.3.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as Errors from "@eventfold/core/Errors"
import * as Tenant from "@eventfold/core/Tenant"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { createHash } from "node:crypto"
import * as internal from "./internal/sql.js"
import * as PgConfig from "./PgConfig.js"
import * as PgDatabase from "./PgDatabase.js"

/**
 * One side of a move: a database and the schema holding eventfold's tables.
 *
 * @since 0.3.0
 * @category models
 */
export interface Endpoint {
  /** A client the caller owns, or the options of a pool the move opens for its run and closes after. */
  readonly database: PgClient.PgClient | PgDatabase.Options
  /** The schema holding eventfold's tables; defaults to the shared `PgConfig` schema ("eventfold"). */
  readonly schema?: string | undefined
}

/**
 * Where a move stands after a committed batch.
 *
 * @since 0.3.0
 * @category models
 */
export interface Progress {
  readonly tenantId: string
  /** "online": the tenant still writes to the source; "delta": the rest, after the cut-over. */
  readonly phase: "online" | "delta"
  /** Batches committed by this run so far. */
  readonly batch: number
  /** Events in this batch. */
  readonly events: number
  /** Events copied so far, by every run of this move. */
  readonly copied: number
}

/**
 * @since 0.3.0
 * @category models
 */
export interface Options {
  readonly tenantId: string
  readonly source: Endpoint
  readonly target: Endpoint
  /** Events per batch, each copied in one target transaction; defaults to 500. */
  readonly batchSize?: number | undefined
  /**
   * How long the cut-over waits for transactions older than the block to end; defaults to 30 seconds. The tenant's
   * writes fail meanwhile; on timeout the block is lifted again and the move fails with `TenantMoveDrainTimeout`.
   */
  readonly drainTimeout?: Duration.DurationInput | undefined
  /** Called after each committed batch. Interrupting the move, here or anywhere, loses nothing: a rerun resumes. */
  readonly onBatch?: ((progress: Progress) => Effect.Effect<void>) | undefined
  /**
   * Runs inside the cut-over transaction, while it holds the tenant's lock in the source: the tenant's appends wait,
   * other tenants' do not. For tests, and for switching a router at the moment the tenant stops writing.
   */
  readonly onCutOver?: Effect.Effect<void> | undefined
}

/**
 * What a completed move copied and verified.
 *
 * @since 0.3.0
 * @category models
 */
export interface Summary {
  readonly tenantId: string
  /** The tenant's streams in the target, equal to the source's. */
  readonly streams: number
  /** The tenant's events in the target, equal to the source's. */
  readonly events: number
  /** Snapshots copied by this run. */
  readonly snapshots: number
  /** The checksum both sides computed over the tenant's streams and events. */
  readonly checksum: string
  /** Batches of events this run committed. */
  readonly batches: number
  /** Whether this run continued a move that an earlier run started (or finished). */
  readonly resumed: boolean
}

/**
 * The move cannot start or go on without risking the tenant's data: the target holds rows of the tenant that no move
 * accounts for, the target's move came from another source, the source blocks the tenant for another reason, or
 * another run of the same move advanced it concurrently. Nothing was changed by the failing step.
 *
 * @since 0.3.0
 * @category errors
 */
export class TenantMoveConflict extends Schema.TaggedError<TenantMoveConflict>()("TenantMoveConflict", {
  tenantId: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Cannot move tenant ${JSON.stringify(this.tenantId)}: ${this.reason}`
  }
}

/**
 * What one side holds of a tenant: its streams, its events and the checksum over both.
 *
 * @since 0.3.0
 * @category models
 */
export const Fingerprint = Schema.Struct({ streams: Schema.Number, events: Schema.Number, checksum: Schema.String })

/**
 * @since 0.3.0
 * @category models
 */
export type Fingerprint = typeof Fingerprint.Type

/**
 * After the copy, the target's copy of the tenant differs from the source's. The move stays in status "verifying",
 * the source keeps refusing the tenant's writes and the target keeps refusing them too: investigate, then abort
 * (`unblock`) or repair and run again.
 *
 * @since 0.3.0
 * @category errors
 */
export class TenantMoveMismatch extends Schema.TaggedError<TenantMoveMismatch>()("TenantMoveMismatch", {
  tenantId: Schema.String,
  source: Fingerprint,
  target: Fingerprint
}) {
  override get message(): string {
    const show = (f: Fingerprint) => `${f.streams} streams, ${f.events} events, checksum ${f.checksum}`
    return `Tenant ${JSON.stringify(this.tenantId)} differs after the move: source ${show(this.source)}; target ${
      show(this.target)
    }`
  }
}

/**
 * Transactions older than the cut-over's block were still running when `drainTimeout` ran out. The block was lifted
 * again, so the tenant writes to the source as before; run the move again once those sessions are gone.
 *
 * @since 0.3.0
 * @category errors
 */
export class TenantMoveDrainTimeout extends Schema.TaggedError<TenantMoveDrainTimeout>()("TenantMoveDrainTimeout", {
  tenantId: Schema.String,
  /** The source's backends (`pg_stat_activity.pid`) still holding a snapshot or transaction older than the block. */
  backends: Schema.Array(Schema.Number)
}) {
  override get message(): string {
    return `Moving tenant ${JSON.stringify(this.tenantId)}: sessions ${this.backends.join(", ")} of the source ` +
      "kept transactions older than the cut-over open; the block was lifted, run the move again later"
  }
}

/**
 * @since 0.3.0
 * @category models
 */
export type MoveError =
  | TenantMoveConflict
  | TenantMoveMismatch
  | TenantMoveDrainTimeout
  | Errors.StoreError
  | Errors.InvalidInput

/** An opened endpoint. `label` identifies it across runs: server (system identifier), database, schema. */
interface Side {
  readonly sql: SqlClient.SqlClient
  readonly schema: string
  readonly label: string
}

const Identity = Schema.Struct({ system: Schema.String, database: Schema.String })
const decodeIdentity = internal.decodeRows("tenantMove.connect", Identity)

const connect = (endpoint: Endpoint): Effect.Effect<Side, Errors.StoreError | Errors.InvalidInput, Scope.Scope> =>
  Effect.gen(function*() {
    const schema = yield* PgConfig.schema(endpoint.schema)
    const database = endpoint.database
    const client = PgClient.TypeId in database
      ? database
      : Context.get(yield* Layer.build(PgDatabase.layer(database)), PgClient.PgClient)
    const sql = client.withoutTransforms()
    yield* internal.requireTables(sql, schema, ["events", "streams", "snapshots", "tenant_blocks", "tenant_moves"])
    const [identity] = yield* sql`SELECT system_identifier::text AS system, current_database() AS database
      FROM pg_control_system()`.pipe(
      Effect.mapError(internal.toStoreError("tenantMove.connect", schema)),
      Effect.flatMap(decodeIdentity)
    )
    return { sql, schema, label: `${identity!.system}/${identity!.database}/${schema}` }
  })

const table = (side: Side, name: string) => side.sql(`${side.schema}.${name}`)

/**
 * Runs statements in one transaction scoped to the tenant (`enter_tenant`), so that row-level security, where it is
 * on and the role is subject to it, shows the tenant's rows.
 */
const inTenant = (side: Side, tenantId: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  side.sql.withTransaction(Effect.zipRight(side.sql`SELECT ${table(side, "enter_tenant")}(${tenantId})`, effect))

/** The source's feed position after the last copied event; `null` before the first batch. */
interface Cursor {
  readonly transactionId: string | null
  readonly globalPosition: string | null
}

const EventRow = Schema.Struct({
  transaction_id: Schema.String,
  global_position: Schema.String,
  event_id: Schema.String,
  stream_type: Schema.String,
  stream_id: Schema.String,
  version: Schema.Number,
  event_type: Schema.String,
  schema_version: Schema.Number,
  payload: Schema.String,
  metadata: Schema.String,
  recorded_at: Schema.String,
  actor_id: Schema.NullOr(Schema.String),
  correlation_id: Schema.NullOr(Schema.String),
  causation_id: Schema.NullOr(Schema.String)
})
const decodeEventRows = internal.decodeRows("tenantMove.read", EventRow)

const MoveRow = Schema.Struct({
  source: Schema.String,
  status: Schema.Literal("copying", "cut-over", "verifying", "done"),
  after_transaction_id: Schema.NullOr(Schema.String),
  after_global_position: Schema.NullOr(Schema.String),
  events_copied: Schema.NumberFromString,
  streams: Schema.NullOr(Schema.NumberFromString),
  checksum: Schema.NullOr(Schema.String)
})
const decodeMoveRows = internal.decodeRows("tenantMove.prepare", MoveRow)

const CountsRow = Schema.Struct({
  events: Schema.NumberFromString,
  streams: Schema.NumberFromString,
  snapshots: Schema.NumberFromString
})
const decodeCountsRows = internal.decodeRows("tenantMove.prepare", CountsRow)

const BlockRow = Schema.Struct({ reason: Schema.String, target: Schema.NullOr(Schema.String) })
const decodeBlockRows = internal.decodeRows("tenantMove.block", BlockRow)

const StreamRow = Schema.Struct({
  stream_type: Schema.String,
  stream_id: Schema.String,
  created_at: Schema.String,
  archived: Schema.Boolean,
  deleted: Schema.Boolean,
  soft_deleted: Schema.Boolean,
  first_version: Schema.Number,
  origin: Schema.Number,
  snapshot_version: Schema.NullOr(Schema.Number),
  snapshot_schema_version: Schema.NullOr(Schema.Number),
  snapshot_state: Schema.NullOr(Schema.String),
  snapshot_created_at: Schema.NullOr(Schema.String)
})
const decodeStreamRows = internal.decodeRows("tenantMove.snapshots", StreamRow)

const DigestRow = Schema.Struct({
  stream_type: Schema.String,
  stream_id: Schema.String,
  version: Schema.Number,
  events: Schema.NumberFromString,
  digest: Schema.NullOr(Schema.String)
})
const decodeDigestRow = Schema.decodeUnknown(DigestRow)

/**
 * Copies a tenant from `source` to `target`, or finishes a move an earlier run started; see the module's
 * description. A move already done returns its summary without touching either side.
 *
 * @since 0.3.0
 * @category running
 */
export const run = (options: Options): Effect.Effect<Summary, MoveError> =>
  Effect.gen(function*() {
    const tenantId = yield* Tenant.validate(options.tenantId)
    const batchSize = options.batchSize ?? 500
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) {
      return yield* new Errors.InvalidInput({
        reason: `batchSize must be an integer from 1 to 100000, got ${batchSize}`
      })
    }
    const drainTimeout = Duration.decode(options.drainTimeout ?? "30 seconds")
    const source = yield* connect(options.source)
    const target = yield* connect(options.target)
    if (source.label === target.label) {
      return yield* new Errors.InvalidInput({ reason: `source and target are the same store (${source.label})` })
    }
    const conflict = (reason: string) => new TenantMoveConflict({ tenantId, reason })
    const sourceError = internal.toStoreError("tenantMove.source", source.schema)
    const targetError = internal.toStoreError("tenantMove.target", target.schema)
    const srcEvents = table(source, "events")
    const srcBlocks = table(source, "tenant_blocks")
    const tgtEvents = table(target, "events")
    const tgtStreams = table(target, "streams")
    const tgtSnapshots = table(target, "snapshots")
    const tgtBlocks = table(target, "tenant_blocks")
    const moves = table(target, "tenant_moves")

    yield* Effect.annotateLogsScoped({ source: source.label, target: target.label })

    // Without the right to read other sessions' horizons the drain would see none and end at once: refuse up front.
    const [stats] = yield* source.sql<{ readonly allowed: boolean }>`SELECT
      pg_has_role('pg_read_all_stats', 'USAGE') AS allowed`.pipe(Effect.mapError(sourceError))
    if (stats?.allowed !== true) {
      return yield* new Errors.StoreError({
        operation: "tenantMove.source",
        reason: "the role moving a tenant must read every session's transaction horizon in pg_stat_activity on the " +
          "source: connect as a superuser, or GRANT pg_read_all_stats to it",
        retryable: false,
        kind: "permission"
      })
    }

    const sourceBlock = source.sql`SELECT reason, detail ->> 'target' AS target FROM ${srcBlocks}
      WHERE tenant_id = ${tenantId}`.pipe(Effect.mapError(sourceError), Effect.flatMap(decodeBlockRows))
    const ours = (block: typeof BlockRow.Type) => block.reason === "moved" && block.target === target.label
    const checkSourceBlock = Effect.flatMap(sourceBlock, ([block]) =>
      block === undefined || ours(block)
        ? Effect.void
        : Effect.fail(
          conflict(
            `the source already refuses the tenant's writes (reason ${JSON.stringify(block.reason)}${
              block.target === null ? "" : `, moved to ${block.target}`
            })`
          )
        ))
    yield* checkSourceBlock

    // The progress row, created with the target's block on the first run; on a later one, the target must hold
    // exactly the events the committed batches copied.
    const prepare = Effect.gen(function*() {
      // Waits for the tenant's appends in flight on the target; later ones see the block inserted below.
      yield* target.sql`SELECT pg_advisory_xact_lock(hashtextextended('tenant/' || ${tenantId}, 7131))`
      const [existing] = yield* target.sql`SELECT source, status, after_transaction_id::text AS after_transaction_id,
          after_global_position::text AS after_global_position, events_copied::text AS events_copied,
          streams::text AS streams, checksum
        FROM ${moves} WHERE tenant_id = ${tenantId} FOR UPDATE`.pipe(Effect.flatMap(decodeMoveRows))
      const [counts] = yield* target.sql`SELECT
          (SELECT count(*) FROM ${tgtEvents} WHERE tenant_id = ${tenantId})::text AS events,
          (SELECT count(*) FROM ${tgtStreams} WHERE tenant_id = ${tenantId})::text AS streams,
          (SELECT count(*) FROM ${tgtSnapshots} WHERE tenant_id = ${tenantId})::text AS snapshots`.pipe(
        Effect.flatMap(decodeCountsRows)
      )
      if (existing === undefined) {
        if (counts!.events + counts!.streams + counts!.snapshots > 0) {
          return yield* conflict(
            `the target already holds ${counts!.events} events, ${counts!.streams} streams and ` +
              `${counts!.snapshots} snapshots of the tenant, which no move accounts for`
          )
        }
        yield* target.sql`INSERT INTO ${moves} (tenant_id, source, status) VALUES (${tenantId}, ${source.label},
          'copying')`
      } else {
        if (existing.source !== source.label) {
          return yield* conflict(`the target holds a move of this tenant from another source (${existing.source})`)
        }
        if (existing.status === "done") return existing
        if (counts!.events !== existing.events_copied) {
          return yield* conflict(
            `the target holds ${counts!.events} events of the tenant, but the move copied ${existing.events_copied}`
          )
        }
      }
      yield* target.sql`INSERT INTO ${tgtBlocks} AS b (tenant_id, reason, detail)
        VALUES (${tenantId}, 'moving', jsonb_build_object('source', ${source.label}::text))
        ON CONFLICT (tenant_id) DO UPDATE SET reason = EXCLUDED.reason, detail = EXCLUDED.detail, blocked_at = now()
          WHERE b.reason <> 'moving'`
      return existing
    }).pipe(
      inTenant(target, tenantId),
      Effect.catchTag("SqlError", (e) => Effect.fail(targetError(e))),
      Effect.withSpan("PgTenantMove.prepare")
    )
    const existing = yield* prepare
    const resumed = existing !== undefined
    if (existing?.status === "done") {
      // The same finished move only while the source still refuses the tenant as moved here: a move of the tenant
      // back and out again must not end at a stale "done" (the target's rows are an older copy).
      const [block] = yield* sourceBlock
      if (block === undefined || !ours(block)) {
        return yield* conflict(
          "an earlier move of this tenant into the target finished, and the source has taken the tenant's writes " +
            "again since: remove the tenant's rows and its tenant_moves row from the target before moving it again"
        )
      }
      yield* Effect.logInfo("eventfold: tenant move already done")
      return {
        tenantId,
        streams: existing.streams ?? 0,
        events: existing.events_copied,
        snapshots: 0,
        checksum: existing.checksum ?? "",
        batches: 0,
        resumed
      }
    }
    yield* Effect.logInfo(resumed ? "eventfold: tenant move resumed" : "eventfold: tenant move started").pipe(
      Effect.annotateLogs({ status: existing?.status ?? "copying", copied: existing?.events_copied ?? 0 })
    )

    let cursor: Cursor = {
      transactionId: existing?.after_transaction_id ?? null,
      globalPosition: existing?.after_global_position ?? null
    }
    let copied = existing?.events_copied ?? 0
    let batches = 0

    // One batch: read after the cursor in the source, then insert, upsert the streams and advance the progress in
    // one target transaction. `horizon`: only rows below the source's feed horizon, whose transactions have all
    // ended, so no row of the tenant can commit later behind the cursor. Returns how many events it copied.
    const copyBatch = (phase: Progress["phase"]) =>
      Effect.gen(function*() {
        const horizon = phase === "online"
          ? source.sql`AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())`
          : source.sql``
        // Qualified with `e.`: the output columns of the same names are text, and ORDER BY would sort by those.
        const rows = yield* source.sql`SELECT e.transaction_id::text AS transaction_id,
            e.global_position::text AS global_position, e.event_id::text AS event_id, e.stream_type, e.stream_id,
            e.version, e.event_type, e.schema_version, e.payload::text AS payload, e.metadata::text AS metadata,
            to_json(e.recorded_at) #>> '{}' AS recorded_at, e.actor_id, e.correlation_id, e.causation_id
          FROM ${srcEvents} e
          WHERE e.tenant_id = ${tenantId}
            AND (e.transaction_id, e.global_position) > (${cursor.transactionId ?? "0"}::xid8,
                                                         ${cursor.globalPosition ?? "0"}::bigint)
            ${horizon}
          ORDER BY e.transaction_id, e.global_position
          LIMIT ${batchSize}`.pipe(
          inTenant(source, tenantId),
          Effect.mapError(sourceError),
          Effect.flatMap(decodeEventRows)
        )
        if (rows.length === 0) return 0
        const last = rows[rows.length - 1]!
        const column = <K extends keyof typeof EventRow.Type>(key: K) => rows.map((row) => row[key])
        yield* Effect.gen(function*() {
          // First, so that a concurrent run of the same move waits on the row and then finds it moved on.
          const advanced = yield* target.sql`UPDATE ${moves}
            SET after_transaction_id = ${last.transaction_id}::xid8,
                after_global_position = ${last.global_position}::bigint,
                events_copied = events_copied + ${rows.length}, updated_at = now()
            WHERE tenant_id = ${tenantId} AND status <> 'done'
              AND after_transaction_id IS NOT DISTINCT FROM ${cursor.transactionId}::xid8
              AND after_global_position IS NOT DISTINCT FROM ${cursor.globalPosition}::bigint
            RETURNING 1 AS advanced`
          if (advanced.length === 0) {
            return yield* conflict("another run of this move advanced it concurrently")
          }
          yield* target.sql`INSERT INTO ${tgtEvents} (tenant_id, stream_type, stream_id, version, event_id,
              event_type, schema_version, payload, metadata, recorded_at, actor_id, correlation_id, causation_id)
            SELECT ${tenantId}, n.stream_type, n.stream_id, n.version, n.event_id, n.event_type, n.schema_version,
                   n.payload, n.metadata, n.recorded_at, n.actor_id, n.correlation_id, n.causation_id
              FROM unnest(${column("stream_type")}::text[], ${column("stream_id")}::text[],
                          ${column("version")}::integer[], ${column("event_id")}::uuid[],
                          ${column("event_type")}::text[], ${column("schema_version")}::integer[],
                          ${column("payload")}::jsonb[], ${column("metadata")}::jsonb[],
                          ${column("recorded_at")}::timestamptz[], ${column("actor_id")}::text[],
                          ${column("correlation_id")}::text[], ${column("causation_id")}::text[])
                   WITH ORDINALITY AS n(stream_type, stream_id, version, event_id, event_type, schema_version,
                                        payload, metadata, recorded_at, actor_id, correlation_id, causation_id, ord)
             ORDER BY n.ord`
          yield* target.sql`INSERT INTO ${tgtStreams} AS s (tenant_id, stream_type, stream_id, version,
              last_transaction_id)
            SELECT ${tenantId}, n.stream_type, n.stream_id, max(n.version), pg_current_xact_id()
              FROM unnest(${column("stream_type")}::text[], ${column("stream_id")}::text[],
                          ${column("version")}::integer[]) AS n(stream_type, stream_id, version)
             GROUP BY n.stream_type, n.stream_id
            ON CONFLICT (tenant_id, stream_type, stream_id) DO UPDATE
              SET version = greatest(s.version, EXCLUDED.version), last_transaction_id = EXCLUDED.last_transaction_id,
                  updated_at = now()`
        }).pipe(
          inTenant(target, tenantId),
          Effect.catchTag("SqlError", (e) => Effect.fail(targetError(e)))
        )
        cursor = { transactionId: last.transaction_id, globalPosition: last.global_position }
        copied += rows.length
        batches += 1
        yield* Effect.logInfo("eventfold: tenant move batch committed").pipe(
          Effect.annotateLogs({ phase, batch: batches, events: rows.length, copied })
        )
        if (options.onBatch) {
          yield* options.onBatch({ tenantId, phase, batch: batches, events: rows.length, copied })
        }
        return rows.length
      }).pipe(Effect.withSpan("PgTenantMove.copyBatch", { attributes: { tenantId, phase } }))

    // Until a batch comes back short: online, the tenant may still be writing, so that is "caught up" for now.
    const copyAll = (phase: Progress["phase"]) =>
      Effect.iterate(batchSize, { while: (events) => events === batchSize, body: () => copyBatch(phase) })

    const setStatus = (status: "copying" | "cut-over" | "verifying", from: ReadonlyArray<string>) =>
      target.sql`UPDATE ${moves} SET status = ${status}, updated_at = now()
        WHERE tenant_id = ${tenantId} AND status = ANY(${from}::text[])`.pipe(Effect.mapError(targetError))

    yield* copyAll("online")
    yield* Effect.logInfo("eventfold: tenant move caught up; cutting over").pipe(Effect.annotateLogs({ copied }))

    // The block, committed under the tenant's exclusive cut-over lock. A block this move committed before is kept.
    const cutOver = Effect.gen(function*() {
      yield* source.sql`SELECT pg_advisory_xact_lock(hashtextextended('tenant/' || ${tenantId}, 7131))`
      const [block] = yield* source.sql`SELECT reason, detail ->> 'target' AS target FROM ${srcBlocks}
        WHERE tenant_id = ${tenantId} FOR UPDATE`.pipe(Effect.flatMap(decodeBlockRows))
      if (block !== undefined && !ours(block)) {
        return yield* conflict(
          `the source already refuses the tenant's writes (reason ${JSON.stringify(block.reason)})`
        )
      }
      if (block === undefined) {
        yield* source.sql`INSERT INTO ${srcBlocks} (tenant_id, reason, detail)
          VALUES (${tenantId}, 'moved', jsonb_build_object('target', ${target.label}::text))`
      }
      if (options.onCutOver) yield* withoutTransaction(options.onCutOver)
    }).pipe(
      source.sql.withTransaction,
      Effect.catchTag("SqlError", (e) => Effect.fail(sourceError(e))),
      Effect.withSpan("PgTenantMove.cutOver", { attributes: { tenantId } })
    )
    yield* cutOver
    yield* setStatus("cut-over", ["copying", "cut-over", "verifying"])
    yield* Effect.logInfo("eventfold: tenant blocked in the source; waiting for older transactions")

    // Every transaction that might append without seeing the block has a snapshot (backend_xmin) or an id
    // (backend_xid) no newer than the block's transaction (the xmin of its row): wait until none is left.
    const [blockRow] = yield* source.sql<{ readonly xmin: string }>`SELECT xmin::text AS xmin FROM ${srcBlocks}
      WHERE tenant_id = ${tenantId}`.pipe(Effect.mapError(sourceError))
    if (blockRow === undefined) return yield* conflict("the source's block was removed during the cut-over")
    let lingering: ReadonlyArray<number> = []
    yield* source.sql<{ readonly pid: number }>`SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
        AND (age(backend_xmin) >= age(${blockRow.xmin}::xid) OR age(backend_xid) >= age(${blockRow.xmin}::xid))`.pipe(
      Effect.mapError(sourceError),
      Effect.map((rows) => rows.map((row) => row.pid)),
      Effect.tap((pids) =>
        Effect.sync(() => {
          lingering = pids
        })
      ),
      Effect.repeat({ schedule: drainSchedule, until: (pids) => pids.length === 0 }),
      Effect.timeoutFail({
        duration: drainTimeout,
        onTimeout: () => new TenantMoveDrainTimeout({ tenantId, backends: lingering })
      }),
      Effect.tapErrorTag("TenantMoveDrainTimeout", (timeout) =>
        // No drain of this block ever completed, so nothing was copied past the feed horizon under it: lifting it
        // is safe, the tenant writes to the source again, and a rerun continues from the cursor.
        source.sql`DELETE FROM ${srcBlocks}
          WHERE tenant_id = ${tenantId} AND reason = 'moved' AND detail ->> 'target' = ${target.label}`.pipe(
          Effect.zipRight(setStatus("copying", ["cut-over"])),
          Effect.zipRight(Effect.logWarning("eventfold: tenant move drain timed out; block lifted", timeout)),
          Effect.catchAll((error) =>
            Effect.logError("eventfold: tenant move drain timed out, and lifting the block failed", error)
          )
        )),
      Effect.withSpan("PgTenantMove.drain", { attributes: { tenantId } })
    )

    yield* copyAll("delta")
    const snapshots = yield* copyStreamRows(source, target, tenantId, batchSize)
    yield* setStatus("verifying", ["cut-over", "verifying"])
    yield* Effect.logInfo("eventfold: tenant move copied; verifying").pipe(Effect.annotateLogs({ copied, snapshots }))

    const [sourcePrint, targetPrint] = yield* Effect.all(
      [
        fingerprint(source, tenantId).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(sourceError(e)))),
        fingerprint(target, tenantId).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(targetError(e))))
      ],
      { concurrency: 2 }
    ).pipe(Effect.withSpan("PgTenantMove.verify", { attributes: { tenantId } }))
    if (
      sourcePrint.streams !== targetPrint.streams || sourcePrint.events !== targetPrint.events ||
      sourcePrint.checksum !== targetPrint.checksum
    ) {
      return yield* new TenantMoveMismatch({ tenantId, source: sourcePrint, target: targetPrint })
    }

    // Done, and the target accepts the tenant's writes, in one transaction.
    yield* Effect.gen(function*() {
      const finished = yield* target.sql`UPDATE ${moves}
        SET status = 'done', checksum = ${targetPrint.checksum}, streams = ${targetPrint.streams}, updated_at = now()
        WHERE tenant_id = ${tenantId} AND status = 'verifying' RETURNING 1 AS finished`
      if (finished.length === 0) return yield* conflict("another run of this move changed its status concurrently")
      yield* target.sql`DELETE FROM ${tgtBlocks} WHERE tenant_id = ${tenantId} AND reason = 'moving'`
    }).pipe(target.sql.withTransaction, Effect.catchTag("SqlError", (e) => Effect.fail(targetError(e))))
    yield* Effect.logInfo("eventfold: tenant move done").pipe(
      Effect.annotateLogs({ streams: targetPrint.streams, events: targetPrint.events, checksum: targetPrint.checksum })
    )
    return {
      tenantId,
      streams: targetPrint.streams,
      events: targetPrint.events,
      snapshots,
      checksum: targetPrint.checksum,
      batches,
      resumed
    }
  }).pipe(
    Effect.scoped,
    Effect.annotateLogs({ tenantId: options.tenantId }),
    Effect.withSpan("PgTenantMove.run", { attributes: { tenantId: options.tenantId } }),
    withoutTransaction
  )

/** Polls the drain: quickly at first, then once a second. */
const drainSchedule = Schedule.exponential("20 millis").pipe(Schedule.union(Schedule.spaced("1 second")))

/**
 * Runs an effect outside any transaction of the caller's: the move's statements go to the connections it names, and
 * a hook inside the cut-over transaction must not run on that transaction's connection.
 */
const withoutTransaction = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.mapInputContext(
    effect,
    (context: Context.Context<never>) => Context.omit(SqlClient.TransactionConnection)(context)
  )

/**
 * The streams' own columns (creation time, flags) and their snapshots, page by page in the source's key order, each
 * page in one target transaction. Returns how many snapshots it copied.
 */
const copyStreamRows = (source: Side, target: Side, tenantId: string, pageSize: number) =>
  Effect.gen(function*() {
    const srcStreams = table(source, "streams")
    const srcSnapshots = table(source, "snapshots")
    let after: { readonly streamType: string; readonly streamId: string } | undefined
    let snapshots = 0
    while (true) {
      const keyset = after === undefined
        ? source.sql``
        : source.sql`AND (s.stream_type, s.stream_id) > (${after.streamType}, ${after.streamId})`
      const page = yield* source.sql`SELECT s.stream_type, s.stream_id, to_json(s.created_at) #>> '{}' AS created_at,
          s.archived, s.deleted, s.soft_deleted, s.first_version, s.origin, n.version AS snapshot_version, n.schema_version AS snapshot_schema_version,
          n.state::text AS snapshot_state, to_json(n.created_at) #>> '{}' AS snapshot_created_at
        FROM ${srcStreams} s
        LEFT JOIN ${srcSnapshots} n
          ON n.tenant_id = s.tenant_id AND n.stream_type = s.stream_type AND n.stream_id = s.stream_id
        WHERE s.tenant_id = ${tenantId} ${keyset}
        ORDER BY s.stream_type, s.stream_id
        LIMIT ${pageSize}`.pipe(
        inTenant(source, tenantId),
        Effect.mapError(internal.toStoreError("tenantMove.source", source.schema)),
        Effect.flatMap(decodeStreamRows)
      )
      if (page.length === 0) return snapshots
      const withSnapshot = page.filter((row) => row.snapshot_version !== null)
      yield* Effect.gen(function*() {
        yield* target.sql`UPDATE ${table(target, "streams")} t
          SET created_at = n.created_at, archived = n.archived, deleted = n.deleted, soft_deleted = n.soft_deleted,
              first_version = n.first_version, origin = n.origin
          FROM unnest(${page.map((r) => r.stream_type)}::text[], ${page.map((r) => r.stream_id)}::text[],
                      ${page.map((r) => r.created_at)}::timestamptz[], ${page.map((r) => r.archived)}::boolean[],
                      ${page.map((r) => r.deleted)}::boolean[], ${page.map((r) => r.soft_deleted)}::boolean[],
                      ${page.map((r) => r.first_version)}::integer[], ${page.map((r) => r.origin)}::integer[])
                AS n(stream_type, stream_id, created_at, archived, deleted, soft_deleted, first_version, origin)
          WHERE t.tenant_id = ${tenantId} AND t.stream_type = n.stream_type AND t.stream_id = n.stream_id`
        if (withSnapshot.length === 0) return
        yield* target.sql`INSERT INTO ${table(target, "snapshots")} AS s (tenant_id, stream_type, stream_id, version,
            schema_version, state, created_at)
          SELECT ${tenantId}, n.stream_type, n.stream_id, n.version, n.schema_version, n.state, n.created_at
            FROM unnest(${withSnapshot.map((r) => r.stream_type)}::text[],
                        ${withSnapshot.map((r) => r.stream_id)}::text[],
                        ${withSnapshot.map((r) => r.snapshot_version)}::integer[],
                        ${withSnapshot.map((r) => r.snapshot_schema_version)}::integer[],
                        ${withSnapshot.map((r) => r.snapshot_state)}::jsonb[],
                        ${withSnapshot.map((r) => r.snapshot_created_at)}::timestamptz[])
                 AS n(stream_type, stream_id, version, schema_version, state, created_at)
          ON CONFLICT (tenant_id, stream_type, stream_id) DO UPDATE
            SET version = EXCLUDED.version, schema_version = EXCLUDED.schema_version, state = EXCLUDED.state,
                created_at = EXCLUDED.created_at`
      }).pipe(
        inTenant(target, tenantId),
        Effect.mapError(internal.toStoreError("tenantMove.target", target.schema))
      )
      snapshots += withSnapshot.length
      const last = page[page.length - 1]!
      after = { streamType: last.stream_type, streamId: last.stream_id }
      if (page.length < pageSize) return snapshots
    }
  }).pipe(Effect.withSpan("PgTenantMove.copyStreamRows", { attributes: { tenantId } }))

/**
 * What one side holds of the tenant, computed alike on both: the count of its events, and a SHA-256 over one line
 * per stream in byte order of its key (COLLATE "C", whatever each database's collation), each line the stream's key,
 * version, event count and an MD5 over its events' MD5s in version order. Each event's MD5 covers its id, version,
 * type, schema version, payload, metadata, recording time (exact to the microsecond) and actor, correlation and
 * causation ids. Streamed: no side builds one value of the whole tenant.
 */
const fingerprint = (side: Side, tenantId: string): Effect.Effect<Fingerprint, SqlError.SqlError | Errors.StoreError> =>
  Effect.gen(function*() {
    const events = table(side, "events")
    const [count] = yield* side.sql<{ readonly events: string }>`SELECT count(*)::text AS events FROM ${events}
      WHERE tenant_id = ${tenantId}`
    const hash = createHash("sha256")
    const streams = yield* side.sql`SELECT s.stream_type, s.stream_id, s.version, d.events::text AS events, d.digest
      FROM ${table(side, "streams")} s
      CROSS JOIN LATERAL (
        SELECT count(*) AS events,
               md5(string_agg(md5(jsonb_build_array(e.event_id, e.version, e.event_type, e.schema_version, e.payload,
                                                    e.metadata, extract(epoch FROM e.recorded_at), e.actor_id,
                                                    e.correlation_id, e.causation_id)::text), '' ORDER BY e.version))
                 AS digest
          FROM ${events} e
         WHERE e.tenant_id = s.tenant_id AND e.stream_type = s.stream_type AND e.stream_id = s.stream_id
      ) d
      WHERE s.tenant_id = ${tenantId}
      ORDER BY s.stream_type COLLATE "C", s.stream_id COLLATE "C"`.stream.pipe(
      Stream.mapEffect((row) =>
        decodeDigestRow(row).pipe(
          Effect.mapError((e) =>
            new Errors.StoreError({ operation: "tenantMove.verify", reason: e.message, retryable: false, kind: "data" })
          )
        )
      ),
      Stream.runFold(0, (n, row) => {
        hash.update(`${JSON.stringify([row.stream_type, row.stream_id, row.version, row.events, row.digest])}\n`)
        return n + 1
      })
    )
    return { streams, events: Number(count?.events ?? 0), checksum: hash.digest("hex") }
  }).pipe(inTenant(side, tenantId))

/**
 * Lifts the source's block of a tenant, so that it accepts the tenant's writes again: aborts a move that has cut
 * over but is not done (the target keeps refusing the tenant until a rerun completes the move, and its verification
 * catches anything the interruption made it miss). Never after a move is done, unless the target's copy is
 * abandoned: the tenant would then write to both stores. Returns whether a block was removed.
 *
 * @since 0.3.0
 * @category running
 */
export const unblock = (options: {
  readonly tenantId: string
  readonly source: Endpoint
}): Effect.Effect<boolean, Errors.StoreError | Errors.InvalidInput> =>
  Effect.gen(function*() {
    const tenantId = yield* Tenant.validate(options.tenantId)
    const source = yield* connect(options.source)
    const removed = yield* source.sql`DELETE FROM ${table(source, "tenant_blocks")} WHERE tenant_id = ${tenantId}
      RETURNING reason`.pipe(Effect.mapError(internal.toStoreError("tenantMove.unblock", source.schema)))
    if (removed.length > 0) yield* Effect.logInfo("eventfold: tenant unblocked in the source")
    return removed.length > 0
  }).pipe(
    Effect.scoped,
    Effect.annotateLogs({ tenantId: options.tenantId }),
    Effect.withSpan("PgTenantMove.unblock", { attributes: { tenantId: options.tenantId } }),
    withoutTransaction
  )
