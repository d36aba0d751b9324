/**
 * The outbox and its relay (`npm run example:outbox`): with the outbox on, every append made by a command also
 * writes outbox rows in the same transaction; `OutboxRelay` publishes them, each stream in version order. First
 * through the in-memory publisher, then, when a NATS JetStream broker answers at `NATS_URL` (default
 * nats://127.0.0.1:4222), through `NatsPublisher`, reading the messages back from JetStream.
 */
import { CommandHandler, Outbox, OutboxPublisher, OutboxRelay } from "@eventfold/core"
import { NatsPublisher } from "@eventfold/outbox-nats"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { connect } from "nats"
import { OrderAggregate } from "./domain/Order.js"
import { onPostgres, runIfMain } from "./run.js"

/** One event as a consumer of the broker sees it. */
export const Delivered = Schema.Struct({
  eventId: Schema.String,
  streamId: Schema.String,
  version: Schema.Number,
  type: Schema.String
})

/** One event as a consumer of the broker sees it. */
export interface Delivered extends Schema.Schema.Type<typeof Delivered> {}

/** The relay did not deliver every appended event in time. */
export class NotDelivered extends Schema.TaggedError<NotDelivered>()("NotDelivered", {
  publisher: Schema.String,
  /** The ids of the events appended and waited for. */
  expected: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `${this.publisher}: not all of the ${this.expected.length} appended events were delivered in time`
  }
}

/** What one run of commands and relay observed. */
export interface RelayResult {
  readonly publisher: string
  /** The ids of the appended events, per order stream, in the order the commands appended them. */
  readonly appended: Readonly<Record<string, ReadonlyArray<string>>>
  /** Outbox rows waiting before the relay ran (written by the appends), and after. */
  readonly pendingBefore: number
  readonly pendingAfter: number
  /** What the broker holds of this run's streams: per stream, in delivery order. */
  readonly delivered: Readonly<Record<string, ReadonlyArray<Delivered>>>
}

/**
 * Places three orders and ships two, interleaving the streams, then runs the relay on the `OutboxPublisher` in
 * context until `delivered` shows every appended event, and prints what the broker got per stream.
 */
const commandsThenRelay = <E, R>(publisher: string, delivered: Effect.Effect<ReadonlyArray<Delivered>, E, R>) =>
  Effect.gen(function*() {
    const orders = yield* CommandHandler.make(OrderAggregate)
    const outbox = yield* Outbox.Outbox
    const run = crypto.randomUUID().slice(0, 8)
    const [a, b, c] = [`order-${run}-a`, `order-${run}-b`, `order-${run}-c`] as const
    const appended: Record<string, Array<string>> = { [a]: [], [b]: [], [c]: [] }
    const create = (id: string) =>
      orders.handle(id, {
        _tag: "CreateOrder",
        customerId: "customer-7",
        items: [{ productId: "kettle", quantity: 1, unitPrice: 40 }]
      })
    const ship = (id: string) => orders.handle(id, { _tag: "ShipOrder", trackingNumber: `TRACK-${id}` })
    for (const [id, command] of [[a, create], [b, create], [a, ship], [c, create], [b, ship]] as const) {
      const result = yield* command(id)
      appended[id]!.push(...result.eventIds)
    }
    const pendingBefore = (yield* outbox.stats).pending
    yield* Console.log(
      `1. commands appended 5 events to ${a}, ${b}, ${c} (interleaved); ${pendingBefore} outbox rows pending, ` +
        "written in the appends' own transactions"
    )

    const expected = Object.values(appended).flat()
    const relay = yield* Effect.forkScoped(OutboxRelay.run({ pollInterval: "100 millis" }))
    const covered = (messages: ReadonlyArray<Delivered>) =>
      expected.every((id) => messages.some((m) => m.eventId === id))
    const seen = yield* delivered.pipe(
      Effect.repeat(
        Schedule.recurWhile((messages: ReadonlyArray<Delivered>) => !covered(messages)).pipe(
          Schedule.addDelay(() => "50 millis")
        )
      ),
      Effect.timeoutFail({
        duration: "15 seconds",
        onTimeout: () => new NotDelivered({ publisher, expected })
      })
    )
    yield* Fiber.interrupt(relay)
    yield* Console.log(`2. OutboxRelay.run published them through ${publisher}; per stream, in delivery order:`)
    const byStream: Record<string, ReadonlyArray<Delivered>> = {}
    for (const id of [a, b, c]) {
      byStream[id] = seen.filter((m) => m.streamId === id)
      yield* Console.log(`   ${id}: ${byStream[id]!.map((m) => `v${m.version} ${m.type}`).join(", ")}`)
    }
    const pendingAfter = (yield* outbox.stats).pending
    yield* Console.log(`3. outbox rows pending now: ${pendingAfter}`)
    const result: RelayResult = { publisher, appended, pendingBefore, pendingAfter, delivered: byStream }
    return result
  }).pipe(Effect.scoped)

