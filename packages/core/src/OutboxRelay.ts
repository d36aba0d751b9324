/**
 * The outbox relay: claims outbox rows under a lease, publishes them through the `OutboxPublisher` in per-stream
 * order, marks them published, and retries failures on a `Schedule` whose next attempt time is stored on the row.
 * It wakes on the outbox's hints and always polls too, so it keeps working when the hints stop.
 *
 * Delivery is at least once: a relay that dies after publishing but before marking publishes again after its lease
 * expires. Brokers with a duplicate window keyed by `eventId` make that effectively once.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import type * as MetricKeyType from "effect/MetricKeyType"
import type * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as Intervals from "effect/ScheduleIntervals"
import * as Stream from "effect/Stream"
import * as Errors from "./Errors.js"
import * as EventValidation from "./EventValidation.js"
import { streamKey } from "./internal/streamKey.js"
import * as telemetry from "./internal/telemetry.js"
import * as Outbox from "./Outbox.js"
import * as OutboxPublisher from "./OutboxPublisher.js"

/**
 * How a relay claims, publishes, retries and cleans up; every field has a default.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * Names this relay in the rows it claims; defaults to a random id. A name PostgreSQL cannot store as given (see
   * `EventValidation.validateName`) fails the relay at once with `InvalidInput`.
   */
  readonly relayId?: string | undefined
  /** The most rows claimed at once; defaults to 100. */
  readonly batchSize?: number | undefined
  /** How long a claim lasts before another relay may take it over; defaults to 30 seconds. */
  readonly lease?: Duration.DurationInput | undefined
  /** Poll interval when no wake-up hint arrives; defaults to 1 second. */
  readonly pollInterval?: Duration.DurationInput | undefined
  /**
   * The delays between attempts of one row. When it stops, the row becomes `failed`. Defaults to exponential from
   * 200 ms, jittered, capped at 1 minute, 10 attempts in all.
   */
  readonly retrySchedule?: Schedule.Schedule<unknown, OutboxPublisher.PublishError> | undefined
  /** How many streams are published in parallel within a batch; defaults to 16. */
  readonly concurrency?: number | undefined
  /** Published rows older than this are deleted; defaults to 7 days. */
  readonly retention?: Duration.DurationInput | undefined
  /** How often cleanup runs; defaults to 1 minute. */
  readonly cleanupInterval?: Duration.DurationInput | undefined
  /** How often the stats gauges are refreshed; defaults to 10 seconds. */
  readonly statsInterval?: Duration.DurationInput | undefined
}

/**
 * The default retry schedule: exponential from 200 ms, jittered, capped at 1 minute, 10 attempts in all.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRetrySchedule: Schedule.Schedule<unknown, OutboxPublisher.PublishError> = Schedule.exponential(
  "200 millis"
).pipe(
  Schedule.jittered,
  Schedule.modifyDelay((d) => Duration.min(d, Duration.minutes(1))),
  Schedule.intersect(Schedule.recurs(9))
)

/**
 * Gauge: rows waiting to be published.
 *
 * @since 0.1.0
 * @category metrics
 */
export const pendingGauge: Metric.Metric.Gauge<number> = Metric.gauge("eventfold_outbox_pending", {
  description: "Outbox rows waiting to be published"
})

/**
 * Gauge: dead-lettered rows.
 *
 * @since 0.1.0
 * @category metrics
 */
export const failedGauge: Metric.Metric.Gauge<number> = Metric.gauge("eventfold_outbox_failed", {
  description: "Outbox rows whose retries are exhausted"
})

/**
 * Gauge: age in seconds of the oldest pending row (0 when none).
 *
 * @since 0.1.0
 * @category metrics
 */
export const oldestPendingAgeGauge: Metric.Metric.Gauge<number> = Metric.gauge(
  "eventfold_outbox_oldest_pending_age_seconds",
  { description: "Age of the oldest pending outbox row" }
)

/**
 * Counter: events the relay has published (redeliveries included).
 *
 * @since 0.1.0
 * @category metrics
 */
export const publishedCounter: Metric.Metric.Counter<number> = Metric.counter("eventfold_outbox_published_total", {
  description: "Outbox events published",
  incremental: true
})

/**
 * Counter: failed publish attempts.
 *
 * @since 0.1.0
 * @category metrics
 */
export const publishFailuresCounter: Metric.Metric.Counter<number> = Metric.counter(
  "eventfold_outbox_publish_failures_total",
  { description: "Failed outbox publish attempts", incremental: true }
)

