/**
 * Where the outbox relay sends events: a broker adapter (NATS JetStream, ...) or the in-memory publisher for tests.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as EventMetadata from "./EventMetadata.js"

/**
 * One event as the relay hands it to a publisher. `eventId` is stable across redeliveries, so brokers with a
 * duplicate window can use it as the message id.
 *
 * @since 0.1.0
 * @category models
 */
export interface OutboxMessage {
  readonly eventId: string
  /** The tenant of the event's stream: brokers can route or partition by it. */
  readonly tenantId: string
  readonly streamType: string
  readonly streamId: string
  readonly version: number
  readonly globalPosition: bigint
  readonly type: string
  readonly schemaVersion: number
  readonly payload: unknown
  readonly metadata: EventMetadata.EventMetadata
  /** How many publish attempts failed before this one. */
  readonly attempts: number
}

/**
 * A publish that did not go through; the relay retries it on its schedule and records `reason` on the row.
 *
 * @since 0.1.0
 * @category errors
 */
export class PublishError extends Schema.TaggedError<PublishError>()("PublishError", {
  eventId: Schema.String,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `Publishing event ${this.eventId} failed: ${this.reason}`
  }
}

/**
 * What `publishRun` did with one stream's messages: it published a prefix of them, and says why it stopped early.
 *
 * @since 0.4.0
 * @category models
 */
export interface RunOutcome {
  /** How many messages, from the first, the broker accepted. */
  readonly published: number
  /** Why message number `published` was not accepted, when a failure stopped the run. */
  readonly failure?: PublishError | undefined
  /** Seconds each attempted message took, the failed one included (the relay's publish-duration histogram). */
  readonly seconds: ReadonlyArray<number>
}

/**
 * The publisher service. `publish` succeeds only once the broker has accepted the message.
 *
 * @since 0.1.0
 * @category tags
 */
export class OutboxPublisher extends Context.Tag("@eventfold/core/OutboxPublisher")<OutboxPublisher, {
  readonly publish: (message: OutboxMessage) => Effect.Effect<void, PublishError>
  /**
   * Optional, for throughput: publishes the messages of one stream, in the order given, each only once the broker
   * accepted the one before, and stops at the first failure. It calls `proceed()` once before each message, and stops
   * there when it returns false; a call also tells the relay that the message before it was accepted. The relay runs
   * many streams' runs at once, so the broker still has a message of each in flight; what this saves is the
   * per-message work around `publish`. Without it (and whenever a tracer wants a span per publish) the relay calls
   * `publish` message by message. A decorator that wraps `publish` must wrap or drop this too.
   */
  readonly publishRun?:
    | ((messages: ReadonlyArray<OutboxMessage>, proceed: () => boolean) => Effect.Effect<RunOutcome>)
    | undefined
}>() {}

/**
 * The in-memory publisher: records every accepted message, and fails on request.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryPublisher {
  readonly publisher: OutboxPublisher["Type"]
  /** Every accepted message, in acceptance order (redeliveries included). */
  readonly published: Effect.Effect<ReadonlyArray<OutboxMessage>>
  /** Makes the next `times` publishes of this event fail (`Infinity` for a permanent failure). */
  readonly failNext: (eventId: string, times: number, reason?: string) => Effect.Effect<void>
}

/**
 * Builds an in-memory publisher.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<MemoryPublisher> = Effect.sync(() => {
  // Appended in place: copying the list on every publish made a relay's drain quadratic in its length.
  const published: Array<OutboxMessage> = []
  const failures = new Map<string, { readonly times: number; readonly reason: string }>()
  // Records the message, or returns the injected failure it meets.
  const accept = (message: OutboxMessage): PublishError | undefined => {
    const failure = failures.size === 0 ? undefined : failures.get(message.eventId)
    if (failure === undefined || failure.times <= 0) {
      published.push(message)
      return undefined
    }
    failures.set(message.eventId, { ...failure, times: failure.times - 1 })
    return new PublishError({ eventId: message.eventId, reason: failure.reason })
  }
  const publish = (message: OutboxMessage) =>
    Effect.suspend(() => {
      const failure = accept(message)
      return failure === undefined ? Effect.void : Effect.fail(failure)
    })
  const publishRun = (messages: ReadonlyArray<OutboxMessage>, proceed: () => boolean) =>
    Effect.sync((): RunOutcome => {
      const seconds: Array<number> = []
      for (let i = 0; i < messages.length; i++) {
        if (!proceed()) return { published: i, seconds }
        seconds.push(0)
        const failure = accept(messages[i]!)
        if (failure !== undefined) return { published: i, failure, seconds }
      }
      return { published: messages.length, seconds }
    })
  return {
    publisher: { publish, publishRun },
    published: Effect.sync(() => published.slice()),
    failNext: (eventId, times, reason = "injected failure") =>
      Effect.sync(() => void failures.set(eventId, { times, reason }))
  }
})

/**
 * The handle of the in-memory publisher provided by `layerMemory`, for tests to read and to inject failures.
 *
 * @since 0.1.0
 * @category tags
 */
export class Memory extends Context.Tag("@eventfold/core/OutboxPublisher/Memory")<Memory, MemoryPublisher>() {}

/**
 * The in-memory publisher as a Layer: provides `OutboxPublisher` and its `Memory` handle.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<OutboxPublisher | Memory> = Layer.effectContext(
  Effect.map(makeMemory, (memory) => Context.make(Memory, memory).pipe(Context.add(OutboxPublisher, memory.publisher)))
)
