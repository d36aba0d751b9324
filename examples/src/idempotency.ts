/**
 * A command API with idempotency keys (`npm run example:idempotency`): an HTTP-like handler for
 * `POST /orders/:orderId` passes the request's `Idempotency-Key` to `CommandHandler.handle`. A client that retries
 * after losing a response gets the first result again and nothing is written twice, also when the repeats arrive at
 * once; the same key with another command is refused with `IdempotencyKeyReused`.
 */
import { CommandHandler, EventStore } from "@eventfold/core"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { OrderAggregate, OrderCommand } from "./domain/Order.js"
import { onPostgres, runIfMain } from "./run.js"

/** A request as the HTTP layer hands it over: the path's order id, the `Idempotency-Key` header and the JSON body. */
export interface Request {
  readonly orderId: string
  readonly idempotencyKey: string
  readonly body: unknown
}

/** A response: 200 with the result, or an error status with the error's tag and message. */
export type Response =
  | {
    readonly status: 200
    readonly body: {
      readonly orderStatus: string
      readonly version: number
      readonly eventIds: ReadonlyArray<string>
    }
  }
  | { readonly status: 400 | 409 | 422 | 500; readonly body: { readonly error: string; readonly message: string } }

const failure = (status: 400 | 409 | 422 | 500, error: { readonly _tag: string; readonly message: string }) =>
  Effect.succeed<Response>({ status, body: { error: error._tag, message: error.message } })

const show = (response: Response) =>
  response.status === 200
    ? `200 ${response.body.orderStatus} at version ${response.body.version}, events [${
      response.body.eventIds.map((id) => id.slice(0, 8)).join(", ")
    }]`
    : `${response.status} ${response.body.error}: ${response.body.message}`

/**
 * The API: decodes the body at the boundary, handles the command under the request's idempotency key, and maps every
 * typed failure to a status. Needs the `EventStore`.
 */
export const makeApi = Effect.gen(function*() {
  const orders = yield* CommandHandler.make(OrderAggregate)
  const decode = Schema.decodeUnknown(OrderCommand)
  const post = (request: Request): Effect.Effect<Response> =>
    decode(request.body).pipe(
      Effect.flatMap((command) => orders.handle(request.orderId, command, { idempotencyKey: request.idempotencyKey })),
      Effect.map((result): Response => ({
        status: 200,
        body: { orderStatus: result.state.status, version: result.version, eventIds: result.eventIds }
      })),
      Effect.catchTags({
        ParseError: (e) => failure(400, { _tag: e._tag, message: ParseResult.TreeFormatter.formatErrorSync(e) }),
        InvalidInput: (e) => failure(400, e),
        IdempotencyKeyReused: (e) => failure(422, e),
        OrderAlreadyExists: (e) => failure(409, e),
        CannotShipOrder: (e) => failure(409, e)
      }),
      Effect.catchAll((e) => failure(500, e))
    )
  return { post }
})

/** The client gave up waiting: the server may or may not have handled the request. */
export class ResponseLost extends Schema.TaggedError<ResponseLost>()("ResponseLost", {
  idempotencyKey: Schema.String
}) {}

/**
 * The network between client and API: it loses the responses to the first `lose` requests after the API ran them,
 * and keeps them, so the example can compare them with what the retry gets.
 */
const flakyNetwork = (post: (request: Request) => Effect.Effect<Response>, lose: number) =>
  Effect.gen(function*() {
    const left = yield* Ref.make(lose)
    const lost = yield* Ref.make<ReadonlyArray<Response>>([])
    const send = (request: Request) =>
      Effect.flatMap(post(request), (response) =>
        Effect.flatMap(
          Ref.modify(left, (n) => [n > 0, Math.max(0, n - 1)] as const),
          (isLost) =>
            isLost
              ? Ref.update(lost, (all) => [...all, response]).pipe(
                Effect.zipRight(Console.log(`   the API answered ${show(response)}, but the response was lost`)),
                Effect.zipRight(Effect.fail(new ResponseLost({ idempotencyKey: request.idempotencyKey })))
              )
              : Effect.succeed(response)
        ))
    return { send, lost: Ref.get(lost) }
  })

