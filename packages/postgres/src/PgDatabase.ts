/**
 * Connecting to PostgreSQL: a pooled `PgClient` configured in full (pool size and lifetimes, SSL, and session
 * timeouts that hold on every pooled connection), from options or from environment variables. A malformed setting is
 * a typed error naming it; a failure to connect says what failed (cannot connect, authentication, missing database,
 * permission) and never echoes the password.
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as Errors from "@eventfold/core/Errors"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import type * as tls from "node:tls"
import * as internalConfig from "./internal/config.js"
import * as internal from "./internal/sql.js"

/**
 * How the connection is encrypted: `off`, `require` (encrypted, the certificate not checked) or `verify-full`
 * (encrypted, the certificate checked against the CA and the host name).
 *
 * @since 0.2.0
 * @category models
 */
export type SslMode = "off" | "require" | "verify-full"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** A `postgres://` (or `postgresql://`) connection URL. */
  readonly url: Redacted.Redacted<string> | string
  /** Pool size; defaults to 10. */
  readonly maxConnections?: number | undefined
  /** Idle connections the pool keeps open instead of closing them after `idleTimeout` (not opened ahead); default 0. */
  readonly minConnections?: number | undefined
  /** How long an idle pooled connection stays open; defaults to 10 seconds, 0 keeps idle connections open. */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /** How long a pooled connection lives before it is closed and replaced; no limit by default. */
  readonly maxLifetime?: Duration.DurationInput | undefined
  /** How long to wait for a connection, also from the pool; defaults to 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** `application_name` on every connection, as `pg_stat_activity` shows it; defaults to "eventfold". */
  readonly applicationName?: string | undefined
  /** SSL mode; when absent, what the URL says (`sslmode=...`), else off. */
  readonly ssl?: SslMode | undefined
  /** With `ssl: "verify-full"`: the CA certificate(s), as PEM text or the path of a PEM file; else the system CAs. */
  readonly sslCa?: string | undefined
  /** `statement_timeout` on every pooled connection; the server's setting when absent, 0 turns it off. */
  readonly statementTimeout?: Duration.DurationInput | undefined
  /** `lock_timeout` on every pooled connection; the server's setting when absent, 0 turns it off. */
  readonly lockTimeout?: Duration.DurationInput | undefined
  /** `idle_in_transaction_session_timeout` on every pooled connection; the server's setting when absent. */
  readonly idleInTransactionTimeout?: Duration.DurationInput | undefined
}

/**
 * The environment variable each option is read from by `config`.
 *
 * @since 0.2.0
 * @category constants
 */
export const environment: { readonly [K in keyof Required<Options>]: string } = {
  url: "DATABASE_URL",
  maxConnections: "EVENTFOLD_PG_MAX_CONNECTIONS",
  minConnections: "EVENTFOLD_PG_MIN_CONNECTIONS",
  idleTimeout: "EVENTFOLD_PG_IDLE_TIMEOUT",
  maxLifetime: "EVENTFOLD_PG_MAX_LIFETIME",
  connectTimeout: "EVENTFOLD_PG_CONNECT_TIMEOUT",
  applicationName: "EVENTFOLD_PG_APPLICATION_NAME",
  ssl: "EVENTFOLD_PG_SSL",
  sslCa: "EVENTFOLD_PG_SSL_CA",
  statementTimeout: "EVENTFOLD_PG_STATEMENT_TIMEOUT",
  lockTimeout: "EVENTFOLD_PG_LOCK_TIMEOUT",
  idleInTransactionTimeout: "EVENTFOLD_PG_IDLE_IN_TRANSACTION_TIMEOUT"
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

const URL_SHAPE = "expected postgres://user:password@host:port/database, with @ / # ? : in the user or password " +
  "percent-encoded (%40 %2F %23 %3F %3A)"

/** Why a URL is not one the driver would read as written, in words that never quote it (it may hold a password). */
const urlProblem = (url: string): Either.Either<URL, string> => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return Either.left(`malformed PostgreSQL URL: ${URL_SHAPE}`)
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    return Either.left(`malformed PostgreSQL URL: the scheme is ${JSON.stringify(parsed.protocol)}; ${URL_SHAPE}`)
  }
  // A raw "#", "/" or "@" in a password cuts the URL in the wrong place: the host becomes a piece of the password.
  if (parsed.hash !== "" || parsed.pathname.includes("@") || parsed.pathname.split("/").length > 2) {
    return Either.left(`malformed PostgreSQL URL: it does not split into host and database; ${URL_SHAPE}`)
  }
  return Either.right(parsed)
}

