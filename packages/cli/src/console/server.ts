/**
 * The console's HTTP application: the page and its assets, a JSON API over `Admin`, and the live feed as
 * server-sent events. Reads need nothing; the three admin actions (retry a dead letter, reset a subscription, retry
 * the outbox) need the token. Every query and body is decoded with Schema before it reaches `Admin`, which binds
 * every value: no SQL is built from a request.
 *
 * @since 0.4.0
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Errors from "@eventfold/core/Errors"
import * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as Admin from "../Admin.js"
import * as Auth from "./auth.js"
import * as ConsoleErrors from "./errors.js"
import type * as Lag from "./lag.js"
import * as Live from "./live.js"
import * as Page from "./page.js"
import * as Script from "./script.js"
import * as Style from "./style.js"

/**
 * @since 0.4.0
 * @category models
 */
export interface Settings {
  /** The admin token; `None`: a read-only console. */
  readonly token: Option.Option<Redacted.Redacted<string>>
  /** How often the live feed reads the feed while it is quiet. */
  readonly pollInterval: Duration.DurationInput
  /** Host names the `Host` header may name; `"any"` when the console listens on a public address. */
  readonly allowedHosts: ReadonlySet<string> | "any"
  /** Completes when the server shuts down: open live feeds end with it. */
  readonly shutdown: Effect.Effect<void>
}

/**
 * Everything a request can fail with, each answered with its own status.
 *
 * @since 0.4.0
 * @category models
 */
export type RequestFailure =
  | ConsoleErrors.BadRequest
  | ConsoleErrors.Unauthorized
  | ConsoleErrors.AdminActionsDisabled
  | ConsoleErrors.ForeignHost
  | Errors.InvalidInput
  | Errors.StreamNotFound
  | Errors.StoreError
  | Admin.SubscriptionNotFound
  | Admin.DeadLetterNotFound
  | HttpServerError.RouteNotFound

/**
 * The Content-Security-Policy of every response: only this origin's script and stylesheet, no inline code, no
 * frames, no form posts, fetches to this origin only.
 *
 * @since 0.4.0
 * @category constants
 */
export const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const securityHeaders = {
  "content-security-policy": contentSecurityPolicy,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "cache-control": "no-store"
}

// -- request schemas ------------------------------------------------------------------------------------------------

// A parameter may be absent, but never present and empty or undefined.
const optional = <A, I, R>(schema: Schema.Schema<A, I, R>) => Schema.optionalWith(schema, { exact: true })

const Text = Schema.String.pipe(
  Schema.minLength(1),
  Schema.maxLength(1024),
  Schema.annotations({ message: () => ({ message: "expected 1 to 1024 characters", override: true }) })
)
const Limit = Schema.NumberFromString.pipe(
  Schema.int(),
  Schema.between(1, 1000),
  Schema.annotations({ message: () => ({ message: "expected an integer from 1 to 1000", override: true }) })
)
const Version = Schema.NumberFromString.pipe(
  Schema.int(),
  Schema.between(0, Number.MAX_SAFE_INTEGER),
  Schema.annotations({ message: () => ({ message: "expected a stream version (an integer from 0)", override: true }) })
)
const FeedPosition = Schema.String.pipe(
  Schema.pattern(/^\d{1,20}:\d{1,20}$/),
  Schema.annotations({
    message: () => ({ message: "expected a feed position, transactionId:globalPosition", override: true })
  })
)

const StreamsQuery = Schema.Struct({
  type: optional(Text),
  id: optional(Text),
  tenant: optional(Text),
  prefix: optional(Text),
  limit: optional(Limit),
  afterTenant: optional(Text),
  afterType: optional(Text),
  afterId: optional(Text)
})

const StreamQuery = Schema.Struct({
  type: Text,
  id: Text,
  tenant: optional(Text),
  from: optional(Version),
  direction: optional(Schema.Literal("forward", "backward")),
  limit: optional(Limit)
})

const FeedQuery = Schema.Struct({
  after: optional(FeedPosition),
  tenant: optional(Text),
  type: optional(Text),
  limit: optional(Limit)
})

const RetryDeadLetterBody = Schema.Struct({
  subscription: Text,
  tenantId: optional(Text),
  eventId: Text
})
const ResetBody = Schema.Struct({
  subscription: Text,
  tenantId: optional(Text),
  to: optional(Schema.Literal("beginning", "end"))
})
const RetryOutboxBody = Schema.Struct({
  streamType: optional(Text),
  streamId: optional(Text)
})

const strict = { onExcessProperty: "error", errors: "all" } as const

