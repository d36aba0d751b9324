/** @internal Helpers shared by the PostgreSQL Layers: schema names, error mapping, row decoding. */
import type * as SqlError from "@effect/sql/SqlError"
import * as Errors from "@eventfold/core/Errors"
import * as Effect from "effect/Effect"

/** @internal */
export const DEFAULT_SCHEMA = "eventfold"

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

/** @internal Validates a PostgreSQL schema name; only plain lower-case identifiers, so no quoting rule can bite. */
export const validateSchema = (schema: string): Effect.Effect<string, Errors.InvalidInput> =>
  SCHEMA_NAME.test(schema)
    ? Effect.succeed(schema)
    : Effect.fail(
      new Errors.InvalidInput({
        reason: `schema must match ${SCHEMA_NAME.source} (a plain lower-case PostgreSQL identifier), got ${
          JSON.stringify(schema)
        }`
      })
    )

/** @internal The quoted identifier, as psql's :"schema" would produce it. */
export const quoteIdent = (name: string): string => `"${name.replace(/"/g, "\"\"")}"`

/** @internal The pg `DatabaseError` fields we look at. */
export interface PgErrorInfo {
  readonly code?: string | undefined
  readonly constraint?: string | undefined
  readonly detail?: string | undefined
  readonly message?: string | undefined
  readonly table?: string | undefined
}

/** @internal */
export const pgError = (error: SqlError.SqlError): PgErrorInfo => {
  const cause: unknown = error.cause
  if (typeof cause !== "object" || cause === null) return {}
  const c = cause as Record<string, unknown>
  const str = (k: string) => (typeof c[k] === "string" ? (c[k] as string) : undefined)
  return { code: str("code"), constraint: str("constraint"), detail: str("detail"), message: str("message") }
}

/** @internal Turns an SqlError into a StoreError that says what to do about it. */
export const toStoreError = (operation: string, schema: string) => (error: SqlError.SqlError): Errors.StoreError => {
  const info = pgError(error)
  const detail = info.message ?? error.message
  if (info.code === "42P01" || info.code === "42883" || info.code === "3F000") {
    return new Errors.StoreError({
      operation,
      reason:
        `${detail}. The eventfold schema "${schema}" is not migrated: run PgMigrations.run({ schema: "${schema}" }) ` +
        `or psql -v schema=${schema} -f migrations/<file>.sql for each file in order`,
      cause: error
    })
  }
  return new Errors.StoreError({ operation, reason: detail, cause: error })
}

/** @internal Checks that the tables a Layer needs exist, so a missing migration fails at startup with advice. */
export const requireTables = (
  sqlQuery: (
    tables: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<{ readonly name: string; readonly found: boolean }>, SqlError.SqlError>,
  schema: string,
  tables: ReadonlyArray<string>
): Effect.Effect<void, Errors.StoreError> =>
  sqlQuery(tables.map((t) => `${schema}.${t}`)).pipe(
    Effect.mapError(toStoreError("connect", schema)),
    Effect.flatMap((rows) => {
      const missing = rows.filter((r) => !r.found).map((r) => r.name)
      return missing.length === 0 ? Effect.void : Effect.fail(
        new Errors.StoreError({
          operation: "connect",
          reason:
            `missing table${missing.length > 1 ? "s" : ""} ${missing.join(", ")}: the database is not migrated. ` +
            `Run PgMigrations.run({ schema: "${schema}" }) (or provide PgMigrations.layer) or apply migrations/*.sql ` +
            `with psql -v schema=${schema}`
        })
      )
    })
  )

/** @internal The NOTIFY channel on which appends to a schema send their wake-up hint. */
export const eventsChannel = (schema: string): string => `${schema}_events`
