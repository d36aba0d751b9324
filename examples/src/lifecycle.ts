/**
 * Forgetting a customer, end to end (`npm run example:lifecycle`). A customer's name and email are personal data,
 * marked in the event and state Schemas with `PersonalData.field`: appends encrypt them with a key per customer,
 * which lives in its own table (`PgKeyStore`). Alice asks to be forgotten: `PersonalData.forget` deletes her keys and
 * records who asked and why. Afterwards every read path shows the redacted value instead of failing: her aggregate
 * (loaded through its snapshot), a projection rebuilt from the first event, her outbox rows, her snapshot. Bob is
 * untouched. Then the lifecycle: Bob closes his account and the stream is archived (no more appends; feed reads by
 * stream type leave it out), and a test customer's stream is deleted for good (a tombstone).
 */
import {
  Aggregate,
  CommandHandler,
  Decider,
  EventQuery,
  EventStore,
  type KeyStore,
  Outbox,
  PersonalData,
  SnapshotStore,
  StreamLifecycle,
  Subscription
} from "@eventfold/core"
import { PgKeyStore } from "@eventfold/postgres"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import { onPostgres, runIfMain } from "./run.js"

const forgotten = "[forgotten]"
/** A personal field of the customer whose id is in `customerId`. */
const personal = PersonalData.field(Schema.String, { subject: "customerId", redacted: forgotten })

const CustomerRegistered = Schema.TaggedStruct("CustomerRegistered", {
  customerId: Schema.String,
  name: personal,
  email: personal,
  country: Schema.String
})
const EmailChanged = Schema.TaggedStruct("EmailChanged", { customerId: Schema.String, email: personal })
const AccountClosed = Schema.TaggedStruct("AccountClosed", { customerId: Schema.String })
const CustomerEvent = Schema.Union(CustomerRegistered, EmailChanged, AccountClosed)
type CustomerEvent = typeof CustomerEvent.Type

/** The state, snapshotted: its personal fields are encrypted in the snapshot too. */
const Customer = Schema.Struct({
  customerId: Schema.String,
  name: personal,
  email: personal,
  country: Schema.String,
  open: Schema.Boolean
})
type Customer = typeof Customer.Type

type Command =
  | { readonly _tag: "Register"; readonly name: string; readonly email: string; readonly country: string }
  | { readonly _tag: "ChangeEmail"; readonly email: string }
  | { readonly _tag: "Close" }

/** The aggregate: a customer's stream id is their customer id. */
export const Customers = Aggregate.make({
  name: "Customer",
  events: CustomerEvent,
  state: Customer,
  snapshot: { every: 2, schemaVersion: 1 },
  decider: Decider.make<Customer, Command & { readonly id: string }, CustomerEvent>({
    initialState: { customerId: "", name: "", email: "", country: "", open: false },
    evolve: (state, event) => {
      switch (event._tag) {
        case "CustomerRegistered":
          return { ...event, open: true }
        case "EmailChanged":
          return { ...state, email: event.email }
        case "AccountClosed":
          return { ...state, open: false }
      }
    },
    decide: (command) => {
      const id = command.id
      switch (command._tag) {
        case "Register":
          return Effect.succeed([
            CustomerRegistered.make({
              customerId: id,
              name: command.name,
              email: command.email,
              country: command.country
            })
          ])
        case "ChangeEmail":
          return Effect.succeed([EmailChanged.make({ customerId: id, email: command.email })])
        case "Close":
          return Effect.succeed([AccountClosed.make({ customerId: id })])
      }
    }
  })
})

/** What the example saw, for its test. */
export interface LifecycleResult {
  readonly before: Customer
  readonly after: Customer
  readonly directory: Readonly<Record<string, string>>
  readonly outboxPayload: unknown
  readonly snapshot: unknown
  readonly audit: { readonly by: string; readonly reason: string | null }
  readonly bob: Customer
  readonly bobAfterClose: string
  readonly feedStreams: ReadonlyArray<string>
  readonly tombstoned: string
}

