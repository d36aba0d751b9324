/**
 * The PostgreSQL `CheckpointStore`: one row per subscription in `checkpoints` and parked events in `dead_letters`
 * (migrations/0004_subscriptions.sql). Ownership is a lease row (owner + lease_until on the database clock), so it
 * needs no session state and works behind PgBouncer in transaction mode. Called inside `sql.withTransaction`, every
 * operation joins that transaction, which is how `PgProjection` commits read-model writes and the checkpoint
 * together.
 *
 * Why a lease rather than `pg_try_advisory_lock` (the default and only mode): a session lock needs a connection
 * pinned for the subscription's lifetime, is silently shared or lost behind PgBouncer in transaction mode, and can
 * outlive a dead process until the server notices the broken socket. The lease is plain rows, its takeover time is
 * bounded by its duration, and correctness never rests on it: the checkpoint's compare-and-set on (owner, position)
 * makes a stale owner's commit fail (and its projection transaction roll back) even if two processes briefly
 * believe they own the subscription.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as CheckpointStore from "@eventfold/core/CheckpointStore"
import * as Errors from "@eventfold/core/Errors"
import * as EventValidation from "@eventfold/core/EventValidation"
import * as Position from "@eventfold/core/Position"
import * as Tenant from "@eventfold/core/Tenant"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as internal from "./internal/sql.js"
import * as PgConfig from "./PgConfig.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The PostgreSQL schema holding eventfold's tables; defaults to the shared `PgConfig` schema ("eventfold"). */
  readonly schema?: string | undefined
}

const CheckpointRow = Schema.Struct({
  subscription_id: Schema.String,
  transaction_id: Schema.BigInt,
  global_position: Schema.BigInt,
  owner: Schema.NullOr(Schema.String),
  lease_until: Schema.NullOr(Schema.DateFromSelf),
  status: Schema.String,
  updated_at: Schema.DateFromSelf
})

const PositionRow = Schema.Struct({ transaction_id: Schema.BigInt, global_position: Schema.BigInt })

const DeadLetterRow = Schema.Struct({
  subscription_id: Schema.String,
  event_id: Schema.String,
  transaction_id: Schema.BigInt,
  global_position: Schema.BigInt,
  event_tenant_id: Schema.String,
  stream_type: Schema.String,
  stream_id: Schema.String,
  event_type: Schema.String,
  error: Schema.String,
  attempts: Schema.Number,
  parked_at: Schema.DateFromSelf
})

const xid = (position: Position.Position) => position.transactionId.toString()
const pos = (position: Position.Position) => position.globalPosition.toString()

