/**
 * Configuration through environment variables (`npm run example:configuration`): the whole PostgreSQL stack from
 * `PgEventfold.layerConfig()`, and nothing in code. It prints the effective settings (`PgConfig`, and the session
 * settings as a pooled connection reports them), shows that the outbox switch really applies, and that malformed
 * values fail with a `ConfigError` naming the variable before anything connects.
 *
 * The variables (every one optional but `DATABASE_URL`):
 * - eventfold's switches (`PgConfig.config`): `EVENTFOLD_SCHEMA`, `EVENTFOLD_OUTBOX`, `EVENTFOLD_NOTIFY`,
 *   `EVENTFOLD_POOLER`, and `EVENTFOLD_MIGRATIONS` (`run` or `verify`);
 * - the pool (`PgDatabase.environment`): `DATABASE_URL`, `EVENTFOLD_PG_MAX_CONNECTIONS`,
 *   `EVENTFOLD_PG_MIN_CONNECTIONS`, `EVENTFOLD_PG_IDLE_TIMEOUT`, `EVENTFOLD_PG_MAX_LIFETIME`,
 *   `EVENTFOLD_PG_CONNECT_TIMEOUT`, `EVENTFOLD_PG_APPLICATION_NAME`, `EVENTFOLD_PG_SSL`, `EVENTFOLD_PG_SSL_CA`,
 *   `EVENTFOLD_PG_STATEMENT_TIMEOUT`, `EVENTFOLD_PG_LOCK_TIMEOUT`, `EVENTFOLD_PG_IDLE_IN_TRANSACTION_TIMEOUT`.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import { CommandHandler, MemoryEventfold, Outbox } from "@eventfold/core"
import { PgConfig, PgDatabase, PgEventfold } from "@eventfold/postgres"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { OrderAggregate } from "./domain/Order.js"
import { database, runIfMain } from "./run.js"

/** Every variable the stack reads, in the order the example prints them. */
export const variables: ReadonlyArray<string> = [
  "EVENTFOLD_SCHEMA",
  "EVENTFOLD_OUTBOX",
  "EVENTFOLD_NOTIFY",
  "EVENTFOLD_POOLER",
  "EVENTFOLD_MIGRATIONS",
  ...Object.values(PgDatabase.environment)
]

/** The PostgreSQL stack from the environment alone. */
export const layer = PgEventfold.layerConfig()

/**
 * The in-memory stack from the same environment, for tests: `EVENTFOLD_OUTBOX` and `EVENTFOLD_NOTIFY` apply, and
 * `PgConfig` carries the settings read, so the program reports the same switches on both.
 */
export const layerMemory = Layer.unwrapEffect(
  Effect.map(
    Effect.flatMap(PgConfig.config, PgConfig.make),
    (settings) =>
      Layer.merge(
        MemoryEventfold.layer({ outbox: settings.outbox, notify: settings.notify }),
        Layer.succeed(PgConfig.PgConfig, settings)
      )
  )
)

/** The session settings of a pooled connection, as PostgreSQL reports them. */
export const SessionSettings = Schema.Struct({
  application_name: Schema.String,
  statement_timeout: Schema.String,
  lock_timeout: Schema.String,
  idle_in_transaction_session_timeout: Schema.String
})

/** The session settings of a pooled connection, as PostgreSQL reports them. */
export interface SessionSettings extends Schema.Schema.Type<typeof SessionSettings> {}

/** Reads them on a pooled connection. */
const sessionSettings = (sql: SqlClient.SqlClient) =>
  SqlSchema.single({
    Request: Schema.Void,
    Result: SessionSettings,
    execute: () =>
      sql`SELECT current_setting('application_name') AS application_name,
        current_setting('statement_timeout') AS statement_timeout,
        current_setting('lock_timeout') AS lock_timeout,
        current_setting('idle_in_transaction_session_timeout') AS idle_in_transaction_session_timeout`
  })(undefined)

/** What the example observed, so the tests can check it. */
export interface ConfigurationResult {
  readonly settings: PgConfig.Settings
  /** None in memory. */
  readonly session: Option.Option<SessionSettings>
  /** Outbox rows pending after one command, or why there are none (the outbox is off). */
  readonly outbox: { readonly on: true; readonly pending: number } | { readonly on: false; readonly reason: string }
}

