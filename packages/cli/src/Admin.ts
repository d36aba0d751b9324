/**
 * The operator's view of an eventfold PostgreSQL store: status, streams, the feed, subscriptions and their dead
 * letters, the outbox and snapshots, read and repaired across every tenant. The CLI and the web console are two faces
 * of this one service. Every result is a plain, JSON-ready object (bigints as strings, times as ISO strings), so a
 * face prints it or sends it as it is.
 *
 * It reuses the library's own modules where they do the job (PgMigrations, PgCheckpointStore, PgOutbox,
 * PgStreamLifecycle, `PgEventStore.readAllStatement`), and reads the tables directly only for what no store offers
 * (lists, counts, lag). Nothing is built from input: values are bound, identifiers escaped.
 *
 * @since 0.4.0
 */
/// <reference lib="es2024.string" />
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as SqlError from "@effect/sql/SqlError"
import type * as CheckpointStore from "@eventfold/core/CheckpointStore"
import * as Errors from "@eventfold/core/Errors"
import * as FeedNotifier from "@eventfold/core/FeedNotifier"
import * as Position from "@eventfold/core/Position"
import * as Tenant from "@eventfold/core/Tenant"
import * as PgCheckpointStore from "@eventfold/postgres/PgCheckpointStore"
import * as PgConfig from "@eventfold/postgres/PgConfig"
import * as PgDatabase from "@eventfold/postgres/PgDatabase"
import * as PgEventStore from "@eventfold/postgres/PgEventStore"
import * as PgFeedNotifier from "@eventfold/postgres/PgFeedNotifier"
import * as PgMigrations from "@eventfold/postgres/PgMigrations"
import * as PgOutbox from "@eventfold/postgres/PgOutbox"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

// ---------------------------------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------------------------------

/**
 * A feed position as JSON: the pair `(transactionId, globalPosition)` as decimal strings.
 *
 * @since 0.4.0
 * @category models
 */
export interface FeedPosition {
  readonly transactionId: string
  readonly globalPosition: string
}

/**
 * A recorded event as JSON.
 *
 * @since 0.4.0
 * @category models
 */
export interface Event {
  readonly eventId: string
  readonly tenantId: string
  readonly streamType: string
  readonly streamId: string
  readonly version: number
  readonly type: string
  readonly schemaVersion: number
  readonly position: FeedPosition
  /** The stored (Schema-encoded) payload. */
  readonly payload: unknown
  readonly metadata: Readonly<Record<string, unknown>>
  /** ISO 8601. */
  readonly recordedAt: string
}

/**
 * A stream's lifecycle state (see `@eventfold/core/StreamLifecycle`).
 *
 * @since 0.4.0
 * @category models
 */
export type StreamState = "active" | "archived" | "deleted" | "soft-deleted"

/**
 * One stream, as the `streams` table holds it.
 *
 * @since 0.4.0
 * @category models
 */
export interface StreamSummary {
  readonly tenantId: string
  readonly streamType: string
  readonly streamId: string
  /** The version of its last event. */
  readonly version: number
  readonly state: StreamState
  /** The first version reads return: 1 unless truncated or soft-deleted. */
  readonly firstVersion: number
  readonly createdAt: string
  readonly updatedAt: string
}

/**
 * Where the next page of `streams` starts: the last stream of this page.
 *
 * @since 0.4.0
 * @category models
 */
export interface StreamCursor {
  readonly tenantId: string
  readonly streamType: string
  readonly streamId: string
}

/**
 * @since 0.4.0
 * @category models
 */
export interface StreamsOptions {
  readonly streamType?: string | undefined
  readonly tenantId?: string | undefined
  /** Stream ids starting with this text. */
  readonly prefix?: string | undefined
  /** At most this many streams; defaults to 50, at most 1000. */
  readonly limit?: number | undefined
  /** Streams after this one, in (tenant, type, id) order. */
  readonly after?: StreamCursor | undefined
}

/**
 * @since 0.4.0
 * @category models
 */
export interface StreamsPage {
  readonly streams: ReadonlyArray<StreamSummary>
  /** Pass as `after` for the next page; null on the last page. */
  readonly next: StreamCursor | null
}

/**
 * A stream to show: its type and id, and its tenant when the id is used in several.
 *
 * @since 0.4.0
 * @category models
 */
export interface StreamRef {
  readonly streamType: string
  readonly streamId: string
  /** Defaults to the only tenant holding the stream ("default" when none does). */
  readonly tenantId?: string | undefined
}

/**
 * @since 0.4.0
 * @category models
 */
export interface StreamReadOptions {
  /** The first version to show; forward reads go up from it, backward reads down. */
  readonly fromVersion?: number | undefined
  /** Defaults to "forward". */
  readonly direction?: "forward" | "backward" | undefined
  /** At most this many events; defaults to 100, at most 10,000. */
  readonly limit?: number | undefined
}

/**
 * A stream and a page of its events (every stored event, also of an archived, deleted or truncated stream).
 *
 * @since 0.4.0
 * @category models
 */
export interface StreamDetail {
  readonly stream: StreamSummary
  readonly snapshot: Snapshot | null
  readonly events: ReadonlyArray<Event>
  /** The `fromVersion` of the next page in the same direction; null when there is none. */
  readonly nextVersion: number | null
}

/**
 * A stored snapshot, without its state.
 *
 * @since 0.4.0
 * @category models
 */
export interface Snapshot {
  readonly version: number
  readonly schemaVersion: number
  readonly createdAt: string
}

/**
 * @since 0.4.0
 * @category models
 */
export interface FeedOptions {
  /** Events strictly after this position; defaults to the start of the feed. */
  readonly after?: FeedPosition | undefined
  /** At most this many events; defaults to 100, at most 10,000. */
  readonly limit?: number | undefined
  readonly tenantId?: string | undefined
  readonly streamTypes?: ReadonlyArray<string> | undefined
  readonly eventTypes?: ReadonlyArray<string> | undefined
  /**
   * Without `after`: the last this many events of the feed (in feed order), instead of the first page; for `tail`.
   */
  readonly last?: number | undefined
}

/**
 * A page of the global feed, in feed order, never skipping an event that commits later.
 *
 * @since 0.4.0
 * @category models
 */
export interface FeedPage {
  readonly events: ReadonlyArray<Event>
  /** Pass as `after` for the next page (the last event's position, or `after` when the page is empty). */
  readonly next: FeedPosition
}

/**
 * One subscription's checkpoint. A subscription that runs per tenant has one per tenant; `tenantId` is "*" for one
 * over every tenant.
 *
 * @since 0.4.0
 * @category models
 */
export interface Subscription {
  readonly subscription: string
  readonly tenantId: string
  readonly position: FeedPosition
  /** Events between the checkpoint and the feed head (a difference of global positions: approximate). */
  readonly lag: string
  readonly owner: string | null
  readonly leaseUntil: string | null
  /** An owner holds an unexpired lease: the subscription runs somewhere. */
  readonly running: boolean
  /** "active", or "failed" once it stopped on a handler failure. */
  readonly status: string
  readonly updatedAt: string
  readonly deadLetters: number
}

/**
 * An event a subscription parked.
 *
 * @since 0.4.0
 * @category models
 */
export interface DeadLetter {
  readonly id: string
  readonly subscription: string
  /** The subscription's tenant scope ("*": every tenant). */
  readonly tenantId: string
  readonly eventId: string
  /** The event's own tenant. */
  readonly eventTenantId: string
  readonly position: FeedPosition
  readonly streamType: string
  readonly streamId: string
  readonly eventType: string
  readonly error: string
  readonly attempts: number
  readonly parkedAt: string
}

/**
 * Names one subscription's checkpoint: its name, and its tenant scope when it runs in several.
 *
 * @since 0.4.0
 * @category models
 */
export interface SubscriptionRef {
  readonly subscription: string
  /** The tenant scope ("*": every tenant); defaults to the only one the subscription has. */
  readonly tenantId?: string | undefined
}

/**
 * A checkpoint moved by an operator.
 *
 * @since 0.4.0
 * @category models
 */
