/**
 * The PostgreSQL `SnapshotStore`: one row per stream in the `snapshots` table (migrations/0002_snapshots.sql),
 * replaced only by a newer snapshot, over any `SqlClient` from `@effect/sql-pg`.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Errors from "@eventfold/core/Errors"
import type * as EventStore from "@eventfold/core/EventStore"
import * as EventValidation from "@eventfold/core/EventValidation"
import * as SnapshotStore from "@eventfold/core/SnapshotStore"
import * as Tenant from "@eventfold/core/Tenant"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
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

const SnapshotRow = Schema.Struct({
  stream_type: Schema.String,
  stream_id: Schema.String,
  version: Schema.Number,
  schema_version: Schema.Number,
  state: Schema.Unknown,
  created_at: Schema.DateFromSelf
})

const decodeSnapshotRow = Schema.decodeUnknownEither(SnapshotRow)

/**
 * Builds the store over the `SqlClient` in context. Fails with a `StoreError` naming the missing table when the
 * schema is not migrated.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: Options
): Effect.Effect<SnapshotStore.SnapshotStore["Type"], Errors.StoreError | Errors.InvalidInput, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const schema = yield* PgConfig.schema(options?.schema)
    // Name transforms would rewrite keys inside the stored state; the store never uses them.
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const snapshots = sql(`${schema}.snapshots`)
    const loadFn = sql(`${schema}.load_snapshot`)
    const settings = yield* PgConfig.PgConfig
    const mode = settings.tenancy
    const scoped = internal.tenantScope(sql, schema, settings.rowLevelSecurity)

    yield* internal.requireTables(sql, schema, ["snapshots"])

    const storeError = (operation: string) => internal.toStoreError(operation, schema)

    const load = (stream: EventStore.StreamRef) =>
      Effect.gen(function*() {
        yield* EventValidation.validateStream(stream)
        const tenantId = yield* Tenant.resolve(mode, "loadSnapshot", stream.tenantId)
        // Under row-level security, load_snapshot enters the tenant and reads in one round trip.
        const rows = yield* (settings.rowLevelSecurity
          ? sql`SELECT * FROM ${loadFn}(${tenantId}, ${stream.streamType}, ${stream.streamId})`
          : sql`SELECT stream_type, stream_id, version, schema_version, state, created_at
          FROM ${snapshots}
          WHERE tenant_id = ${tenantId} AND stream_type = ${stream.streamType} AND stream_id = ${stream.streamId}`)
          .pipe(Effect.mapError(storeError("snapshot.load")))
        if (rows.length === 0) return Option.none()
        const row = decodeSnapshotRow(rows[0])
        if (Either.isLeft(row)) {
          return yield* new Errors.StoreError({
            operation: "snapshot.load",
            reason: `unexpected row shape: ${ParseResult.TreeFormatter.formatErrorSync(row.left)}`
          })
        }
        return Option.some<SnapshotStore.Snapshot>({
          tenantId,
          streamType: row.right.stream_type,
          streamId: row.right.stream_id,
          version: row.right.version,
          schemaVersion: row.right.schema_version,
          state: row.right.state,
          createdAt: row.right.created_at
        })
      }).pipe(
        Effect.withSpan("PgSnapshotStore.load", {
          attributes: { streamType: stream.streamType, streamId: stream.streamId }
        })
      )

    const save = (saveOptions: SnapshotStore.SaveOptions) =>
      Effect.gen(function*() {
        const s = yield* SnapshotStore.prepareSave(saveOptions, mode)
        // The WHERE makes the write monotonic: a slow writer holding an older state can never replace a newer one.
        const upsert = sql`INSERT INTO ${snapshots} AS s
            (tenant_id, stream_type, stream_id, version, schema_version, state)
          VALUES (${s.tenantId}, ${s.streamType}, ${s.streamId}, ${s.version}, ${s.schemaVersion}, ${s.stateJson}::jsonb)
          ON CONFLICT (tenant_id, stream_type, stream_id) DO UPDATE
            SET version = EXCLUDED.version, schema_version = EXCLUDED.schema_version, state = EXCLUDED.state,
                created_at = now()
            WHERE s.version < EXCLUDED.version
               OR (s.version = EXCLUDED.version AND s.schema_version < EXCLUDED.schema_version)
          RETURNING 1 AS stored`
        // Inside a caller's transaction a failed write must not abort it: give the write its own savepoint.
        const inTransaction = Option.isSome(yield* Effect.serviceOption(SqlClient.TransactionConnection))
        const rows = yield* (inTransaction ? sql.withTransaction(upsert) : upsert).pipe(
          scoped(s.tenantId),
          Effect.mapError(storeError("snapshot.save"))
        )
        return rows.length > 0
      }).pipe(
        Effect.withSpan("PgSnapshotStore.save", {
          attributes: {
            streamType: saveOptions.streamType,
            streamId: saveOptions.streamId,
            version: saveOptions.version
          }
        })
      )

    const del = (stream: EventStore.StreamRef) =>
      Effect.zipRight(
        EventValidation.validateStream(stream),
        Effect.flatMap(Tenant.resolve(mode, "deleteSnapshot", stream.tenantId), (tenantId) =>
          sql`DELETE FROM ${snapshots}
            WHERE tenant_id = ${tenantId} AND stream_type = ${stream.streamType} AND stream_id = ${stream.streamId}`
            .pipe(scoped(tenantId), Effect.asVoid, Effect.mapError(storeError("snapshot.delete"))))
      ).pipe(Effect.withSpan("PgSnapshotStore.delete"))

    const inTransaction = Effect.map(Effect.serviceOption(SqlClient.TransactionConnection), Option.isSome)
    return SnapshotStore.SnapshotStore.of({ load, save, delete: del, inTransaction })
  })

/**
 * The store as a Layer over the `SqlClient` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<SnapshotStore.SnapshotStore, Errors.StoreError | Errors.InvalidInput, SqlClient.SqlClient> =>
  Layer.effect(SnapshotStore.SnapshotStore, make(options))

/**
 * The Layer with the shared settings read from the environment (`PgConfig.config`: `EVENTFOLD_SCHEMA`,
 * `EVENTFOLD_OUTBOX`, `EVENTFOLD_NOTIFY`, `EVENTFOLD_POOLER`), the same for every `layerConfig` of this package.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (): Layer.Layer<
  SnapshotStore.SnapshotStore,
  Errors.StoreError | Errors.InvalidInput | ConfigError.ConfigError,
  SqlClient.SqlClient
> => layer().pipe(Layer.provide(PgConfig.layerConfig()))
