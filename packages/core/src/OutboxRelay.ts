/**
 * The outbox relay: claims outbox rows under a lease, publishes them through the `OutboxPublisher` in per-stream
 * order, marks them published, and retries failures on a `Schedule` whose next attempt time is stored on the row.
 * It wakes on the outbox's hints and always polls too, so it keeps working when the hints stop.
 *
 * Throughput: many streams are published at once (one message of each in flight), the next batch is claimed while
 * the current one goes out, and each claim also marks what went out before it: one statement and one commit per
 * batch.
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
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import type * as MetricKeyType from "effect/MetricKeyType"
import type * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as Intervals from "effect/ScheduleIntervals"
import type * as Scope from "effect/Scope"
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
  /**
   * The most rows claimed at once; defaults to 2000. `run` claims the next batch while less than two batches' worth
   * of rows wait behind the ones it publishes, holds at most four batches' worth of rows, and at most a batch's worth
   * of streams (it leaves the others to other relays). Bigger batches spread each claim's fixed cost (one statement,
   * one commit) over more rows.
   */
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
  /**
   * How many streams are published at once; defaults to 64. Each stream has at most one message in flight (the next
   * goes once the broker accepted it, which keeps the stream in order), so this is how many messages the broker has in
   * flight.
   */
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

/**
 * The defaults of the options a relay's throughput depends on: the batch size and the streams published at once.
 *
 * @since 0.4.0
 * @category constants
 */
export const defaults: { readonly batchSize: number; readonly concurrency: number } = {
  batchSize: 2000,
  concurrency: 64
}

const resolve = (options: Options | undefined) => ({
  relayId: options?.relayId ?? `relay-${crypto.randomUUID()}`,
  batchSize: options?.batchSize ?? defaults.batchSize,
  lease: options?.lease ?? Duration.seconds(30),
  pollInterval: options?.pollInterval ?? Duration.seconds(1),
  retrySchedule: options?.retrySchedule ?? defaultRetrySchedule,
  concurrency: options?.concurrency ?? defaults.concurrency,
  retention: options?.retention ?? Duration.days(7),
  cleanupInterval: options?.cleanupInterval ?? Duration.minutes(1),
  statsInterval: options?.statsInterval ?? Duration.seconds(10)
})

// The relay id is stored on the rows it claims: refuse up front what PostgreSQL would reject or alter.
const validateRelayId = (options: Options | undefined): Effect.Effect<void, Errors.InvalidInput> =>
  options?.relayId === undefined ? Effect.void : EventValidation.validateName("relayId", options.relayId)

const groupByStream = (entries: ReadonlyArray<Outbox.Entry>): Map<string, Array<Outbox.Entry>> => {
  const groups = new Map<string, Array<Outbox.Entry>>()
  for (const e of entries) {
    const k = streamKey(e.tenantId, e)
    const group = groups.get(k)
    if (group) group.push(e)
    else groups.set(k, [e])
  }
  return groups
}

type Config = ReturnType<typeof resolve>

/** Runs store calls that change what the relay holds one at a time (a no-op where only one runs anyway). */
type Exclusive = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

const unshared: Exclusive = (effect) => effect

/** A claim while this relay holds some of its rows. */
interface Batch {
  /** Rows still held and not yet published: a failure gives its stream's rows back. */
  readonly pending: Set<bigint>
  /** The claim is ours until then (our clock, with a margin); renewals push it forward. */
  validUntil: number
}

/** A claimed row and the batch it came with. */
interface Held {
  readonly entry: Outbox.Entry
  readonly batch: Batch
}

const leaseMillisOf = (config: Config) => Duration.toMillis(Duration.decode(config.lease))
const marginOf = (leaseMillis: number) => Math.min(leaseMillis / 10, 1000)