export interface CheckpointMove {
  readonly subscription: string
  readonly tenantId: string
  readonly from: FeedPosition
  readonly to: FeedPosition
  /** The feed head when it moved. */
  readonly head: FeedPosition
  /**
   * Events between the two positions (delivered again after a rewind, skipped after a move forward); beyond a million
   * global positions apart, the difference of global positions (approximate).
   */
  readonly events: string
}

/**
 * Where `resetSubscription` rewinds to.
 *
 * @since 0.4.0
 * @category models
 */
export type ResetTarget = "beginning" | "end" | FeedPosition

/**
 * @since 0.4.0
 * @category models
 */
export interface ResetOptions extends SubscriptionRef {
  /** Defaults to "beginning" (a rebuild). */
  readonly to?: ResetTarget | undefined
  /**
   * Read-model tables ("table" or "schema.table") emptied in the same transaction as the rewind, so a projection
   * rebuilds from nothing (what `onReset` does in code). Omit for handlers that tolerate redelivery.
   */
  readonly truncate?: ReadonlyArray<string> | undefined
}

/**
 * A rebuild's progress, as `rebuildProgress` samples it from the checkpoint that the running subscription moves.
 * Counts are differences of global positions: approximate.
 *
 * @since 0.4.0
 * @category models
 */
export interface RebuildProgress {
  readonly subscription: string
  readonly tenantId: string
  readonly position: FeedPosition
  readonly target: FeedPosition
  readonly done: string
  readonly total: string
  /** Events per second over the last samples; 0 until two samples are taken. */
  readonly rate: number
  /** Seconds left at `rate`; null while the rate is 0. */
  readonly etaSeconds: number | null
  readonly owner: string | null
  /** The checkpoint reached the target. */
  readonly finished: boolean
}

/**
 * @since 0.4.0
 * @category models
 */
export interface RetryDeadLetterOptions extends SubscriptionRef {
  readonly eventId: string
}

/**
 * @since 0.4.0
 * @category models
 */
export interface ParkOptions extends SubscriptionRef {
  /** The event to park; defaults to the first event after the checkpoint. */
  readonly eventId?: string | undefined
  /** Stored as the dead letter's error; defaults to "parked by an operator". */
  readonly reason?: string | undefined
  /** Park even when other events lie between the checkpoint and the event (the subscription then skips them). */
  readonly force?: boolean | undefined
}

/**
 * @since 0.4.0
 * @category models
 */
export interface Parked extends CheckpointMove {
  readonly deadLetter: DeadLetter
}

/**
 * @since 0.4.0
 * @category models
 */
export interface OutboxStats {
  readonly pending: number
  readonly failed: number
  readonly published: number
  /** Age of the oldest pending row, in milliseconds; null when none is pending. */
  readonly oldestPendingMs: number | null
  /** The last error of the most recently failed row. */
  readonly lastError: string | null
}

/**
 * An outbox row the relay gave up on (status "failed"); it blocks its stream's later rows until retried.
 *
 * @since 0.4.0
 * @category models
 */
export interface OutboxFailure {
  readonly id: string
  readonly eventId: string
  readonly tenantId: string
  readonly streamType: string
  readonly streamId: string
  readonly version: number
  readonly eventType: string
  readonly retryCount: number
  readonly lastError: string | null
  readonly createdAt: string
}

/**
 * @since 0.4.0
 * @category models
 */
export interface Migration {
  readonly id: number
  readonly name: string
  /** ISO 8601 when applied, else null. */
  readonly appliedAt: string | null
}

/**
 * What `status` found wrong: pending migrations, dead letters, failed outbox rows, stopped subscriptions, lag.
 *
 * @since 0.4.0
 * @category models
 */
export interface Problem {
  readonly kind: "migrations" | "dead-letters" | "outbox" | "subscription" | "lag"
  readonly message: string
}

/**
 * @since 0.4.0
 * @category models
 */
export interface Status {
  readonly server: { readonly version: string; readonly database: string; readonly user: string }
  readonly schema: string
  readonly migrations: {
    readonly applied: ReadonlyArray<Migration>
    readonly pending: ReadonlyArray<Migration>
    /** False when the schema has eventfold's tables but no migrations table (built with psql). */
    readonly tracked: boolean
  }
  /** Null while the schema is not migrated. */
  readonly events: string | null
  /** True when `events` is the planner's estimate (above a million rows), not a count. */
  readonly eventsEstimated: boolean
  readonly streams: string | null
  /** True when `streams` is the planner's estimate (above a million rows), not a count. */
  readonly streamsEstimated: boolean
  readonly head: FeedPosition | null
  readonly subscriptions: ReadonlyArray<Subscription>
  readonly outbox: OutboxStats | null
  readonly problems: ReadonlyArray<Problem>
}

/**
 * @since 0.4.0
 * @category models
 */
export interface StatusOptions {
  /** A subscription further behind than this many events is a problem; no limit by default. */
  readonly maxLag?: number | undefined
}

/**
 * @since 0.4.0
 * @category models
 */
export interface MigrationPlan {
  readonly schema: string
  readonly pending: ReadonlyArray<Migration & { readonly sql: string }>
}

// ---------------------------------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------------------------------

/**
 * No checkpoint is stored under this subscription name (and tenant scope).
 *
 * @since 0.4.0
 * @category errors
 */
export class SubscriptionNotFound extends Schema.TaggedError<SubscriptionNotFound>()("SubscriptionNotFound", {
  subscription: Schema.String,
  tenantId: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `Subscription ${JSON.stringify(this.subscription)}${
      this.tenantId === undefined ? "" : ` (tenant ${JSON.stringify(this.tenantId)})`
    } has no checkpoint`
  }
}

/**
 * The subscription parked no such event.
 *
 * @since 0.4.0
 * @category errors
 */
export class DeadLetterNotFound extends Schema.TaggedError<DeadLetterNotFound>()("DeadLetterNotFound", {
  subscription: Schema.String,
  tenantId: Schema.String,
  eventId: Schema.String
}) {
  override get message(): string {
    return `Subscription ${JSON.stringify(this.subscription)} (tenant ${
      JSON.stringify(this.tenantId)
    }) has no dead letter for event ${this.eventId}`
  }
}

/**
 * @since 0.4.0
 * @category errors
 */
export type Error = Errors.StoreError | Errors.InvalidInput

// ---------------------------------------------------------------------------------------------------------------------
// service
// ---------------------------------------------------------------------------------------------------------------------

/**
 * The admin service over one eventfold schema.
 *
 * @since 0.4.0
 * @category tags
 */