// One line per problem, named by its parameter or field: "limit: expected an integer from 1 to 1000".
const badRequest = (error: ParseResult.ParseError) =>
  new ConsoleErrors.BadRequest({
    reason: ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) =>
      `${issue.path.length === 0 ? "input" : issue.path.map(String).join(".")}: ${issue.message}`
    ).join("; ")
  })

const query = <A, I extends Readonly<Record<string, string | ReadonlyArray<string> | undefined>>>(
  schema: Schema.Schema<A, I>
) => Effect.mapError(HttpServerRequest.schemaSearchParams(schema, strict), badRequest)

const body = <A, I>(schema: Schema.Schema<A, I>) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const contentType = request.headers["content-type"] ?? ""
    if (!/^application\/json\s*(;|$)/i.test(contentType)) {
      return yield* new ConsoleErrors.BadRequest({ reason: "send a JSON body with Content-Type: application/json" })
    }
    return yield* HttpServerRequest.schemaBodyJson(schema, strict).pipe(
      Effect.catchTags({
        ParseError: (error) => Effect.fail(badRequest(error)),
        RequestError: (error) =>
          Effect.fail(new ConsoleErrors.BadRequest({ reason: `unreadable JSON body (${error.reason})` }))
      })
    )
  })

const toFeedPosition = (text: string): Admin.FeedPosition => {
  const [transactionId = "0", globalPosition = "0"] = text.split(":")
  return { transactionId, globalPosition }
}

const json = (value: unknown) => HttpServerResponse.unsafeJson(value)

// -- responses to failures ------------------------------------------------------------------------------------------

const statusOf = (error: RequestFailure): number => {
  switch (error._tag) {
    case "BadRequest":
    case "InvalidInput":
      return 400
    case "Unauthorized":
      return 401
    case "AdminActionsDisabled":
      return 403
    case "StreamNotFound":
    case "SubscriptionNotFound":
    case "DeadLetterNotFound":
    case "RouteNotFound":
      return 404
    case "ForeignHost":
      return 421
    case "StoreError":
      return error.retryable === true ? 503 : 500
  }
}

const failureResponse = (error: RequestFailure) =>
  HttpServerResponse.unsafeJson(
    { _tag: error._tag, message: error._tag === "RouteNotFound" ? "No such page or endpoint" : error.message },
    {
      status: statusOf(error),
      ...(error._tag === "Unauthorized" ? { headers: { "www-authenticate": "Bearer" } } : {})
    }
  )

const hostName = (host: string): Option.Option<string> => {
  try {
    return Option.some(new URL(`http://${host}`).hostname)
  } catch {
    return Option.none()
  }
}

// -- the application ------------------------------------------------------------------------------------------------

/**
 * The console as an `HttpApp` over an `Admin` and a lag sampler.
 *
 * @since 0.4.0
 * @category constructors
 */
