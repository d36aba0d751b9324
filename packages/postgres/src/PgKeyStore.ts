/**
 * The PostgreSQL `KeyStore` of crypto-shredding (`@eventfold/core/PersonalData`): subjects' data keys in
 * `subject_keys` and the audit trail in `forgotten_subjects` (migrations/0010_personal_data.sql), over any
 * `SqlClient` from `@effect/sql-pg`, per tenant.
 *
 * `PgEventfold.layer` provides the `SqlClient` and `PgConfig` it needs, so it goes on top of the stack:
 *
 * ```ts
 * const Live = PersonalData.layer({ aggregates: [Customer] }).pipe(
 *   Layer.provideMerge(PgKeyStore.layer()),
 *   Layer.provideMerge(PgEventfold.layer({ database: { url }, outbox: true }))
 * )
 * ```
 *
 * Looking a key up is one statement. Creating a subject's first key, rotating and forgetting run in a transaction
 * (a savepoint inside a caller's) under an advisory lock on the subject, so no key is ever created after a forget.
 * The least-privilege application role needs SELECT and INSERT on both tables and DELETE on `subject_keys`
 * (migrations/grants.sql). The keys are stored as they are: protect the table like any secret (disk encryption,
 * backups, who may SELECT it), and forget means the keys must also age out of backups.
 *
 * @since 0.4.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import type * as Errors from "@eventfold/core/Errors"
import * as KeyStore from "@eventfold/core/KeyStore"
import type * as ConfigError from "effect/ConfigError"
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

const KeyRow = Schema.Struct({
  subject_id: Schema.String,
  key_id: Schema.String,
  generation: Schema.Number,
  key: Schema.Uint8ArrayFromSelf,
  created_at: Schema.DateFromSelf
})

const ForgottenRow = Schema.Struct({
  subject_id: Schema.String,
  forgotten_at: Schema.DateFromSelf,
  forgotten_by: Schema.String,
  reason: Schema.NullOr(Schema.String),
  keys_deleted: Schema.Number
})

/** The advisory lock space of subjects (append_events uses 7130 for streams, migrations 0). */
const SUBJECT_LOCK_SEED = 4711

/**
 * Builds the store over the `SqlClient` in context. Fails with a `StoreError` naming the missing tables when the
 * schema is not migrated up to 0010.
 *
 * @since 0.4.0
 * @category constructors
 */