/** Commands and relay through the in-memory publisher. Needs the eventfold services, with the outbox on. */
export const program = Effect.gen(function*() {
  const memory = yield* OutboxPublisher.Memory
  return yield* commandsThenRelay("the in-memory publisher", memory.published)
}).pipe(Effect.provide(OutboxPublisher.layerMemory))

/** Right when a NATS server with JetStream answers at `servers` (within 2 seconds), else Left with the reason. */
export const probeNats = (servers: string): Effect.Effect<Either.Either<void, string>> =>
  Effect.promise(() =>
    connect({ servers, timeout: 2_000 }).then(
      async (nc) => {
        const jetStream = await nc.jetstreamManager().then(
          () => Either.right(undefined),
          (e: unknown) => Either.left(`JetStream unavailable: ${String(e)}`)
        )
        await nc.close()
        return jetStream
      },
      (e: unknown) => Either.left(`cannot connect: ${String(e)}`)
    )
  )

/** The NATS server the example publishes to: `NATS_URL`, default nats://127.0.0.1:4222. */
export const natsUrl = Config.string("NATS_URL").pipe(Config.withDefault("nats://127.0.0.1:4222"))

/**
 * Commands and relay through NATS JetStream: a stream of this run's own (deleted afterwards) captures the subjects,
 * and the messages are read back from it, decoded as a consumer would.
 */
export const toNats = (servers: string) =>
  Effect.gen(function*() {
    const nc = yield* NatsPublisher.connection(servers)
    const id = crypto.randomUUID().replace(/-/g, "").slice(0, 12)
    const name = `EVENTFOLD_EXAMPLE_${id}`
    const subjectPrefix = `eventfold_example_${id}`
    yield* NatsPublisher.ensureStream(nc, { name, subjectPrefix })
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => nc.jetstreamManager().then((jsm) => jsm.streams.delete(name)).catch(() => false))
    )
    const decode = Schema.decodeUnknown(Delivered)
    const inJetStream = Effect.tryPromise({
      try: async () => {
        const jsm = await nc.jetstreamManager()
        const { state } = await jsm.streams.info(name)
        const bodies: Array<unknown> = []
        for (let seq = state.first_seq; state.messages > 0 && seq <= state.last_seq; seq++) {
          bodies.push((await jsm.streams.getMessage(name, { seq })).json())
        }
        return bodies
      },
      catch: (cause) => new NatsPublisher.NatsError({ operation: "read back", servers, reason: String(cause) })
    }).pipe(Effect.flatMap(Effect.forEach((body) => decode(body))))
    yield* Console.log(`NATS JetStream at ${servers}: stream ${name} captures ${subjectPrefix}.>`)
    return yield* commandsThenRelay(`NATS JetStream (${subjectPrefix}.Order)`, inJetStream).pipe(
      Effect.provide(NatsPublisher.layer({ servers, subjectPrefix }))
    )
  }).pipe(Effect.scoped)

runIfMain(
  import.meta,
  "outbox and relay",
  onPostgres(
    Effect.gen(function*() {
      yield* program
      const servers = yield* natsUrl
      const probe = yield* probeNats(servers)
      if (Either.isLeft(probe)) {
        yield* Console.log(
          `NATS: skipped, no JetStream at ${servers} (${probe.left}). Start one (nats-server -js) or set NATS_URL.`
        )
        return
      }
      yield* toNats(servers)
    }),
    { switches: { outbox: true } }
  )
)