export class Admin extends Context.Tag("@eventfold/cli/Admin")<Admin, {
  /** The schema it works on. */
  readonly schema: string
  /** Server, migrations, counts, the feed head, every subscription's lag, the outbox, and the problems found. */
  readonly status: (options?: StatusOptions) => Effect.Effect<Status, Error>
  /** The migrations not applied yet and the SQL each runs (what `migrate` would do). */
  readonly migrationPlan: Effect.Effect<MigrationPlan, Error>
  /** Applies the pending migrations; returns those it applied. */
  readonly migrate: Effect.Effect<ReadonlyArray<Migration>, Error>
  readonly streams: (options?: StreamsOptions) => Effect.Effect<StreamsPage, Error>
  readonly stream: (
    ref: StreamRef,
    options?: StreamReadOptions
  ) => Effect.Effect<StreamDetail, Error | Errors.StreamNotFound>
  readonly feed: (options?: FeedOptions) => Effect.Effect<FeedPage, Error>
  /**
   * Hints that the feed may have moved (appends' NOTIFY), for as long as the Scope is open: subscribe before the
   * read the hints follow. One LISTEN connection, opened on first use, serves every caller; behind a pooler in
   * transaction mode no hint ever comes, and followers fall back to their poll.
   */
  readonly feedHints: Effect.Effect<Queue.Dequeue<void>, never, Scope.Scope>
  /** The position of the last event the feed can deliver now (the start when empty). */
  readonly head: Effect.Effect<FeedPosition, Error>
  readonly subscriptions: Effect.Effect<ReadonlyArray<Subscription>, Error>
  readonly deadLetters: (
    options?: { readonly subscription?: string | undefined; readonly limit?: number | undefined }
  ) => Effect.Effect<ReadonlyArray<DeadLetter>, Error>
  /**
   * Delivers a parked event again: in one transaction the subscription's checkpoint moves back to just before the
   * event and its dead letter is removed (parked again if the handler fails again). The running owner replays from
   * there: the event, then every later event it had handled (`events` says how many), so its handler must tolerate
   * redelivery (at-least-once), as every `Subscription` handler without a transaction must.
   */
  readonly retryDeadLetter: (
    options: RetryDeadLetterOptions
  ) => Effect.Effect<CheckpointMove, Error | SubscriptionNotFound | DeadLetterNotFound>
  /**
   * Parks the event a subscription stopped on (the default error policy stops on a failing event): in one transaction
   * a dead letter is recorded and the checkpoint moves past the event, so the subscription goes on after it when it
   * runs again. Refused when other events lie between the checkpoint and the event, unless `force`.
   */
  readonly parkDeadLetter: (options: ParkOptions) => Effect.Effect<Parked, Error | SubscriptionNotFound>
  /**
   * Moves a subscription's checkpoint (to the beginning by default: a rebuild), in one transaction with the
   * checkpoint's row locked and the `truncate` tables emptied. The running owner notices and replays from there.
   */
  readonly resetSubscription: (options: ResetOptions) => Effect.Effect<CheckpointMove, Error | SubscriptionNotFound>
  /** Samples the checkpoint every `interval` (default 1 second) until it reaches `target` (default: the head now). */
  readonly rebuildProgress: (
    options: SubscriptionRef & {
      readonly target?: FeedPosition | undefined
      readonly from?: FeedPosition | undefined
      readonly interval?: Duration.DurationInput | undefined
    }
  ) => Stream.Stream<RebuildProgress, Error | SubscriptionNotFound>
  readonly outboxStats: Effect.Effect<OutboxStats, Error>
  readonly outboxFailures: (options?: { readonly limit?: number | undefined }) => Effect.Effect<
    ReadonlyArray<OutboxFailure>,
    Error
  >
  /** Sets failed rows back to pending (all, or one stream type or stream's); returns how many. */
  readonly retryOutbox: (
    options?: { readonly streamType?: string | undefined; readonly streamId?: string | undefined }
  ) => Effect.Effect<number, Error>
  /** Deletes published rows published longer ago than `olderThan` (default: every published row); returns how many. */
  readonly purgeOutbox: (
    options?: { readonly olderThan?: Duration.DurationInput | undefined }
  ) => Effect.Effect<number, Error>
  /** Deletes the snapshots of a stream type (or of one stream); returns how many. Events stay the truth. */
  readonly clearSnapshots: (
    options: {
      readonly streamType: string
      readonly streamId?: string | undefined
      readonly tenantId?: string | undefined
    }
  ) => Effect.Effect<number, Error>
}>() {}

// ---------------------------------------------------------------------------------------------------------------------
// implementation
// ---------------------------------------------------------------------------------------------------------------------

const Int8 = Schema.Union(Schema.BigIntFromSelf, Schema.BigInt)
const Count = Schema.Union(Schema.Number, Schema.NumberFromString)
const Time = Schema.DateFromSelf

const EventRow = Schema.Struct({
  global_position: Int8,
  transaction_id: Int8,
  event_id: Schema.String,
  tenant_id: Schema.String,
  stream_type: Schema.String,
  stream_id: Schema.String,
  version: Schema.Number,
  event_type: Schema.String,
  schema_version: Schema.Number,
  payload: Schema.Unknown,
  metadata: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  recorded_at: Time
})

const StreamRow = Schema.Struct({
  tenant_id: Schema.String,
  stream_type: Schema.String,
  stream_id: Schema.String,
  version: Schema.Number,
  state: Schema.Literal("active", "archived", "deleted", "soft-deleted"),
  first_version: Schema.Number,
  created_at: Time,
  updated_at: Time
})

const CheckpointRow = Schema.Struct({
  subscription_id: Schema.String,
  tenant_id: Schema.String,
  transaction_id: Int8,
  global_position: Int8,
  owner: Schema.NullOr(Schema.String),
  lease_until: Schema.NullOr(Time),
  running: Schema.Boolean,
  status: Schema.String,
  updated_at: Time,
  dead_letters: Count
})

const DeadLetterRow = Schema.Struct({
  id: Int8,
  subscription_id: Schema.String,
  tenant_id: Schema.String,
  event_id: Schema.String,
  event_tenant_id: Schema.String,
  transaction_id: Int8,
  global_position: Int8,
  stream_type: Schema.String,
  stream_id: Schema.String,
  event_type: Schema.String,
  error: Schema.String,
  attempts: Schema.Number,
  parked_at: Time
})

const OutboxFailureRow = Schema.Struct({
  id: Int8,
  event_id: Schema.String,
  tenant_id: Schema.String,
  stream_type: Schema.String,
  stream_id: Schema.String,
  version: Schema.Number,
  event_type: Schema.String,
  retry_count: Schema.Number,
  last_error: Schema.NullOr(Schema.String),
  created_at: Time
})

const PositionRow = Schema.Struct({ transaction_id: Int8, global_position: Int8 })

const toJson = (position: Position.Position): FeedPosition => ({
  transactionId: position.transactionId.toString(),
  globalPosition: position.globalPosition.toString()
})

/**
 * "transactionId:globalPosition", as the CLI prints positions.
 *
 * @since 0.4.0
 * @category utils
 */
export const formatPosition = (position: FeedPosition): string => `${position.transactionId}:${position.globalPosition}`

/**
 * A library `Position` as JSON.
 *
 * @since 0.4.0
 * @category utils
 */
export const formatPositionJson = (position: Position.Position): FeedPosition => toJson(position)

const DIGITS = /^\d{1,20}$/

/**
 * Reads a position: "transactionId:globalPosition" (as `formatPosition` prints it) or a `FeedPosition`.
 *
 * @since 0.4.0
 * @category utils
 */
export const parsePosition = (input: string | FeedPosition): Effect.Effect<Position.Position, Errors.InvalidInput> => {
  const [transactionId, globalPosition] = typeof input === "string"
    ? input.split(":")
    : [input.transactionId, input.globalPosition]
  return transactionId !== undefined && globalPosition !== undefined && DIGITS.test(transactionId) &&
      DIGITS.test(globalPosition) && (typeof input !== "string" || input.split(":").length === 2)
    ? Effect.succeed(Position.make(BigInt(transactionId), BigInt(globalPosition)))
    : Effect.fail(
      new Errors.InvalidInput({
        reason: `a feed position is "transactionId:globalPosition" (two decimal numbers), got ${
          JSON.stringify(typeof input === "string" ? input : formatPosition(input)).slice(0, 80)
        }`
      })
    )
}

const toEvent = (row: typeof EventRow.Type): Event => ({
  eventId: row.event_id,
  tenantId: row.tenant_id,
  streamType: row.stream_type,
  streamId: row.stream_id,
  version: row.version,
  type: row.event_type,
  schemaVersion: row.schema_version,
  position: toJson(Position.make(row.transaction_id, row.global_position)),
  payload: row.payload,
  metadata: row.metadata,
  recordedAt: row.recorded_at.toISOString()
})

const toStream = (row: typeof StreamRow.Type): StreamSummary => ({
  tenantId: row.tenant_id,
  streamType: row.stream_type,
  streamId: row.stream_id,
  version: row.version,
  state: row.state,
  firstVersion: row.first_version,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString()
})

const toDeadLetter = (row: typeof DeadLetterRow.Type): DeadLetter => ({
  id: row.id.toString(),
  subscription: row.subscription_id,
  tenantId: row.tenant_id,
  eventId: row.event_id,
  eventTenantId: row.event_tenant_id,
  position: toJson(Position.make(row.transaction_id, row.global_position)),
  streamType: row.stream_type,
  streamId: row.stream_id,
  eventType: row.event_type,
  error: row.error,
  attempts: row.attempts,
  parkedAt: row.parked_at.toISOString()
})

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const TABLE = /^(?:[a-z_][a-z0-9_$]{0,62}\.)?[a-z_][a-z0-9_$]{0,62}$/

const invalid = (reason: string) => new Errors.InvalidInput({ reason })

