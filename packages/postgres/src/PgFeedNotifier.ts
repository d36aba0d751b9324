/**
 * The PostgreSQL `FeedNotifier`: LISTENs on the channel that appends notify (`<schema>_events`) and turns each
 * notification into a wake-up hint. It is only a hint: subscriptions poll anyway.
 *
 * `PgClient.listen` in @effect/sql-pg 0.53 stops silently when its connection dies, so the notifier sends itself a
 * probe notification every `probeInterval` and, when the probe does not come back, listens again (on a new
 * connection once no one else holds the old one). Behind PgBouncer in transaction mode LISTEN does not work: with
 * `PgConfig` `pooler: "transaction"` this Layer does not LISTEN and readers poll, with the lease-based ownership of
 * `PgCheckpointStore` (no session state).
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as Errors from "@eventfold/core/Errors"
import * as FeedNotifier from "@eventfold/core/FeedNotifier"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as internal from "./internal/sql.js"
import * as PgConfig from "./PgConfig.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The PostgreSQL schema whose appends to listen for; defaults to "eventfold". */
  readonly schema?: string | undefined
  /** How often to check that the LISTEN connection still delivers; defaults to 15 seconds. */
  readonly probeInterval?: Duration.DurationInput | undefined
}

const PROBE_PREFIX = "eventfold-probe:"

/**
 * Listens for the lifetime of the Scope. One per `PgClient` is enough: every subscription of the process shares it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: Options
): Effect.Effect<FeedNotifier.FeedNotifier["Type"], Errors.InvalidInput, PgClient.PgClient | Scope.Scope> =>
  Effect.gen(function*() {
    const schema = yield* PgConfig.schema(options?.schema)
    // Behind a pooler in transaction mode LISTEN receives nothing and leaves registrations on pooled connections.
    if ((yield* PgConfig.PgConfig).pooler === "transaction") return FeedNotifier.polling
    const client = yield* PgClient.PgClient
    const sql = client.withoutTransforms()
    const channel = internal.eventsChannel(schema)
    const probeInterval = Duration.decode(options?.probeInterval ?? "15 seconds")
    const { notifier, signal } = yield* FeedNotifier.makeHub
    const probeId = `${PROBE_PREFIX}${crypto.randomUUID()}`
    const probeSeen = yield* Ref.make(false)

    const listen = client.listen(channel).pipe(
      Stream.runForEach((payload) =>
        payload === probeId
          ? Ref.set(probeSeen, true)
          : payload.startsWith(PROBE_PREFIX)
          ? Effect.void
          : signal
      )
    )

    // Fails when a probe sent on the channel does not come back: the LISTEN connection is gone.
    const probe = Effect.gen(function*() {
      while (true) {
        yield* Effect.sleep(probeInterval)
        yield* Ref.set(probeSeen, false)
        yield* sql`SELECT pg_notify(${channel}, ${probeId})`
        yield* Effect.sleep(Duration.min(probeInterval, Duration.seconds(5)))
        if (!(yield* Ref.get(probeSeen))) return yield* Effect.fail("listen connection lost" as const)
      }
    })

    yield* Effect.raceFirst(listen, probe).pipe(
      // Whatever ended the session, wake every reader (it may have missed hints), then listen again.
      Effect.catchAllCause((cause) => Effect.logDebug("PgFeedNotifier: listening again", cause)),
      Effect.zipRight(signal),
      Effect.repeat(Schedule.spaced("1 second")),
      Effect.forkScoped
    )
    return notifier
  })

/**
 * The notifier as a Layer over the `PgClient` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<FeedNotifier.FeedNotifier, Errors.InvalidInput, PgClient.PgClient> =>
  Layer.scoped(FeedNotifier.FeedNotifier, make(options))
