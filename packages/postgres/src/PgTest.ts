/**
 * Test databases: each Layer built from `layerClient` gets its own fresh database, migrated by the server's admin,
 * and its own LOGIN role holding only the application grants (`PgRoles`, `migrations/grants.sql`). The client the
 * tests get connects as that role, so every PostgreSQL test proves the least-privilege grants are enough; `Admin` is
 * a client on the same database as the server's admin, for what only an owner may do (DDL, migrations, killing other
 * sessions, corrupting rows on purpose). Database and role are dropped when the Layer closes.
 * The server is `DATABASE_URL` when set, else one shared by the test run (`EVENTFOLD_TEST_ADMIN_URL`, set by the
 * vitest global setup), else a throwaway embedded PostgreSQL started for the Layer. Its user must be allowed to create
 * databases and roles (a superuser, in practice).
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Errors from "@eventfold/core/Errors"
import type * as EventStore from "@eventfold/core/EventStore"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/sql.js"
import * as PgDatabase from "./PgDatabase.js"
import * as PgEmbedded from "./PgEmbedded.js"
import * as PgEventfold from "./PgEventfold.js"
import * as PgEventStore from "./PgEventStore.js"
import * as PgMigrations from "./PgMigrations.js"
import * as PgRoles from "./PgRoles.js"

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

/**
 * A client on the test database as the server's admin (the owner of eventfold's tables), next to the
 * least-privilege client the tests use.
 *
 * @since 0.2.0
 * @category tags
 */
export class Admin extends Context.Tag("@eventfold/postgres/PgTest/Admin")<Admin, PgClient.PgClient>() {}

/**
 * A fresh test database.
 *
 * @since 0.2.0
 * @category models
 */
export interface TestDatabase {
  readonly name: string
  /** The database as its application role: the grants of `migrations/grants.sql` and nothing more. */
  readonly url: string
  /** The database as the server's admin. */
  readonly adminUrl: string
  /** The application role, a LOGIN role of this database only. */
  readonly role: string
}

/**
 * @since 0.2.0
 * @category models
 */
export interface DatabaseOptions {
  /** The schema migrated, and granted to the application role; defaults to "eventfold". */
  readonly schema?: string | undefined
  /**
   * Migrate the schema and grant it; defaults to true. Without, the role can only connect: a test migrates with
   * `Admin` and grants with `PgRoles.grantApplicationRole`, as a DBA would.
   */
  readonly migrate?: boolean | undefined
  /** Also enable row-level security by tenant (migrations/row_level_security.sql) as the admin; defaults to false. */
  readonly rowLevelSecurity?: boolean | undefined
}

const withAdmin = <A, E>(url: string, effect: Effect.Effect<A, E, PgClient.PgClient | SqlClient.SqlClient>) =>
  effect.pipe(
    Effect.provide(PgDatabase.layer({ url, maxConnections: 1 })),
    Effect.mapError((cause) =>
      cause instanceof Errors.StoreError || cause instanceof Errors.InvalidInput ? cause : new Errors.StoreError({
        operation: "test-database",
        reason: cause instanceof Error ? cause.message : String(cause),
        cause
      })
    )
  )

const randomHex = (length: number) => crypto.randomUUID().replace(/-/g, "").slice(0, length)

/**
 * Creates a database and its application role on the test server, migrates and grants the schema as the admin,
 * and drops both (forcibly) when the Scope closes. Names share a random suffix, so concurrent test files never meet;
 * the role's password is generated for this run.
 *
 * @since 0.1.0
 * @category constructors
 */
