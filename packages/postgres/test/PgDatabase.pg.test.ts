// PgDatabase: every setting reaches every pooled connection, every malformed value gets its own message, and each
// way of failing to connect says what failed.
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Errors from "@eventfold/core/Errors"
import { PgDatabase, PgEmbedded, PgTest } from "@eventfold/postgres"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as tls from "node:tls"
import { fileURLToPath } from "node:url"

class Database extends Context.Tag("test/PgDatabase/Database")<Database, PgTest.TestDatabase>() {}

const withEnvironment = (entries: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries))))

const URL_WITH_PASSWORD = "postgres://app:s3cret-Pa55@db.example.com:5432/app"

/** The config's failure as text, for the malformed-value cases. */
const configFailure = (entries: Record<string, string>) =>
  PgDatabase.config.pipe(
    withEnvironment({ DATABASE_URL: URL_WITH_PASSWORD, ...entries }),
    Effect.flip,
    Effect.map(String)
  )

/** The settings of one pooled connection, read back on it. */
interface Session {
  readonly pid: number
  readonly statementTimeout: string
  readonly lockTimeout: string
  readonly idleInTransactionTimeout: string
  readonly applicationName: string
}

/** Holds `count` pooled connections at once and reads the settings back on each. */
const sessions = (count: number) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const connections = yield* Effect.all(Array.from({ length: count }, () => sql.reserve), {
      concurrency: "unbounded"
    })
    return yield* Effect.forEach(connections, (connection) =>
      Effect.gen(function*() {
        const show = (name: string) =>
          Effect.map(
            connection.execute(`SHOW ${name}`, [], undefined),
            (rows) => String((rows[0] as Record<string, unknown>)[name])
          )
        const [activity] = yield* connection.execute(
          "SELECT pid, application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()",
          [],
          undefined
        )
        const { application_name, pid } = activity as { readonly pid: number; readonly application_name: string }
        return {
          pid,
          statementTimeout: yield* show("statement_timeout"),
          lockTimeout: yield* show("lock_timeout"),
          idleInTransactionTimeout: yield* show("idle_in_transaction_session_timeout"),
          applicationName: application_name
        } satisfies Session
      }))
  }).pipe(Effect.scoped)

const buildError = (options: PgDatabase.Options) =>
  Layer.build(PgDatabase.layer(options)).pipe(
    Effect.flip,
    Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => "hung" as const }),
    Effect.scoped
  )

