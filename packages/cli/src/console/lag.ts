/**
 * Lag over time: a fiber samples every subscription's lag on an interval and keeps the latest samples of each, for
 * the charts of the subscriptions page.
 *
 * @since 0.4.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type * as Admin from "../Admin.js"

/**
 * One sample: when (epoch milliseconds) and how many events behind the feed head.
 *
 * @since 0.4.0
 * @category models
 */
export type Sample = readonly [at: number, lag: number]

/**
 * @since 0.4.0
 * @category models
 */
export interface Sampler {
  /** The samples of one subscription checkpoint (name and tenant scope), oldest first. */
  readonly history: (subscription: string, tenantId: string) => Effect.Effect<ReadonlyArray<Sample>>
}

/**
 * @since 0.4.0
 * @category models
 */
export interface Options {
  readonly interval: Duration.DurationInput
  /** Samples kept per subscription. */
  readonly keep: number
}

const keyOf = (subscription: string, tenantId: string) => JSON.stringify([subscription, tenantId])

/**
 * Starts sampling in the current scope: once at once, then every `interval`. A failed sample is logged and skipped.
 *
 * @since 0.4.0
 * @category constructors
 */
export const start = (admin: Admin.Admin["Type"], options: Options): Effect.Effect<Sampler, never, Scope.Scope> =>
  Effect.gen(function*() {
    const samples = yield* Ref.make<ReadonlyMap<string, ReadonlyArray<Sample>>>(new Map())
    const sample = Effect.gen(function*() {
      const subscriptions = yield* admin.subscriptions
      const at = yield* Clock.currentTimeMillis
      yield* Ref.update(samples, (current) => {
        const next = new Map<string, ReadonlyArray<Sample>>()
        // Checkpoints that disappeared drop their history with them.
        for (const subscription of subscriptions) {
          const key = keyOf(subscription.subscription, subscription.tenantId)
          const previous = current.get(key) ?? []
          next.set(key, [...previous, [at, Number(subscription.lag)] as const].slice(-options.keep))
        }
        return next
      })
    }).pipe(Effect.catchAll((error) => Effect.logWarning("console: sampling subscription lag failed", error)))
    yield* Effect.forkScoped(Effect.repeat(sample, Schedule.spaced(Duration.decode(options.interval))))
    return {
      history: (subscription, tenantId) =>
        Effect.map(Ref.get(samples), (current) => current.get(keyOf(subscription, tenantId)) ?? [])
    }
  })
