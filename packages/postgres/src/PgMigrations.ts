/**
 * Applies eventfold's SQL schema (the files in `migrations/`) through `@effect/sql`'s Migrator, with a private
 * migrations table per schema. Safe to run twice, and from several processes at once. Migrating needs the rights of
 * the tables' owner; once nothing is pending, `run` only reads the migrations table, so the least-privilege
 * application role (`PgRoles`) may keep `PgMigrations.layer` in its Layers.
 *
 * @since 0.1.0
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Errors from "@eventfold/core/Errors"
import * as Cause from "effect/Cause"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { migrations as files, rowLevelSecurity as rowLevelSecuritySql } from "./internal/migrations.js"
import * as internal from "./internal/sql.js"
import * as PgConfig from "./PgConfig.js"
import * as PgRoles from "./PgRoles.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The PostgreSQL schema holding eventfold's tables; defaults to the shared `PgConfig` schema ("eventfold"). */
  readonly schema?: string | undefined
}

/**
 * The migrations this version of the library applies, as `[id, name]`.
 *
 * @since 0.1.0
 * @category constants
 */
export const migrations: ReadonlyArray<readonly [id: number, name: string]> = files.map((f) => [f.id, f.name] as const)

/**
 * The SQL a migration runs for a schema: the psql file with `:"schema"` substituted and psql's meta-commands
 * dropped. The file's session-wide `SET search_path` becomes `SET LOCAL`, because the library runs it inside a
 * transaction on a pooled connection.
 *
 * @since 0.1.0
 * @category utils
 */
export const render = (sql: string, schema: string): string =>
  sql
    .split("\n")
    .filter((line) => !line.startsWith("\\"))
    .join("\n")
    .replaceAll(":\"schema\"", internal.quoteIdent(schema))
    .replace(/^SET search_path TO/m, "SET LOCAL search_path TO")

/**
 * The SQL of every migration of this version rendered for a schema (what `run` executes for it), as
 * `[id, name, sql]`: for a dry run, or for review before migrating.
 *
 * @since 0.4.0
 * @category utils
 */
export const scripts = (schema: string): ReadonlyArray<readonly [id: number, name: string, sql: string]> =>
  files.map((f) => [f.id, f.name, render(f.sql, schema)] as const)

/**
 * Applies every pending migration and returns the ones it applied.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (
  options?: Options
): Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Errors.StoreError | Errors.InvalidInput,
  SqlClient.SqlClient
> =>
  Effect.gen(function*() {
    const schema = yield* PgConfig.schema(options?.schema)
    const settings = yield* PgConfig.PgConfig
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const table = `${schema}.eventfold_migrations`
    const loader = Migrator.fromRecord(
      Object.fromEntries(files.map((f) => [`${f.id}_${f.name}`, sql.unsafe(render(f.sql, schema)).raw]))
    )
    // Nothing pending: touch no DDL, so a role without DDL rights (PgRoles) can run this at startup. The probe runs in
    // its own (sub)transaction, so that failing it cannot abort a caller's transaction.
    const latest = Math.max(...files.map((f) => f.id))
    const upToDate = yield* sql.withTransaction(
      sql<{ readonly latest: number | null }>`SELECT max(migration_id) AS latest FROM ${sql(table)}`
    ).pipe(
      Effect.map((rows) => (rows[0]?.latest ?? 0) >= latest),
      // Missing table, missing schema or no right to read it: the full path below migrates or says why it cannot.
      Effect.orElseSucceed(() => false)
    )
    if (upToDate) {
      if (settings.rowLevelSecurity) yield* enableRowLevelSecurity({ schema })
      return []
    }
    const migrate = Effect.gen(function*() {
      // One migrator per schema at a time, across processes; the lock ends with the transaction.
      yield* sql`SELECT pg_advisory_xact_lock(hashtextextended(${`eventfold.migrations:${schema}`}, 0))`
      yield* sql`CREATE SCHEMA IF NOT EXISTS ${sql(schema)}`
      // Created here, not by the Migrator: its "does the table exist" probe fails inside a transaction.
      yield* sql`CREATE TABLE IF NOT EXISTS ${sql(table)} (
        migration_id integer primary key,
        created_at timestamp with time zone not null default now(),
        name text not null
      )`
      return yield* Migrator.make({})({ loader, table })
    })
    const applied = yield* sql.withTransaction(migrate).pipe(
      Effect.catchTag("SqlError", (e) => Effect.fail(internal.toStoreError("migrate", schema)(e))),
      Effect.catchTag(
        "MigrationError",
        (e) => Effect.fail(new Errors.StoreError({ operation: "migrate", reason: e.message, cause: e }))
      ),
      // The Migrator turns a failing migration into a defect; it is a database failure, so make it typed again.
      Effect.catchAllDefect((defect) => {
        const code = defect instanceof Migrator.MigrationError ? sqlState(defect.cause) : undefined
        return Effect.fail(
          new Errors.StoreError({
            operation: "migrate",
            reason: defect instanceof Migrator.MigrationError
              ? `${defect.message}: ${errorText(defect.cause)}`
              : Cause.pretty(Cause.die(defect)),
            retryable: code !== undefined && internal.isRetryableCode(code),
            ...(code !== undefined ? { code } : {}),
            cause: defect
          })
        )
      }),
      Effect.mapError(withAdvice(schema)),
      Effect.withSpan("PgMigrations.run", { attributes: { schema } })
    )
    if (settings.rowLevelSecurity) yield* enableRowLevelSecurity({ schema })
    return applied
  })

const RLS_TABLES = ["events", "streams", "snapshots", "outbox", "checkpoints", "dead_letters"] as const

/** The version of the policies in migrations/row_level_security.sql, in a comment on each. */
const RLS_VERSION = "eventfold row-level security 2"

