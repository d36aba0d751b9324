/**
 * What crypto-shredding guarantees on every stack, as one exported test suite: personal fields round-trip through
 * `CommandHandler`, typed reads, subscriptions, snapshots and the outbox while the stores hold only ciphertext; after
 * a subject is forgotten every one of those paths yields the redacted value, an audit record says when and by whom,
 * and nothing of the subject's data is left in plaintext. Rotation, a second subject, a second tenant, a repeated
 * forget and a forget racing appends are covered too.
 *
 * The suite decorates the stack itself (`PersonalData.layer({ aggregates }).pipe(Layer.provideMerge(stack))`), so
 * the stack is the undecorated one, with the outbox on and a `KeyStore`:
 *
 * `PersonalDataContract.suite("memory", Layer.merge(MemoryEventfold.layer({ outbox: true }), KeyStore.layerMemory))`
 *
 * It scans what the undecorated stores hold for plaintext; `rawText`, when given, adds the implementation's own view
 * of its tables (a raw SELECT as the owner on PostgreSQL).
 *
 * @since 0.4.0
 */
import { assert, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Aggregate from "./Aggregate.js"
import type * as CheckpointStore from "./CheckpointStore.js"
import * as CommandHandler from "./CommandHandler.js"
import * as Decider from "./Decider.js"
import * as EventQuery from "./EventQuery.js"
import * as EventStore from "./EventStore.js"
import type * as FeedNotifier from "./FeedNotifier.js"
import * as KeyStore from "./KeyStore.js"
import * as Outbox from "./Outbox.js"
import * as OutboxPublisher from "./OutboxPublisher.js"
import * as OutboxRelay from "./OutboxRelay.js"
import * as PersonalData from "./PersonalData.js"
import * as Position from "./Position.js"
import type * as RecordedEvent from "./RecordedEvent.js"
import * as SnapshotStore from "./SnapshotStore.js"
import * as Subscription from "./Subscription.js"
import * as Tenant from "./Tenant.js"

const FORGOTTEN = "[forgotten]"
const FORGOTTEN_DATE = "1900-01-01T00:00:00.000Z"

const subjectField = { subject: "customerId", redacted: FORGOTTEN } as const

class CustomerRegistered extends Schema.TaggedClass<CustomerRegistered>()("CustomerRegistered", {
  customerId: Schema.String,
  name: PersonalData.field(Schema.String, subjectField),
  email: PersonalData.field(Schema.String, subjectField),
  // Encoded as an ISO string: the redacted value is the encoded form, and decodes to a Date.
  birthDate: PersonalData.field(Schema.Date, { subject: "customerId", redacted: FORGOTTEN_DATE }),
  tier: Schema.String
}) {}
class EmailChanged extends Schema.TaggedClass<EmailChanged>()("EmailChanged", {
  customerId: Schema.String,
  email: PersonalData.field(Schema.String, subjectField)
}) {}
class Upgraded extends Schema.TaggedClass<Upgraded>()("Upgraded", { customerId: Schema.String, tier: Schema.String }) {}
const CustomerEvent = Schema.Union(CustomerRegistered, EmailChanged, Upgraded)
type CustomerEvent = typeof CustomerEvent.Type

const CustomerState = Schema.Struct({
  customerId: Schema.String,
  name: PersonalData.field(Schema.String, subjectField),
  email: PersonalData.field(Schema.String, subjectField),
  birthDate: PersonalData.field(Schema.Date, { subject: "customerId", redacted: FORGOTTEN_DATE }),
  tier: Schema.String,
  emailChanges: Schema.Number
})
type CustomerState = typeof CustomerState.Type

type Command =
  | {
    readonly _tag: "Register"
    readonly customerId: string
    readonly name: string
    readonly email: string
    readonly birthDate: Date
  }
  | { readonly _tag: "ChangeEmail"; readonly email: string }
  | { readonly _tag: "Upgrade"; readonly tier: string }

const decider = Decider.make<CustomerState, Command, CustomerEvent>({
  initialState: { customerId: "", name: "", email: "", birthDate: new Date(0), tier: "none", emailChanges: 0 },
  evolve: (state, event) => {
    switch (event._tag) {
      case "CustomerRegistered":
        return {
          ...state,
          customerId: event.customerId,
          name: event.name,
          email: event.email,
          birthDate: event.birthDate,
          tier: event.tier
        }
      case "EmailChanged":
        return { ...state, email: event.email, emailChanges: state.emailChanges + 1 }
      case "Upgraded":
        return { ...state, tier: event.tier }
    }
  },
  decide: (command, state) =>
    Effect.succeed(
      command._tag === "Register"
        ? [new CustomerRegistered({ ...command, tier: "basic" })]
        : command._tag === "ChangeEmail"
        ? [new EmailChanged({ customerId: state.customerId, email: command.email })]
        : [new Upgraded({ customerId: state.customerId, tier: command.tier })]
    )
})

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID()}`

const BIRTH_DATE = new Date("1984-03-02T00:00:00.000Z")

/** A subject with personal values no other test uses, so a scan for them cannot meet anyone else's. */
const person = () => {
  const id = unique("customer")
  const tag = crypto.randomUUID().slice(0, 8)
  return {
    id,
    name: `Ada Lovelace ${tag}`,
    email: `ada.${tag}@example.com`,
    newEmail: `ada.${tag}@newmail.example`,
    register: {
      _tag: "Register",
      customerId: id,
      name: `Ada Lovelace ${tag}`,
      email: `ada.${tag}@example.com`,
      birthDate: BIRTH_DATE
    } as const
  }
}

type Services =
  | EventStore.EventStore
  | SnapshotStore.SnapshotStore
  | CheckpointStore.CheckpointStore
  | FeedNotifier.FeedNotifier
  | Outbox.Outbox
  | KeyStore.KeyStore

interface StreamOf {
  readonly streamId: string
  readonly tenantId?: string | undefined
}

/** The stack's services before decoration: what the stores really hold. */
class Raw extends Context.Tag("@eventfold/core/PersonalDataContract/Raw")<Raw, {
  readonly store: EventStore.EventStore["Type"]
  readonly snapshots: SnapshotStore.SnapshotStore["Type"]
  readonly outbox: Outbox.Outbox["Type"]
}>() {}

const fast = { pollInterval: "20 millis", lease: "2 seconds", batchSize: 100 } as const

/**
 * Registers the suite. `stack` provides the undecorated services with the outbox on, and a `KeyStore`; it is built
 * once for the suite. `rawText`, when given, returns every payload, state and outbox payload as the implementation
 * stores it (as text), for the plaintext scans.
 *
 * @since 0.4.0
 * @category suites
 */
export const suite = <E, R = never>(
  name: string,
  stack: Layer.Layer<Services | R, E>,
  options?: { readonly rawText?: Effect.Effect<string, unknown, R> | undefined }
): void => {
  // One pair of aggregates per suite: the same stream type with and without snapshots.
  const streamType = unique("Customer")
  const Customer = Aggregate.make({
    name: streamType,
    decider,
    events: CustomerEvent,
    state: CustomerState,
    snapshot: { every: 1, schemaVersion: 1 }
  })
  const CustomerNoSnapshots = Aggregate.make({ name: streamType, decider, events: CustomerEvent })
  const raw = Layer.effect(
    Raw,
    Effect.all({ store: EventStore.EventStore, snapshots: SnapshotStore.SnapshotStore, outbox: Outbox.Outbox })
  )
  const decorated = Layer.merge(PersonalData.layer({ aggregates: [Customer] }), raw).pipe(Layer.provideMerge(stack))

  /**
   * Everything the undecorated stores hold for these streams (their events, snapshots and outbox rows), as text, plus
   * the implementation's own raw view. Streams are read one by one: the feed may trail open transactions.
   */
  const storedText = (streams: ReadonlyArray<StreamOf>) =>
    Effect.gen(function*() {
      const { outbox, snapshots, store } = yield* Raw
      const parts: Array<string> = []
      for (const { streamId, tenantId = Tenant.defaultId } of streams) {
        const events = yield* store.readStream({ tenantId, streamType, streamId })
        for (const event of events) {
          parts.push(JSON.stringify(event.payload))
          const row = yield* Tenant.with(outbox.get(event.eventId), tenantId)
          assert.isTrue(Option.isSome(row), "every event has its outbox row")
          if (Option.isSome(row)) parts.push(JSON.stringify(row.value.payload))
        }
        const snapshot = yield* snapshots.load({ tenantId, streamType, streamId })
        if (Option.isSome(snapshot)) parts.push(JSON.stringify(snapshot.value.state))
      }
      const own = options?.rawText === undefined ? undefined : yield* options.rawText
      return { stores: parts.join("\n"), own }
    })

  /** Fails the test when any of `values` is stored in plaintext in these streams, or anywhere `rawText` sees. */
  const assertNoPlaintext = (
    subject: string,
    values: ReadonlyArray<string>,
    when: string,
    streams: ReadonlyArray<StreamOf> = [{ streamId: subject }]
  ) =>
    Effect.gen(function*() {
      const { own, stores } = yield* storedText(streams)
      for (const [where, text] of [["the stores", stores], ["the raw tables", own]] as const) {
        if (text === undefined) continue
        // A scan that cannot fail is no test: it must see the subject's envelopes.
        // (jsonb prints a space after the colon; JSON.stringify does not.)
        assert.isTrue(
          text.includes(`"subject":${JSON.stringify(subject)}`) ||
            text.includes(`"subject": ${JSON.stringify(subject)}`),
          `${where} hold the subject's envelopes`
        )
        for (const value of values) assert.notInclude(text, value, `${value} is in plaintext in ${where} (${when})`)
      }
    })

  /** The typed feed of this suite's aggregate until `count` events of one stream show (the feed trails commits). */
  const feedOf = (streamId: string, count: number) =>
    EventQuery.readAll({ aggregates: [Customer], limit: 10_000 }).pipe(
      Effect.map((page) => page.events.filter((d) => d.recorded.streamId === streamId)),
      Effect.filterOrFail((events) => events.length >= count, () => "not yet" as const),
      Effect.retry({ while: (e) => e === "not yet", schedule: Schedule.spaced("20 millis") }),
      Effect.timeout("30 seconds")
    )

  /** The raw (undecorated) events of one stream. */
  const rawStream = (streamId: string) => Effect.flatMap(Raw, ({ store }) => store.readStream({ streamType, streamId }))

  /** Publishes every pending outbox row through a fresh in-memory publisher; returns what it accepted. */
  const relayAll = Effect.gen(function*() {
    const memory = yield* OutboxPublisher.Memory
    while ((yield* OutboxRelay.processBatch({ batchSize: 100 })) > 0) {
      // Until the outbox is drained.
    }
    return yield* memory.published
  }).pipe(Effect.provide(OutboxPublisher.layerMemory))

  /** What a subscription replaying this suite's stream type from the beginning sees of one stream. */
  const replay = (streamId: string, until: Position.Position) =>
    Effect.gen(function*() {
      const seen = yield* Ref.make<ReadonlyArray<CustomerEvent>>([])
      const subscription = yield* Subscription.make({
        ...fast,
        id: unique("replay"),
        ...EventQuery.handler(
          { aggregates: [Customer] },
          ({ event, recorded }) =>
            recorded.streamId === streamId ? Ref.update(seen, (all) => [...all, event]) : Effect.void
        )
      })
      yield* Effect.forkScoped(subscription.run)
      yield* subscription.waitFor(until).pipe(Effect.timeout("30 seconds"))
      return yield* Ref.get(seen)
    }).pipe(Effect.scoped)

  const envelopesOf = (event: RecordedEvent.RecordedEvent) =>
    Object.entries(event.payload as Record<string, unknown>).filter(([, v]) =>
      typeof v === "object" && v !== null && (v as Record<string, unknown>)["$pii"] === 1
    )

  const lastPosition = (result: CommandHandler.HandleResult<unknown, unknown>) =>
    Option.getOrElse(result.position, () => Position.start)

  layer(decorated, { excludeTestServices: true, timeout: "180 seconds" })(
    `PersonalData contract: ${name}`,
    (it) => {
      it.effect("round trip: every read path sees the plaintext; the stores hold only envelopes", () =>
        Effect.gen(function*() {
          const ada = person()
          const handler = yield* CommandHandler.make(Customer)
          yield* handler.handle(ada.id, ada.register)
          const changed = yield* handler.handle(ada.id, { _tag: "ChangeEmail", email: ada.newEmail })
          const upgraded = yield* handler.handle(ada.id, { _tag: "Upgrade", tier: "gold" })
          const expected: CustomerState = {
            customerId: ada.id,
            name: ada.name,
            email: ada.newEmail,
            birthDate: BIRTH_DATE,
            tier: "gold",
            emailChanges: 1
          }
          // CommandHandler: through the snapshot, and by a full replay.
          assert.deepStrictEqual(yield* handler.load(ada.id), { state: expected, version: 3 })
          assert.deepStrictEqual(
            yield* Effect.flatMap(CommandHandler.make(CustomerNoSnapshots), (h) => h.load(ada.id)),
            {
              state: expected,
              version: 3
            }
          )
          assert.deepStrictEqual(
            Option.map(
              yield* Effect.flatMap(SnapshotStore.SnapshotStore, (s) => s.load({ streamType, streamId: ada.id })),
              (s) => s.state
            ),
            Option.some({ ...expected, birthDate: BIRTH_DATE.toISOString() })
          )
          // Typed reads of the stream and of the feed.
          const typed = yield* EventQuery.readStream(Customer, ada.id)
          assert.deepStrictEqual(typed.map((d) => d.event), [
            new CustomerRegistered({ ...ada.register, tier: "basic" }),
            new EmailChanged({ customerId: ada.id, email: ada.newEmail }),
            new Upgraded({ customerId: ada.id, tier: "gold" })
          ])
          const feed = yield* feedOf(ada.id, 3)
          assert.deepStrictEqual(
            feed.flatMap((d) => d.event._tag === "EmailChanged" ? [d.event.email] : []),
            [ada.newEmail]
          )
          // A subscription from the beginning.
          const replayed = yield* replay(ada.id, lastPosition(upgraded))
          assert.deepStrictEqual(replayed.map((e) => e._tag === "Upgraded" ? e.tier : e.email), [
            ada.email,
            ada.newEmail,
            "gold"
          ])
          // The outbox: its row, and what the relay publishes.
          const row = yield* Effect.flatMap(Outbox.Outbox, (o) => o.get(changed.eventIds[0]!))
          assert.deepStrictEqual(
            Option.map(row, (r) => r.payload),
            Option.some({ customerId: ada.id, email: ada.newEmail })
          )
          const published = (yield* relayAll).filter((m) => m.streamId === ada.id)
          assert.deepStrictEqual(published.map((m) => m.payload), [
            {
              customerId: ada.id,
              name: ada.name,
              email: ada.email,
              birthDate: BIRTH_DATE.toISOString(),
              tier: "basic"
            },
            { customerId: ada.id, email: ada.newEmail },
            { customerId: ada.id, tier: "gold" }
          ])
          // As stored: envelopes for the marked fields, with the subject; the rest (and unmarked events) as they were.
          const stored = yield* rawStream(ada.id)
          assert.deepStrictEqual(stored.map((e) => envelopesOf(e).map(([field]) => field)), [
            ["name", "email", "birthDate"],
            ["email"],
            []
          ])
          const registered = stored[0]!.payload as Record<string, Record<string, unknown>>
          assert.strictEqual(registered["customerId"] as unknown, ada.id)
          assert.strictEqual(registered["tier"] as unknown, "basic")
          assert.strictEqual(registered["email"]!["subject"], ada.id)
          assert.strictEqual(registered["email"]!["redacted"], FORGOTTEN)
          assert.strictEqual(registered["birthDate"]!["redacted"], FORGOTTEN_DATE)
          assert.deepStrictEqual(stored[2]!.payload, { customerId: ada.id, tier: "gold" })
          yield* assertNoPlaintext(ada.id, [ada.name, ada.email, ada.newEmail], "before any forget")
        }))

      it.effect("idempotent appends stay idempotent: the same event ids and content write the same envelope", () =>
        Effect.gen(function*() {
          const ada = person()
          const handler = yield* CommandHandler.make(Customer)
          const first = yield* handler.handle(ada.id, ada.register, { idempotencyKey: "register-1" })
          const again = yield* handler.handle(ada.id, ada.register, { idempotencyKey: "register-1" })
          assert.deepStrictEqual(again.eventIds, first.eventIds)
          assert.strictEqual(again.state.email, ada.email)
          const store = yield* EventStore.EventStore
          const eventId = crypto.randomUUID()
          const event = {
            eventId,
            type: "EmailChanged",
            payload: { customerId: ada.id, email: ada.newEmail }
          }
          const written = yield* store.append({ streamType, streamId: ada.id, events: [event] })
          const repeated = yield* store.append({ streamType, streamId: ada.id, events: [event] })
          assert.deepStrictEqual([written.idempotent, repeated.idempotent, repeated.version], [false, true, 2])
          const other = yield* Effect.flip(
            store.append({
              streamType,
              streamId: ada.id,
              events: [{ ...event, payload: { customerId: ada.id, email: "x@y" } }]
            })
          )
          assert.strictEqual(other._tag, "DuplicateEvent")
          assert.strictEqual((yield* handler.load(ada.id)).state.email, ada.newEmail)
        }))

      it.effect("forget: every read path yields the redacted value; an audit record says when and by whom", () =>
        Effect.gen(function*() {
          const ada = person()
          const bob = person()
          const handler = yield* CommandHandler.make(Customer)
          yield* handler.handle(ada.id, ada.register)
          yield* handler.handle(bob.id, bob.register)
          const before = (yield* relayAll).filter((m) => m.streamId === ada.id)
          assert.deepStrictEqual(before.map((m) => (m.payload as { email: string }).email), [ada.email])
          // Written but not yet relayed when the subject is forgotten.
          const pending = yield* handler.handle(ada.id, { _tag: "ChangeEmail", email: ada.newEmail })

          const forgetStart = Date.now()
          const record = yield* PersonalData.forget(ada.id, { by: "dpo@example.com", reason: "erasure request 42" })
          assert.deepStrictEqual(
            [record.tenantId, record.subjectId, record.forgottenBy, record.reason, record.keysDeleted],
            [Tenant.defaultId, ada.id, "dpo@example.com", "erasure request 42", 1]
          )
          assert.isTrue(
            record.forgottenAt.getTime() >= forgetStart - 5_000 && record.forgottenAt.getTime() <= Date.now() + 5_000
          )
          assert.deepStrictEqual(yield* PersonalData.forgotten(ada.id), Option.some(record))
          assert.isTrue(Option.isNone(yield* PersonalData.forgotten(bob.id)))

          const redactedState: CustomerState = {
            customerId: ada.id,
            name: FORGOTTEN,
            email: FORGOTTEN,
            birthDate: new Date(FORGOTTEN_DATE),
            tier: "basic",
            emailChanges: 1
          }
          // Loads, through the snapshot and by replay; the snapshot itself.
          assert.deepStrictEqual(yield* handler.load(ada.id), { state: redactedState, version: 2 })
          assert.deepStrictEqual(
            yield* Effect.flatMap(CommandHandler.make(CustomerNoSnapshots), (h) => h.load(ada.id)),
            { state: redactedState, version: 2 }
          )
          const snapshot = yield* Effect.flatMap(
            SnapshotStore.SnapshotStore,
            (s) => s.load({ streamType, streamId: ada.id })
          )
          assert.deepStrictEqual(
            Option.map(snapshot, (s) => s.state),
            Option.some({ ...redactedState, birthDate: FORGOTTEN_DATE })
          )
          // Typed reads.
          const typed = yield* EventQuery.readStream(Customer, ada.id)
          assert.deepStrictEqual(typed.map((d) => d.event), [
            new CustomerRegistered({
              customerId: ada.id,
              name: FORGOTTEN,
              email: FORGOTTEN,
              birthDate: new Date(FORGOTTEN_DATE),
              tier: "basic"
            }),
            new EmailChanged({ customerId: ada.id, email: FORGOTTEN })
          ])
          const feed = yield* feedOf(ada.id, 2)
          assert.deepStrictEqual(
            feed.map((d) => d.event._tag === "Upgraded" ? "" : d.event.email),
            [FORGOTTEN, FORGOTTEN]
          )
          // A projection replayed from the beginning.
          const replayed = yield* replay(ada.id, lastPosition(pending))
          assert.deepStrictEqual(replayed.map((e) => e._tag === "Upgraded" ? "" : e.email), [FORGOTTEN, FORGOTTEN])
          // The outbox: a row read back, and the row published after the forget.
          const row = yield* Effect.flatMap(Outbox.Outbox, (o) => o.get(pending.eventIds[0]!))
          assert.deepStrictEqual(
            Option.map(row, (r) => r.payload),
            Option.some({ customerId: ada.id, email: FORGOTTEN })
          )
          const after = (yield* relayAll).filter((m) => m.streamId === ada.id)
          assert.deepStrictEqual(after.map((m) => m.payload), [{ customerId: ada.id, email: FORGOTTEN }])

          // The other subject is untouched.
          assert.strictEqual((yield* handler.load(bob.id)).state.email, bob.email)
          assert.deepStrictEqual(
            (yield* EventQuery.readStream(Customer, bob.id)).map((d) =>
              d.event._tag === "CustomerRegistered" && d.event.name
            ),
            [bob.name]
          )

          // The forgotten subject can still be commanded; its new data is stored redacted, under no new key.
          const later = yield* handler.handle(ada.id, { _tag: "ChangeEmail", email: `${ada.newEmail}.later` })
          assert.strictEqual(later.version, 3)
          const stored = yield* rawStream(ada.id)
          assert.deepStrictEqual(stored[2]!.payload, {
            customerId: ada.id,
            email: { $pii: 1, subject: ada.id, redacted: FORGOTTEN }
          })
          assert.strictEqual((yield* handler.load(ada.id)).state.email, FORGOTTEN)
          const keys = yield* KeyStore.KeyStore
          const refused = yield* Effect.flip(keys.current(Tenant.defaultId, ada.id))
          assert.strictEqual(refused._tag, "SubjectForgotten")
          const keyIds = stored.flatMap((e) =>
            envelopesOf(e).flatMap(([, v]) => {
              const key = (v as { key?: string }).key
              return key === undefined ? [] : [key]
            })
          )
          assert.isAbove(keyIds.length, 0)
          assert.strictEqual((yield* keys.get(Tenant.defaultId, keyIds)).size, 0)

          yield* assertNoPlaintext(
            ada.id,
            [ada.name, ada.email, ada.newEmail, `${ada.newEmail}.later`],
            "after the forget"
          )
          yield* assertNoPlaintext(bob.id, [bob.name, bob.email], "the other subject")
        }))

      it.effect("rotation: data under the old key and the new one both decrypt; forget deletes both keys", () =>
        Effect.gen(function*() {
          const ada = person()
          const handler = yield* CommandHandler.make(Customer)
          yield* handler.handle(ada.id, ada.register)
          const keys = yield* KeyStore.KeyStore
          const first = yield* keys.current(Tenant.defaultId, ada.id)
          const rotated = yield* PersonalData.rotate(ada.id)
          assert.deepStrictEqual([first.generation, rotated.generation], [1, 2])
          assert.notStrictEqual(rotated.keyId, first.keyId)
          assert.strictEqual((yield* keys.current(Tenant.defaultId, ada.id)).keyId, rotated.keyId)
          yield* handler.handle(ada.id, { _tag: "ChangeEmail", email: ada.newEmail })
          const stored = yield* rawStream(ada.id)
          const keyOf = (e: RecordedEvent.RecordedEvent) =>
            ((e.payload as Record<string, { key: string }>)["email"])!.key
          assert.deepStrictEqual(stored.map(keyOf), [first.keyId, rotated.keyId])
          const typed = yield* EventQuery.readStream(Customer, ada.id)
          assert.deepStrictEqual(typed.map((d) => d.event._tag === "Upgraded" ? "" : d.event.email), [
            ada.email,
            ada.newEmail
          ])
          assert.strictEqual(
            (yield* Effect.flatMap(CommandHandler.make(CustomerNoSnapshots), (h) => h.load(ada.id))).state.email,
            ada.newEmail
          )
          const record = yield* PersonalData.forget(ada.id, { by: "ops" })
          assert.strictEqual(record.keysDeleted, 2)
          assert.strictEqual((yield* keys.get(Tenant.defaultId, [first.keyId, rotated.keyId])).size, 0)
          const redacted = yield* EventQuery.readStream(Customer, ada.id)
          assert.deepStrictEqual(redacted.map((d) => d.event._tag === "Upgraded" ? "" : d.event.email), [
            FORGOTTEN,
            FORGOTTEN
          ])
          const refused = yield* Effect.flip(PersonalData.rotate(ada.id))
          assert.strictEqual(refused._tag, "SubjectForgotten")
          yield* assertNoPlaintext(ada.id, [ada.name, ada.email, ada.newEmail], "after rotation and forget")
        }))

      it.effect("forgetting is idempotent: a repeat succeeds, is recorded, and the first record stays the answer", () =>
        Effect.gen(function*() {
          const ada = person()
          const handler = yield* CommandHandler.make(Customer)
          yield* handler.handle(ada.id, ada.register)
          const first = yield* PersonalData.forget(ada.id, { by: "alice" })
          const second = yield* PersonalData.forget(ada.id, { by: "bob", reason: "again" })
          assert.deepStrictEqual([first.keysDeleted, second.keysDeleted], [1, 0])
          assert.deepStrictEqual([second.forgottenBy, second.reason], ["bob", "again"])
          assert.deepStrictEqual(yield* PersonalData.forgotten(ada.id), Option.some(first))
          assert.strictEqual((yield* handler.load(ada.id)).state.name, FORGOTTEN)
          // A subject that never had data can be forgotten too: no key is created for it afterwards.
          const never = person()
          assert.strictEqual((yield* PersonalData.forget(never.id, { by: "alice" })).keysDeleted, 0)
          const created = yield* handler.handle(never.id, never.register)
          assert.strictEqual(created.state.name, never.name)
          assert.strictEqual((yield* handler.load(never.id)).state.name, FORGOTTEN)
          yield* assertNoPlaintext(never.id, [never.name, never.email], "data written after the forget")
          // Bad input is typed.
          const invalid = yield* Effect.flip(PersonalData.forget("", { by: "alice" }))
          assert.strictEqual(invalid._tag, "InvalidInput")
          const nobody = yield* Effect.flip(PersonalData.forget(ada.id, { by: "" }))
          assert.strictEqual(nobody._tag, "InvalidInput")
          const badKey = yield* Effect.flip(Effect.flatMap(KeyStore.KeyStore, (k) => k.get(Tenant.defaultId, ["nope"])))
          assert.strictEqual(badKey._tag, "InvalidInput")
        }))

      it.effect("tenants: the same subject id in two tenants has two keys; forgetting it in one leaves the other", () =>
        Effect.gen(function*() {
          const ada = person()
          const handler = yield* CommandHandler.make(Customer)
          yield* Tenant.with(handler.handle(ada.id, ada.register), "tenant-a")
          yield* Tenant.with(handler.handle(ada.id, ada.register), "tenant-b")
          const keys = yield* KeyStore.KeyStore
          const a = yield* keys.current("tenant-a", ada.id)
          const b = yield* keys.current("tenant-b", ada.id)
          assert.notStrictEqual(a.keyId, b.keyId)
          // A key id is found only in its own tenant.
          assert.strictEqual((yield* keys.get("tenant-b", [a.keyId])).size, 0)
          yield* Tenant.with(PersonalData.forget(ada.id, { by: "dpo" }), "tenant-a")
          assert.strictEqual((yield* Tenant.with(handler.load(ada.id), "tenant-a")).state.email, FORGOTTEN)
          assert.strictEqual((yield* Tenant.with(handler.load(ada.id), "tenant-b")).state.email, ada.email)
          assert.isTrue(Option.isNone(yield* PersonalData.forgotten(ada.id, { tenantId: "tenant-b" })))
          assert.isTrue(Option.isSome(yield* PersonalData.forgotten(ada.id, { tenantId: "tenant-a" })))
        }))

      it.effect("concurrent appends and a forget: every command succeeds, and afterwards nothing of the subject reads", () =>
        Effect.gen(function*() {
          const ada = person()
          const handler = yield* CommandHandler.make(Customer)
          const streams = Array.from({ length: 6 }, (_, i) => `${ada.id}-${i}`)
          const emails = (i: number, j: number) => `${i}.${j}.${ada.email}`
          const gate = yield* Deferred.make<void>()
          const fibers = yield* Effect.forEach(streams, (streamId, i) =>
            Effect.fork(Effect.gen(function*() {
              yield* handler.handle(streamId, ada.register)
              for (let j = 0; j < 5; j++) {
                if (i === 0 && j === 2) yield* Deferred.succeed(gate, undefined)
                yield* handler.handle(streamId, { _tag: "ChangeEmail", email: emails(i, j) })
              }
            })))
          yield* Deferred.await(gate)
          yield* PersonalData.forget(ada.id, { by: "dpo", reason: "while writing" })
          const results = yield* Effect.forEach(fibers, Fiber.join, { concurrency: "unbounded" }).pipe(Effect.either)
          assert.isTrue(Either.isRight(results), "every command succeeded")
          const keys = yield* KeyStore.KeyStore
          const keyIds: Array<string> = []
          for (const streamId of streams) {
            const loaded = yield* Effect.flatMap(CommandHandler.make(CustomerNoSnapshots), (h) => h.load(streamId))
            assert.deepStrictEqual([loaded.version, loaded.state.name, loaded.state.email], [6, FORGOTTEN, FORGOTTEN])
            assert.deepStrictEqual((yield* handler.load(streamId)).state.email, FORGOTTEN)
            for (const event of yield* rawStream(streamId)) {
              for (const [, v] of envelopesOf(event)) {
                const key = (v as { key?: string }).key
                if (key !== undefined) keyIds.push(key)
              }
            }
          }
          assert.strictEqual((yield* keys.get(Tenant.defaultId, keyIds)).size, 0, "no key of the subject survives")
          assert.strictEqual((yield* Effect.flip(keys.current(Tenant.defaultId, ada.id)))._tag, "SubjectForgotten")
          yield* assertNoPlaintext(
            ada.id,
            [ada.name, ...streams.flatMap((_, i) => Array.from({ length: 5 }, (_, j) => emails(i, j)))],
            "after concurrent appends and a forget",
            streams.map((streamId) => ({ streamId }))
          )
        }))
    }
  )
}
