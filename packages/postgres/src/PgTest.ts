/**
 * Test databases: each Layer built from `layerClient` gets its own fresh database, dropped when the Layer closes.
 * The server is `DATABASE_URL` when set, else one shared by the test run (`EVENTFOLD_TEST_ADMIN_URL`, set by the
 * vitest global setup), else a throwaway embedded PostgreSQL started for the Layer.
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Errors from "@eventfold/core/Errors"
import type * as EventStore from "@eventfold/core/EventStore"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as PgDatabase from "./PgDatabase.js"
import * as PgEmbedded from "./PgEmbedded.js"
import * as PgEventStore from "./PgEventStore.js"
import * as PgMigrations from "./PgMigrations.js"

/**
 * The URL of a server on which tests may create databases.
 *
 * @since 0.1.0
 * @category constructors
 */
export const serverUrl: Effect.Effect<string, Errors.StoreError, Scope.Scope> = Effect.suspend(() => {
  const fromEnv = process.env.DATABASE_URL || process.env.EVENTFOLD_TEST_ADMIN_URL
  return fromEnv ? Effect.succeed(fromEnv) : Effect.map(PgEmbedded.start(), (server) => server.url)
})

/**
 * Which server the tests run against, for test names and logs.
 *
 * @since 0.1.0
 * @category utils
 */
export const serverLabel = (): string =>
  process.env.DATABASE_URL
    ? `DATABASE_URL ${PgDatabase.describe(process.env.DATABASE_URL)}`
    : process.env.EVENTFOLD_TEST_ADMIN_URL
    ? "embedded PostgreSQL"
    : "embedded PostgreSQL (per Layer)"

const withAdmin = <A>(url: string, f: (sql: PgClient.PgClient) => Effect.Effect<A, unknown>) =>
  Effect.flatMap(PgClient.PgClient, f).pipe(
    Effect.provide(PgDatabase.layer({ url, maxConnections: 1 })),
    Effect.mapError((cause) =>
      cause instanceof Errors.StoreError ? cause : new Errors.StoreError({
        operation: "test-database",
        reason: cause instanceof Error ? cause.message : String(cause),
        cause
      })
    )
  )

/**
 * Creates a database on the test server and returns its URL; drops it (forcibly) when the Scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const freshDatabase: Effect.Effect<string, Errors.StoreError, Scope.Scope> = Effect.gen(function*() {
  const admin = yield* serverUrl
  const name = `eventfold_test_${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`
  yield* withAdmin(admin, (sql) => sql`CREATE DATABASE ${sql(name)}`)
  yield* Effect.addFinalizer(() =>
    withAdmin(admin, (sql) => sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`).pipe(Effect.ignore)
  )
  const url = new URL(admin)
  url.pathname = `/${name}`
  return url.toString()
})

/**
 * A pooled client on a fresh database.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (
  options?: { readonly maxConnections?: number | undefined }
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, Errors.StoreError> =>
  Layer.unwrapScoped(
    Effect.map(freshDatabase, (url) => PgDatabase.layer({ url, maxConnections: options?.maxConnections ?? 20 }))
  )

/**
 * A migrated fresh database with the PostgreSQL EventStore, plus the client for direct SQL in tests.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerEventStore = (
  options?: PgEventStore.Options & { readonly maxConnections?: number | undefined }
): Layer.Layer<
  EventStore.EventStore | PgClient.PgClient | SqlClient.SqlClient,
  Errors.StoreError | Errors.InvalidInput
> =>
  PgEventStore.layer(options).pipe(
    Layer.provide(PgMigrations.layer(options)),
    Layer.provideMerge(layerClient(options))
  )