describe("PgDatabase.config: every setting from its environment variable", () => {
  it.effect("reads every documented name; durations accept Effect syntax and plain milliseconds", () =>
    Effect.gen(function*() {
      const options = yield* PgDatabase.config.pipe(withEnvironment({
        DATABASE_URL: URL_WITH_PASSWORD,
        EVENTFOLD_PG_MAX_CONNECTIONS: "7",
        EVENTFOLD_PG_MIN_CONNECTIONS: "2",
        EVENTFOLD_PG_IDLE_TIMEOUT: "30 seconds",
        EVENTFOLD_PG_MAX_LIFETIME: "1 hour",
        EVENTFOLD_PG_CONNECT_TIMEOUT: "5000",
        EVENTFOLD_PG_APPLICATION_NAME: "orders-api",
        EVENTFOLD_PG_SSL: "verify-full",
        EVENTFOLD_PG_SSL_CA: "/etc/ssl/db-ca.pem",
        EVENTFOLD_PG_STATEMENT_TIMEOUT: "2500",
        EVENTFOLD_PG_LOCK_TIMEOUT: "250 millis",
        EVENTFOLD_PG_IDLE_IN_TRANSACTION_TIMEOUT: "1 minute"
      }))
      const millis = (input: Duration.DurationInput | undefined) =>
        input === undefined ? undefined : Duration.toMillis(input)
      assert.deepStrictEqual({
        url: Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url,
        maxConnections: options.maxConnections,
        minConnections: options.minConnections,
        idleTimeout: millis(options.idleTimeout),
        maxLifetime: millis(options.maxLifetime),
        connectTimeout: millis(options.connectTimeout),
        applicationName: options.applicationName,
        ssl: options.ssl,
        sslCa: options.sslCa,
        statementTimeout: millis(options.statementTimeout),
        lockTimeout: millis(options.lockTimeout),
        idleInTransactionTimeout: millis(options.idleInTransactionTimeout)
      }, {
        url: URL_WITH_PASSWORD,
        maxConnections: 7,
        minConnections: 2,
        idleTimeout: 30_000,
        maxLifetime: 3_600_000,
        connectTimeout: 5_000,
        applicationName: "orders-api",
        ssl: "verify-full",
        sslCa: "/etc/ssl/db-ca.pem",
        statementTimeout: 2_500,
        lockTimeout: 250,
        idleInTransactionTimeout: 60_000
      })
      // Every name is documented, and `environment` lists exactly the names read above.
      const readme = fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "README.md"), "utf8")
      for (const name of Object.values(PgDatabase.environment)) assert.include(readme, `\`${name}\``)
    }))

  it.effect("only DATABASE_URL is required; the rest stay unset for the Layer's defaults", () =>
    Effect.gen(function*() {
      const options = yield* PgDatabase.config.pipe(withEnvironment({ DATABASE_URL: URL_WITH_PASSWORD }))
      assert.deepStrictEqual(
        Object.entries(options).filter(([, value]) => value !== undefined).map(([key]) => key),
        ["url"]
      )
      const missing = yield* PgDatabase.config.pipe(withEnvironment({}), Effect.flip, Effect.map(String))
      assert.include(missing, "DATABASE_URL")
    }))

  it.effect("each malformed value is a ConfigError naming its variable", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [Record<string, string>, string, string]> = [
        [{ EVENTFOLD_PG_CONNECT_TIMEOUT: "5 secs" }, "EVENTFOLD_PG_CONNECT_TIMEOUT", `"5 secs"`],
        [{ EVENTFOLD_PG_STATEMENT_TIMEOUT: "-5" }, "EVENTFOLD_PG_STATEMENT_TIMEOUT", "number of milliseconds"],
        [{ EVENTFOLD_PG_IDLE_TIMEOUT: "Infinity" }, "EVENTFOLD_PG_IDLE_TIMEOUT", "duration"],
        [{ EVENTFOLD_PG_SSL: "prefer" }, "EVENTFOLD_PG_SSL", "verify-full"],
        [{ EVENTFOLD_PG_MAX_CONNECTIONS: "ten" }, "EVENTFOLD_PG_MAX_CONNECTIONS", "integer"],
        [{ EVENTFOLD_PG_MAX_CONNECTIONS: "0" }, "EVENTFOLD_PG_MAX_CONNECTIONS", "at least 1"],
        [{ EVENTFOLD_PG_MIN_CONNECTIONS: "1.5" }, "EVENTFOLD_PG_MIN_CONNECTIONS", "integer"]
      ]
      for (const [entries, name, expected] of cases) {
        const message = yield* configFailure(entries)
        assert.include(message, name, JSON.stringify(entries))
        assert.include(message, expected, JSON.stringify(entries))
      }
    }))

  it.effect("a malformed DATABASE_URL is reported as malformed, never quoting the password in it", () =>
    Effect.gen(function*() {
      // Unencoded "/", "#" and "@" in passwords, a wrong scheme, and no URL at all.
      const malformed = [
        "postgres://app:s3cret/Pa55@db.example.com:5432/app",
        "postgres://app:s3cret#Pa55@db.example.com:5432/app",
        "postgres://app:12/s3cret@Pa55@db.example.com/app",
        "mysql://app:s3cret-Pa55@db.example.com/app",
        "s3cret-Pa55"
      ]
      for (const url of malformed) {
        const message = yield* configFailure({ DATABASE_URL: url })
        assert.include(message, "DATABASE_URL", url)
        assert.include(message, "malformed PostgreSQL URL", url)
        assert.notInclude(message, "s3cret", url)
        assert.notInclude(message, "Pa55", url)
      }
    }))
})