/** What the example observed, so the tests can check it. */
export interface IdempotencyResult {
  readonly orderId: string
  /** The response to the create that the client never saw, and the one its retry with the same key got. */
  readonly lost: Response
  readonly created: Response
  readonly eventsAfterCreate: number
  /** The responses to eight identical requests sent at once. */
  readonly shipped: ReadonlyArray<Response>
  readonly eventsAfterShip: number
  /** The first key sent with another command. */
  readonly reused: Response
  /** The create retried under a new key, as a client that makes one per attempt would. */
  readonly retriedUnderNewKey: Response
  /** The idempotency key each stored event carries in its metadata. */
  readonly storedKeys: ReadonlyArray<string | undefined>
}

/** A create lost and retried, eight concurrent ships, a reused key. Needs the eventfold services. */
export const program = Effect.gen(function*() {
  const api = yield* makeApi
  const store = yield* EventStore.EventStore
  const orderId = `order-${crypto.randomUUID().slice(0, 8)}`
  const stored = store.readStream({ streamType: OrderAggregate.name, streamId: orderId })
  const create = {
    _tag: "CreateOrder",
    customerId: "customer-9",
    items: [{ productId: "lamp", quantity: 1, unitPrice: 60 }]
  }
  const createKey = `req-${crypto.randomUUID()}`

  yield* Console.log(`1. POST /orders/${orderId} (Idempotency-Key ${createKey.slice(0, 12)}…): CreateOrder`)
  const network = yield* flakyNetwork(api.post, 1)
  const created = yield* network.send({ orderId, idempotencyKey: createKey, body: create }).pipe(
    Effect.retry({ while: (e) => e._tag === "ResponseLost", schedule: Schedule.spaced("20 millis"), times: 3 })
  )
  const [lost] = yield* network.lost
  const eventsAfterCreate = (yield* stored).length
  yield* Console.log(
    `   the client retried with the same key: ${show(created)}; the stream holds ${eventsAfterCreate} event`
  )

  const shipKey = `req-${crypto.randomUUID()}`
  const ship = { orderId, idempotencyKey: shipKey, body: { _tag: "ShipOrder", trackingNumber: "TRACK-77" } }
  const shipped = yield* Effect.all(Array.from({ length: 8 }, () => api.post(ship)), { concurrency: "unbounded" })
  const eventsAfterShip = (yield* stored).length
  const distinct = new Set(shipped.map((r) => JSON.stringify(r))).size
  yield* Console.log(
    `2. 8 identical ShipOrder requests at once (one key): ${distinct} distinct response, ${show(shipped[0]!)}; ` +
      `the stream holds ${eventsAfterShip} events`
  )

  const reused = yield* api.post({
    orderId,
    idempotencyKey: createKey,
    body: { ...create, items: [{ productId: "lamp", quantity: 2, unitPrice: 60 }] }
  })
  yield* Console.log(`3. the first key with another command: ${show(reused)}`)

  const retriedUnderNewKey = yield* api.post({ orderId, idempotencyKey: `req-${crypto.randomUUID()}`, body: create })
  yield* Console.log(
    `4. the create again under a fresh key, as a client that makes one per attempt would: ${show(retriedUnderNewKey)}`
  )

  const events = yield* stored
  const storedKeys = events.map((e) => e.metadata.headers?.["eventfold-idempotency-key"])
  yield* Console.log("5. the stored events carry their key in the metadata:")
  for (const event of events) {
    yield* Console.log(
      `   v${event.version} ${event.type} ${event.eventId.slice(0, 8)} key ${storedKeys[event.version - 1]}`
    )
  }
  const result: IdempotencyResult = {
    orderId,
    lost: lost!,
    created,
    eventsAfterCreate,
    shipped,
    eventsAfterShip,
    reused,
    retriedUnderNewKey,
    storedKeys
  }
  return result
})

runIfMain(import.meta, "a command API with idempotency keys", onPostgres(program))