const limitOf = (limit: number | undefined, fallback: number, max: number) =>
  limit === undefined
    ? Effect.succeed(fallback)
    : Number.isInteger(limit) && limit >= 1 && limit <= max
    ? Effect.succeed(limit)
    : Effect.fail(invalid(`limit must be an integer from 1 to ${max}, got ${limit}`))

const text = (name: string, value: string | undefined) =>
  value === undefined
    ? Effect.succeed(undefined)
    : value.length > 0 && value.length <= 1024 && !value.includes("\u0000") && value.isWellFormed()
    ? Effect.succeed(value)
    : Effect.fail(
      invalid(`${name} must be 1 to 1024 characters without NUL, got ${JSON.stringify(value).slice(0, 80)}`)
    )

const tenantOf = (tenantId: string | undefined) =>
  tenantId === undefined ? Effect.succeed(undefined) : Tenant.validate(tenantId)

/** A subscription's tenant scope: "*" or a valid tenant id. */
const scopeOf = (tenantId: string | undefined) =>
  tenantId === undefined || tenantId === Tenant.allScope ? Effect.succeed(tenantId) : Tenant.validate(tenantId)

const sub = (a: bigint, b: bigint) => (a > b ? a - b : 0n)

/** Up to this many global positions apart, a checkpoint move counts the events between; beyond, it estimates. */
const EXACT_COUNT_LIMIT = 1_000_000n

/**
 * Builds the service over the `PgClient` in context, for the shared `PgConfig` schema (or `options.schema`). It
 * starts on an unmigrated schema too: `status` then reports the pending migrations, and `migrate` applies them.
 *
 * @since 0.4.0
 * @category constructors
 */