/**
 * Histogram: seconds per publish attempt (the broker's acknowledgement included), tagged `outcome` (`ok`, or the
 * error's tag, `PublishError`).
 *
 * @since 0.4.0
 * @category metrics
 */
export const publishDuration: Metric.Metric<
  MetricKeyType.MetricKeyType.Histogram,
  number,
  MetricState.MetricState.Histogram
> = Metric.histogram(
  "eventfold_outbox_publish_duration_seconds",
  telemetry.durationBoundaries,
  "Seconds per outbox publish attempt, by outcome"
)

/**
 * Counter: rows dead-lettered (`failed`) after their last attempt.
 *
 * @since 0.4.0
 * @category metrics
 */
export const deadLetteredCounter: Metric.Metric.Counter<number> = Metric.counter("eventfold_outbox_dead_lettered", {
  description: "Outbox rows that became failed after their last attempt",
  incremental: true
})

/**
 * Counter: relay work that failed and was retried, tagged `operation` (`batch`, `cleanup`, `stats`, `renew`,
 * `record-failure`). Publish failures are counted in `publishFailuresCounter`.
 *
 * @since 0.4.0
 * @category metrics
 */
export const relayErrorsCounter: Metric.Metric.Counter<number> = Metric.counter("eventfold_outbox_relay_errors", {
  description: "Outbox relay operations that failed (and were retried), by operation",
  incremental: true
})

const publishTimer = telemetry.taggedBy(publishDuration, "outcome")

const countRelayError = (operation: string) =>
  Metric.increment(Metric.tagged(relayErrorsCounter, "operation", operation))

/**
 * The delay before the attempt after `failures` failed ones, by stepping the schedule; `None` once it is done.
 *
 * @since 0.1.0
 * @category utils
 */
export const retryDelay = <E>(
  schedule: Schedule.Schedule<unknown, E>,
  failures: number,
  error: E
): Effect.Effect<Option.Option<Duration.Duration>> =>
  Effect.gen(function*() {
    let state = schedule.initial
    let now = 0
    let delay = 0
    for (let i = 0; i < failures; i++) {
      const [next, , decision] = yield* schedule.step(now, error, state)
      if (ScheduleDecision.isDone(decision)) return Option.none()
      state = next
      delay = Math.max(0, Intervals.start(decision.intervals) - now)
      now += delay
    }
    return Option.some(Duration.millis(delay))
  })

/**
 * Reads the outbox stats and sets the gauges.
 *
 * @since 0.1.0
 * @category metrics
 */
export const refreshMetrics: Effect.Effect<Outbox.Stats, Errors.StoreError, Outbox.Outbox> = Effect.flatMap(
  Outbox.Outbox,
  (outbox) =>
    Effect.tap(outbox.stats, (stats) =>
      Effect.all([
        Metric.set(pendingGauge, stats.pending),
        Metric.set(failedGauge, stats.failed),
        Metric.set(
          oldestPendingAgeGauge,
          Option.match(stats.oldestPendingAge, { onNone: () => 0, onSome: Duration.toSeconds })
        )
      ], { discard: true }))
)

const resolve = (options: Options | undefined) => ({
  relayId: options?.relayId ?? `relay-${crypto.randomUUID()}`,
  batchSize: options?.batchSize ?? 100,
  lease: options?.lease ?? Duration.seconds(30),
  pollInterval: options?.pollInterval ?? Duration.seconds(1),
  retrySchedule: options?.retrySchedule ?? defaultRetrySchedule,
  concurrency: options?.concurrency ?? 16,
  retention: options?.retention ?? Duration.days(7),
  cleanupInterval: options?.cleanupInterval ?? Duration.minutes(1),
  statsInterval: options?.statsInterval ?? Duration.seconds(10)
})

// The relay id is stored on the rows it claims: refuse up front what PostgreSQL would reject or alter.
const validateRelayId = (options: Options | undefined): Effect.Effect<void, Errors.InvalidInput> =>
  options?.relayId === undefined ? Effect.void : EventValidation.validateName("relayId", options.relayId)

const groupByStream = (entries: ReadonlyArray<Outbox.Entry>): ReadonlyArray<ReadonlyArray<Outbox.Entry>> => {
  const groups = new Map<string, Array<Outbox.Entry>>()
  for (const e of entries) {
    const k = streamKey(e.tenantId, e)
    const group = groups.get(k)
    if (group) group.push(e)
    else groups.set(k, [e])
  }
  return Array.from(groups.values())
}

