// The console's test store, populated with the library's own stack (PgEventfold) on a fresh database: orders with
// payloads and metadata, a customer in another tenant, notes whose payload and stream id are HTML, a subscription
// that parked an event (its handler fails on it until `repair`), one that stopped early and lags, and an outbox with
// a failed row. Two consoles serve it: one with an admin token, one read-only.
import * as SqlClient from "@effect/sql/SqlClient"
import { EventStore, Outbox, Subscription } from "@eventfold/core"
import { PgDatabase, PgTest } from "@eventfold/postgres"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Admin from "../src/Admin.js"
import * as Console from "../src/Console.js"

/** The payload of the note whose text must show as text. */
export const hostileText = "<script>alert(1)</script>"
/** A stream id that is an HTML element with a handler. */
export const hostileStreamId = "<img src=x onerror=alert(2)>"
/** The outbox failure's error, also HTML. */
export const hostileError = "<b>broker unavailable</b>: nats timeout after 5s"

export class ConsoleFixture extends Context.Tag("test/ConsoleFixture")<ConsoleFixture, {
  /** The console with admin actions (token `token`). */
  readonly console: Console.RunningConsole
  /** The same store behind a console without a token. */
  readonly readOnly: Console.RunningConsole
  readonly token: string
  /** The event `order-emails` parked. */
  readonly deadLetterEventId: string
  readonly admin: Admin.Admin["Type"]
  readonly append: (
    streamType: string,
    streamId: string,
    type: string,
    payload: unknown
  ) => Effect.Effect<EventStore.AppendResult, unknown>
  /** Deploys the fix: `order-emails` handles `OrderRejected` from now on. */
  readonly repair: Effect.Effect<void>
  /** How many sessions of the database have run a LISTEN. */
  readonly listeners: Effect.Effect<number>
  /** Sends a hint as an append does (a NOTIFY on the events channel). */
  readonly hint: Effect.Effect<void>
  /** Another Admin service, on a pool (and so a LISTEN connection) of its own, for the Scope's lifetime. */
  readonly freshAdmin: Effect.Effect<Admin.Admin["Type"], never, Scope.Scope>
}>() {}