export const make = (
  options?: { readonly schema?: string | undefined }
): Effect.Effect<Admin["Type"], Errors.InvalidInput, PgClient.PgClient | SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const schema = yield* PgConfig.schema(options?.schema)
    const settings = yield* PgConfig.PgConfig
    const pg = yield* PgClient.PgClient
    const sql = pg.withoutTransforms()
    const table = (name: string) => sql(`${schema}.${name}`)
    const events = table("events")
    const streamsTable = table("streams")
    const checkpoints = table("checkpoints")
    const deadLettersTable = table("dead_letters")
    const outbox = table("outbox")
    const snapshots = table("snapshots")
    const migrationsTable = table("eventfold_migrations")
    const feedHead = sql(`${schema}.feed_head`)
    const streamState = sql(`${schema}.stream_state`)
    const context = yield* Effect.context<PgClient.PgClient | SqlClient.SqlClient>()

    const storeError = (operation: string) => (error: SqlError.SqlError): Errors.StoreError => {
      const cause: unknown = error.cause
      const code = typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
        ? cause.code
        : undefined
      const detail = typeof cause === "object" && cause !== null && "message" in cause &&
          typeof cause.message === "string"
        ? cause.message
        : error.message
      const missing = code === "42P01" || code === "42883" || code === "3F000"
      return new Errors.StoreError({
        operation: `admin.${operation}`,
        reason: missing
          ? `${detail}. The eventfold schema "${schema}" is not migrated: run eventfold migrate --schema ${schema}`
          : detail,
        retryable: false,
        kind: missing ? "schema" : code === "42501" ? "permission" : "other",
        ...(code !== undefined ? { code } : {}),
        cause: error
      })
    }
    const decode = <A, I>(operation: string, schema_: Schema.Schema<A, I>) => {
      const run = Schema.decodeUnknown(Schema.Array(schema_))
      return (rows: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<A>, Errors.StoreError> =>
        Effect.mapError(run(rows), (error) =>
          new Errors.StoreError({
            operation: `admin.${operation}`,
            reason: `unexpected row shape: ${error.message}`,
            retryable: false,
            kind: "data"
          }))
    }
    // Every tenant's rows: under row-level security the statements run in the "*" scope of their own transaction.
    const acrossTenants = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError.SqlError, R> =>
      settings.rowLevelSecurity
        ? sql.withTransaction(Effect.zipRight(sql`SELECT set_config('eventfold.tenant', '*', true)`, effect))
        : effect
    const query = <A, I>(
      operation: string,
      rowSchema: Schema.Schema<A, I>,
      statement: Effect.Effect<ReadonlyArray<unknown>, SqlError.SqlError>
    ) =>
      acrossTenants(statement).pipe(
        Effect.mapError(storeError(operation)),
        Effect.flatMap(decode(operation, rowSchema)),
        Effect.withSpan(`Admin.${operation}`, { attributes: { schema } })
      )

    // The library's stores check their tables when built, so they are built on first use (after a migrate).
    const cachedOnSuccess = <A, E>(build: Effect.Effect<A, E>) =>
      Effect.map(Ref.make(Option.none<A>()), (ref) =>
        Effect.flatMap(Ref.get(ref), (cached) =>
          Option.isSome(cached)
            ? Effect.succeed(cached.value)
            : Effect.tap(build, (built) => Ref.set(ref, Option.some(built)))))
    const checkpointStore = yield* cachedOnSuccess(
      Effect.provide(PgCheckpointStore.make({ schema }), context)
    )
    const outboxStore = yield* cachedOnSuccess(Effect.provide(PgOutbox.make({ schema }), context))
    const inScope = (scope: string) =>
      Effect.provideService(Tenant.CurrentTenant, scope === Tenant.allScope ? Option.none() : Option.some(scope))

    const tableExists = (name: string) =>
      sql<{ readonly found: boolean }>`SELECT to_regclass(${`${schema}.${name}`}) IS NOT NULL AS found`.pipe(
        Effect.map((rows) => rows[0]?.found === true),
        Effect.mapError(storeError("status"))
      )

    // -- feed head ------------------------------------------------------------------------------------------------

    const headPosition = query(
      "head",
      PositionRow,
      sql`SELECT transaction_id, global_position FROM ${feedHead}()`
    ).pipe(
      Effect.map((rows) =>
        rows[0] === undefined ? Position.start : Position.make(rows[0].transaction_id, rows[0].global_position)
      )
    )

    // -- migrations -----------------------------------------------------------------------------------------------

    const appliedMigrations = Effect.gen(function*() {
      if (!(yield* tableExists("eventfold_migrations"))) return Option.none()
      const rows = yield* query(
        "migrations",
        Schema.Struct({ migration_id: Schema.Number, name: Schema.String, created_at: Time }),
        sql`SELECT migration_id, name, created_at FROM ${migrationsTable} ORDER BY migration_id`
      )
      return Option.some(rows)
    })

    const migrationState = Effect.gen(function*() {
      const applied = yield* appliedMigrations
      const hasTables = yield* tableExists("events")
      if (Option.isNone(applied)) {
        const all = PgMigrations.migrations.map(([id, name]): Migration => ({ id, name, appliedAt: null }))
        // A schema built with psql has the tables and no migrations table: nothing to say about what is pending.
        return hasTables
          ? { applied: [], pending: [], tracked: false }
          : { applied: [], pending: all, tracked: true }
      }
      const byId = new Map(applied.value.map((row) => [row.migration_id, row]))
      const latest = Math.max(0, ...applied.value.map((row) => row.migration_id))
      return {
        applied: PgMigrations.migrations.flatMap(([id, name]): Array<Migration> => {
          const row = byId.get(id)
          return row === undefined ? [] : [{ id, name, appliedAt: row.created_at.toISOString() }]
        }),
        // The Migrator applies only ids above the latest applied one.
        pending: PgMigrations.migrations.filter(([id]) => id > latest).map(([id, name]): Migration => ({
          id,
          name,
          appliedAt: null
        })),
        tracked: true
      }
    })

    const migrationPlan: Admin["Type"]["migrationPlan"] = Effect.map(migrationState, (state) => {
      const scripts = new Map(PgMigrations.scripts(schema).map(([id, , text]) => [id, text]))
      return {
        schema,
        pending: state.pending.map((m) => ({ ...m, sql: scripts.get(m.id) ?? "" }))
      }
    })

    const migrate: Admin["Type"]["migrate"] = Effect.map(
      PgMigrations.run({ schema }).pipe(Effect.provide(context)),
      (applied) => applied.map(([id, name]): Migration => ({ id, name, appliedAt: new Date().toISOString() }))
    )

    // -- subscriptions --------------------------------------------------------------------------------------------

    const checkpointRows = (where: { readonly subscription?: string | undefined }) =>
      query(
        "subscriptions",
        CheckpointRow,
        sql`SELECT c.subscription_id, c.tenant_id, c.transaction_id, c.global_position, c.owner, c.lease_until,
            (c.owner IS NOT NULL AND c.lease_until > clock_timestamp()) AS running, c.status, c.updated_at,
            (SELECT count(*) FROM ${deadLettersTable} d
              WHERE d.subscription_id = c.subscription_id AND d.tenant_id = c.tenant_id)::integer AS dead_letters
          FROM ${checkpoints} c
         ${where.subscription === undefined ? sql`` : sql`WHERE c.subscription_id = ${where.subscription}`}
         ORDER BY c.subscription_id, c.tenant_id`
      )

    const toSubscription = (head: Position.Position) => (row: typeof CheckpointRow.Type): Subscription => ({
      subscription: row.subscription_id,
      tenantId: row.tenant_id,
      position: toJson(Position.make(row.transaction_id, row.global_position)),
      lag: sub(head.globalPosition, row.global_position).toString(),
      owner: row.owner,
      leaseUntil: row.lease_until?.toISOString() ?? null,
      running: row.running,
      status: row.status,
      updatedAt: row.updated_at.toISOString(),
      deadLetters: row.dead_letters
    })

    const subscriptions: Admin["Type"]["subscriptions"] = Effect.gen(function*() {
      const head = yield* headPosition
      return (yield* checkpointRows({})).map(toSubscription(head))
    })

    /** The one checkpoint a ref names: its scope given, or the only one the subscription has. */
    const resolveSubscription = (ref: SubscriptionRef) =>
      Effect.gen(function*() {
        const name = yield* text("subscription", ref.subscription)
        const scope = yield* scopeOf(ref.tenantId)
        const rows = (yield* checkpointRows({ subscription: name })).filter((row) =>
          scope === undefined || row.tenant_id === scope
        )
        if (rows.length === 0) {
          return yield* new SubscriptionNotFound({
            subscription: ref.subscription,
            ...(scope === undefined ? {} : { tenantId: scope })
          })
        }
        if (rows.length > 1) {
          return yield* invalid(
            `subscription ${JSON.stringify(ref.subscription)} runs in ${rows.length} tenant scopes (${
              rows.slice(0, 5).map((r) => JSON.stringify(r.tenant_id)).join(", ")
            }${rows.length > 5 ? ", ..." : ""}): name the tenant`
          )
        }
        return rows[0]!
      })

    const deadLetters: Admin["Type"]["deadLetters"] = (options) =>
      Effect.gen(function*() {
        const subscription = yield* text("subscription", options?.subscription)
        const limit = yield* limitOf(options?.limit, 1000, 10_000)
        const rows = yield* query(
          "deadLetters",
          DeadLetterRow,
          sql`SELECT id, subscription_id, tenant_id, event_id::text AS event_id, event_tenant_id, transaction_id,
              global_position, stream_type, stream_id, event_type, error, attempts, parked_at
            FROM ${deadLettersTable}
           ${subscription === undefined ? sql`` : sql`WHERE subscription_id = ${subscription}`}
           ORDER BY subscription_id, tenant_id, transaction_id, global_position
           LIMIT ${limit}`
        )
        return rows.map(toDeadLetter)
      })

    /** A subscription's events: its tenant's, or every tenant's for the "*" scope. */
    const ofScope = (scope: string) => scope === Tenant.allScope ? sql`` : sql`AND tenant_id = ${scope}`

    /** A subscription's events in the feed in (from, to]; the range is read on the feed index. */
    const eventsBetween = (scope: string, from: Position.Position, to: Position.Position) =>
      query(
        "count",
        Schema.Struct({ count: Int8 }),
        sql`SELECT count(*) AS count FROM ${events}
          WHERE (transaction_id, global_position) > (${from.transactionId.toString()}::xid8, ${from.globalPosition.toString()}::bigint)
            AND (transaction_id, global_position) <= (${to.transactionId.toString()}::xid8, ${to.globalPosition.toString()}::bigint)
            ${ofScope(scope)}`
      ).pipe(Effect.map((rows) => rows[0]?.count ?? 0n))

    /** Runs `f` in a transaction holding the checkpoint's row, with the checkpoint store scoped to its tenant. */
    const withCheckpoint = <A, E>(
      row: typeof CheckpointRow.Type,
      f: (store: CheckpointStore.CheckpointStore["Type"], current: Position.Position) => Effect.Effect<A, E>
    ) =>
      Effect.gen(function*() {
        const store = yield* checkpointStore
        return yield* sql.withTransaction(
          Effect.gen(function*() {
            yield* store.lock(row.subscription_id)
            const current = yield* store.get(row.subscription_id)
            if (Option.isNone(current)) {
              return yield* new SubscriptionNotFound({ subscription: row.subscription_id, tenantId: row.tenant_id })
            }
            return yield* f(store, current.value.position)
          }).pipe(inScope(row.tenant_id))
        ).pipe(
          Effect.catchIf(
            (e): e is SqlError.SqlError => e instanceof SqlError.SqlError,
            (e) => Effect.fail(storeError("checkpoint")(e))
          )
        )
      })

    const move = (
      row: typeof CheckpointRow.Type,
      from: Position.Position,
      to: Position.Position,
      head: Position.Position
    ) =>
      Effect.map(
        // Counting reads the range: beyond a million global positions the difference is reported instead.
        sub(to.globalPosition, from.globalPosition) + sub(from.globalPosition, to.globalPosition) > EXACT_COUNT_LIMIT
          ? Effect.succeed(sub(to.globalPosition, from.globalPosition) + sub(from.globalPosition, to.globalPosition))
          : Position.isAfter(from, to)
          ? eventsBetween(row.tenant_id, to, from)
          : eventsBetween(row.tenant_id, from, to),
        (count): CheckpointMove => ({
          subscription: row.subscription_id,
          tenantId: row.tenant_id,
          from: toJson(from),
          to: toJson(to),
          head: toJson(head),
          events: count.toString()
        })
      )

    const retryDeadLetter: Admin["Type"]["retryDeadLetter"] = (options) =>
      Effect.gen(function*() {
        if (!UUID.test(options.eventId)) {
          return yield* invalid(`event id must be a UUID, got ${JSON.stringify(options.eventId).slice(0, 80)}`)
        }
        const row = yield* resolveSubscription(options)
        const head = yield* headPosition
        return yield* withCheckpoint(row, (store, current) =>
          Effect.gen(function*() {
            const removed = yield* query(
              "retryDeadLetter",
              PositionRow,
              sql`DELETE FROM ${deadLettersTable}
                WHERE subscription_id = ${row.subscription_id} AND tenant_id = ${row.tenant_id}
                  AND event_id = ${options.eventId}::uuid
                RETURNING transaction_id, global_position`
            )
            const letter = removed[0]
            if (letter === undefined) {
              return yield* new DeadLetterNotFound({
                subscription: row.subscription_id,
                tenantId: row.tenant_id,
                eventId: options.eventId
              })
            }
            // Just before the event: every event from it on is after this position in feed order.
            const before = Position.make(letter.transaction_id, letter.global_position - 1n)
            const target = Position.isAfter(current, before) ? before : current
            yield* store.reset(row.subscription_id, target)
            return yield* move(row, current, target, head)
          }))
      }).pipe(Effect.withSpan("Admin.retryDeadLetter"))

    const parkDeadLetter: Admin["Type"]["parkDeadLetter"] = (options) =>
      Effect.gen(function*() {
        if (options.eventId !== undefined && !UUID.test(options.eventId)) {
          return yield* invalid(`event id must be a UUID, got ${JSON.stringify(options.eventId).slice(0, 80)}`)
        }
        const reason = (yield* text("reason", options.reason)) ?? "parked by an operator"
        const row = yield* resolveSubscription(options)
        const head = yield* headPosition
        return yield* withCheckpoint(row, (store, current) =>
          Effect.gen(function*() {
            const after =
              sql`(transaction_id, global_position) > (${current.transactionId.toString()}::xid8, ${current.globalPosition.toString()}::bigint)
              AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())`
            const found = yield* query(
              "parkDeadLetter",
              EventRow,
              options.eventId === undefined
                ? sql`SELECT global_position, transaction_id, event_id::text AS event_id, tenant_id, stream_type,
                    stream_id, version, event_type, schema_version, payload, metadata, recorded_at
                    FROM ${events} WHERE ${after} ${ofScope(row.tenant_id)}
                    ORDER BY transaction_id, global_position LIMIT 1`
                : sql`SELECT global_position, transaction_id, event_id::text AS event_id, tenant_id, stream_type,
                    stream_id, version, event_type, schema_version, payload, metadata, recorded_at
                    FROM ${events} WHERE event_id = ${options.eventId}::uuid`
            )
            const event = found[0]
            if (event === undefined) {
              return yield* invalid(
                options.eventId === undefined
                  ? `subscription ${JSON.stringify(row.subscription_id)} is at the head of the feed: no event to park`
                  : `no event ${options.eventId} in the feed`
              )
            }
            const position = Position.make(event.transaction_id, event.global_position)
            if (!Position.isAfter(position, current)) {
              return yield* invalid(
                `event ${event.event_id} is at ${Position.format(position)}, not after the checkpoint of ` +
                  `${JSON.stringify(row.subscription_id)} (${
                    Position.format(current)
                  }): it was handled or parked already`
              )
            }
            if (row.tenant_id !== Tenant.allScope && event.tenant_id !== row.tenant_id) {
              return yield* invalid(
                `event ${event.event_id} is of tenant ${JSON.stringify(event.tenant_id)}, not of the scope of ` +
                  `${JSON.stringify(row.subscription_id)} (tenant ${JSON.stringify(row.tenant_id)})`
              )
            }
            const between = yield* eventsBetween(
              row.tenant_id,
              current,
              Position.make(position.transactionId, position.globalPosition - 1n)
            )
            if (between > 0n && options.force !== true) {
              return yield* invalid(
                `${between} event(s) lie between the checkpoint of ${JSON.stringify(row.subscription_id)} and event ` +
                  `${event.event_id}: parking it would skip them. Park the first event after the checkpoint, or force`
              )
            }
            yield* store.park({
              subscriptionId: row.subscription_id,
              eventId: event.event_id,
              position,
              tenantId: event.tenant_id,
              streamType: event.stream_type,
              streamId: event.stream_id,
              eventType: event.event_type,
              error: reason,
              attempts: 0
            })
            yield* store.reset(row.subscription_id, position)
            const moved = yield* move(row, current, position, head)
            const letters = yield* query(
              "parkDeadLetter",
              DeadLetterRow,
              sql`SELECT id, subscription_id, tenant_id, event_id::text AS event_id, event_tenant_id, transaction_id,
                  global_position, stream_type, stream_id, event_type, error, attempts, parked_at
                FROM ${deadLettersTable}
               WHERE subscription_id = ${row.subscription_id} AND tenant_id = ${row.tenant_id}
                 AND event_id = ${event.event_id}::uuid`
            )
            return { ...moved, deadLetter: toDeadLetter(letters[0]!) }
          }))
      }).pipe(Effect.withSpan("Admin.parkDeadLetter"))

    const resetSubscription: Admin["Type"]["resetSubscription"] = (options) =>
      Effect.gen(function*() {
        const truncate = options.truncate ?? []
        for (const name of truncate) {
          if (!TABLE.test(name)) {
            return yield* invalid(
              `a table to truncate is "table" or "schema.table" in plain lower-case identifiers, got ${
                JSON.stringify(name).slice(0, 80)
              }`
            )
          }
          if (name.startsWith(`${schema}.`)) {
            return yield* invalid(`refusing to truncate ${name}: it is one of eventfold's own tables`)
          }
        }
        const row = yield* resolveSubscription(options)
        const head = yield* headPosition
        const to = options.to ?? "beginning"
        const target = to === "beginning" ? Position.start : to === "end" ? head : yield* parsePosition(to)
        return yield* withCheckpoint(row, (store, current) =>
          Effect.gen(function*() {
            for (const name of truncate) {
              yield* sql`TRUNCATE ${sql(name)}`.pipe(Effect.mapError(storeError("resetSubscription")))
            }
            yield* store.reset(row.subscription_id, target)
            return yield* move(row, current, target, head)
          }))
      }).pipe(Effect.withSpan("Admin.resetSubscription"))

    const rebuildProgress: Admin["Type"]["rebuildProgress"] = (options) =>
      Stream.unwrap(Effect.gen(function*() {
        const row = yield* resolveSubscription(options)
        const target = options.target === undefined ? yield* headPosition : yield* parsePosition(options.target)
        const from = options.from === undefined
          ? Position.make(row.transaction_id, row.global_position)
          : yield* parsePosition(options.from)
        const interval = Duration.decode(options.interval ?? "1 second")
        const total = sub(target.globalPosition, from.globalPosition)
        const sample = Effect.map(
          Effect.zip(
            resolveSubscription({ subscription: row.subscription_id, tenantId: row.tenant_id }),
            Effect.clockWith((c) => c.currentTimeMillis)
          ),
          ([current, at]) => ({ current, at })
        )
        type Sample = { readonly done: bigint; readonly at: number }
        return Stream.repeatEffectWithSchedule(sample, Schedule.spaced(interval)).pipe(
          Stream.mapAccum([] as ReadonlyArray<Sample>, (window, { at, current }) => {
            const position = Position.make(current.transaction_id, current.global_position)
            const finished = !Position.isAfter(target, position)
            const done = finished ? total : sub(current.global_position, from.globalPosition)
            const samples = [...window, { done, at }].slice(-10)
            const first = samples[0]!
            const elapsed = (at - first.at) / 1000
            const rate = elapsed > 0 ? Number(done - first.done) / elapsed : 0
            const left = Number(sub(total, done))
            const progress: RebuildProgress = {
              subscription: row.subscription_id,
              tenantId: row.tenant_id,
              position: toJson(position),
              target: toJson(target),
              done: (done > total ? total : done).toString(),
              total: total.toString(),
              rate: Math.max(0, rate),
              etaSeconds: finished ? 0 : rate > 0 ? left / rate : null,
              owner: current.owner,
              finished
            }
            return [samples, progress]
          }),
          Stream.takeUntil((progress) => progress.finished)
        )
      }))

    // -- streams --------------------------------------------------------------------------------------------------

    const streamColumns = sql`tenant_id, stream_type, stream_id, version,
      ${streamState}(archived, deleted, soft_deleted) AS state, first_version, created_at, updated_at`

    const streams: Admin["Type"]["streams"] = (options) =>
      Effect.gen(function*() {
        const limit = yield* limitOf(options?.limit, 50, 1000)
        const streamType = yield* text("stream type", options?.streamType)
        const tenantId = yield* tenantOf(options?.tenantId)
        const prefix = yield* text("prefix", options?.prefix)
        const after = options?.after
        const rows = yield* query(
          "streams",
          StreamRow,
          sql`SELECT ${streamColumns} FROM ${streamsTable}
            WHERE true
            ${tenantId === undefined ? sql`` : sql`AND tenant_id = ${tenantId}`}
            ${streamType === undefined ? sql`` : sql`AND stream_type = ${streamType}`}
            ${prefix === undefined ? sql`` : sql`AND starts_with(stream_id, ${prefix})`}
            ${
            after === undefined
              ? sql``
              : sql`AND (tenant_id, stream_type, stream_id) > (${after.tenantId}, ${after.streamType}, ${after.streamId})`
          }
            ORDER BY tenant_id, stream_type, stream_id
            LIMIT ${limit + 1}`
        )
        const page = rows.slice(0, limit).map(toStream)
        const last = page[page.length - 1]
        return {
          streams: page,
          next: rows.length > limit && last !== undefined
            ? { tenantId: last.tenantId, streamType: last.streamType, streamId: last.streamId }
            : null
        }
      })

    const stream: Admin["Type"]["stream"] = (ref, readOptions) =>
      Effect.gen(function*() {
        const streamType = (yield* text("stream type", ref.streamType))!
        const streamId = (yield* text("stream id", ref.streamId))!
        const tenantId = yield* tenantOf(ref.tenantId)
        const limit = yield* limitOf(readOptions?.limit, 100, 10_000)
        const backward = readOptions?.direction === "backward"
        const fromVersion = readOptions?.fromVersion
        if (fromVersion !== undefined && (!Number.isInteger(fromVersion) || fromVersion < 0)) {
          return yield* invalid(`fromVersion must be a whole number, got ${fromVersion}`)
        }
        const found = yield* query(
          "stream",
          StreamRow,
          sql`SELECT ${streamColumns} FROM ${streamsTable}
            WHERE stream_type = ${streamType} AND stream_id = ${streamId}
            ${tenantId === undefined ? sql`` : sql`AND tenant_id = ${tenantId}`}
            ORDER BY tenant_id = ${Tenant.defaultId} DESC, tenant_id LIMIT 6`
        )
        if (found.length === 0) {
          return yield* new Errors.StreamNotFound({
            ...(tenantId === undefined ? {} : { tenantId }),
            streamType,
            streamId
          })
        }
        if (found.length > 1 && tenantId === undefined) {
          return yield* invalid(
            `stream ${streamType}/${streamId} exists in ${found.length > 5 ? "more than 5" : found.length} tenants (${
              found.slice(0, 5).map((r) => JSON.stringify(r.tenant_id)).join(", ")
            }): name the tenant`
          )
        }
        const row = found[0]!
        const start = fromVersion ?? (backward ? row.version : 1)
        const rows = yield* query(
          "stream",
          EventRow,
          sql`SELECT global_position, transaction_id, event_id::text AS event_id, tenant_id, stream_type, stream_id,
              version, event_type, schema_version, payload, metadata, recorded_at
            FROM ${events}
           WHERE tenant_id = ${row.tenant_id} AND stream_type = ${streamType} AND stream_id = ${streamId}
             AND version ${backward ? sql`<=` : sql`>=`} ${start}
           ORDER BY version ${backward ? sql`DESC` : sql`ASC`}
           LIMIT ${limit + 1}`
        )
        const snapshot = yield* query(
          "stream",
          Schema.Struct({ version: Schema.Number, schema_version: Schema.Number, created_at: Time }),
          sql`SELECT version, schema_version, created_at FROM ${snapshots}
            WHERE tenant_id = ${row.tenant_id} AND stream_type = ${streamType} AND stream_id = ${streamId}`
        )
        const page = rows.slice(0, limit).map(toEvent)
        const nextRow = rows[limit]
        return {
          stream: toStream(row),
          snapshot: snapshot[0] === undefined ? null : {
            version: snapshot[0].version,
            schemaVersion: snapshot[0].schema_version,
            createdAt: snapshot[0].created_at.toISOString()
          },
          events: page,
          nextVersion: nextRow === undefined ? null : nextRow.version
        }
      })

    // -- feed -----------------------------------------------------------------------------------------------------

    const feed: Admin["Type"]["feed"] = (options) =>
      Effect.gen(function*() {
        const limit = yield* limitOf(options?.limit, 100, 10_000)
        const after = options?.after === undefined ? Position.start : yield* parsePosition(options.after)
        const tenantId = yield* tenantOf(options?.tenantId)
        for (const t of [...(options?.streamTypes ?? []), ...(options?.eventTypes ?? [])]) yield* text("type", t)
        const last = options?.after === undefined ? options?.last : undefined
        if (last !== undefined) {
          const n = yield* limitOf(last, 100, 10_000)
          const streamTypes = options?.streamTypes
          const eventTypes = options?.eventTypes
          // The feed's end, read backward on the feed index, then put back in feed order.
          const rows = yield* query(
            "feed",
            EventRow,
            sql`SELECT * FROM (
                SELECT global_position, transaction_id, event_id::text AS event_id, tenant_id, stream_type, stream_id,
                  version, event_type, schema_version, payload, metadata, recorded_at
                FROM ${events}
               WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
               ${tenantId === undefined ? sql`` : sql`AND tenant_id = ${tenantId}`}
               ${streamTypes === undefined ? sql`` : sql`AND stream_type = ANY(${[...streamTypes]}::text[])`}
               ${eventTypes === undefined ? sql`` : sql`AND event_type = ANY(${[...eventTypes]}::text[])`}
               ORDER BY transaction_id DESC, global_position DESC
               LIMIT ${n}
              ) t ORDER BY transaction_id, global_position`
          )
          const page = rows.map(toEvent)
          return { events: page, next: page[page.length - 1]?.position ?? toJson(yield* headPosition) }
        }
        const rows = yield* query(
          "feed",
          EventRow,
          PgEventStore.readAllStatement(sql, schema, {
            scope: tenantId ?? Tenant.allScope,
            after,
            limit,
            streamTypes: options?.streamTypes === undefined ? undefined : [...new Set(options.streamTypes)],
            eventTypes: options?.eventTypes === undefined ? undefined : [...new Set(options.eventTypes)],
            includeArchived: true
          })
        )
        const page = rows.map(toEvent)
        return { events: page, next: page[page.length - 1]?.position ?? toJson(after) }
      })

    // -- outbox ---------------------------------------------------------------------------------------------------

    const outboxStats: Admin["Type"]["outboxStats"] = Effect.gen(function*() {
      const stats = yield* Effect.flatMap(outboxStore, (o) => o.stats)
      const more = yield* query(
        "outboxStats",
        Schema.Struct({ published: Count, last_error: Schema.NullOr(Schema.String) }),
        sql`SELECT (SELECT count(*) FROM ${outbox} WHERE status = 'published')::bigint AS published,
            (SELECT last_error FROM ${outbox} WHERE status = 'failed' ORDER BY id DESC LIMIT 1) AS last_error`
      )
      return {
        pending: stats.pending,
        failed: stats.failed,
        published: more[0]?.published ?? 0,
        oldestPendingMs: Option.getOrNull(Option.map(stats.oldestPendingAge, (d) => Math.round(Duration.toMillis(d)))),
        lastError: more[0]?.last_error ?? null
      }
    })

    const outboxFailures: Admin["Type"]["outboxFailures"] = (options) =>
      Effect.gen(function*() {
        const limit = yield* limitOf(options?.limit, 100, 10_000)
        const rows = yield* query(
          "outboxFailures",
          OutboxFailureRow,
          sql`SELECT id, event_id::text AS event_id, tenant_id, stream_type, stream_id, version, event_type,
              retry_count, last_error, created_at
            FROM ${outbox} WHERE status = 'failed' ORDER BY id LIMIT ${limit}`
        )
        return rows.map((row): OutboxFailure => ({
          id: row.id.toString(),
          eventId: row.event_id,
          tenantId: row.tenant_id,
          streamType: row.stream_type,
          streamId: row.stream_id,
          version: row.version,
          eventType: row.event_type,
          retryCount: row.retry_count,
          lastError: row.last_error,
          createdAt: row.created_at.toISOString()
        }))
      })

    const retryOutbox: Admin["Type"]["retryOutbox"] = (options) =>
      Effect.gen(function*() {
        const streamType = yield* text("stream type", options?.streamType)
        const streamId = yield* text("stream id", options?.streamId)
        if (streamId !== undefined && streamType === undefined) {
          return yield* invalid("a stream id needs its stream type")
        }
        const store = yield* outboxStore
        return yield* store.retryFailed(streamType === undefined ? undefined : { streamType, streamId })
      })

    const purgeOutbox: Admin["Type"]["purgeOutbox"] = (options) =>
      Effect.gen(function*() {
        const olderThan = options?.olderThan === undefined ? Duration.zero : Duration.decode(options.olderThan)
        if (!Duration.isFinite(olderThan)) return yield* invalid("olderThan must be a finite duration")
        const store = yield* outboxStore
        return yield* store.cleanup(olderThan)
      })

    // -- snapshots ------------------------------------------------------------------------------------------------

    const clearSnapshots: Admin["Type"]["clearSnapshots"] = (options) =>
      Effect.gen(function*() {
        const streamType = (yield* text("stream type", options.streamType))!
        const streamId = yield* text("stream id", options.streamId)
        const tenantId = yield* tenantOf(options.tenantId)
        const rows = yield* query(
          "clearSnapshots",
          Schema.Struct({ count: Count }),
          sql`WITH deleted AS (
              DELETE FROM ${snapshots} WHERE stream_type = ${streamType}
              ${streamId === undefined ? sql`` : sql`AND stream_id = ${streamId}`}
              ${tenantId === undefined ? sql`` : sql`AND tenant_id = ${tenantId}`}
              RETURNING 1
            ) SELECT count(*)::integer AS count FROM deleted`
        )
        return rows[0]?.count ?? 0
      })

    // -- status ---------------------------------------------------------------------------------------------------

    const status: Admin["Type"]["status"] = (statusOptions) =>
      Effect.gen(function*() {
        const maxLag = statusOptions?.maxLag
        if (maxLag !== undefined && (!Number.isInteger(maxLag) || maxLag < 0)) {
          return yield* invalid(`maxLag must be a whole number, got ${maxLag}`)
        }
        const server = yield* query(
          "status",
          Schema.Struct({ version: Schema.String, database: Schema.String, user: Schema.String }),
          sql`SELECT current_setting('server_version') AS version, current_database() AS database,
              current_user AS user`
        )
        const migrations = yield* migrationState
        const problems: Array<Problem> = []
        if (migrations.pending.length > 0) {
          problems.push({
            kind: "migrations",
            message: `${migrations.pending.length} migration(s) pending (${
              migrations.pending.map((m) => `${String(m.id).padStart(4, "0")}_${m.name}`).join(", ")
            }): run eventfold migrate`
          })
        }
        const ready = yield* Effect.map(
          Effect.all(["events", "streams", "checkpoints", "dead_letters", "outbox"].map(tableExists)),
          (found) => found.every(Boolean)
        )
        const base = {
          server: server[0]!,
          schema,
          migrations
        }
        // Until the schema is migrated, the tables and functions the rest reads may be missing or older.
        if (!ready || migrations.pending.length > 0) {
          return {
            ...base,
            events: null,
            eventsEstimated: false,
            streams: null,
            streamsEstimated: false,
            head: null,
            subscriptions: [],
            outbox: null,
            problems
          }
        }
        // count(*) reads the whole table: above a million rows (by the planner's estimate) the estimate is shown.
        const countOf = (name: string) =>
          Effect.gen(function*() {
            const estimate = (yield* query(
              "status",
              Schema.Struct({ estimate: Int8 }),
              sql`SELECT greatest(reltuples, 0)::bigint AS estimate FROM pg_class
                WHERE oid = ${`${schema}.${name}`}::regclass`
            ))[0]?.estimate ?? 0n
            if (estimate > 1_000_000n) return { count: estimate, estimated: true }
            const rows = yield* query(
              "status",
              Schema.Struct({ count: Int8 }),
              sql`SELECT count(*) AS count FROM ${table(name)}`
            )
            return { count: rows[0]?.count ?? 0n, estimated: false }
          })
        const eventCount = yield* countOf("events")
        const streamCount = yield* countOf("streams")
        const head = yield* headPosition
        const subs = (yield* checkpointRows({})).map(toSubscription(head))
        const stats = yield* outboxStats
        for (const s of subs) {
          const name = s.tenantId === Tenant.allScope ? s.subscription : `${s.subscription} (tenant ${s.tenantId})`
          if (s.deadLetters > 0) {
            problems.push({ kind: "dead-letters", message: `${name}: ${s.deadLetters} dead letter(s)` })
          }
          if (s.status === "failed") {
            problems.push({ kind: "subscription", message: `${name}: stopped on a failing event (status failed)` })
          }
          if (maxLag !== undefined && BigInt(s.lag) > BigInt(maxLag)) {
            problems.push({ kind: "lag", message: `${name}: ${s.lag} events behind the head (more than ${maxLag})` })
          }
        }
        if (stats.failed > 0) {
          problems.push({
            kind: "outbox",
            message: `outbox: ${stats.failed} failed row(s)${
              stats.lastError === null ? "" : `, last error: ${stats.lastError}`
            }`
          })
        }
        return {
          ...base,
          events: eventCount.count.toString(),
          eventsEstimated: eventCount.estimated,
          streams: streamCount.count.toString(),
          streamsEstimated: streamCount.estimated,
          head: toJson(head),
          subscriptions: subs,
          outbox: stats,
          problems
        }
      }).pipe(Effect.withSpan("Admin.status"))

    // The library's notifier, built on first use (most commands never follow) in a fiber of the service's lifetime:
    // a first caller that goes away stops only its own wait, and the LISTEN loop stays interruptible, so the service
    // closes. One notifier for all: sql-pg shares one LISTEN connection per client, and each notifier that stops
    // would UNLISTEN the channel for the others.
    const lifetime = yield* Effect.scope
    const built = yield* Deferred.make<FeedNotifier.FeedNotifier["Type"]>()
    const started = yield* Ref.make(false)
    const build = PgFeedNotifier.make({ schema }).pipe(
      Effect.provide(context),
      Scope.extend(lifetime),
      Effect.catchAll((error) =>
        Effect.as(Effect.logWarning("eventfold: no feed hints; following by polling", error), FeedNotifier.polling)
      )
    )
    // An application's notifier in context is used as it is: a second one on the same client would UNLISTEN its
    // channel when it stops. Forked into a closed scope, the build is interrupted before it starts: then `built`
    // is interrupted too, so callers never wait on it forever.
    const shared = yield* Effect.serviceOption(FeedNotifier.FeedNotifier)
    const notifier = Option.isSome(shared) ?
      Effect.succeed(shared.value) :
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(
          Ref.getAndSet(started, true),
          (was) =>
            was ? Effect.void : Effect.asVoid(Effect.forkIn(
              restore(Deferred.complete(built, build)).pipe(Effect.onInterrupt(() => Deferred.interrupt(built))),
              lifetime
            ))
        ).pipe(
          Effect.zipRight(restore(Deferred.await(built)))
        )
      )

    const service: Admin["Type"] = {
      schema,
      feedHints: Effect.flatMap(notifier, (n) => n.subscribe),
      status,
      migrationPlan,
      migrate,
      streams,
      stream,
      feed,
      head: Effect.map(headPosition, toJson),
      subscriptions,
      deadLetters,
      retryDeadLetter,
      parkDeadLetter,
      resetSubscription,
      rebuildProgress,
      outboxStats,
      outboxFailures,
      retryOutbox,
      purgeOutbox,
      clearSnapshots
    }
    return service
  })