// The lease starts when the store runs the claim, so `claimedAt` is taken before the claim is sent.
const hold = (config: Config, entries: ReadonlyArray<Outbox.Entry>, claimedAt: number): Batch => {
  const leaseMillis = leaseMillisOf(config)
  return {
    pending: new Set(entries.map((e) => e.id)),
    validUntil: claimedAt + leaseMillis - marginOf(leaseMillis)
  }
}

/** How publishing one stream's rows ended: all of them went out, or a failure or the lease stopped it at `done`. */
type StreamOutcome = { readonly _tag: "Done" } | { readonly _tag: "Stopped"; readonly done: number }

/**
 * Publishes the rows of one stream, in order, each only once the broker accepted the one before: with more than one
 * in flight, a rejected message could be overtaken by the next, which the broker would then keep. Rows that went out
 * leave their batch's pending set for `published`. A failure records the attempt on its row (retried later, or
 * dead-lettered) and gives the rest of the stream back; a lease that ran out stops the stream. Never fails.
 */
const publishStream = (
  config: Config,
  outbox: Outbox.Outbox["Type"],
  publisher: OutboxPublisher.OutboxPublisher["Type"],
  rows: ReadonlyArray<Held>,
  published: Array<bigint>,
  exclusive: Exclusive
): Effect.Effect<StreamOutcome> =>
  Effect.gen(function*() {
    const labels = yield* FiberRef.get(FiberRef.currentMetricLabels)
    const accepted = (held: Held) => {
      held.batch.pending.delete(held.entry.id)
      published.push(held.entry.id)
      publishedCounter.unsafeUpdate(1, labels)
    }
    const stopped = (done: number) => Effect.succeed<StreamOutcome>({ _tag: "Stopped", done })
    // Past its batch's `validUntil` another relay may have taken a row, so publishing it would break the order.
    const leaseRanOut = (done: number) =>
      Effect.as(
        Effect.logWarning("outbox relay: claim lease ran out; leaving the rest of the stream to whoever takes it"),
        { _tag: "Stopped", done } as const
      )
    const failed = (i: number, error: OutboxPublisher.PublishError) =>
      Effect.gen(function*() {
        const entry = rows[i]!.entry
        yield* Metric.increment(publishFailuresCounter)
        const retryIn = yield* retryDelay(config.retrySchedule, entry.attempts + 1, error)
        // The earlier rows of this stream are still held by this relay, so nobody can overtake them.
        const rest = rows.slice(i + 1)
        // The held rows are updated in the same step, so a renewal never counts rows given back as lost. Either way
        // this relay is done with them: they are not renewed, and wait for their lease if not given back.
        const givenBack = yield* exclusive(
          Effect.either(
            Effect.zipRight(
              outbox.recordFailure(config.relayId, entry.id, error.reason, retryIn),
              rest.length > 0 ? outbox.release(config.relayId, rest.map((held) => held.entry.id)) : Effect.void
            )
          ).pipe(Effect.ensuring(Effect.sync(() => {
            for (const held of rows.slice(i)) held.batch.pending.delete(held.entry.id)
          })))
        )
        if (givenBack._tag === "Left") {
          // The rows stay claimed until the lease expires; then they are retried like any other.
          yield* countRelayError("record-failure")
          yield* Effect.logWarning("outbox relay: recording a publish failure failed", givenBack.left)
        } else if (Option.isNone(retryIn)) {
          yield* Metric.increment(deadLetteredCounter)
          yield* Effect.logWarning("outbox row dead-lettered after its last attempt").pipe(
            Effect.annotateLogs({
              eventId: entry.eventId,
              stream: `${entry.streamType}/${entry.streamId}`,
              error: error.reason
            })
          )
        }
        return yield* stopped(i)
      })

    const clock = yield* Effect.clock
    const run = publisher.publishRun
    if (run !== undefined && !(yield* telemetry.tracing)) {
      // One call for the stream instead of one per message; the earliest lease of its rows bounds it. Each call of
      // `proceed` but the first also says the message before went out, so what did is known even if the run never
      // returns (a hung broker, an interruption).
      const validUntil = Math.min(...rows.map((held) => held.batch.validUntil))
      let calls = 0
      let confirmed = 0
      const confirm = (upTo: number) => {
        while (confirmed < upTo) accepted(rows[confirmed++]!)
      }
      const outcome = yield* run(rows.map((held) => held.entry), () => {
        confirm(calls++)
        return clock.unsafeCurrentTimeMillis() < validUntil
      })
      confirm(outcome.published)
      outcome.seconds.forEach((seconds, i) =>
        publishTimer(i < outcome.published ? "ok" : "PublishError").unsafeUpdate(seconds, labels)
      )
      if (outcome.failure !== undefined) return yield* failed(outcome.published, outcome.failure)
      return outcome.published < rows.length ? yield* leaseRanOut(outcome.published) : { _tag: "Done" }
    }
    for (let i = 0; i < rows.length; i++) {
      const held = rows[i]!
      if (clock.unsafeCurrentTimeMillis() >= held.batch.validUntil) return yield* leaseRanOut(i)
      const outcome = yield* Effect.either(publish(publisher, held.entry))
      if (outcome._tag === "Left") return yield* failed(i, outcome.left)
      accepted(held)
    }
    return { _tag: "Done" }
  })

