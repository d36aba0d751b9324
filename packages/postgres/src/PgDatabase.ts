/**
 * Connecting to PostgreSQL: a pooled `PgClient` with a connect timeout always set, whose failures name the server
 * they could not reach (never the password).
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Errors from "@eventfold/core/Errors"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** A `postgres://` connection URL. */
  readonly url: Redacted.Redacted<string> | string
  /** How long to wait for a connection, also from the pool; defaults to 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Pool size; defaults to 10. */
  readonly maxConnections?: number | undefined
  readonly applicationName?: string | undefined
}

/**
 * Where a URL points, without its credentials, for error messages and logs.
 *
 * @since 0.1.0
 * @category utils
 */
export const describe = (url: string): string => {
  try {
    const parsed = new URL(url)
    const database = parsed.pathname.replace(/^\//, "") || "(default database)"
    return `${parsed.hostname || "localhost"}:${parsed.port || "5432"}/${decodeURIComponent(database)}`
  } catch {
    return "(unparseable DATABASE_URL)"
  }
}

/**
 * A pooled client as a Layer. Failing to connect is a `StoreError` that names the host, raised within the timeout.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, Errors.StoreError> => {
  const url = Redacted.isRedacted(options.url) ? options.url : Redacted.make(options.url)
  const timeout = Duration.decode(options.connectTimeout ?? "5 seconds")
  const where = describe(Redacted.value(url))
  return PgClient.layer({
    url,
    connectTimeout: timeout,
    maxConnections: options.maxConnections ?? 10,
    applicationName: options.applicationName ?? "eventfold"
  }).pipe(
    Layer.catchAll((error) =>
      Layer.fail(
        new Errors.StoreError({
          operation: "connect",
          reason: `cannot connect to PostgreSQL at ${where} within ${Duration.format(timeout)}: ${causeText(error)}`,
          cause: error
        })
      )
    )
  )
}

const causeText = (error: { readonly message: string; readonly cause?: unknown }): string => {
  const inner = error.cause
  if (inner instanceof Error && inner.message) return inner.message
  if (typeof inner === "object" && inner !== null && "errors" in inner) return String(inner)
  return error.message
}

/**
 * A pooled client from `DATABASE_URL`, `EVENTFOLD_PG_MAX_CONNECTIONS` and `EVENTFOLD_PG_CONNECT_TIMEOUT`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config<Options> = Config.all({
    url: Config.redacted("DATABASE_URL"),
    maxConnections: Config.integer("EVENTFOLD_PG_MAX_CONNECTIONS").pipe(Config.withDefault(10)),
    connectTimeout: Config.duration("EVENTFOLD_PG_CONNECT_TIMEOUT").pipe(Config.withDefault(Duration.seconds(5)))
  })
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, Errors.StoreError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(config, layer))
