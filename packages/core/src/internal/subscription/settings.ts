/** @internal A subscription's options resolved once (defaults applied, durations decoded) and checked up front. */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Errors from "../../Errors.js"
import * as EventValidation from "../../EventValidation.js"
import type * as Subscription from "../../Subscription.js"

/** @internal */
export interface Settings {
  readonly id: string
  readonly owner: string
  readonly filter: Subscription.Filter
  readonly batchSize: number
  readonly pollInterval: Duration.Duration
  readonly lease: Duration.Duration
  /** How often the owner renews its lease and a standby tries to claim it: a third of the lease. */
  readonly renewEvery: Duration.Duration
  readonly policy: Subscription.ErrorPolicy
  /** Whether a `transaction` makes each handled batch and its checkpoint advance atomic. */
  readonly transactional: boolean
  readonly transaction: Subscription.Transaction
  /** Backoff after a retryable store failure, capped at 5 seconds. */
  readonly storeRetry: Schedule.Schedule<unknown, unknown>
}

const noTransaction: Subscription.Transaction = (effect) => effect

/** @internal */
export const resolve = <E, R>(
  options: Subscription.Options<E, R>,
  defaultErrorPolicy: Subscription.ErrorPolicy
): Settings => {
  const lease = Duration.decode(options.lease ?? "10 seconds")
  return {
    id: options.id,
    owner: options.owner ?? crypto.randomUUID(),
    filter: {
      eventTypes: options.eventTypes,
      streamTypes: options.streamTypes,
      tenantId: options.tenantId,
      allTenants: options.allTenants
    },
    batchSize: options.batchSize ?? 500,
    pollInterval: Duration.decode(options.pollInterval ?? "1 second"),
    lease,
    renewEvery: Duration.millis(Math.max(1, Math.floor(Duration.toMillis(lease) / 3))),
    policy: options.errorPolicy ?? defaultErrorPolicy,
    transactional: options.transaction !== undefined,
    transaction: options.transaction ?? noTransaction,
    storeRetry: Schedule.union(options.storeRetry ?? Schedule.exponential("200 millis"), Schedule.spaced("5 seconds"))
  }
}

/** @internal Refuses up front what PostgreSQL would reject or alter: the id, the owner, the filters, the page size. */
export const validate = <E, R>(options: Subscription.Options<E, R>): Effect.Effect<void, Errors.InvalidInput> => {
  const batch = options.batchSize ?? 500
  if (!Number.isInteger(batch) || batch < 1 || batch > 10_000) {
    return Effect.fail(new Errors.InvalidInput({ reason: `batchSize must be 1..10000, got ${batch}` }))
  }
  return Effect.all([
    EventValidation.validateName("subscription id", options.id),
    options.owner === undefined ? Effect.void : EventValidation.validateName("subscription owner", options.owner),
    EventValidation.validateFilter(options)
  ], { discard: true })
}
