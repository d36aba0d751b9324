/**
 * An `OutboxPublisher` for NATS JetStream. Each event is published with its `eventId` as the message id
 * (`Nats-Msg-Id`), so the stream's duplicate window drops the redeliveries of the relay's at-least-once delivery.
 *
 * @since 0.1.0
 */
import * as OutboxPublisher from "@eventfold/core/OutboxPublisher"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { connect, headers, type MsgHdrs, nanos, type NatsConnection } from "nats"

/**
 * Where the Layer connects and what it names; every field has a default.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The NATS servers; defaults to "127.0.0.1:4222". */
  readonly servers?: string | ReadonlyArray<string> | undefined
  /** The subject prefix; messages go to `${prefix}.${streamType}`. Defaults to "eventfold". */
  readonly subjectPrefix?: string | undefined
  /** Overrides the subject of each message. */
  readonly subject?: ((message: OutboxPublisher.OutboxMessage) => string) | undefined
  /** How long to wait for the JetStream acknowledgement; defaults to 5 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * Whether nats.js captures a stack trace for every publish, so that a timeout says where it was sent from (its
   * `noAsyncTraces` option, inverted). Two `Error`s per message made a good part of a publish's CPU time; defaults to
   * false. Turn it on to debug timeouts.
   */
  readonly asyncStackTraces?: boolean | undefined
}

/**
 * NATS could not be reached or refused a management request.
 *
 * @since 0.1.0
 * @category errors
 */
export class NatsError extends Schema.TaggedError<NatsError>()("NatsError", {
  operation: Schema.String,
  servers: Schema.String,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `NATS ${this.operation} failed (${this.servers}): ${this.reason}`
  }
}

const reasonOf = (u: unknown) => (u instanceof Error ? u.message : String(u))

/** Subject tokens may not contain whitespace, dots or wildcards. */
const token = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, "_") || "_"

/**
 * The default subject of a message: `${prefix}.${streamType}`, with characters NATS does not allow in a token
 * replaced by "_".
 *
 * @since 0.1.0
 * @category utils
 */
export const defaultSubject = (prefix: string): (message: OutboxPublisher.OutboxMessage) => string => {
  // One subject per stream type, made once: this runs for every message.
  const subjects = new Map<string, string>()
  return (message) => {
    let subject = subjects.get(message.streamType)
    if (subject === undefined) {
      subject = `${prefix}.${token(message.streamType)}`
      if (subjects.size < 10_000) subjects.set(message.streamType, subject)
    }
    return subject
  }
}

const encoder = new TextEncoder()

/**
 * The JSON body of a published message.
 *
 * @since 0.1.0
 * @category utils
 */
export const encode = (message: OutboxPublisher.OutboxMessage): Uint8Array =>
  encoder.encode(JSON.stringify({
    eventId: message.eventId,
    streamType: message.streamType,
    streamId: message.streamId,
    version: message.version,
    globalPosition: message.globalPosition.toString(),
    type: message.type,
    schemaVersion: message.schemaVersion,
    payload: message.payload,
    metadata: message.metadata
  }))

/**
 * The headers of a published message: the stream, the version and the event type, so consumers can route and
 * filter without parsing the body.
 *
 * @since 0.4.0
 * @category utils
 */
export const messageHeaders = (message: OutboxPublisher.OutboxMessage): MsgHdrs => {
  const h = headers()
  h.set("eventfold-stream-type", message.streamType)
  h.set("eventfold-stream-id", message.streamId)
  h.set("eventfold-version", String(message.version))
  h.set("eventfold-event-type", message.type)
  return h
}

/**
 * A scoped NATS connection, drained when the scope closes. Without stack traces for each request (see
 * `Options.asyncStackTraces`) unless asked for.
 *
 * @since 0.1.0
 * @category constructors
 */
export const connection = (
  servers: string | ReadonlyArray<string> = "127.0.0.1:4222",
  options?: { readonly asyncStackTraces?: boolean | undefined }
): Effect.Effect<NatsConnection, NatsError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () =>
        connect({
          servers: typeof servers === "string" ? servers : [...servers],
          noAsyncTraces: options?.asyncStackTraces !== true
        }),
      catch: (cause) =>
        new NatsError({ operation: "connect", servers: String(servers), reason: reasonOf(cause), cause })
    }),
    (nc) => Effect.promise(() => nc.drain().catch(() => nc.close()))
  )

