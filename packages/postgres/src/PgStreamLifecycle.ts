/**
 * The PostgreSQL `StreamLifecycle` (migrations/0009_lifecycle.sql): archive, tombstone, soft delete, truncation and
 * expiry, each one round trip to a function that enters the stream's tenant (for row-level security). Archive,
 * unarchive and delete take the stream's append lock, so a concurrent append lands before the change or fails with
 * `StreamArchived` / `StreamDeleted`. Truncation and expiry delete events: they need the owner's rights (the
 * application role of grants.sql has no DELETE on events and gets a `StoreError` saying so). Run them from an admin
 * job on a stack connected as the owner.
 *
 * @since 0.4.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Errors from "@eventfold/core/Errors"
import type * as EventStore from "@eventfold/core/EventStore"
import * as EventValidation from "@eventfold/core/EventValidation"
import * as StreamLifecycle from "@eventfold/core/StreamLifecycle"
import * as Tenant from "@eventfold/core/Tenant"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as internal from "./internal/sql.js"
import * as PgConfig from "./PgConfig.js"

/**
 * @since 0.4.0
 * @category models
 */
export interface Options {
  /** The PostgreSQL schema holding eventfold's tables; defaults to the shared `PgConfig` schema ("eventfold"). */
  readonly schema?: string | undefined
}

const InfoRow = Schema.Struct({
  version: Schema.Number,
  state: Schema.Literal("active", "archived", "deleted", "soft-deleted"),
  first_version: Schema.Number,
  origin: Schema.Number
})
const TruncateRow = Schema.Struct({
  status: Schema.Literal("ok", "not_found", "deleted", "invalid"),
  deleted: Schema.Union(Schema.Number, Schema.BigInt, Schema.NumberFromString),
  stream_version: Schema.Number
})
const CountRow = Schema.Struct({ count: Schema.Union(Schema.Number, Schema.BigInt, Schema.NumberFromString) })

/**
 * Builds the service over the `SqlClient` in context.
 *
 * @since 0.4.0
 * @category constructors
 */
export const make = (
  options?: Options
): Effect.Effect<
  StreamLifecycle.StreamLifecycle["Type"],
  Errors.StoreError | Errors.InvalidInput,
  SqlClient.SqlClient
