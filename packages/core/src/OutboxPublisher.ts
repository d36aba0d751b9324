/**
 * Where the outbox relay sends events: a broker adapter (NATS JetStream, ...) or the in-memory publisher for tests.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
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
 * The publisher service. `publish` succeeds only once the broker has accepted the message.
 *
 * @since 0.1.0
 * @category tags
 */
export class OutboxPublisher extends Context.Tag("@eventfold/core/OutboxPublisher")<OutboxPublisher, {
  readonly publish: (message: OutboxMessage) => Effect.Effect<void, PublishError>
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
export const makeMemory: Effect.Effect<MemoryPublisher> = Effect.gen(function*() {
  const published = yield* Ref.make<ReadonlyArray<OutboxMessage>>([])
  const failures = yield* Ref.make(new Map<string, { readonly times: number; readonly reason: string }>())
  const publish = (message: OutboxMessage) =>
    Ref.modify(failures, (map) => {
      const failure = map.get(message.eventId)
      if (!failure || failure.times <= 0) return [undefined, map] as const
      const next = new Map(map)
      next.set(message.eventId, { ...failure, times: failure.times - 1 })
      return [failure.reason, next] as const
    }).pipe(
      Effect.flatMap((reason) =>
        reason === undefined
          ? Ref.update(published, (all) => [...all, message])
          : Effect.fail(new PublishError({ eventId: message.eventId, reason }))
      )
    )
  return {
    publisher: { publish },
    published: Ref.get(published),
    failNext: (eventId, times, reason = "injected failure") =>
      Ref.update(failures, (map) => new Map(map).set(eventId, { times, reason }))
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