/**
 * Creates or updates a JetStream stream capturing `${prefix}.>`, with a duplicate window (default 2 minutes)
 * that should exceed the relay's lease plus its longest retry delay.
 *
 * @since 0.1.0
 * @category constructors
 */
export const ensureStream = (
  nc: NatsConnection,
  options: {
    readonly name: string
    readonly subjectPrefix?: string | undefined
    readonly duplicateWindow?: Duration.DurationInput | undefined
  }
): Effect.Effect<void, NatsError> =>
  Effect.tryPromise({
    try: async () => {
      const jsm = await nc.jetstreamManager()
      const config = {
        name: options.name,
        subjects: [`${options.subjectPrefix ?? "eventfold"}.>`],
        duplicate_window: nanos(Duration.toMillis(Duration.decode(options.duplicateWindow ?? "2 minutes")))
      }
      try {
        await jsm.streams.info(options.name)
        await jsm.streams.update(options.name, config)
      } catch {
        await jsm.streams.add(config)
      }
    },
    catch: (cause) =>
      new NatsError({ operation: "ensureStream", servers: nc.getServer(), reason: reasonOf(cause), cause })
  })

/**
 * Builds the publisher on a connection it opens and drains with the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: Options
): Effect.Effect<OutboxPublisher.OutboxPublisher["Type"], NatsError, Scope.Scope> =>
  Effect.gen(function*() {
    const nc = yield* connection(options?.servers, { asyncStackTraces: options?.asyncStackTraces })
    const js = nc.jetstream()
    const subject = options?.subject ?? defaultSubject(options?.subjectPrefix ?? "eventfold")
    const timeout = Duration.toMillis(Duration.decode(options?.timeout ?? "5 seconds"))
    const send = (message: OutboxPublisher.OutboxMessage) =>
      js.publish(subject(message), encode(message), {
        msgID: message.eventId,
        timeout,
        headers: messageHeaders(message)
      })
    const failure = (message: OutboxPublisher.OutboxMessage, cause: unknown) =>
      new OutboxPublisher.PublishError({ eventId: message.eventId, reason: reasonOf(cause), cause })
    // No span of its own: the relay's `OutboxRelay.publish` span covers each publish, acknowledgement included.
    const publish = (message: OutboxPublisher.OutboxMessage) =>
      Effect.asVoid(Effect.tryPromise({ try: () => send(message), catch: (cause) => failure(message, cause) }))
    // One stream's messages, each sent once JetStream acknowledged the one before, in a single promise: the relay
    // runs many of these at once, so every stream has a message in flight. Interrupted, it sends nothing more.
    const publishRun = (messages: ReadonlyArray<OutboxPublisher.OutboxMessage>, proceed: () => boolean) =>
      Effect.promise(async (signal): Promise<OutboxPublisher.RunOutcome> => {
        const seconds: Array<number> = []
        for (let i = 0; i < messages.length; i++) {
          if (signal.aborted || !proceed()) return { published: i, seconds }
          const message = messages[i]!
          const started = performance.now()
          try {
            await send(message)
          } catch (cause) {
            seconds.push((performance.now() - started) / 1000)
            return { published: i, failure: failure(message, cause), seconds }
          }
          seconds.push((performance.now() - started) / 1000)
        }
        return { published: messages.length, seconds }
      })
    return { publish, publishRun }
  })

/**
 * The publisher as a Layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<OutboxPublisher.OutboxPublisher, NatsError> =>
  Layer.scoped(OutboxPublisher.OutboxPublisher, make(options))

/**
 * The publisher configured from the environment: `NATS_URL` (default "127.0.0.1:4222") and
 * `EVENTFOLD_NATS_SUBJECT_PREFIX` (default "eventfold").
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config<Options> = Config.all({
    servers: Config.string("NATS_URL").pipe(Config.withDefault("127.0.0.1:4222")),
    subjectPrefix: Config.string("EVENTFOLD_NATS_SUBJECT_PREFIX").pipe(Config.withDefault("eventfold"))
  })
): Layer.Layer<OutboxPublisher.OutboxPublisher, NatsError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(config, layer))