/**
 * Builds the store over the `SqlClient` in context. Fails with a `StoreError` naming the missing tables when the
 * schema is not migrated.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: Options
): Effect.Effect<
  CheckpointStore.CheckpointStore["Type"],
  Errors.StoreError | Errors.InvalidInput,
  SqlClient.SqlClient
> =>
  Effect.gen(function*() {
    const schema = yield* PgConfig.schema(options?.schema)
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const checkpoints = sql(`${schema}.checkpoints`)
    const deadLetters = sql(`${schema}.dead_letters`)

    yield* internal.requireTables(sql, schema, ["checkpoints", "dead_letters"])

    const storeError = (operation: string) => (error: SqlError.SqlError | Errors.StoreError) =>
      error._tag === "StoreError" ? error : internal.toStoreError(operation, schema)(error)
    // Rows are kept per tenant scope: the ambient tenant, or "*" (every tenant) without one. Under row-level security
    // the statement runs in that scope.
    const scoped = internal.tenantScope(sql, schema, (yield* PgConfig.PgConfig).rowLevelSecurity)
    const inScope = <A, E, R>(
      f: (scope: string) => Effect.Effect<A, E | SqlError.SqlError, R>
    ): Effect.Effect<A, E | SqlError.SqlError | Errors.StoreError, R> =>
      Effect.flatMap(Tenant.ambientScope("checkpoint"), (scope) => scoped(scope)(f(scope)))

    const get = (subscriptionId: string) =>
      inScope((scope) =>
        sql`SELECT subscription_id, transaction_id, global_position, owner, lease_until, status, updated_at
        FROM ${checkpoints} WHERE subscription_id = ${subscriptionId} AND tenant_id = ${scope}`
      ).pipe(
        Effect.mapError(storeError("checkpoint.get")),
        Effect.flatMap(internal.decodeRows("checkpoint.get", CheckpointRow)),
        Effect.map((rows) =>
          Option.map(Option.fromNullable(rows[0]), (row): CheckpointStore.Checkpoint => ({
            subscriptionId: row.subscription_id,
            position: Position.make(row.transaction_id, row.global_position),
            owner: Option.fromNullable(row.owner),
            leaseUntil: Option.fromNullable(row.lease_until),
            status: row.status,
            updatedAt: row.updated_at
          }))
        )
      )

    // Lease times are on the database clock, so the processes' clocks never need to agree.
    const claim = (claimOptions: CheckpointStore.ClaimOptions) =>
      inScope((scope) =>
        sql`INSERT INTO ${checkpoints} AS c
          (subscription_id, tenant_id, transaction_id, global_position, owner, lease_until, status)
        VALUES (${claimOptions.subscriptionId}, ${scope}, ${xid(claimOptions.initial)}::xid8, ${
          pos(claimOptions.initial)
        }::bigint, ${claimOptions.owner},
          clock_timestamp() + ${
          Duration.toMillis(Duration.decode(claimOptions.lease))
        }::float8 * interval '1 millisecond',
          'active')
        ON CONFLICT (subscription_id, tenant_id) DO UPDATE
          SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until, status = 'active', updated_at = now()
          WHERE c.owner IS NULL OR c.owner = EXCLUDED.owner OR c.lease_until IS NULL
             OR c.lease_until < clock_timestamp()
        RETURNING c.transaction_id, c.global_position,
          c.transaction_id >= pg_snapshot_xmax(pg_current_snapshot()) AS ahead`
      ).pipe(
        Effect.mapError(storeError("checkpoint.claim")),
        Effect.tap((rows) =>
          // xid8 positions belong to one cluster. After a logical restore (pg_dump, logical replication) onto a
          // server whose transaction counter is lower, every new event would sort behind the checkpoint and be
          // skipped: refuse to run instead.
          rows[0]?.ahead === true
            ? Effect.fail(
              new Errors.StoreError({
                operation: "checkpoint.claim",
                reason: `the checkpoint of ${claimOptions.subscriptionId} is ahead of this server's transaction ` +
                  "counter: the database was restored logically. Rebase the checkpoint (reset the subscription, or " +
                  "set its transaction_id to the new events' transaction ids) before running it",
                retryable: false,
                kind: "data"
              })
            )
            : Effect.void
        ),
        Effect.flatMap(internal.decodeRows("checkpoint.claim", PositionRow)),
        Effect.map((rows) =>
          Option.map(Option.fromNullable(rows[0]), (row) => Position.make(row.transaction_id, row.global_position))
        )
      )

    const release = (subscriptionId: string, owner: string, status: "active" | "failed" = "active") =>
      inScope((scope) =>
        sql`UPDATE ${checkpoints} SET owner = NULL, lease_until = NULL, status = ${status}, updated_at = now()
        WHERE subscription_id = ${subscriptionId} AND tenant_id = ${scope} AND owner = ${owner}`
      ).pipe(
        Effect.mapError(storeError("checkpoint.release")),
        Effect.asVoid
      )

    const commit = (commitOptions: CheckpointStore.CommitOptions) =>
      inScope((scope) =>
        sql`UPDATE ${checkpoints}
        SET transaction_id = ${xid(commitOptions.position)}::xid8,
            global_position = ${pos(commitOptions.position)}::bigint, updated_at = now()
        WHERE subscription_id = ${commitOptions.subscriptionId} AND tenant_id = ${scope}
          AND owner = ${commitOptions.owner}
          AND transaction_id = ${xid(commitOptions.expected)}::xid8
          AND global_position = ${pos(commitOptions.expected)}::bigint
        RETURNING 1 AS ok`
      ).pipe(
        Effect.mapError(storeError("checkpoint.commit")),
        Effect.flatMap((rows) =>
          rows.length === 1 ? Effect.void : Effect.fail(
            new CheckpointStore.CheckpointConflict({
              subscriptionId: commitOptions.subscriptionId,
              owner: commitOptions.owner,
              expected: commitOptions.expected
            })
          )
        )
      )

    const reset = (subscriptionId: string, position: Position.Position) =>
      inScope((scope) =>
        sql`INSERT INTO ${checkpoints} (subscription_id, tenant_id, transaction_id, global_position, status)
        VALUES (${subscriptionId}, ${scope}, ${xid(position)}::xid8, ${pos(position)}::bigint, 'active')
        ON CONFLICT (subscription_id, tenant_id) DO UPDATE
          SET transaction_id = EXCLUDED.transaction_id, global_position = EXCLUDED.global_position,
              status = 'active', updated_at = now()`
      ).pipe(
        Effect.mapError(storeError("checkpoint.reset")),
        Effect.asVoid
      )

    const lock = (subscriptionId: string) =>
      inScope((scope) =>
        sql`SELECT 1 FROM ${checkpoints} WHERE subscription_id = ${subscriptionId} AND tenant_id = ${scope} FOR UPDATE`
      ).pipe(
        Effect.mapError(storeError("checkpoint.lock")),
        Effect.asVoid
      )

    const park = (letter: Omit<CheckpointStore.DeadLetter, "parkedAt">) =>
      inScope((scope) =>
        sql`INSERT INTO ${deadLetters} (subscription_id, tenant_id, event_id, transaction_id, global_position,
          event_tenant_id, stream_type, stream_id, event_type, error, attempts)
        VALUES (${letter.subscriptionId}, ${scope}, ${letter.eventId}::uuid, ${xid(letter.position)}::xid8, ${
          pos(letter.position)
        }::bigint,
          ${letter.tenantId}, ${letter.streamType}, ${letter.streamId}, ${letter.eventType},
          ${EventValidation.sanitizeText(letter.error)}, ${letter.attempts})
        ON CONFLICT (subscription_id, tenant_id, event_id) DO NOTHING`
      ).pipe(
        Effect.mapError(storeError("checkpoint.park")),
        Effect.asVoid
      )

    const listDeadLetters = (subscriptionId: string) =>
      inScope((scope) =>
        sql`SELECT subscription_id, event_id::text AS event_id, transaction_id, global_position, event_tenant_id,
          stream_type, stream_id,
          event_type, error, attempts, parked_at
        FROM ${deadLetters} WHERE subscription_id = ${subscriptionId} AND tenant_id = ${scope}
        ORDER BY transaction_id, global_position`
      ).pipe(
        Effect.mapError(storeError("checkpoint.deadLetters")),
        Effect.flatMap(internal.decodeRows("checkpoint.deadLetters", DeadLetterRow)),
        Effect.map((rows) =>
          rows.map((row): CheckpointStore.DeadLetter => ({
            subscriptionId: row.subscription_id,
            eventId: row.event_id,
            position: Position.make(row.transaction_id, row.global_position),
            tenantId: row.event_tenant_id,
            streamType: row.stream_type,
            streamId: row.stream_id,
            eventType: row.event_type,
            error: row.error,
            attempts: row.attempts,
            parkedAt: row.parked_at
          }))
        )
      )

    // Spans without stack traces: get and commit run once per page of every subscription.
    const span = (name: string, subscription: string, attributes?: Record<string, unknown>) =>
      Effect.withSpan(`PgCheckpointStore.${name}`, {
        attributes: { subscription, ...attributes },
        captureStackTrace: false
      })
    const store: CheckpointStore.CheckpointStore["Type"] = {
      get: (id) => get(id).pipe(span("get", id)),
      claim: (o) => claim(o).pipe(span("claim", o.subscriptionId, { owner: o.owner })),
      release: (id, owner, status) => release(id, owner, status).pipe(span("release", id, { owner })),
      commit: (o) => commit(o).pipe(span("commit", o.subscriptionId, { position: Position.format(o.position) })),
      reset: (id, position) => reset(id, position).pipe(span("reset", id)),
      lock: (id) => lock(id).pipe(span("lock", id)),
      park: (letter) => park(letter).pipe(span("park", letter.subscriptionId, { eventId: letter.eventId })),
      deadLetters: (id) => listDeadLetters(id).pipe(span("deadLetters", id))
    }
    return store
  })

/**
 * The store as a Layer over the `SqlClient` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<CheckpointStore.CheckpointStore, Errors.StoreError | Errors.InvalidInput, SqlClient.SqlClient> =>
  Layer.effect(CheckpointStore.CheckpointStore, make(options))

/**
 * The Layer with the shared settings read from the environment (`PgConfig.config`: `EVENTFOLD_SCHEMA`,
 * `EVENTFOLD_OUTBOX`, `EVENTFOLD_NOTIFY`, `EVENTFOLD_POOLER`), the same for every `layerConfig` of this package.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (): Layer.Layer<
  CheckpointStore.CheckpointStore,
  Errors.StoreError | Errors.InvalidInput | ConfigError.ConfigError,
  SqlClient.SqlClient
> => layer().pipe(Layer.provide(PgConfig.layerConfig()))