const SSL_MODES: ReadonlyArray<SslMode> = ["off", "require", "verify-full"]
const SSL_URL_PARAMETERS = ["ssl", "sslmode", "sslrootcert", "sslcert", "sslkey"]
/** PostgreSQL's timeouts are int milliseconds. */
const MAX_TIMEOUT_MILLIS = 2_147_483_647

/** What `layer` hands to `PgClient`, plus what its error messages need. */
interface Resolved {
  readonly client: PgClient.PgClientConfig
  readonly where: string
  readonly user: string
  readonly database: string
  readonly connectTimeout: Duration.Duration
}

const invalid = (option: keyof Options, reason: string) =>
  new Errors.InvalidInput({ reason: `${option} (${environment[option]}) ${reason}` })

const integerOption = (option: keyof Options, value: number, min: number) =>
  Number.isInteger(value) && value >= min
    ? Effect.succeed(value)
    : Effect.fail(invalid(option, `must be an integer of at least ${min}, got ${value}`))

const durationOption = (
  option: keyof Options,
  input: Duration.DurationInput,
  bounds: { readonly positive: boolean }
): Effect.Effect<Duration.Duration, Errors.InvalidInput> => {
  const decoded = typeof input === "string"
    ? Either.getRight(internalConfig.parseDuration(input))
    : Duration.decodeUnknown(input)
  if (Option.isNone(decoded) || !Duration.isFinite(decoded.value)) {
    return Effect.fail(invalid(option, `must be a finite duration such as "5 seconds" or 5000 (milliseconds)`))
  }
  const millis = Math.ceil(Duration.toMillis(decoded.value))
  if (bounds.positive && millis <= 0) return Effect.fail(invalid(option, "must be longer than 0"))
  if (millis > MAX_TIMEOUT_MILLIS) return Effect.fail(invalid(option, `must be at most ${MAX_TIMEOUT_MILLIS} ms`))
  return Effect.succeed(Duration.millis(millis))
}

const optionalDuration = (
  option: keyof Options,
  input: Duration.DurationInput | undefined,
  bounds: { readonly positive: boolean }
): Effect.Effect<Duration.Duration | undefined, Errors.InvalidInput> =>
  input === undefined ? Effect.succeed(undefined) : durationOption(option, input, bounds)

const sslOptions = (
  options: Options,
  url: URL
): Effect.Effect<boolean | tls.ConnectionOptions | undefined, Errors.InvalidInput> =>
  Effect.gen(function*() {
    const mode = options.ssl
    if (mode === undefined) {
      return options.sslCa === undefined
        ? undefined
        : yield* Effect.fail(invalid("sslCa", `needs ssl (${environment.ssl}) "verify-full"`))
    }
    if (!SSL_MODES.includes(mode)) {
      return yield* Effect.fail(invalid("ssl", `must be one of ${SSL_MODES.join(", ")}, got ${JSON.stringify(mode)}`))
    }
    // The driver lets the URL's SSL parameters override the ssl option; two sources that may disagree are refused.
    const inUrl = SSL_URL_PARAMETERS.filter((name) => url.searchParams.has(name))
    if (inUrl.length > 0) {
      return yield* Effect.fail(
        invalid("ssl", `is set, and so is ${inUrl.join(", ")} in the URL: set SSL in one place only`)
      )
    }
    if (options.sslCa !== undefined && mode !== "verify-full") {
      return yield* Effect.fail(invalid("sslCa", `needs ssl (${environment.ssl}) "verify-full", got "${mode}"`))
    }
    switch (mode) {
      case "off":
        return false
      case "require":
        return { rejectUnauthorized: false }
      case "verify-full":
        return options.sslCa === undefined
          ? { rejectUnauthorized: true }
          : { rejectUnauthorized: true, ca: yield* readCa(options.sslCa) }
    }
  })

const PEM = "-----BEGIN CERTIFICATE-----"