/** How many of eventfold's tables have row-level security enabled with the current tenant policy. */
const rowLevelSecurityCount = (sql: SqlClient.SqlClient, schema: string) =>
  sql<{ readonly count: number }>`SELECT count(*)::integer AS count
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = ${schema} AND c.relname = ANY(${RLS_TABLES}::text[]) AND c.relrowsecurity
     AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation'
                   AND obj_description(p.oid, 'pg_policy') = ${RLS_VERSION})`.pipe(
    Effect.map((rows) => rows[0]?.count ?? 0)
  )

/**
 * Enables row-level security by tenant on eventfold's tables (migrations/row_level_security.sql), unless it is on
 * already. Needs the tables' owner. `run` calls it when `PgConfig` has `rowLevelSecurity` on.
 *
 * @since 0.3.0
 * @category migrations
 */
export const enableRowLevelSecurity = (
  options?: Options
): Effect.Effect<void, Errors.StoreError | Errors.InvalidInput, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const schema = yield* PgConfig.schema(options?.schema)
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const enabled = yield* rowLevelSecurityCount(sql, schema).pipe(
      Effect.mapError(internal.toStoreError("enableRowLevelSecurity", schema))
    )
    if (enabled === RLS_TABLES.length) return
    yield* sql.withTransaction(
      Effect.zipRight(
        sql`SELECT pg_advisory_xact_lock(hashtextextended(${`eventfold.migrations:${schema}`}, 0))`,
        sql.unsafe(render(rowLevelSecuritySql, schema)).raw
      )
    ).pipe(
      Effect.mapError(internal.toStoreError("enableRowLevelSecurity", schema)),
      Effect.mapError(withAdvice(schema)),
      Effect.withSpan("PgMigrations.enableRowLevelSecurity", { attributes: { schema } })
    )
  })

/** What to do about the two failures a migration can meet that are not bugs in it. */
const withAdvice =
  (schema: string) => <E extends Errors.StoreError | Errors.InvalidInput>(error: E): E | Errors.StoreError => {
    if (error._tag !== "StoreError") return error
    const advice = error.code === "42501"
      ? `The connection's role may not change schema "${schema}": apply migrations as the owner of its tables (psql or ` +
        `PgMigrations.run on an owner's connection), and give the application role only migrations/grants.sql ` +
        `(PgRoles.grantApplicationRole). As that role, PgMigrations.run is a no-op once nothing is pending`
      : error.code === PgRoles.EVENT_MUTATION_REFUSED
      ? `Events are append-only: a migration that rewrites events must SET LOCAL ${PgRoles.ALLOW_EVENT_MUTATION} = 'on'`
      : undefined
    if (advice === undefined) return error
    return new Errors.StoreError({
      operation: error.operation,
      reason: `${error.reason}. ${advice}`,
      retryable: error.retryable,
      code: error.code,
      cause: error.cause
    })
  }