const populate = Effect.gen(function*() {
  const db = yield* PgTest.freshDatabase()
  const stack = yield* Layer.memoize(PgTest.eventfold(db, { outbox: true }))
  const broken = yield* Ref.make(true)
  const fixture = yield* Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const outbox = yield* Outbox.Outbox
    yield* store.append({
      streamType: "Order",
      streamId: "o-1001",
      events: [
        {
          type: "OrderPlaced",
          payload: {
            orderId: "o-1001",
            customer: "Ada Lovelace",
            items: [{ sku: "BOOK-42", quantity: 1, price: 39.5 }, { sku: "PEN-7", quantity: 3, price: 2.2 }],
            total: 46.1
          },
          metadata: { correlationId: "checkout-7f3a", actorId: "ada", headers: { channel: "web" } }
        },
        {
          type: "OrderPaid",
          payload: { orderId: "o-1001", amount: 46.1, method: "card" },
          metadata: { correlationId: "checkout-7f3a", causationId: "payment-51c2", actorId: "payments" }
        },
        {
          type: "OrderShipped",
          payload: { orderId: "o-1001", carrier: "DHL", tracking: "JD014600006281234567" },
          metadata: { correlationId: "checkout-7f3a", actorId: "warehouse" }
        }
      ]
    })
    const rejected = yield* store.append({
      streamType: "Order",
      streamId: "o-1002",
      events: [
        { type: "OrderPlaced", payload: { orderId: "o-1002", customer: "Grace Hopper", total: 12 } },
        { type: "OrderRejected", payload: { orderId: "o-1002", reason: "card declined" } }
      ]
    })
    yield* store.append({
      streamType: "Customer",
      streamId: "c-ada",
      tenantId: "acme",
      events: [{ type: "CustomerRegistered", payload: { name: "Ada Lovelace", email: "ada@example.com" } }]
    })
    const first = yield* store.append({
      streamType: "Note",
      streamId: "xss",
      events: [{ type: "NoteAdded", payload: { text: hostileText, html: "<img src=x onerror=alert(3)>" } }]
    })
    const last = yield* store.append({
      streamType: "Note",
      streamId: hostileStreamId,
      events: [{ type: "NoteAdded", payload: { text: "a stream id with markup" } }]
    })

    // order-emails parks OrderRejected while broken, and keeps running for the whole file.
    const emails = yield* Subscription.make({
      id: "order-emails",
      pollInterval: "100 millis",
      lease: "3 seconds",
      handler: (event) =>
        Effect.flatMap(
          Ref.get(broken),
          (isBroken) =>
            isBroken && event.type === "OrderRejected" ? Effect.fail("SMTP 550: mailbox <unavailable>") : Effect.void
        ),
      errorPolicy: { retry: Schedule.recurs(0), onExhausted: "park" }
    })
    yield* Effect.forkScoped(emails.run)
    yield* emails.waitFor(last)
    // analytics ran up to the notes and stopped: it lags by what comes after.
    const analytics = yield* Subscription.make({
      id: "analytics",
      pollInterval: "100 millis",
      handler: () => Effect.void
    })
    const analyticsRun = yield* Effect.fork(analytics.run)
    yield* analytics.waitFor(first)
    yield* Fiber.interrupt(analyticsRun)

    // The outbox: the first row failed for good, the rows of other streams published, the rest pending.
    const claimed = yield* outbox.claim({ relayId: "relay-1", limit: 100, lease: "1 minute" })
    const failed = claimed[0]!
    yield* outbox.recordFailure("relay-1", failed.id, hostileError, Option.none())
    const others = claimed.filter((e) => e.streamId !== failed.streamId || e.streamType !== failed.streamType)
    yield* outbox.markPublished("relay-1", others.slice(0, 2).map((e) => e.id))
    yield* outbox.release(
      "relay-1",
      claimed.filter((e) => e !== failed && !others.slice(0, 2).includes(e)).map((e) => e.id)
    )
    return {
      deadLetterEventId: rejected.eventIds[1]!,
      append: (streamType: string, streamId: string, type: string, payload: unknown) =>
        store.append({ streamType, streamId, events: [{ type, payload }] }).pipe(Effect.provide(stack))
    }
  }).pipe(Effect.provide(stack))

  // The operator's tool connects as the database owner, as `eventfold console` does with DATABASE_URL.
  const ownerContext = yield* Layer.build(PgDatabase.layer({ url: db.adminUrl, maxConnections: 4 }))
  const admin = Context.get(
    yield* Layer.build(Admin.layer().pipe(Layer.provide(Layer.succeedContext(ownerContext)))),
    Admin.Admin
  )
  const owner = Context.get(ownerContext, SqlClient.SqlClient)
  const listeners = owner<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND query ILIKE 'LISTEN%'`.pipe(Effect.map((rows) => rows[0]!.n), Effect.orDie)
  const token = "console-test-token-7b0c2e"
  const settings = { port: 0, pollInterval: "200 millis", lagSampleInterval: "300 millis" } as const
  const console = yield* Effect.provideService(
    Console.serve({ ...settings, token: Redacted.make(token) }),
    Admin.Admin,
    admin
  )
  const readOnly = yield* Effect.provideService(Console.serve(settings), Admin.Admin, admin)
  return {
    ...fixture,
    console,
    readOnly,
    token,
    admin,
    repair: Ref.set(broken, false),
    listeners,
    hint: Effect.asVoid(Effect.orDie(owner`SELECT pg_notify('eventfold_events', '1')`)),
    freshAdmin: Layer.build(
      Admin.layer().pipe(Layer.provide(PgDatabase.layer({ url: db.adminUrl, maxConnections: 2 })))
    ).pipe(
      Effect.map((context) => Context.get(context, Admin.Admin)),
      Effect.orDie
    )
  }
})

/** The fixture, on its own database for the test file; the consoles and database close with it. */
export const layer: Layer.Layer<ConsoleFixture, unknown> = Layer.scoped(ConsoleFixture, populate)
