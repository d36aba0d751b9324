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

/**
 * @internal Whether retrying can help with a failure of this SQLSTATE or driver code: a lost or refused connection,
 * a deadlock or serialization failure, a timeout, an overloaded or restarting server. Anything else (a missing table,
 * a permission, bad input, a corrupt row) fails the same way again.
 */
export const isRetryableCode = (code: string | undefined): boolean => {
  if (code === undefined) return false
  // Node's socket errors (ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE, ...): the server is unreachable for now.
  if (/^E[A-Z]+$/.test(code)) return true
  return code.startsWith("08") || // connection exception
    code === "40001" || code === "40P01" || // serialization failure, deadlock
    code.startsWith("53") || // insufficient resources (too many connections, out of memory, disk full)
    code === "55P03" || code === "57014" || // lock not available (lock_timeout), query canceled (statement_timeout)
    code === "57P01" || code === "57P02" || code === "57P03" // admin/crash shutdown, cannot connect now
}

/** Driver failures that carry no code but say the connection is gone. */
const CONNECTION_LOST =
  /connection terminated|connection error|failed to acquire connection|timeout exceeded when trying to connect|ECONNRE/i

/** @internal Whether retrying can help with this SqlError. */
export const isRetryable = (error: SqlError.SqlError): boolean => {
  const info = pgError(error)
  return info.code !== undefined
    ? isRetryableCode(info.code)
    : CONNECTION_LOST.test(`${info.message ?? ""} ${error.message}`)
}

/** @internal Turns an SqlError into a classified StoreError that says what to do about it. */
export const toStoreError = (operation: string, schema: string) => (error: SqlError.SqlError): Errors.StoreError => {
  const info = pgError(error)
  const detail = info.message ?? error.message
  const code = info.code !== undefined ? { code: info.code } : {}
  if (info.code === "42P01" || info.code === "42883" || info.code === "3F000") {
    return new Errors.StoreError({
      operation,
      reason:
        `${detail}. The eventfold schema "${schema}" is not migrated: run PgMigrations.run({ schema: "${schema}" }) ` +
        `or psql -v schema=${schema} -f migrations/<file>.sql for each file in order`,
      retryable: false,
      ...code,
      cause: error
    })
  }
  return new Errors.StoreError({ operation, reason: detail, retryable: isRetryable(error), ...code, cause: error })
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

/**
 * @internal The NOTIFY channel on which appends to a schema send their wake-up hint: the schema name cut to 56
 * bytes (schema names are ASCII) plus "_events", within PostgreSQL's 63-byte limit. `append_events` builds the same.
 */
export const eventsChannel = (schema: string): string => `${schema.slice(0, 56)}_events`