const program_ = (alice: string, bob: string, tester: string) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const customers = yield* CommandHandler.make(Customers)
    const register = (id: string, name: string, email: string) =>
      customers.handle(id, { _tag: "Register", id, name, email, country: "NL" })
    const first = yield* register(alice, "Alice Smith", "alice@example.com")
    yield* customers.handle(alice, { _tag: "ChangeEmail", id: alice, email: "alice.smith@example.com" })
    yield* register(bob, "Bob Jones", "bob@example.com")
    const before = (yield* customers.load(alice)).state
    yield* Console.log(`1. alice registered and changed her email: ${before.name} <${before.email}>`)

    // A directory read model, from the first event.
    const directory = yield* Ref.make<Record<string, string>>({})
    const projection = yield* Subscription.make({
      id: `directory-${alice}`,
      pollInterval: "50 millis",
      onReset: Ref.set(directory, {}),
      ...EventQuery.handler({ aggregates: [Customers], types: ["CustomerRegistered", "EmailChanged"] }, ({ event }) =>
        Ref.update(directory, (d) => ({
          ...d,
          [event.customerId]: event._tag === "CustomerRegistered"
            ? `${event.name} <${event.email}>`
            : `${(d[event.customerId] ?? "").split(" <")[0]} <${event.email}>`
        })))
    })
    yield* Effect.forkScoped(projection.run)
    yield* projection.waitFor(yield* store.headPosition)

    // Alice asks to be forgotten.
    const audit = yield* PersonalData.forget(alice, { by: "dpo@example.com", reason: "GDPR erasure request #42" })
    yield* Console.log(`2. forgot ${alice} at ${audit.forgottenAt.toISOString()}, by ${audit.forgottenBy}`)

    const after = (yield* customers.load(alice)).state
    yield* Console.log(`3. her aggregate now loads (through its snapshot) as: ${after.name} <${after.email}>`)
    yield* projection.reset
    yield* projection.waitFor(yield* store.headPosition)
    const rebuilt = yield* Ref.get(directory)
    yield* Console.log(
      `4. the directory rebuilt from the first event: ${
        JSON.stringify({ [alice]: rebuilt[alice], [bob]: rebuilt[bob] })
      }`
    )
    const outbox = yield* Outbox.Outbox
    const row = yield* outbox.get(first.eventIds[0]!)
    const outboxPayload = Option.getOrUndefined(Option.map(row, (r) => r.payload))
    yield* Console.log(`5. her outbox row's payload: ${JSON.stringify(outboxPayload)}`)
    const snapshots = yield* SnapshotStore.SnapshotStore
    const snapshot = Option.getOrUndefined(
      Option.map(yield* snapshots.load({ streamType: Customers.name, streamId: alice }), (s) => s.state)
    )
    yield* Console.log(`6. her snapshot: ${JSON.stringify(snapshot)}`)
    const bobNow = (yield* customers.load(bob)).state

    // Lifecycle: Bob closes his account, and his stream is archived.
    const lifecycle = yield* StreamLifecycle.StreamLifecycle
    yield* customers.handle(bob, { _tag: "Close", id: bob })
    yield* lifecycle.archive({ streamType: Customers.name, streamId: bob })
    const bobAfterClose = yield* customers.handle(bob, { _tag: "ChangeEmail", id: bob, email: "x@example.com" }).pipe(
      Effect.match({ onFailure: (e) => e._tag, onSuccess: () => "changed" })
    )
    const feed = yield* EventQuery.readAll({ aggregates: [Customers], limit: 10_000 })
    const feedStreams = [...new Set(feed.events.map((d) => d.recorded.streamId))].filter((id) =>
      id === alice || id === bob
    )
    yield* Console.log(`7. bob's archived account refuses a change (${bobAfterClose}); customer feed: ${feedStreams}`)

    // A test customer is deleted for good.
    yield* register(tester, "Test", "test@example.com")
    yield* lifecycle.delete({ streamType: Customers.name, streamId: tester })
    const tombstoned = yield* register(tester, "Test", "test@example.com").pipe(
      Effect.match({ onFailure: (e) => e._tag, onSuccess: () => "registered" })
    )
    yield* Console.log(`8. registering the deleted test customer again: ${tombstoned}`)

    return {
      before,
      after,
      directory: { [alice]: rebuilt[alice]!, [bob]: rebuilt[bob]! },
      outboxPayload,
      snapshot,
      audit: { by: audit.forgottenBy, reason: audit.reason },
      bob: bobNow,
      bobAfterClose,
      feedStreams,
      tombstoned
    } satisfies LifecycleResult
  })

/**
 * The example with a `KeyStore`: `PersonalData.layer` decorates the stack's stores over it. Customer ids are unique
 * per run, so it runs again on the same database.
 */
export const program = <E, R>(keys: Layer.Layer<KeyStore.KeyStore, E, R>) =>
  Effect.suspend(() => {
    const run = crypto.randomUUID().slice(0, 8)
    return program_(`alice-${run}`, `bob-${run}`, `tester-${run}`)
  }).pipe(
    Effect.provide(PersonalData.layer({ aggregates: [Customers] }).pipe(Layer.provideMerge(keys))),
    Effect.scoped
  )

runIfMain(
  import.meta,
  "forgetting a customer",
  onPostgres(program(PgKeyStore.layer()), { switches: { outbox: true } })
)