// Each publish in a span of its own, linked to the append's (only when a tracer exports spans).
const publish = (publisher: OutboxPublisher.OutboxPublisher["Type"], entry: Outbox.Entry) =>
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

/**
 * Keeps the claims of the batches in `batches` (and the published rows not yet marked) alive while a slow broker
 * works through them, so no other relay takes them over. A failed renewal is retried at the next tick; a renewal that
 * finds rows gone means the claim was lost, and publishing stops. `exclusive` keeps it from overlapping a claim,
 * whose marks would make rows look lost.
 */
const keepAlive = (
  config: Config,
  outbox: Outbox.Outbox["Type"],
  batches: ReadonlySet<Batch>,
  unmarked: ReadonlyArray<bigint>,
  exclusive: Exclusive
): Effect.Effect<void, never, Scope.Scope> => {
  const leaseMillis = leaseMillisOf(config)
  return exclusive(Effect.gen(function*() {
    const ids = [...unmarked]
    for (const batch of batches) ids.push(...batch.pending)
    if (ids.length === 0) return
    const startedAt = yield* Clock.currentTimeMillis
    const renewed = yield* Effect.either(outbox.renew(config.relayId, ids, config.lease))
    if (renewed._tag === "Left") {
      yield* countRelayError("renew")
      yield* Effect.logWarning("outbox relay: lease renewal failed; retrying", renewed.left)
      return
    }
    const validUntil = renewed.right < ids.length ? 0 : startedAt + leaseMillis - marginOf(leaseMillis)
    for (const batch of batches) batch.validUntil = validUntil
  })).pipe(
    Effect.delay(Duration.millis(leaseMillis / 3)),
    Effect.forever,
    Effect.forkScoped,
    Effect.asVoid
  )
}

const warnUnmarked = (published: number, marked: number) =>
  marked < published
    ? Effect.logWarning("outbox lease expired before the batch was marked; those rows will be redelivered")
      .pipe(Effect.annotateLogs({ published, marked }))
    : Effect.void