const readCa = (value: string): Effect.Effect<string, Errors.InvalidInput> => {
  if (value.includes(PEM)) return Effect.succeed(value)
  return Effect.try({
    try: () => fs.readFileSync(value, "utf8"),
    catch: (error) =>
      invalid("sslCa", `is neither PEM text nor a readable file: ${error instanceof Error ? error.message : error}`)
  }).pipe(
    Effect.filterOrFail(
      (text) => text.includes(PEM),
      () => invalid("sslCa", `names the file ${value}, which holds no PEM certificate`)
    )
  )
}

/** The session settings as libpq's `options` startup parameter: the server applies it to every new connection. */
const sessionSettings = (options: Options): Effect.Effect<string, Errors.InvalidInput> =>
  Effect.gen(function*() {
    const settings: Array<string> = []
    const timeouts: ReadonlyArray<readonly [keyof Options, string, Duration.DurationInput | undefined]> = [
      ["statementTimeout", "statement_timeout", options.statementTimeout],
      ["lockTimeout", "lock_timeout", options.lockTimeout],
      ["idleInTransactionTimeout", "idle_in_transaction_session_timeout", options.idleInTransactionTimeout]
    ]
    for (const [option, name, input] of timeouts) {
      const duration = yield* optionalDuration(option, input, { positive: false })
      if (duration !== undefined) settings.push(`-c ${name}=${Duration.toMillis(duration)}`)
    }
    return settings.join(" ")
  })