const sqlState = (u: unknown): string | undefined => {
  const inner = typeof u === "object" && u !== null && "cause" in u ? u.cause : undefined
  return typeof inner === "object" && inner !== null && "code" in inner && typeof inner.code === "string"
    ? inner.code
    : undefined
}

const errorText = (u: unknown): string => {
  if (typeof u === "object" && u !== null && "cause" in u) {
    const inner = (u as { cause: unknown }).cause
    if (inner instanceof Error) return inner.message
  }
  return u instanceof Error ? u.message : String(u)
}

/**
 * A Layer that migrates when it is built; compose it before the store Layers.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<never, Errors.StoreError | Errors.InvalidInput, SqlClient.SqlClient> => Layer.effectDiscard(run(options))

/**
 * Checks, without changing anything, that the schema holds every table of this version and, when the library
 * migrated it, that no migration is pending. For applications whose schema is migrated by a separate step (a deploy
 * job, psql) and whose role may not run DDL.
 *
 * @since 0.2.0
 * @category running
 */
export const verify = (
  options?: Options
): Effect.Effect<void, Errors.StoreError | Errors.InvalidInput, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const schema = yield* PgConfig.schema(options?.schema)
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    yield* internal.requireTables(sql, schema, [
      "streams",
      "events",
      "snapshots",
      "outbox",
      "checkpoints",
      "dead_letters"
    ])
    const latest = Math.max(...files.map((f) => f.id))
    // A schema built with psql has no migrations table; its tables were checked above.
    const applied = yield* sql<{ readonly latest: number | null }>`SELECT max(migration_id) AS latest
      FROM ${sql(`${schema}.eventfold_migrations`)}`.pipe(
      sql.withTransaction,
      Effect.map((rows) => rows[0]?.latest ?? 0),
      Effect.orElseSucceed(() => latest)
    )
    if (applied >= latest && (yield* PgConfig.PgConfig).rowLevelSecurity) {
      const enabled = yield* rowLevelSecurityCount(sql, schema).pipe(
        Effect.mapError(internal.toStoreError("connect", schema))
      )
      if (enabled < RLS_TABLES.length) {
        return yield* new Errors.StoreError({
          operation: "connect",
          reason: `row-level security is configured on, but ${enabled} of ${RLS_TABLES.length} tables of schema ` +
            `"${schema}" have it: run PgMigrations.enableRowLevelSecurity({ schema: "${schema}" }) as the tables' ` +
            `owner (or psql -1 -v schema=${schema} -f migrations/row_level_security.sql)`,
          retryable: false,
          kind: "schema"
        })
      }
    }
    if (applied < latest) {
      return yield* new Errors.StoreError({
        operation: "connect",
        reason: `schema "${schema}" is migrated up to ${applied} of ${latest}: run PgMigrations.run({ schema: ` +
          `"${schema}" }) as the schema's owner (or psql -v schema=${schema} -f migrations/<file>.sql for the rest)`,
        retryable: false,
        kind: "schema"
      })
    }
  }).pipe(Effect.withSpan("PgMigrations.verify"))

/**
 * A Layer that verifies the schema when it is built (see `verify`) and fails it with a typed error when it is not
 * migrated.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerVerify = (
  options?: Options
): Layer.Layer<never, Errors.StoreError | Errors.InvalidInput, SqlClient.SqlClient> =>
  Layer.effectDiscard(verify(options))

/**
 * `layer` with the schema from the shared settings read from the environment (`PgConfig.config`).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (): Layer.Layer<
  never,
  Errors.StoreError | Errors.InvalidInput | ConfigError.ConfigError,
  SqlClient.SqlClient
> => layer().pipe(Layer.provide(PgConfig.layerConfig()))