/**
 * Claims one batch, publishes it (streams at once, each in order) and marks what it published; returns how many rows
 * it claimed. Tests and one-shot jobs call it; `run` keeps the same steps going without waiting for a batch to end.
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
    const claimedAt = yield* Clock.currentTimeMillis
    const entries = yield* outbox.claim({ relayId: config.relayId, limit: config.batchSize, lease: config.lease })
    yield* Effect.annotateCurrentSpan({ relayId: config.relayId, claimed: entries.length })
    if (entries.length === 0) return 0
    const batch = hold(config, entries, claimedAt)
    const published: Array<bigint> = []
    yield* keepAlive(config, outbox, new Set([batch]), published, unshared)
    // `concurrency` workers take the streams one after another: a fiber per worker, not one per stream.
    const streams = Array.from(
      groupByStream(entries).values(),
      (group) => group.map((entry): Held => ({ entry, batch }))
    )
    let next = 0
    const worker = Effect.gen(function*() {
      while (next < streams.length) {
        yield* publishStream(config, outbox, publisher, streams[next++]!, published, unshared)
      }
    })
    const workers = Math.max(1, Math.min(Math.floor(config.concurrency) || 1, streams.length))
    yield* Effect.all(Array.from({ length: workers }, () => worker), { concurrency: "unbounded", discard: true })
    if (published.length > 0) {
      yield* Effect.flatMap(
        outbox.markPublished(config.relayId, published),
        (marked) => warnUnmarked(published.length, marked)
      )
    }
    return entries.length
  }).pipe(Effect.scoped, Effect.withSpan("OutboxRelay.processBatch", { captureStackTrace: false }))

const logAndContinue = (what: string) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.catchAllCause(self, (cause) =>
    Cause.isInterruptedOnly(cause)
      ? Effect.interrupt
      : Effect.zipRight(countRelayError(what), Effect.logWarning(`outbox relay: ${what} failed; retrying`, cause)))

/**
 * Runs the relay until interrupted, without waiting for a batch to end:
 * - `concurrency` workers publish the claimed rows stream by stream, each stream in order; a stream that is slow
 *   (or failing) holds back no other stream.
 * - Meanwhile, whenever less than two batches' worth of claimed rows wait, it claims more: the store continues
 *   each stream behind the rows this relay still holds, and the same statement marks what went out since the last
 *   claim, so publishing and claiming overlap and each batch costs one statement and one commit.
 * - A stream that failed or whose lease ran out gives back what a claim sent before that brought for it.
 * - When a claim comes back empty and everything went out, one more claim marks the last rows; then it waits for a
 *   wake-up hint or the poll interval. Cleanup and the stats gauges run beside it.
 *
 * Retryable store failures (a lost connection, a timeout) are logged and retried; one that retrying cannot help (a
 * missing table, a permission) stops the relay with that `StoreError`. When it stops, it marks what it published and
 * gives back what it claimed but did not publish.
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
    const publisher = yield* OutboxPublisher.OutboxPublisher
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
    const waitForWork = Effect.race(Queue.take(wake), Effect.sleep(config.pollInterval))

    // Published rows not marked yet: the next claim marks them. Kept until a claim succeeds (a failed statement
    // marked nothing).
    const unmarked: Array<bigint> = []
    // The claims this relay holds rows of.
    const batches = new Set<Batch>()
    // Claimed rows waiting to go out, per stream; the rows of the streams workers are publishing; streams ready for
    // a worker. `queued` counts the waiting rows, `holding` those and the rows being published.
    const waiting = new Map<string, Array<Held>>()
    const active = new Map<string, ReadonlyArray<Held>>()
    const ready = yield* Queue.unbounded<string>()
    let queued = 0
    let holding = 0
    // Signalled whenever a worker takes a stream's waiting rows, and when it is done with them.
    const progress = yield* Queue.sliding<void>(1)
    // Failures and lease stops are numbered; a stream's rows from a claim sent before its last stop are stale: they
    // continue where the stream no longer is.
    let stops = 0
    const stoppedAt = new Map<string, number>()
    const exclusive: Exclusive = (yield* Effect.makeSemaphore(1)).withPermits(1)
    const workers = Math.max(1, Math.floor(config.concurrency) || 1)

    // When the relay stops, after its workers: marks what it published (idempotent: rows an interrupted claim marked
    // already do not count again), and gives back what it claimed but did not publish, so nobody waits for the lease.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        const rest = Array.from(batches, (batch) => [...batch.pending]).flat()
        return Effect.all([
          unmarked.length === 0 ? Effect.void : outbox.markPublished(config.relayId, unmarked),
          rest.length === 0 ? Effect.void : outbox.release(config.relayId, rest)
        ], { discard: true }).pipe(
          Effect.catchAllCause((cause) =>
            Effect.logWarning("outbox relay: settling its last rows failed; they will be redelivered", cause)
          )
        )
      })
    )
    yield* keepAlive(config, outbox, batches, unmarked, exclusive)

    const settled = (rows: ReadonlyArray<Held>) => {
      for (const held of rows) {
        if (held.batch.pending.size === 0) batches.delete(held.batch)
      }
    }
    // Rows this relay will not publish (their pending entries already dropped): given back, best effort; if that
    // fails they wait for their lease to expire.
    const giveBack = (rows: ReadonlyArray<Held>) =>
      rows.length === 0 ? Effect.void : exclusive(
        outbox.release(config.relayId, rows.map((held) => held.entry.id)).pipe(
          Effect.catchAll((error) =>
            Effect.zipRight(
              countRelayError("release"),
              Effect.logWarning("outbox relay: giving rows back failed; they wait for the lease to expire", error)
            )
          )
        )
      )

    const worker = Effect.gen(function*() {
      const key = yield* Queue.take(ready)
      // The stream is offered again once its worker is done with it: never two workers on one stream.
      const rows = waiting.get(key)
      if (active.has(key) || rows === undefined) return
      waiting.delete(key)
      queued -= rows.length
      active.set(key, rows)
      // Fewer rows wait now: there may be room for the next claim.
      yield* Queue.offer(progress, undefined)
      const outcome = yield* publishStream(config, outbox, publisher, rows, unmarked, exclusive)
      if (outcome._tag === "Stopped") {
        // In one step, before any claim looks at what this relay holds: the rows it will not publish are no longer
        // in flight, and the stream's stop is numbered, so rows a claim sent before brings for it count as stale.
        const left = rows.slice(outcome.done).filter((held) => held.batch.pending.delete(held.entry.id))
        stoppedAt.set(key, stops++)
        const stale = waiting.get(key) ?? []
        waiting.delete(key)
        queued -= stale.length
        holding -= stale.length
        for (const held of stale) held.batch.pending.delete(held.entry.id)
        settled(stale)
        yield* giveBack([...left, ...stale])
      }
      settled(rows)
      holding -= rows.length
      active.delete(key)
      if (waiting.has(key)) yield* Queue.offer(ready, key)
      yield* Queue.offer(progress, undefined)
    }).pipe(Effect.forever)

    // Claims more, marking what went out. The rows this relay holds (being published, or waiting) are in flight, so
    // their streams continue behind them (while no older stream waits), unless a stream holds half a batch already
    // (then it is skipped: a slow stream gathers little). Returns how many rows it claimed and whether its limits
    // held it back; `null` when the claim failed (retried after the poll interval).
    const claim = exclusive(Effect.gen(function*() {
      const marks = unmarked.slice()
      const inFlight: Array<bigint> = []
      let skipped = 0
      const holds = new Set([...active.keys(), ...waiting.keys()])
      const maxNewStreams = Math.max(0, config.batchSize - holds.size)
      for (const key of holds) {
        const rows = [...(active.get(key) ?? []), ...(waiting.get(key) ?? [])]
        if (rows.length >= config.batchSize / 2) {
          skipped++
          continue
        }
        // The stream's first and last rows still in flight are all the store needs (its head, and where to go on).
        const pending = rows.filter((held) => held.batch.pending.has(held.entry.id))
        if (pending.length > 0) inFlight.push(pending[0]!.entry.id)
        if (pending.length > 1) inFlight.push(pending[pending.length - 1]!.entry.id)
      }
      const sentAt = stops
      const claimedAt = yield* Clock.currentTimeMillis
      const entries = yield* outbox.claim({
        relayId: config.relayId,
        limit: config.batchSize,
        lease: config.lease,
        markPublished: marks,
        inFlight,
        // No more than a batch of streams held: the others are left to other relays (or its next claims).
        maxNewStreams
      })
      // Rows published meanwhile were appended behind the marked ones.
      unmarked.splice(0, marks.length)
      yield* Effect.annotateCurrentSpan({ claimed: entries.length, marked: marks.length, inFlight: inFlight.length })
      // Held back by its own limits: a worker done with a stream may let the next claim find more.
      const limited = skipped > 0 || maxNewStreams === 0
      if (entries.length === 0) return { claimed: 0, limited, stale: [] }
      const batch = hold(config, entries, claimedAt)
      batches.add(batch)
      const stale: Array<Held> = []
      const offers: Array<string> = []
      for (const entry of entries) {
        const key = streamKey(entry.tenantId, entry)
        const held: Held = { entry, batch }
        // The stream stopped after this claim was sent: these rows continue where it no longer is.
        if ((stoppedAt.get(key) ?? -1) >= sentAt) {
          batch.pending.delete(entry.id)
          stale.push(held)
          continue
        }
        queued++
        holding++
        const rows = waiting.get(key)
        if (rows !== undefined) rows.push(held)
        else {
          waiting.set(key, [held])
          if (!active.has(key)) offers.push(key)
        }
      }
      settled(stale)
      yield* Queue.offerAll(ready, offers)
      return { claimed: entries.length, limited, stale }
    })).pipe(
      // Outside the exclusive section, which giving back takes itself.
      Effect.tap(({ stale }) => giveBack(stale)),
      Effect.withSpan("OutboxRelay.claim", { captureStackTrace: false, attributes: { relayId: config.relayId } }),
      Effect.catchAllCause((cause) => {
        if (Cause.isInterruptedOnly(cause)) return Effect.interrupt
        const failure = Cause.failureOption(cause)
        return Option.isSome(failure) && !Errors.isRetryableStoreError(failure.value)
          ? Effect.zipRight(countRelayError("batch"), Effect.fail(failure.value))
          : Effect.as(
            Effect.zipRight(countRelayError("batch"), Effect.logWarning("outbox relay: claim failed; retrying", cause)),
            null
          )
      })
    )

    for (let i = 0; i < workers; i++) yield* Effect.forkScoped(worker)

    const idle = () => queued === 0 && active.size === 0
    // The next batch is claimed once less than two batches' worth of rows wait behind the ones being published: each
    // stream keeps its next rows ready while a claim runs (one batch's worth was not enough to cover a claim), and
    // each claim brings a whole batch (claiming on every stream's progress made claims of a few rows each). A stream
    // counts for its fair share at most, so one that is stuck never keeps the others from being claimed for; and no
    // more than four batches' worth of rows are held in all.
    const room = () => {
      if (holding >= 4 * config.batchSize) return false
      const share = 2 * config.batchSize / Math.max(1, new Set([...active.keys(), ...waiting.keys()]).size)
      let lookahead = 0
      for (const rows of waiting.values()) lookahead += Math.min(rows.length, share)
      return lookahead < 2 * config.batchSize
    }
    // After a claim that found nothing: when its own limits held it back, claim again once a worker is done with a
    // stream; otherwise one more claim, once everything went out, marks the last rows. New rows come with a hint, or
    // the poll.
    const progressed = Queue.take(progress)
    const allOut = Effect.gen(function*() {
      while (!(idle() && unmarked.length > 0)) yield* Queue.take(progress)
    })
    return yield* Effect.gen(function*() {
      while (true) {
        while (!room()) yield* Queue.take(progress)
        const outcome = yield* claim
        if (outcome === null) yield* waitForWork
        else if (outcome.claimed === 0) yield* Effect.race(outcome.limited ? progressed : allOut, waitForWork)
      }
    })
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
