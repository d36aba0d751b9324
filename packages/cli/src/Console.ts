/**
 * The web console: `eventfold console` serves a small page over the `Admin` service with `@effect/platform`'s HTTP
 * server. Pages: stream search, a stream's events (payload and metadata), the live feed (server-sent events),
 * subscriptions with their lag over time, owners and dead letters, and the outbox with its backlog and failures.
 *
 * Read-only unless a token is configured (`EVENTFOLD_CONSOLE_TOKEN`); the admin actions (retry a dead letter, reset a
 * subscription, retry the outbox) then need it as `Authorization: Bearer <token>`. Safe by construction: the page
 * builds every element from text (never HTML), a strict Content-Security-Policy forbids inline code, every request
 * is decoded with Schema, and no SQL is built from request input.
 *
 * @since 0.4.0
 */
import * as Command from "@effect/cli/Command"
import * as CliOptions from "@effect/cli/Options"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import * as Errors from "@eventfold/core/Errors"
import type * as ConfigError from "effect/ConfigError"
import * as EffectConsole from "effect/Console"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { createServer } from "node:http"
import * as Admin from "./Admin.js"
import * as Auth from "./console/auth.js"
import * as Lag from "./console/lag.js"
import * as Server from "./console/server.js"

export {
  /**
   * @since 0.4.0
   * @category errors
   */
  AdminActionsDisabled,
  /**
   * @since 0.4.0
   * @category errors
   */
  BadRequest,
  /**
   * @since 0.4.0
   * @category errors
   */
  ForeignHost,
  /**
   * @since 0.4.0
   * @category errors
   */
  Unauthorized
} from "./console/errors.js"

export {
  /**
   * @since 0.4.0
   * @category constants
   */
  contentSecurityPolicy
} from "./console/server.js"

/**
 * @since 0.4.0
 * @category models
 */
export interface ServeOptions {
  /** Defaults to 4000; 0 picks a free port. */
  readonly port?: number | undefined
  /**
   * Defaults to "127.0.0.1". On a loopback address the console answers only requests for localhost (a defence
   * against DNS rebinding); on any other it answers every host name, so put it behind your own access control.
   */
  readonly host?: string | undefined
  /** The live feed reads the feed this often while it is quiet; defaults to 1 second. */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** Subscription lag is sampled this often for the charts; defaults to 5 seconds. */
  readonly lagSampleInterval?: Duration.DurationInput | undefined
  /** Lag samples kept per subscription; defaults to 120. */
  readonly lagSamples?: number | undefined
}

/**
 * @since 0.4.0
 * @category models
 */
export interface Options extends ServeOptions {
  /** The admin token; without one the console is read-only. */
  readonly token?: Redacted.Redacted<string> | undefined
}

/**
 * A running console.
 *
 * @since 0.4.0
 * @category models
 */