export const make = (
  admin: Admin.Admin["Type"],
  sampler: Lag.Sampler,
  settings: Settings
): HttpApp.Default => {
  const admin_ = Auth.authorize(settings.token)

  const router = HttpRouter.empty.pipe(
    HttpRouter.get(
      "/",
      Effect.succeed(HttpServerResponse.text(Page.html, { contentType: "text/html; charset=utf-8" }))
    ),
    HttpRouter.get(
      "/assets/console.js",
      Effect.succeed(HttpServerResponse.text(Script.script, { contentType: "text/javascript; charset=utf-8" }))
    ),
    HttpRouter.get(
      "/assets/console.css",
      Effect.succeed(HttpServerResponse.text(Style.css, { contentType: "text/css; charset=utf-8" }))
    ),
    HttpRouter.get("/favicon.ico", Effect.succeed(HttpServerResponse.empty({ status: 204 }))),
    HttpRouter.get(
      "/api/session",
      Effect.succeed(json({ adminActions: Option.isSome(settings.token), schema: admin.schema }))
    ),
    HttpRouter.get("/api/status", Effect.map(admin.status(), json)),
    HttpRouter.get(
      "/api/streams",
      Effect.gen(function*() {
        const q = yield* query(StreamsQuery)
        if (q.id !== undefined && q.prefix !== undefined) {
          return yield* new ConsoleErrors.BadRequest({ reason: "search by id or by prefix, not both" })
        }
        const after = q.afterTenant !== undefined && q.afterType !== undefined && q.afterId !== undefined
          ? { tenantId: q.afterTenant, streamType: q.afterType, streamId: q.afterId }
          : undefined
        const page = yield* admin.streams({
          streamType: q.type,
          tenantId: q.tenant,
          prefix: q.id ?? q.prefix,
          limit: q.id === undefined ? q.limit ?? 50 : 1000,
          after
        })
        // An exact id is found among the streams it prefixes, which come first in each tenant and type.
        return json(
          q.id === undefined ? page : { streams: page.streams.filter((s) => s.streamId === q.id), next: null }
        )
      })
    ),
    HttpRouter.get(
      "/api/stream",
      Effect.gen(function*() {
        const q = yield* query(StreamQuery)
        const detail = yield* admin.stream(
          { streamType: q.type, streamId: q.id, tenantId: q.tenant },
          { fromVersion: q.from, direction: q.direction, limit: q.limit }
        )
        return json(detail)
      })
    ),
    HttpRouter.get(
      "/api/feed",
      Effect.gen(function*() {
        const q = yield* query(FeedQuery)
        const page = yield* admin.feed({
          after: q.after === undefined ? undefined : toFeedPosition(q.after),
          limit: q.limit ?? 100,
          tenantId: q.tenant,
          streamTypes: q.type === undefined ? undefined : [q.type]
        })
        return json(page)
      })
    ),
    HttpRouter.get(
      "/api/feed/live",
      Effect.gen(function*() {
        const q = yield* query(FeedQuery)
        const request = yield* HttpServerRequest.HttpServerRequest
        // A reconnecting browser resumes after the last message it received.
        const lastEventId = request.headers["last-event-id"]
        const resume = lastEventId === undefined || lastEventId === "" ? q.after : yield* Schema.decodeUnknown(
          FeedPosition
        )(lastEventId).pipe(
          Effect.mapError(badRequest)
        )
        const after = resume === undefined ? yield* admin.head : toFeedPosition(resume)
        const events = Live.events(admin, {
          after,
          tenantId: q.tenant,
          streamTypes: q.type === undefined ? undefined : [q.type],
          pollInterval: settings.pollInterval,
          pageSize: q.limit ?? 200,
          keepAlive: "15 seconds"
        }).pipe(Stream.interruptWhen(settings.shutdown))
        return HttpServerResponse.stream(events, {
          contentType: "text/event-stream",
          headers: { "x-accel-buffering": "no" }
        })
      })
    ),
    HttpRouter.get(
      "/api/subscriptions",
      Effect.gen(function*() {
        const subscriptions = yield* admin.subscriptions
        const deadLetters = yield* admin.deadLetters({ limit: 500 })
        const withHistory = yield* Effect.forEach(subscriptions, (subscription) =>
          Effect.map(
            sampler.history(subscription.subscription, subscription.tenantId),
            (lagHistory) => ({ ...subscription, lagHistory })
          ))
        return json({ subscriptions: withHistory, deadLetters })
      })
    ),
    HttpRouter.get(
      "/api/outbox",
      Effect.gen(function*() {
        const stats = yield* admin.outboxStats
        const failures = yield* admin.outboxFailures({ limit: 200 })
        return json({ stats, failures })
      })
    ),
    HttpRouter.post(
      "/api/dead-letters/retry",
      Effect.gen(function*() {
        yield* admin_
        const b = yield* body(RetryDeadLetterBody)
        return json(yield* admin.retryDeadLetter(b))
      })
    ),
    HttpRouter.post(
      "/api/subscriptions/reset",
      Effect.gen(function*() {
        yield* admin_
        const b = yield* body(ResetBody)
        return json(yield* admin.resetSubscription({ subscription: b.subscription, tenantId: b.tenantId, to: b.to }))
      })
    ),
    HttpRouter.post(
      "/api/outbox/retry",
      Effect.gen(function*() {
        yield* admin_
        const b = yield* body(RetryOutboxBody)
        return json({ retried: yield* admin.retryOutbox(b) })
      })
    )
  )

  const checkHost = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    if (settings.allowedHosts === "any") return Effect.void
    const host = request.headers["host"] ?? ""
    return Option.exists(hostName(host), (name) => settings.allowedHosts !== "any" && settings.allowedHosts.has(name))
      ? Effect.void
      : Effect.fail(new ConsoleErrors.ForeignHost({ host }))
  })

  return Effect.zipRight(checkHost, router).pipe(
    Effect.catchAllCause((cause) => {
      const failure = Cause.failureOption(cause)
      if (Option.isSome(failure)) return Effect.succeed(failureResponse(failure.value))
      if (Cause.isInterruptedOnly(cause)) return Effect.interrupt
      return Effect.as(
        Effect.logError("console: request failed", cause),
        HttpServerResponse.unsafeJson({ _tag: "InternalError", message: "The console failed; see its log" }, {
          status: 500
        })
      )
    }),
    Effect.map(HttpServerResponse.setHeaders(securityHeaders))
  )
}