export const freshDatabase = (
  options?: DatabaseOptions
): Effect.Effect<TestDatabase, Errors.StoreError | Errors.InvalidInput, Scope.Scope> =>
  Effect.gen(function*() {
    const schema = yield* internal.validateSchema(options?.schema ?? internal.DEFAULT_SCHEMA)
    const server = yield* serverUrl
    const suffix = randomHex(16)
    const name = `eventfold_test_${suffix}`
    const role = `eventfold_app_${suffix}`
    const password = randomHex(32)
    yield* withAdmin(server, Effect.flatMap(PgClient.PgClient, (sql) => sql`CREATE DATABASE ${sql(name)}`))
    // Roles are cluster-wide: the role goes after its database, whose objects held its grants.
    yield* Effect.addFinalizer(() =>
      withAdmin(
        server,
        Effect.flatMap(PgClient.PgClient, (sql) =>
          Effect.zipRight(
            sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`,
            sql`DROP ROLE IF EXISTS ${sql(role)}`
          ))
      ).pipe(Effect.ignore)
    )
    // Utility statements take no bind parameters; the password is hex we just generated.
    yield* withAdmin(
      server,
      Effect.flatMap(PgClient.PgClient, (sql) =>
        sql.unsafe(`CREATE ROLE ${internal.quoteIdent(role)} LOGIN PASSWORD '${password}'`))
    )
    const adminUrl = new URL(server)
    adminUrl.pathname = `/${name}`
    yield* withAdmin(
      adminUrl.toString(),
      Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        // Tables a test creates as admin in public (read models, fixtures) are the test's application's own.
        yield* sql`ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${
          sql(role)
        }`
        if (options?.migrate === false) {
          return
        }
        yield* PgMigrations.run({ schema })
        if (options?.rowLevelSecurity === true) {
          yield* PgMigrations.enableRowLevelSecurity({ schema })
        }
        yield* PgRoles.grantApplicationRole({ schema, role })
      })
    )
    const url = new URL(adminUrl)
    url.username = role
    url.password = password
    return { name, url: url.toString(), adminUrl: adminUrl.toString(), role }
  })

/**
 * The admin client on a test database, as a Layer.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerAdmin = (database: TestDatabase): Layer.Layer<Admin, Errors.StoreError | Errors.InvalidInput> =>
  Layer.effect(Admin, PgClient.PgClient).pipe(
    Layer.provide(PgDatabase.layer({ url: database.adminUrl, maxConnections: 4 }))
  )

/**
 * Runs an effect with `Admin` as its `SqlClient` and `PgClient`, on a connection of its own even inside a
 * transaction of the least-privilege client.
 *
 * @since 0.2.0
 * @category utils
 */
export const asAdmin = <A, E>(
  effect: Effect.Effect<A, E, PgClient.PgClient | SqlClient.SqlClient>
): Effect.Effect<A, E, Admin> =>
  Effect.flatMap(Admin, (admin) =>
    effect.pipe(
      Effect.provideService(PgClient.PgClient, admin),
      Effect.provideService(SqlClient.SqlClient, admin),
      Effect.mapInputContext((context: Context.Context<never>) =>
        Context.omit(SqlClient.TransactionConnection)(context)
      )
    ))

/**
 * A pooled client on a fresh database as its least-privilege role, and `Admin` on the same database.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (
  options?: DatabaseOptions & { readonly maxConnections?: number | undefined }
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient | Admin, Errors.StoreError | Errors.InvalidInput> =>
  Layer.unwrapScoped(
    Effect.map(freshDatabase(options), (database) =>
      Layer.merge(
        PgDatabase.layer({ url: database.url, maxConnections: options?.maxConnections ?? 20 }),
        layerAdmin(database)
      ))
  )

/**
 * A migrated fresh database with the PostgreSQL EventStore on the least-privilege client, plus that client for
 * direct SQL in tests and `Admin`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerEventStore = (
  options?: PgEventStore.Options & { readonly maxConnections?: number | undefined }
): Layer.Layer<
  EventStore.EventStore | PgClient.PgClient | SqlClient.SqlClient | Admin,
  Errors.StoreError | Errors.InvalidInput
> => PgEventStore.layer(options).pipe(Layer.provideMerge(layerClient(options)))

/**
 * The switches of the whole stack; the database and the migrations mode are the test harness's.
 *
 * @since 0.2.0
 * @category models
 */
export type Switches = Omit<PgEventfold.Options, "database" | "migrations">

/**
 * The whole stack (`PgEventfold`) on a test database, as its application role. The harness migrated the schema, so
 * the stack only verifies it, as an application without DDL rights does.
 *
 * @since 0.2.0
 * @category layers
 */
export const eventfold = (
  database: TestDatabase,
  switches?: Switches
): Layer.Layer<PgEventfold.Services, Errors.StoreError | Errors.InvalidInput> =>
  PgEventfold.layer({ ...switches, database: { url: database.url }, migrations: "verify" })

/**
 * `eventfold` on a fresh database of its own, dropped when the Layer closes.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerEventfold = (
  switches?: Switches
): Layer.Layer<PgEventfold.Services, Errors.StoreError | Errors.InvalidInput> =>
  Layer.unwrapScoped(
    Effect.map(
      freshDatabase({ schema: switches?.schema, rowLevelSecurity: switches?.rowLevelSecurity }),
      (database) => eventfold(database, switches)
    )
  )