layer(Layer.scoped(Database, PgTest.freshDatabase()), { excludeTestServices: true, timeout: "120 seconds" })(
  `PgDatabase.layer (${PgTest.serverLabel()})`,
  (it) => {
    it.effect("every setting holds on every pooled connection, also on connections opened later", () =>
      Effect.gen(function*() {
        const { url } = yield* Database
        const applicationName = `eventfold-test-${crypto.randomUUID().slice(0, 8)}`
        const expected = {
          statementTimeout: "5s",
          lockTimeout: "250ms",
          idleInTransactionTimeout: "1min",
          applicationName
        }
        const client = PgDatabase.layer({
          url,
          maxConnections: 4,
          statementTimeout: "5 seconds",
          lockTimeout: 250,
          idleInTransactionTimeout: "1 minute",
          applicationName,
          maxLifetime: "1 second"
        })
        const [first, later] = yield* Effect.gen(function*() {
          const first = yield* sessions(4)
          // Past maxLifetime the pool replaces every connection: the settings must hold on the new ones too.
          yield* Effect.sleep("1500 millis")
          return [first, yield* sessions(4)] as const
        }).pipe(Effect.provide(client))
        assert.strictEqual(new Set(first.map((s) => s.pid)).size, 4)
        assert.strictEqual(new Set(later.map((s) => s.pid)).size, 4)
        assert.isTrue(later.every((s) => !first.some((f) => f.pid === s.pid)), "the later connections are new ones")
        for (const session of [...first, ...later]) {
          assert.deepStrictEqual({ ...session, pid: 0 }, { ...expected, pid: 0 })
        }
      }))

    it.effect("a session setting of the URL's own options parameter is kept; a setting given both ways is ours", () =>
      Effect.gen(function*() {
        const url = new URL((yield* Database).url)
        url.searchParams.set("options", "-c lock_timeout=1000 -c statement_timeout=9000")
        const [session] = yield* sessions(1).pipe(
          Effect.provide(PgDatabase.layer({ url: url.toString(), statementTimeout: 0 }))
        )
        assert.strictEqual(session!.lockTimeout, "1s")
        assert.strictEqual(session!.statementTimeout, "0")
      }))

    it.effect("maxConnections bounds the pool: one connection more waits connectTimeout and fails", () =>
      Effect.gen(function*() {
        const { url } = yield* Database
        const error = yield* sessions(3).pipe(
          Effect.provide(PgDatabase.layer({ url, maxConnections: 2, connectTimeout: "1 second" })),
          Effect.flip
        )
        assert.strictEqual(error._tag, "SqlError")
        const fits = yield* sessions(2).pipe(
          Effect.provide(PgDatabase.layer({ url, maxConnections: 2, connectTimeout: "1 second" }))
        )
        assert.strictEqual(fits.length, 2)
      }))

    it.effect("idleTimeout closes idle connections down to minConnections", () =>
      Effect.gen(function*() {
        const { adminUrl, url } = yield* Database
        const applicationName = `eventfold-idle-${crypto.randomUUID().slice(0, 8)}`
        // The admin client is connected before the sessions are given back, so the first count is one round trip,
        // well inside the idle timeout even on a loaded machine.
        const counts = yield* Effect.gen(function*() {
          const admin = yield* PgClient.PgClient
          const open = admin<
            { count: string }
          >`SELECT count(*) AS count FROM pg_stat_activity WHERE application_name = ${applicationName}`.pipe(
            Effect.map(([row]) => Number(row!.count))
          )
          yield* open
          return yield* Effect.gen(function*() {
            yield* sessions(4)
            const busy = yield* open
            yield* Effect.sleep("4 seconds")
            return [busy, yield* open] as const
          }).pipe(
            Effect.provide(
              PgDatabase.layer({ url, applicationName, maxConnections: 4, minConnections: 2, idleTimeout: "1 second" })
            )
          )
        }).pipe(Effect.provide(PgDatabase.layer({ url: adminUrl, maxConnections: 1 })))
        assert.deepStrictEqual(counts, [4, 2])
      }))

    it.effect("PgDatabase.layerConfig applies the environment's settings, milliseconds and durations alike", () =>
      Effect.gen(function*() {
        const { url } = yield* Database
        const [session] = yield* sessions(1).pipe(
          Effect.provide(PgDatabase.layerConfig()),
          withEnvironment({
            DATABASE_URL: url,
            EVENTFOLD_PG_CONNECT_TIMEOUT: "5000",
            EVENTFOLD_PG_STATEMENT_TIMEOUT: "4000",
            EVENTFOLD_PG_LOCK_TIMEOUT: "2 seconds",
            EVENTFOLD_PG_APPLICATION_NAME: "from-environment"
          })
        )
        assert.strictEqual(session!.statementTimeout, "4s")
        assert.strictEqual(session!.lockTimeout, "2s")
        assert.strictEqual(session!.applicationName, "from-environment")
      }))

    it.effect("malformed options are an InvalidInput naming the option and its variable, never the password", () =>
      Effect.gen(function*() {
        const { url } = yield* Database
        const caFile = path.join(os.tmpdir(), `eventfold-no-such-ca-${crypto.randomUUID()}.pem`)
        const cases: ReadonlyArray<readonly [PgDatabase.Options, string]> = [
          [
            { url: "postgres://app:s3cret/Pa55@db.example.com/app" },
            "url (DATABASE_URL) is a malformed PostgreSQL URL"
          ],
          [{ url, minConnections: 3, maxConnections: 2 }, "EVENTFOLD_PG_MIN_CONNECTIONS"],
          [{ url, maxConnections: 0 }, "maxConnections (EVENTFOLD_PG_MAX_CONNECTIONS)"],
          [{ url, connectTimeout: 0 }, "connectTimeout (EVENTFOLD_PG_CONNECT_TIMEOUT) must be longer than 0"],
          [{ url, statementTimeout: Duration.infinity }, "statementTimeout (EVENTFOLD_PG_STATEMENT_TIMEOUT)"],
          [{ url, lockTimeout: "30 days" }, "lockTimeout (EVENTFOLD_PG_LOCK_TIMEOUT) must be at most"],
          [
            { url, ssl: "require", sslCa: caFile },
            `sslCa (EVENTFOLD_PG_SSL_CA) needs ssl (EVENTFOLD_PG_SSL) "verify-full"`
          ],
          [
            { url, ssl: "verify-full", sslCa: caFile },
            `sslCa (EVENTFOLD_PG_SSL_CA) is neither PEM text nor a readable`
          ],
          [{ url: `${url}?sslmode=disable`, ssl: "require" }, "sslmode in the URL"]
        ]
        for (const [options, expected] of cases) {
          const error = yield* buildError(options)
          assert.instanceOf(error, Errors.InvalidInput, expected)
          assert.include(error.message, expected)
          assert.notInclude(error.message, "s3cret")
        }
      }))

    it.effect("SSL: require and verify-full (with a CA as PEM text and as a file) reach the server's answer", () =>
      Effect.gen(function*() {
        const { url } = yield* Database
        const [row] = yield* Effect.flatMap(PgClient.PgClient, (sql) => sql<{ ssl: string }>`SHOW ssl`).pipe(
          Effect.provide(PgDatabase.layer({ url }))
        )
        const serverSsl = row!.ssl === "on"
        const pem = tls.rootCertificates[0]!
        const caFile = path.join(os.tmpdir(), `eventfold-ca-${crypto.randomUUID()}.pem`)
        fs.writeFileSync(caFile, pem)
        yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(caFile, { force: true })))
        if (serverSsl) {
          const [encrypted] = yield* Effect.flatMap(
            PgClient.PgClient,
            (sql) => sql<{ ssl: boolean }>`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`
          ).pipe(Effect.provide(PgDatabase.layer({ url, ssl: "require" })))
          assert.isTrue(encrypted!.ssl)
        } else {
          const error = yield* buildError({ url, ssl: "require", connectTimeout: "5 seconds" })
          assert.instanceOf(error, Errors.StoreError)
          assert.include(error.message, "does not accept SSL connections")
          assert.strictEqual((error as Errors.StoreError).retryable, false)
        }
        // A public root CA never signed a test server's certificate: verify-full refuses it, or the server has no SSL.
        for (const sslCa of [pem, caFile]) {
          const error = yield* buildError({ url, ssl: "verify-full", sslCa, connectTimeout: "5 seconds" })
          assert.instanceOf(error, Errors.StoreError)
          assert.include(error.message, serverSsl ? "SSL verification" : "does not accept SSL connections")
          assert.strictEqual((error as Errors.StoreError).retryable, false)
        }
      }).pipe(Effect.scoped))

    it.effect("startup failures say what failed: cannot connect, no such database, permission denied", () =>
      Effect.gen(function*() {
        const { adminUrl, name, role, url } = yield* Database
        const refused = yield* buildError({ url: "postgres://app:s3cret@127.0.0.1:1/app", connectTimeout: "2 seconds" })
        assert.instanceOf(refused, Errors.StoreError)
        assert.include(refused.message, "cannot connect to PostgreSQL at 127.0.0.1:1/app")
        assert.notInclude(refused.message, "s3cret")
        assert.strictEqual((refused as Errors.StoreError).retryable, true)

        const missing = new URL(url)
        missing.pathname = "/eventfold_no_such_database"
        const notFound = yield* buildError({ url: missing.toString() })
        assert.instanceOf(notFound, Errors.StoreError)
        assert.include(notFound.message, `database "eventfold_no_such_database" does not exist`)
        assert.deepInclude(notFound, { code: "3D000", retryable: false })

        // Every role may connect to a new database through PUBLIC; take that away from the application role.
        const admin = PgDatabase.layer({ url: adminUrl, maxConnections: 1 })
        yield* Effect.flatMap(PgClient.PgClient, (sql) =>
          Effect.zipRight(
            sql`REVOKE CONNECT ON DATABASE ${sql(name)} FROM PUBLIC`,
            sql`REVOKE CONNECT ON DATABASE ${sql(name)} FROM ${sql(role)}`
          )).pipe(Effect.provide(admin))
        const denied = yield* buildError({ url })
        assert.instanceOf(denied, Errors.StoreError)
        assert.include(denied.message, `permission denied at`)
        assert.include(denied.message, `user "${role}"`)
        assert.deepInclude(denied, { code: "42501", retryable: false })
        assert.notInclude(denied.message, new URL(url).password)
        yield* Effect.flatMap(PgClient.PgClient, (sql) => sql`GRANT CONNECT ON DATABASE ${sql(name)} TO PUBLIC`).pipe(
          Effect.provide(admin)
        )
      }))
  }
)

describe("PgDatabase.layer on a server with password authentication", () => {
  // The embedded server checks passwords whatever DATABASE_URL's server does (a local server may trust everyone).
  it.live(
    "a wrong password is \"authentication failed\", not a connection failure, and the password is not echoed",
    () =>
      Effect.gen(function*() {
        const server = yield* PgEmbedded.start()
        const url = new URL(server.url)
        url.password = "wrong-Pa55word"
        const error = yield* buildError({ url: url.toString() })
        assert.instanceOf(error, Errors.StoreError)
        assert.include(error.message, `authentication failed for user "postgres" at 127.0.0.1:${server.port}/postgres`)
        assert.deepInclude(error, { code: "28P01", retryable: false })
        assert.notInclude(error.message, "wrong-Pa55word")
      }).pipe(Effect.scoped),
    120_000
  )
})