export const make = (
  options?: Options
): Effect.Effect<KeyStore.KeyStore["Type"], Errors.StoreError | Errors.InvalidInput, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const schema = yield* PgConfig.schema(options?.schema)
    // Name transforms would rename the columns read below; the store never uses them.
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const keys = sql(`${schema}.subject_keys`)
    const audit = sql(`${schema}.forgotten_subjects`)

    yield* internal.requireTables(sql, schema, ["subject_keys", "forgotten_subjects"])

    const storeError = (operation: string) => (error: SqlError.SqlError) =>
      internal.toStoreError(`keyStore.${operation}`, schema)(error)
    const decodeKeys = internal.decodeRows("keyStore", KeyRow)
    const decodeForgotten = internal.decodeRows("keyStore", ForgottenRow)

    const toKey = (tenantId: string) => (row: typeof KeyRow.Type): KeyStore.SubjectKey => ({
      tenantId,
      subjectId: row.subject_id,
      keyId: row.key_id,
      generation: row.generation,
      key: row.key,
      createdAt: row.created_at
    })
    const toForgotten = (tenantId: string) => (row: typeof ForgottenRow.Type): KeyStore.Forgotten => ({
      tenantId,
      subjectId: row.subject_id,
      forgottenAt: row.forgotten_at,
      forgottenBy: row.forgotten_by,
      reason: row.reason,
      keysDeleted: row.keys_deleted
    })

    const currentKey = (tenantId: string, subjectId: string) =>
      sql`SELECT subject_id, key_id::text, generation, key, created_at FROM ${keys}
        WHERE tenant_id = ${tenantId} AND subject_id = ${subjectId} ORDER BY generation DESC LIMIT 1`.pipe(
        Effect.flatMap(decodeKeys),
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toKey(tenantId)))
      )

    const firstForget = (tenantId: string, subjectId: string) =>
      sql`SELECT subject_id, forgotten_at, forgotten_by, reason, keys_deleted FROM ${audit}
        WHERE tenant_id = ${tenantId} AND subject_id = ${subjectId} ORDER BY id LIMIT 1`.pipe(
        Effect.flatMap(decodeForgotten),
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toForgotten(tenantId)))
      )

    // Serialises key creation, rotation and forgetting of one subject until the transaction ends.
    const lockSubject = (tenantId: string, subjectId: string) =>
      sql`SELECT pg_advisory_xact_lock(hashtextextended(${`eventfold.subject:${schema}:${tenantId.length}:${tenantId}:${subjectId}`}, ${SUBJECT_LOCK_SEED}))`

    // Under the lock: refuse a forgotten subject, else add a key (the next generation), unless `reuse` and one exists.
    const addKey = (tenantId: string, subjectId: string, reuse: boolean, operation: string) =>
      Effect.gen(function*() {
        const fresh = yield* KeyStore.generateKey
        const created = yield* Effect.gen(function*() {
          yield* lockSubject(tenantId, subjectId)
          const forgotten = yield* firstForget(tenantId, subjectId)
          if (Option.isSome(forgotten)) {
            return yield* new KeyStore.SubjectForgotten({
              tenantId,
              subjectId,
              forgottenAt: forgotten.value.forgottenAt
            })
          }
          if (reuse) {
            const existing = yield* currentKey(tenantId, subjectId)
            if (Option.isSome(existing)) return existing.value
          }
          const rows = yield* sql`INSERT INTO ${keys} (tenant_id, subject_id, generation, key_id, key)
            SELECT ${tenantId}, ${subjectId}, coalesce(max(generation), 0) + 1, ${fresh.keyId}::uuid, ${
            Buffer.from(fresh.key)
          }
              FROM ${keys} WHERE tenant_id = ${tenantId} AND subject_id = ${subjectId}
            RETURNING subject_id, key_id::text, generation, key, created_at`.pipe(Effect.flatMap(decodeKeys))
          return toKey(tenantId)(rows[0]!)
        }).pipe(sql.withTransaction)
        return created
      }).pipe(
        Effect.catchTag("SqlError", (e) => Effect.fail(storeError(operation)(e))),
        Effect.withSpan(`PgKeyStore.${operation}`)
      )

    const current = (tenantId: string, subjectId: string) =>
      Effect.gen(function*() {
        yield* KeyStore.validateSubject(tenantId, subjectId)
        // The usual case, one statement: the subject has a key. A key exists only while the subject is not forgotten.
        const existing = yield* currentKey(tenantId, subjectId).pipe(
          Effect.catchTag("SqlError", (e) => Effect.fail(storeError("current")(e)))
        )
        if (Option.isSome(existing)) return existing.value
        return yield* addKey(tenantId, subjectId, true, "current")
      })

    const get = (tenantId: string, keyIds: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const ids = yield* KeyStore.validateKeyIds(tenantId, keyIds)
        if (ids.length === 0) return new Map<string, KeyStore.SubjectKey>()
        const rows = yield* sql`SELECT subject_id, key_id::text, generation, key, created_at FROM ${keys}
          WHERE tenant_id = ${tenantId} AND key_id = ANY(${ids}::uuid[])`.pipe(
          Effect.catchTag("SqlError", (e) => Effect.fail(storeError("get")(e))),
          Effect.flatMap(decodeKeys)
        )
        return new Map(rows.map((row) => [row.key_id, toKey(tenantId)(row)] as const))
      }).pipe(Effect.withSpan("PgKeyStore.get", { attributes: { keys: keyIds.length } }))

    const rotate = (tenantId: string, subjectId: string) =>
      Effect.zipRight(KeyStore.validateSubject(tenantId, subjectId), addKey(tenantId, subjectId, false, "rotate"))

    const forget = (tenantId: string, subjectId: string, forgetOptions: KeyStore.ForgetOptions) =>
      Effect.gen(function*() {
        yield* KeyStore.validateForget(tenantId, subjectId, forgetOptions)
        const rows = yield* Effect.gen(function*() {
          yield* lockSubject(tenantId, subjectId)
          const deleted = yield* sql`DELETE FROM ${keys} WHERE tenant_id = ${tenantId} AND subject_id = ${subjectId}
            RETURNING 1 AS deleted`
          return yield* sql`INSERT INTO ${audit} (tenant_id, subject_id, forgotten_by, reason, keys_deleted)
            VALUES (${tenantId}, ${subjectId}, ${forgetOptions.by}, ${forgetOptions.reason ?? null}, ${deleted.length})
            RETURNING subject_id, forgotten_at, forgotten_by, reason, keys_deleted`
        }).pipe(
          sql.withTransaction,
          Effect.catchTag("SqlError", (e) => Effect.fail(storeError("forget")(e))),
          Effect.flatMap(decodeForgotten)
        )
        return toForgotten(tenantId)(rows[0]!)
      }).pipe(Effect.withSpan("PgKeyStore.forget"))

    const forgotten = (tenantId: string, subjectId: string) =>
      Effect.zipRight(
        KeyStore.validateSubject(tenantId, subjectId),
        firstForget(tenantId, subjectId).pipe(
          Effect.catchTag("SqlError", (e) => Effect.fail(storeError("forgotten")(e)))
        )
      )

    return KeyStore.KeyStore.of({ current, get, rotate, forget, forgotten })
  })

/**
 * The store as a Layer over the `SqlClient` in context.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<KeyStore.KeyStore, Errors.StoreError | Errors.InvalidInput, SqlClient.SqlClient> =>
  Layer.effect(KeyStore.KeyStore, make(options))

/**
 * The Layer with the shared settings read from the environment (`PgConfig.config`), like every `layerConfig` of this
 * package.
 *
 * @since 0.4.0
 * @category layers
 */
export const layerConfig = (): Layer.Layer<
  KeyStore.KeyStore,
  Errors.StoreError | Errors.InvalidInput | ConfigError.ConfigError,
  SqlClient.SqlClient
> => layer().pipe(Layer.provide(PgConfig.layerConfig()))
