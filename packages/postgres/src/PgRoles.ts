/**
 * Who may do what to eventfold's tables. The application role gets exactly what the library does at run time
 * (`migrations/grants.sql`): no DDL, and no UPDATE, DELETE or TRUNCATE on events. Everyone else, the owner included,
 * is stopped by the append-only guard of migration 0006 unless a transaction opens its escape hatch.
 *
 * @since 0.2.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Errors from "@eventfold/core/Errors"
import * as Effect from "effect/Effect"
import { grants } from "./internal/migrations.js"
import * as internal from "./internal/sql.js"

/**
 * The SQLSTATE with which the guard refuses an UPDATE, DELETE or TRUNCATE on events. A `StoreError` carries it as
 * `code`; it is never retryable.
 *
 * @since 0.2.0
 * @category constants
 */
export const EVENT_MUTATION_REFUSED = "EF001"

/**
 * The setting that opens the guard for one transaction: `SET LOCAL eventfold.allow_event_mutation = 'on'`. For
 * retention tooling and deliberate repairs only.
 *
 * @since 0.2.0
 * @category constants
 */
export const ALLOW_EVENT_MUTATION = "eventfold.allow_event_mutation"

/**
 * True for a `StoreError` raised by the append-only guard.
 *
 * @since 0.2.0
 * @category refinements
 */
export const isEventMutationRefused = (u: unknown): u is Errors.StoreError =>
  u instanceof Errors.StoreError && u.code === EVENT_MUTATION_REFUSED

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** The PostgreSQL schema holding eventfold's tables; defaults to "eventfold". */
  readonly schema?: string | undefined
  /** The application role; it must exist (`CREATE ROLE app LOGIN PASSWORD ...`). */
  readonly role: string
}

const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/
// Names GRANT reads as something other than one role, and the prefix PostgreSQL reserves for its own roles.
const NOT_A_ROLE = new Set(["public", "none", "current_role", "current_user", "session_user"])

/**
 * Validates a role name: a plain lower-case identifier that names one ordinary role (not `public`, not `pg_*`).
 *
 * @since 0.2.0
 * @category utils
 */
export const validateRole = (role: string): Effect.Effect<string, Errors.InvalidInput> =>
  ROLE_NAME.test(role) && !NOT_A_ROLE.has(role) && !role.startsWith("pg_")
    ? Effect.succeed(role)
    : Effect.fail(
      new Errors.InvalidInput({
        reason: `role must match ${ROLE_NAME.source} (a plain lower-case PostgreSQL identifier) and name one ` +
          `ordinary role (not public, none, current_user, session_user, current_role or pg_*), got ${
            JSON.stringify(role)
          }`
      })
    )

/**
 * The GRANT statements of `migrations/grants.sql` for a schema and role, with both quoted as identifiers and psql's
 * meta-commands dropped.
 *
 * @since 0.2.0
 * @category utils
 */
export const renderGrants = (options: Options): Effect.Effect<string, Errors.InvalidInput> =>
  Effect.gen(function*() {
    const schema = yield* internal.validateSchema(options.schema ?? internal.DEFAULT_SCHEMA)
    const role = yield* validateRole(options.role)
    return grants
      .split("\n")
      .filter((line) => !line.startsWith("\\"))
      .join("\n")
      .replaceAll(":\"schema\"", internal.quoteIdent(schema))
      .replaceAll(":\"role\"", internal.quoteIdent(role))
  })

/**
 * Gives an existing role the application grants on a migrated schema, in one transaction. Run it as the owner of the
 * schema's tables, after the migrations and again after each upgrade; it is safe to repeat.
 *
 * @since 0.2.0
 * @category running
 */
export const grantApplicationRole = (
  options: Options
): Effect.Effect<void, Errors.StoreError | Errors.InvalidInput, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const statements = yield* renderGrants(options)
    const schema = options.schema ?? internal.DEFAULT_SCHEMA
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    yield* sql.withTransaction(sql.unsafe(statements).raw).pipe(
      Effect.asVoid,
      Effect.mapError(internal.toStoreError("grant", schema)),
      Effect.withSpan("PgRoles.grantApplicationRole", { attributes: { schema, role: options.role } })
    )
  })