/**
 * Claims one batch and publishes it; returns how many rows it claimed. The loop in `run` calls it; tests and
 * one-shot jobs can call it directly.
 *
 * @since 0.1.0
 * @category running
 */
export const processBatch = (
  options?: Options
): Effect.Effect<number, Errors.StoreError | Errors.InvalidInput, Outbox.Outbox | OutboxPublisher.OutboxPublisher> =>
  Effect.gen(function*() {
    yield* validateRelayId(options)
    const config = resolve(options)
    const outbox = yield* Outbox.Outbox
    const publisher = yield* OutboxPublisher.OutboxPublisher
    const entries = yield* outbox.claim({ relayId: config.relayId, limit: config.batchSize, lease: config.lease })
    yield* Effect.annotateCurrentSpan({ relayId: config.relayId, claimed: entries.length })
    if (entries.length === 0) return 0

    // The claim is ours until `validUntil` (our clock, with a margin); renewals push it forward. Past it another
    // relay may have taken the rows, so publishing them would break the stream's order: stop instead.
    const leaseMillis = Duration.toMillis(Duration.decode(config.lease))
    const margin = Math.min(leaseMillis / 10, 1000)
    let validUntil = (yield* Clock.currentTimeMillis) + leaseMillis - margin
    const held = new Set(entries.map((e) => e.id))
    const stillOurs = Effect.map(Clock.currentTimeMillis, (now) => now < validUntil)

    // Each publish in a span of its own, linked to the append's (only when a tracer exports spans).
    const publish = (entry: Outbox.Entry) =>
      telemetry.measured(
        "OutboxRelay.publish",
        () => ({
          kind: "producer",
          links: telemetry.appendLinks(entry.metadata),
          attributes: {
            eventId: entry.eventId,
            eventType: entry.type,
            tenantId: entry.tenantId,
            streamType: entry.streamType,
            streamId: entry.streamId,
            version: entry.version,
            attempts: entry.attempts
          }
        }),
        publisher.publish(entry),
        (span, exit, seconds, labels) => {
          const outcome = telemetry.outcomeOf(exit, "ok")
          span?.attribute("outcome", outcome)
          publishTimer(outcome).unsafeUpdate(seconds, labels)
        }
      )
    // One stream's rows go out one after another; a failure stops its stream and gives the rest back. It never
    // fails: what it published is returned even when the store then fails, so the batch can still mark it.
    const publishStream = (group: ReadonlyArray<Outbox.Entry>) =>
      Effect.gen(function*() {
        const done: Array<bigint> = []
        for (let i = 0; i < group.length; i++) {
          const entry = group[i]!
          if (!(yield* stillOurs)) {
            yield* Effect.logWarning(
              "outbox relay: claim lease ran out mid-batch; leaving the rest to whoever takes it"
            )
            break
          }
          const outcome = yield* Effect.either(publish(entry))
          if (outcome._tag === "Right") {
            done.push(entry.id)
            continue
          }
          yield* Metric.increment(publishFailuresCounter)
          const retryIn = yield* retryDelay(config.retrySchedule, entry.attempts + 1, outcome.left)
          // The earlier rows of this stream are still held by this relay, so nobody can overtake them.
          const rest = group.slice(i + 1).map((e) => e.id)
          const givenBack = yield* Effect.either(
            Effect.zipRight(
              outbox.recordFailure(config.relayId, entry.id, outcome.left.reason, retryIn),
              rest.length > 0 ? outbox.release(config.relayId, rest) : Effect.void
            )
          )
          if (givenBack._tag === "Left") {
            // The rows stay claimed until the lease expires; then they are retried like any other.
            yield* countRelayError("record-failure")
            yield* Effect.logWarning("outbox relay: recording a publish failure failed", givenBack.left)
            break
          }
          held.delete(entry.id)
          for (const id of rest) held.delete(id)
          if (Option.isNone(retryIn)) {
            yield* Metric.increment(deadLetteredCounter)
            yield* Effect.logWarning("outbox row dead-lettered after its last attempt").pipe(
              Effect.annotateLogs({
                eventId: entry.eventId,
                stream: `${entry.streamType}/${entry.streamId}`,
                error: outcome.left.reason
              })
            )
          }
          break
        }
        return done
      })

    // Keep the claim alive while a slow broker works through the batch, so no other relay takes the rows over. A
    // failed renewal is retried at the next tick; a renewal that finds rows gone means the claim was lost.
    yield* Effect.gen(function*() {
      const startedAt = yield* Clock.currentTimeMillis
      const renewed = yield* Effect.either(outbox.renew(config.relayId, [...held], config.lease))
      if (renewed._tag === "Left") {
        yield* countRelayError("renew")
        yield* Effect.logWarning("outbox relay: lease renewal failed; retrying", renewed.left)
      } else if (renewed.right < held.size) {
        validUntil = 0
      } else {
        validUntil = startedAt + leaseMillis - margin
      }
    }).pipe(
      Effect.delay(Duration.millis(leaseMillis / 3)),
      Effect.forever,
      Effect.forkScoped
    )
    const published = (yield* Effect.forEach(groupByStream(entries), publishStream, {
      concurrency: config.concurrency
    })).flat()
    if (published.length > 0) {
      const marked = yield* outbox.markPublished(config.relayId, published)
      yield* Metric.incrementBy(publishedCounter, published.length)
      if (marked < published.length) {
        yield* Effect.logWarning("outbox lease expired before the batch was marked; those rows will be redelivered")
          .pipe(Effect.annotateLogs({ relayId: config.relayId, published: published.length, marked }))
      }
    }
    return entries.length
  }).pipe(Effect.scoped, Effect.withSpan("OutboxRelay.processBatch", { captureStackTrace: false }))