const resolve = (options: Options): Effect.Effect<Resolved, Errors.InvalidInput> =>
  Effect.gen(function*() {
    const text = Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url
    const url = yield* Either.mapLeft(urlProblem(text), (reason) => invalid("url", `is a ${reason}`))
    const maxConnections = yield* integerOption("maxConnections", options.maxConnections ?? 10, 1)
    const minConnections = yield* integerOption("minConnections", options.minConnections ?? 0, 0)
    if (minConnections > maxConnections) {
      return yield* Effect.fail(
        invalid(
          "minConnections",
          `is ${minConnections}, more than maxConnections (${environment.maxConnections}), ${maxConnections}`
        )
      )
    }
    const connectTimeout = yield* durationOption("connectTimeout", options.connectTimeout ?? "5 seconds", {
      positive: true
    })
    const idleTimeout = yield* optionalDuration("idleTimeout", options.idleTimeout, { positive: false })
    const maxLifetime = yield* optionalDuration("maxLifetime", options.maxLifetime, { positive: true })
    const ssl = yield* sslOptions(options, url)
    const session = yield* sessionSettings(options)
    // Settings in the URL's own `options` parameter come first, so ours win where both set the same name.
    if (session !== "") url.searchParams.set("options", [url.searchParams.get("options"), session].join(" ").trim())
    const user = decodeURIComponent(url.username) || "(default user)"
    return {
      client: {
        url: Redacted.make(session === "" ? text : url.toString()),
        maxConnections,
        minConnections,
        connectTimeout,
        applicationName: options.applicationName ?? "eventfold",
        ...(idleTimeout !== undefined ? { idleTimeout } : {}),
        ...(maxLifetime !== undefined ? { connectionTTL: maxLifetime } : {}),
        ...(ssl !== undefined ? { ssl } : {})
      },
      where: describe(text),
      user,
      database: decodeURIComponent(url.pathname.replace(/^\//, "")) || user,
      connectTimeout
    }
  })

/** The driver's error under an SqlError: its code (SQLSTATE, Node or TLS code) and its message. */
const driverError = (error: SqlError.SqlError): { readonly code: string | undefined; readonly text: string } => {
  const cause: unknown = error.cause
  const fields = (u: unknown) => {
    const record = typeof u === "object" && u !== null ? (u as Record<string, unknown>) : {}
    return {
      code: typeof record.code === "string" ? record.code : undefined,
      message: typeof record.message === "string" ? record.message : ""
    }
  }
  const top = fields(cause)
  // Refused on every address of a host: Node reports an AggregateError whose own message is empty.
  const inner = cause instanceof AggregateError ? cause.errors.map((e) => fields(e).message).filter(Boolean) : []
  const text = [top.message, ...inner].filter(Boolean).join("; ") || error.message
  return { code: top.code, text }
}

const TLS_VERIFY = /CERT|SIGNATURE|ISSUER|ERR_TLS/

const connectError = (resolved: Resolved, error: SqlError.SqlError): Errors.StoreError => {
  const { code, text } = driverError(error)
  const make = (reason: string, retryable: boolean, kind = internal.kindOfCode(code) ?? "connection") =>
    new Errors.StoreError({
      operation: "connect",
      reason,
      retryable,
      kind,
      ...(code !== undefined ? { code } : {}),
      cause: error
    })
  const host = resolved.where.slice(0, resolved.where.lastIndexOf("/"))
  switch (code) {
    case "28P01":
      return make(
        `authentication failed for user "${resolved.user}" at ${resolved.where}: check the user and password`,
        false
      )
    case "28000":
      return make(
        `the server at ${resolved.where} refused user "${resolved.user}" (pg_hba.conf, or a role without LOGIN): ${text}`,
        false
      )
    case "3D000":
      return make(
        `database "${resolved.database}" does not exist on ${host}: create it, or fix the database in the URL`,
        false
      )
    case "42501":
      return make(`permission denied at ${resolved.where} for user "${resolved.user}": ${text}`, false)
  }
  if (/does not support SSL/i.test(text)) {
    return make(
      `the server at ${resolved.where} does not accept SSL connections, but ssl (${environment.ssl}) asks for it`,
      false,
      "other"
    )
  }
  if (code !== undefined && TLS_VERIFY.test(code)) {
    return make(`SSL verification of the server at ${resolved.where} failed: ${text}`, false, "permission")
  }
  return make(
    `cannot connect to PostgreSQL at ${resolved.where} within ${Duration.format(resolved.connectTimeout)}: ${text}`,
    code === undefined || internal.isRetryableCode(code)
  )
}

/**
 * A pooled client as a Layer. Malformed options are an `InvalidInput` naming the option and its environment
 * variable; failing to connect is a `StoreError` that says what failed, raised within the connect timeout.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, Errors.StoreError | Errors.InvalidInput> =>
  Layer.unwrapEffect(
    Effect.map(resolve(options), (resolved) =>
      PgClient.layer(resolved.client).pipe(
        Layer.catchAll((error) => Layer.fail(connectError(resolved, error)))
      ))
  )

/**
 * Every option from its environment variable (see `environment`): `DATABASE_URL` is required, the rest optional.
 * Durations accept Effect's syntax ("5 seconds") and plain milliseconds ("5000"). A malformed value is a
 * `ConfigError` naming the variable; a malformed URL's error never quotes it.
 *
 * @since 0.2.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  url: Config.redacted(Config.string()).pipe(
    Config.mapOrFail((url) =>
      Either.match(urlProblem(Redacted.value(url)), {
        onLeft: (reason) => Either.left(ConfigError.InvalidData([], reason)),
        onRight: () => Either.right(url)
      })
    ),
    Config.nested(environment.url)
  ),
  maxConnections: internalConfig.optional(internalConfig.integerAtLeast(environment.maxConnections, 1)),
  minConnections: internalConfig.optional(internalConfig.integerAtLeast(environment.minConnections, 0)),
  idleTimeout: internalConfig.optional(internalConfig.duration(environment.idleTimeout)),
  maxLifetime: internalConfig.optional(internalConfig.duration(environment.maxLifetime)),
  connectTimeout: internalConfig.optional(internalConfig.duration(environment.connectTimeout)),
  applicationName: internalConfig.optional(Config.string(environment.applicationName)),
  ssl: internalConfig.optional(Config.literal("off", "require", "verify-full")(environment.ssl)),
  sslCa: internalConfig.optional(Config.string(environment.sslCa)),
  statementTimeout: internalConfig.optional(internalConfig.duration(environment.statementTimeout)),
  lockTimeout: internalConfig.optional(internalConfig.duration(environment.lockTimeout)),
  idleInTransactionTimeout: internalConfig.optional(internalConfig.duration(environment.idleInTransactionTimeout))
})

/**
 * A pooled client configured from the environment (`config` by default).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config<Options> = config
): Layer.Layer<
  PgClient.PgClient | SqlClient.SqlClient,
  Errors.StoreError | Errors.InvalidInput | ConfigError.ConfigError
> => Layer.unwrapEffect(Effect.map(options, layer))