/**
 * The service over the `PgClient` in context.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (
  options?: { readonly schema?: string | undefined }
): Layer.Layer<Admin, Errors.InvalidInput, PgClient.PgClient | SqlClient.SqlClient> =>
  Layer.scoped(Admin, make(options))

/**
 * The service with its own pool, configured like the library: `DATABASE_URL` and the `EVENTFOLD_PG_*` pool settings
 * (`PgDatabase.config`), `EVENTFOLD_SCHEMA` and the other shared settings (`PgConfig.config`). `schema` overrides
 * `EVENTFOLD_SCHEMA`. The pool is small (an operator's tool): 2 connections unless `EVENTFOLD_PG_MAX_CONNECTIONS`.
 *
 * @since 0.4.0
 * @category layers
 */
export const layerConfig = (
  options?: { readonly schema?: string | undefined }
): Layer.Layer<Admin, Errors.StoreError | Errors.InvalidInput | ConfigError.ConfigError> =>
  layer(options).pipe(
    Layer.provide(
      Layer.unwrapEffect(
        Effect.map(PgDatabase.config, (database) =>
          PgDatabase.layer({
            applicationName: "eventfold-cli",
            ...database,
            maxConnections: database.maxConnections ?? 2
          }))
      )
    ),
    Layer.provide(
      Layer.unwrapEffect(
        Effect.map(PgConfig.config, (settings) =>
          PgConfig.layer({ ...settings, ...(options?.schema === undefined ? {} : { schema: options.schema }) }))
      )
    )
  )