const logAndContinue = (what: string) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.catchAllCause(self, (cause) =>
    Cause.isInterruptedOnly(cause)
      ? Effect.interrupt
      : Effect.zipRight(countRelayError(what), Effect.logWarning(`outbox relay: ${what} failed; retrying`, cause)))

/**
 * Runs the relay until interrupted: batches while there is work, then waits for a wake-up hint or the poll
 * interval. Cleanup and the stats gauges run beside it. Retryable store failures (a lost connection, a timeout) are
 * logged and retried; one that retrying cannot help (a missing table, a permission) stops the relay with that
 * `StoreError`.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (
  options?: Options
): Effect.Effect<never, Errors.StoreError | Errors.InvalidInput, Outbox.Outbox | OutboxPublisher.OutboxPublisher> => {
  const config = resolve(options)
  return Effect.scoped(Effect.gen(function*() {
    yield* validateRelayId(options)
    const outbox = yield* Outbox.Outbox
    const wake = yield* Queue.sliding<void>(1)
    // The hint stream may end (a dead LISTEN connection); subscribe again after a pause.
    yield* outbox.wakeups.pipe(
      Stream.runForEach(() => Queue.offer(wake, undefined)),
      Effect.zipRight(Effect.sleep(config.pollInterval)),
      Effect.forever,
      Effect.forkScoped
    )
    yield* outbox.cleanup(config.retention).pipe(
      logAndContinue("cleanup"),
      Effect.repeat(Schedule.spaced(config.cleanupInterval)),
      Effect.forkScoped
    )
    yield* refreshMetrics.pipe(
      logAndContinue("stats"),
      Effect.repeat(Schedule.spaced(config.statsInterval)),
      Effect.forkScoped
    )
    const batch = processBatch({ ...options, relayId: config.relayId }).pipe(
      Effect.catchAllCause((cause) => {
        if (Cause.isInterruptedOnly(cause)) return Effect.interrupt
        const failure = Cause.failureOption(cause)
        return Option.isSome(failure) && !Errors.isRetryableStoreError(failure.value)
          ? Effect.zipRight(countRelayError("batch"), Effect.fail(failure.value))
          : Effect.as(
            Effect.zipRight(countRelayError("batch"), Effect.logWarning("outbox relay: batch failed; retrying", cause)),
            0
          )
      })
    )
    // Wait only when a claim came back empty. A short batch does not mean the outbox is drained (the store may
    // bound how deep it looks into each stream, other relays hold some streams), and sleeping after one used to
    // cost a whole poll interval per batch; the extra claim when it is drained is one cheap round trip.
    return yield* Effect.forever(
      Effect.flatMap(batch, (claimed) =>
        claimed === 0
          ? Effect.race(Queue.take(wake), Effect.sleep(config.pollInterval))
          : Effect.void)
    )
  })).pipe(Effect.annotateLogs("relay", config.relayId))
}

/**
 * The relay as a Layer: it runs while the Layer is in use and stops when the Layer closes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<never, Errors.InvalidInput, Outbox.Outbox | OutboxPublisher.OutboxPublisher> =>
  Layer.scopedDiscard(Effect.zipRight(
    validateRelayId(options),
    Effect.forkScoped(
      run(options).pipe(Effect.tapError((e) => Effect.logError("outbox relay stopped", e)))
    )
  ))
