/** @internal Helpers shared by the PostgreSQL Layers: schema names, error mapping, row decoding. */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as Errors from "@eventfold/core/Errors"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

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
 * @internal What kind of failure a SQLSTATE or driver code is (see `Errors.StoreErrorKind`); `undefined` for none.
 */
export const kindOfCode = (code: string | undefined): Errors.StoreErrorKind | undefined => {
  if (code === undefined) return undefined
  // Node's socket errors (ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE, ...): the server is unreachable for now.
  if (/^E[A-Z]+$/.test(code)) return "connection"
  if (code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03") return "connection"
  if (code === "40001" || code === "40P01") return "conflict"
  // Insufficient resources (too many connections, out of memory, disk full), lock_timeout.
  if (code.startsWith("53") || code === "55P03") return "resources"
  if (code === "57014") return "timeout"
  if (code === "42501" || code.startsWith("28")) return "permission"
  if (code === "42P01" || code === "42883" || code === "3F000" || code === "3D000") return "schema"
  return "other"
}

const RETRYABLE: ReadonlySet<Errors.StoreErrorKind> = new Set(["connection", "conflict", "resources"])

/** @internal Whether retrying can help with a failure of this kind. */
export const isRetryableKind = (kind: Errors.StoreErrorKind | undefined): boolean =>
  kind !== undefined && RETRYABLE.has(kind)

/** @internal Whether retrying can help with a failure of this SQLSTATE or driver code. */
export const isRetryableCode = (code: string | undefined): boolean => isRetryableKind(kindOfCode(code))

/** Driver failures that carry no code but say the connection is gone. */
const CONNECTION_LOST =
  /connection terminated|connection error|failed to acquire connection|timeout exceeded when trying to connect|ECONNRE/i

/** @internal What kind of failure this SqlError is. */
export const kindOf = (error: SqlError.SqlError): Errors.StoreErrorKind => {
  const info = pgError(error)
  if (info.code !== undefined) return kindOfCode(info.code) ?? "other"
  return CONNECTION_LOST.test(`${info.message ?? ""} ${error.message}`) ? "connection" : "other"
}

/**
 * @internal A statement cancelled by a cancel request, not by statement_timeout. `@effect/sql-pg` cancels the
 * statement of an interrupted fiber with `pg_cancel_backend`, which only signals the backend: the connection can be
 * back in the pool, running another fiber's statement, when the signal lands, and that statement is cancelled
 * instead. Nothing of it ran (a cancelled statement rolls its transaction back), so it may be retried.
 */
export const isCancelRequest = (error: SqlError.SqlError): boolean => {
  const info = pgError(error)
  return info.code === "57014" && /due to user request/i.test(info.message ?? "")
}

/** @internal Whether retrying can help with this SqlError. */
export const isRetryable = (error: SqlError.SqlError): boolean =>
  isRetryableKind(kindOf(error)) || isCancelRequest(error)

/** @internal Turns an SqlError into a classified StoreError that says what to do about it. */
export const toStoreError = (operation: string, schema?: string) => (error: SqlError.SqlError): Errors.StoreError => {
  const info = pgError(error)
  const detail = info.message ?? error.message
  const code = info.code !== undefined ? { code: info.code } : {}
  // Advice about eventfold's own schema only where the query was eventfold's own.
  if (schema !== undefined && (info.code === "42P01" || info.code === "42883" || info.code === "3F000")) {
    return new Errors.StoreError({
      operation,
      reason:
        `${detail}. The eventfold schema "${schema}" is not migrated: run PgMigrations.run({ schema: "${schema}" }) ` +
        `or psql -v schema=${schema} -f migrations/<file>.sql for each file in order`,
      retryable: false,
      kind: "schema",
      ...code,
      cause: error
    })
  }
  const kind = kindOf(error)
  return new Errors.StoreError({
    operation,
    reason: detail,
    retryable: isRetryableKind(kind) || isCancelRequest(error),
    kind,
    ...code,
    cause: error
  })
}

/**
 * @internal Checks that the tables a Layer needs exist, so a missing migration fails at startup with advice. When
 * eventfold's migrations were applied to another schema, the error names it: the usual cause is two settings.
 */
export const requireTables = (
  sql: SqlClient.SqlClient,
  schema: string,
  tables: ReadonlyArray<string>
): Effect.Effect<void, Errors.StoreError> =>
  Effect.gen(function*() {
    const names = tables.map((t) => `${schema}.${t}`)
    const rows = yield* sql<{ name: string; found: boolean }>`SELECT n AS name, to_regclass(n) IS NOT NULL AS found
      FROM unnest(${names}::text[]) AS n`
    const missing = rows.filter((r) => !r.found).map((r) => r.name)
    if (missing.length === 0) return
    // At most three names: with a schema per tenant there may be thousands, and they name other tenants.
    const migrated = (yield* sql<{ schema: string }>`SELECT DISTINCT table_schema AS schema
      FROM information_schema.tables WHERE table_name = 'eventfold_migrations' ORDER BY 1 LIMIT 4`).map((r) => r.schema)
    const elsewhere = migrated.length > 3 ? [...migrated.slice(0, 3), "..."] : migrated
    return yield* new Errors.StoreError({
      operation: "connect",
      reason:
        `schema "${schema}" is not migrated: missing table${missing.length > 1 ? "s" : ""} ${missing.join(", ")}${
          elsewhere.length > 0 ? ` (eventfold's migrations were applied to schema ${elsewhere.join(", ")})` : ""
        }. Run PgMigrations.run({ schema: "${schema}" }) (or provide PgMigrations.layer, or PgEventfold with ` +
        `migrations: "run") or apply migrations/*.sql with psql -v schema=${schema}`,
      retryable: false,
      kind: "schema"
    })
  }).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(toStoreError("connect", schema)(e))))

/**
 * @internal The NOTIFY channel on which appends to a schema send their wake-up hint: the schema name cut to 56
 * bytes (schema names are ASCII) plus "_events", within PostgreSQL's 63-byte limit. `append_events` builds the same.
 */
export const eventsChannel = (schema: string): string => `${schema.slice(0, 56)}_events`

/**
 * @internal Decodes every row with `decode`; the first row that does not fit fails the lot as a corrupt store
 * (rows come straight from the database, so a misfit is never the caller's input).
 */
export const decodeEach = <A>(
  operation: string,
  rows: ReadonlyArray<unknown>,
  decode: (row: unknown) => Either.Either<A, string>
): Effect.Effect<Array<A>, Errors.StoreError> => {
  const out: Array<A> = new Array(rows.length)
  for (let i = 0; i < rows.length; i++) {
    const decoded = decode(rows[i])
    if (Either.isLeft(decoded)) {
      return Effect.fail(new Errors.StoreError({ operation, reason: decoded.left, retryable: false, kind: "data" }))
    }
    out[i] = decoded.right
  }
  return Effect.succeed(out)
}

/** @internal The one row decoder of the PostgreSQL stores: `decodeEach` with a Schema. */
export const decodeRows = <A, I>(operation: string, schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema)
  const check = (row: unknown): Either.Either<A, string> =>
    Either.mapLeft(decode(row), (e) => `unexpected row shape: ${ParseResult.TreeFormatter.formatErrorSync(e)}`)
  return (rows: ReadonlyArray<unknown>): Effect.Effect<Array<A>, Errors.StoreError> =>
    decodeEach(operation, rows, check)
}

/**
 * @internal Runs statements in a tenant scope under row-level security: `enter_tenant` sets the transaction's
 * `eventfold.tenant` (a tenant, or "*" for every tenant) first, in a transaction of its own when the caller has none.
 * Without row-level security the statements run as they are: they filter by tenant themselves. eventfold's functions
 * (append_events, read_stream) enter their tenant themselves and need no scope.
 */
export const tenantScope = (sql: SqlClient.SqlClient, schema: string, rowLevelSecurity: boolean) => {
  const enter = sql(`${schema}.enter_tenant`)
  return (scope: string) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError.SqlError, R> =>
    rowLevelSecurity
      ? Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (transaction) => {
        const entered = Effect.zipRight(sql`SELECT ${enter}(${scope})`, effect)
        return Option.isSome(transaction) ? entered : sql.withTransaction(entered)
      })
      : effect
}