> =>
  Effect.gen(function*() {
    const schema = yield* PgConfig.schema(options?.schema)
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const settings = yield* PgConfig.PgConfig
    const mode = settings.tenancy
    const infoFn = sql(`${schema}.stream_info`)
    const changeFn = sql(`${schema}.change_stream`)
    const truncateFn = sql(`${schema}.truncate_stream`)
    const expireFn = sql(`${schema}.expire_events`)
    const storeError = (operation: string) => internal.toStoreError(operation, schema)
    const decodeInfo = internal.decodeRows("streamInfo", InfoRow)
    const decodeTruncate = internal.decodeRows("truncateBefore", TruncateRow)
    const decodeCount = internal.decodeRows("expire", CountRow)

    const resolve = (operation: string, stream: EventStore.StreamRef) =>
      Effect.zipRight(
        EventValidation.validateStream(stream),
        Effect.map(Tenant.resolve(mode, operation, stream.tenantId), (tenantId) => ({
          tenantId,
          streamType: stream.streamType,
          streamId: stream.streamId
        }))
      )

    const info = (stream: EventStore.StreamRef) =>
      Effect.flatMap(resolve("streamInfo", stream), (ref) =>
        sql`SELECT * FROM ${infoFn}(${ref.tenantId}, ${ref.streamType}, ${ref.streamId})`.pipe(
          Effect.mapError(storeError("streamInfo")),
          Effect.flatMap(decodeInfo),
          Effect.map((rows) =>
            Option.map(Option.fromNullable(rows[0]), (row): StreamLifecycle.StreamInfo => ({
              ...ref,
              version: row.version,
              state: row.state,
              firstVersion: row.first_version,
              origin: row.origin
            }))
          )
        )).pipe(Effect.withSpan("PgStreamLifecycle.info", { captureStackTrace: false }))

    const change = (operation: string, action: "archive" | "unarchive" | "tombstone" | "soft_delete") =>
    (
      stream: EventStore.StreamRef
    ): Effect.Effect<void, Errors.StreamNotFound | Errors.StreamDeleted | StreamLifecycle.Error> =>
      Effect.flatMap(resolve(operation, stream), (ref) =>
        sql<
          { readonly status: string }
        >`SELECT ${changeFn}(${ref.tenantId}, ${ref.streamType}, ${ref.streamId}, ${action}) AS status`
          .pipe(
            Effect.mapError(storeError(operation)),
            Effect.flatMap(
              (rows): Effect.Effect<void, Errors.StreamNotFound | Errors.StreamDeleted | Errors.StoreError> => {
                switch (rows[0]?.status) {
                  case "ok":
                    return Effect.void
                  case "not_found":
                    return Effect.fail(new Errors.StreamNotFound(ref))
                  case "deleted":
                    return Effect.fail(new Errors.StreamDeleted(ref))
                  default:
                    return Effect.fail(
                      new Errors.StoreError({ operation, reason: `change_stream returned ${rows[0]?.status}` })
                    )
                }
              }
            )
          )).pipe(
          Effect.withSpan(`PgStreamLifecycle.${operation}`, {
            attributes: { streamType: stream.streamType, streamId: stream.streamId },
            captureStackTrace: false
          })
        )

    const truncateBefore = (stream: EventStore.StreamRef, version: number) =>
      Effect.flatMap(resolve("truncateBefore", stream), (ref) =>
        Effect.gen(function*() {
          if (!Number.isSafeInteger(version) || version < 1 || version > 2_147_483_647) {
            return yield* new Errors.InvalidInput({
              reason: `truncateBefore: version must be a positive integer, got ${version}`
            })
          }
          const rows =
            yield* sql`SELECT * FROM ${truncateFn}(${ref.tenantId}, ${ref.streamType}, ${ref.streamId}, ${version})`
              .pipe(Effect.mapError(storeError("truncateBefore")), Effect.flatMap(decodeTruncate))
          const row = rows[0]
          switch (row?.status) {
            case "ok":
              return Number(row.deleted)
            case "not_found":
              return yield* new Errors.StreamNotFound(ref)
            case "deleted":
              return yield* new Errors.StreamDeleted(ref)
            default:
              return yield* new Errors.InvalidInput({
                reason: `truncateBefore: version must be an integer from 1 to ${
                  (row?.stream_version ?? 0) + 1
                }, got ${version}`
              })
          }
        })).pipe(
          Effect.withSpan("PgStreamLifecycle.truncateBefore", {
            attributes: { streamType: stream.streamType, streamId: stream.streamId, version },
            captureStackTrace: false
          })
        )

    const expire = (expireOptions: StreamLifecycle.ExpireOptions) =>
      Effect.gen(function*() {
        const maxAge = yield* StreamLifecycle.validateExpire(expireOptions)
        const scope = yield* Tenant.resolveScope(mode, "expire", expireOptions)
        const rows = yield* sql`SELECT ${expireFn}(${scope}, ${
          Array.from(new Set(expireOptions.streamTypes))
        }::text[], ${Math.ceil(maxAge)}::bigint) AS count`.pipe(
          Effect.mapError(storeError("expire")),
          Effect.flatMap(decodeCount)
        )
        return Number(rows[0]?.count ?? 0)
      }).pipe(
        Effect.withSpan("PgStreamLifecycle.expire", {
          attributes: { streamTypes: expireOptions.streamTypes.join(",") },
          captureStackTrace: false
        })
      )

    return {
      info,
      archive: change("archive", "archive"),
      unarchive: change("unarchive", "unarchive"),
      delete: (stream, deleteOptions) =>
        change("delete", deleteOptions?.recreate === true ? "soft_delete" : "tombstone")(stream),
      truncateBefore,
      expire
    }
  })

/**
 * The service as a Layer over the `SqlClient` in context.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<StreamLifecycle.StreamLifecycle, Errors.StoreError | Errors.InvalidInput, SqlClient.SqlClient> =>
  Layer.effect(StreamLifecycle.StreamLifecycle, make(options))