export interface RunningConsole {
  /** Where to open it, e.g. "http://127.0.0.1:4000". */
  readonly url: string
  readonly port: number
  /** Whether admin actions are possible (a token is configured). */
  readonly adminActions: boolean
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"])

const urlHost = (hostname: string) =>
  hostname === "0.0.0.0" || hostname === "::" ? "localhost" : hostname.includes(":") ? `[${hostname}]` : hostname

/**
 * Serves the console in the current scope, over the `Admin` in context, and returns where it listens. Closing the
 * scope ends open live feeds and stops the server.
 *
 * @since 0.4.0
 * @category constructors
 */
export const serve = (
  options?: Options
): Effect.Effect<RunningConsole, HttpServerError.ServeError | Errors.InvalidInput, Admin.Admin | Scope.Scope> =>
  Effect.gen(function*() {
    const port = options?.port ?? 4000
    const host = options?.host ?? "127.0.0.1"
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      return yield* new Errors.InvalidInput({ reason: `the console's port must be 0 to 65535, got ${port}` })
    }
    const lagSamples = options?.lagSamples ?? 120
    if (!Number.isInteger(lagSamples) || lagSamples < 2 || lagSamples > 10_000) {
      return yield* new Errors.InvalidInput({ reason: `lagSamples must be 2 to 10000, got ${lagSamples}` })
    }
    const admin = yield* Admin.Admin
    const node = createServer()
    const server = yield* NodeHttpServer.make(() => node, { port, host })
    const sampler = yield* Lag.start(admin, { interval: options?.lagSampleInterval ?? "5 seconds", keep: lagSamples })
    const shutdown = yield* Deferred.make<void>()
    const token = Option.fromNullable(options?.token)
    const app = Server.make(admin, sampler, {
      token,
      pollInterval: options?.pollInterval ?? "1 second",
      allowedHosts: LOOPBACK.has(host) ? new Set(["localhost", "127.0.0.1", "[::1]"]) : "any",
      shutdown: Deferred.await(shutdown)
    })
    yield* HttpServer.serveEffect(app).pipe(Effect.provideService(HttpServer.HttpServer, server))
    // Runs before the server closes (finalizers run in reverse): live feeds end, and no connection keeps it open.
    yield* Effect.addFinalizer(() =>
      Effect.zipRight(Deferred.succeed(shutdown, undefined), Effect.sync(() => node.closeAllConnections()))
    )
    const address = server.address
    const boundPort = address._tag === "TcpAddress" ? address.port : port
    return {
      url: address._tag === "TcpAddress" ? `http://${urlHost(address.hostname)}:${address.port}` : address.path,
      port: boundPort,
      adminActions: Option.isSome(token)
    }
  })

const announce = (running: RunningConsole) =>
  EffectConsole.log(
    `eventfold console: ${running.url} (${
      running.adminActions
        ? "admin actions need the token of EVENTFOLD_CONSOLE_TOKEN"
        : "read-only; set EVENTFOLD_CONSOLE_TOKEN to allow admin actions"
    })`
  )

/**
 * The console as a Layer, with the token given in code (none: read-only); prints its address when it starts.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<never, HttpServerError.ServeError | Errors.InvalidInput, Admin.Admin> =>
  Layer.scopedDiscard(Effect.flatMap(serve(options), announce))

/**
 * The console as a Layer, with the admin token from `EVENTFOLD_CONSOLE_TOKEN` (unset: read-only).
 *
 * @since 0.4.0
 * @category layers
 */
export const layerConfig = (
  options?: ServeOptions
): Layer.Layer<never, HttpServerError.ServeError | Errors.InvalidInput | ConfigError.ConfigError, Admin.Admin> =>
  Layer.unwrapEffect(Effect.map(Auth.token, (token) => layer({ ...options, token: Option.getOrUndefined(token) })))

/**
 * `eventfold console [--port 4000] [--host 127.0.0.1] [--schema eventfold]`: serves the console until interrupted.
 *
 * @since 0.4.0
 * @category commands
 */
export const command = Command.make(
  "console",
  {
    port: CliOptions.integer("port").pipe(
      CliOptions.withDescription("The port to listen on (0: any free port)"),
      CliOptions.withDefault(4000)
    ),
    host: CliOptions.text("host").pipe(
      CliOptions.withDescription(
        "The address to listen on; on a loopback address only requests for localhost are answered"
      ),
      CliOptions.withDefault("127.0.0.1")
    ),
    schema: CliOptions.text("schema").pipe(
      CliOptions.withDescription(
        "The PostgreSQL schema of eventfold's tables (default: EVENTFOLD_SCHEMA, else \"eventfold\")"
      ),
      CliOptions.optional
    )
  },
  ({ host, port, schema }) =>
    Layer.launch(layerConfig({ host, port })).pipe(
      Effect.provide(Admin.layerConfig({ schema: Option.getOrUndefined(schema) }))
    )
).pipe(
  Command.withDescription(
    "Serve the web console: streams, the live feed, subscriptions with lag and dead letters, the outbox. Read-only " +
      "unless EVENTFOLD_CONSOLE_TOKEN is set; admin actions then need it as Authorization: Bearer <token>."
  )
)