/** Reports the effective settings, then handles one command. Needs the eventfold services. */
export const program = Effect.gen(function*() {
  const settings = yield* PgConfig.PgConfig
  yield* Console.log(
    `1. PgConfig: schema "${settings.schema}", outbox ${settings.outbox ? "on" : "off"}, ` +
      `notify ${settings.notify ? "on" : "off"}, pooler "${settings.pooler}"`
  )
  const session = yield* Effect.serviceOption(SqlClient.SqlClient).pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.succeedNone,
      onSome: (sql) => Effect.asSome(sessionSettings(sql))
    }))
  )
  yield* Option.match(session, {
    onNone: () => Console.log("2. in memory: no connection, so no session settings"),
    onSome: (s) =>
      Console.log(
        `2. a pooled connection reports application_name "${s.application_name}", statement_timeout ` +
          `${s.statement_timeout}, lock_timeout ${s.lock_timeout}, idle_in_transaction_session_timeout ` +
          `${s.idle_in_transaction_session_timeout}`
      )
  })

  const orders = yield* CommandHandler.make(OrderAggregate)
  yield* orders.handle(`order-${crypto.randomUUID().slice(0, 8)}`, {
    _tag: "CreateOrder",
    customerId: "customer-1",
    items: [{ productId: "mug", quantity: 2, unitPrice: 8 }]
  })
  const outboxState = yield* Effect.flatMap(Outbox.Outbox, (outbox) => outbox.stats).pipe(
    Effect.map((stats) => ({ on: true as const, pending: stats.pending })),
    Effect.catchTag("StoreError", (e) => Effect.succeed({ on: false as const, reason: e.reason }))
  )
  yield* Console.log(
    `3. a command appended 1 event; ${
      outboxState.on ? `outbox rows pending: ${outboxState.pending}` : `no outbox row: ${outboxState.reason}`
    }`
  )
  const result: ConfigurationResult = { settings, session, outbox: outboxState }
  return result
})

/** The environment as a `ConfigProvider`, as tests give it. */
export const fromEnvironment = (environment: Readonly<Record<string, string>>): ConfigProvider.ConfigProvider =>
  ConfigProvider.fromMap(new Map(Object.entries(environment)))

/**
 * Builds the stack from `environment` and returns how it failed: a malformed value is a `ConfigError` naming the
 * variable, found before anything connects (and a malformed `DATABASE_URL` is never quoted).
 */
export const refusal = (environment: Readonly<Record<string, string>>): Effect.Effect<string> =>
  Layer.build(layer).pipe(
    Effect.scoped,
    Effect.withConfigProvider(fromEnvironment(environment)),
    Effect.match({
      onFailure: (error) => `${error._tag} ${String(error)}`,
      onSuccess: () => "accepted"
    })
  )

/** Malformed environments the example shows being refused. */
export const malformed: ReadonlyArray<Readonly<Record<string, string>>> = [
  { DATABASE_URL: "postgres://app@db.internal/orders", EVENTFOLD_POOLER: "bogus" },
  { DATABASE_URL: "postgres://app@db.internal/orders", EVENTFOLD_PG_STATEMENT_TIMEOUT: "soon" },
  // A raw "#" in the password: the URL would split there, and the error must not quote it.
  { DATABASE_URL: "postgres://app:se#cret@db.internal:5432/orders" }
]

/** Settings the example uses when the environment does not set them, so its run shows them at work. */
const exampleDefaults: Readonly<Record<string, string>> = {
  EVENTFOLD_PG_APPLICATION_NAME: "eventfold-configuration-example",
  EVENTFOLD_PG_MAX_CONNECTIONS: "4",
  EVENTFOLD_PG_STATEMENT_TIMEOUT: "30 seconds",
  EVENTFOLD_PG_LOCK_TIMEOUT: "5000",
  EVENTFOLD_PG_IDLE_IN_TRANSACTION_TIMEOUT: "1 minute"
}

const main = Effect.gen(function*() {
  const url = yield* database
  const fallback: Record<string, string> = { ...exampleDefaults, DATABASE_URL: Redacted.value(url) }
  yield* Console.log("The environment (variables not listed take their defaults):")
  for (const name of variables) {
    const fromEnv = process.env[name]
    const value = fromEnv ?? fallback[name]
    if (value === undefined) continue
    const shown = name === PgDatabase.environment.url ? PgDatabase.describe(value) : value
    yield* Console.log(`   ${name}=${shown}${fromEnv === undefined ? "   (the example's default)" : ""}`)
  }
  const environment = ConfigProvider.fromEnv().pipe(ConfigProvider.orElse(() => fromEnvironment(fallback)))
  yield* program.pipe(Effect.provide(layer), Effect.withConfigProvider(environment))
  yield* Console.log("4. malformed values are refused before anything connects:")
  for (const environment of malformed) {
    const bad = Object.entries(environment).map(([k, v]) => `${k}=${v}`).join(" ")
    yield* Console.log(`   ${bad}\n     → ${yield* refusal(environment)}`)
  }
})

runIfMain(import.meta, "configuration from environment variables", main)
