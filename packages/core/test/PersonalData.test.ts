// PersonalData on the in-memory stack: what the marks may be, data written before a mark or in an older version,
// tampered envelopes (a typed failure; one dead-lettered outbox row), the metrics, and input refused before writing.
import { assert, describe, it } from "@effect/vitest"
import {
  Aggregate,
  CommandHandler,
  Decider,
  EventQuery,
  EventStore,
  KeyStore,
  MemoryEventfold,
  Outbox,
  OutboxPublisher,
  OutboxRelay,
  PersonalData,
  Tenant
} from "@eventfold/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

const field = { subject: "customerId", redacted: "[forgotten]" } as const

class Registered extends Schema.TaggedClass<Registered>()("Registered", {
  customerId: Schema.String,
  email: PersonalData.field(Schema.String, field),
  phone: Schema.optional(PersonalData.field(Schema.String, field))
}) {}
type Command = { readonly _tag: "Register"; readonly customerId: string; readonly email: string }
type State = { readonly email: string }

const decider = <E extends { readonly _tag: string; readonly email: string }>(make: (c: Command) => E) =>
  Decider.make<State, Command, E>({
    initialState: { email: "" },
    evolve: (_, event) => ({ email: event.email }),
    decide: (command) => Effect.succeed([make(command)])
  })

const Customer = Aggregate.make({
  name: "Customer",
  decider: decider((c) => new Registered({ customerId: c.customerId, email: c.email })),
  events: Registered
})

const stack = Layer.merge(MemoryEventfold.layer({ outbox: true }), KeyStore.layerMemory)

/** The undecorated services, next to the decorated ones: what the stores really hold. */
class Raw extends Context.Tag("test/Raw")<Raw, {
  readonly store: EventStore.EventStore["Type"]
  readonly outbox: Outbox.Outbox["Type"]
}>() {}

const protectedStack = (aggregates: ReadonlyArray<Aggregate.Aggregate.Any>) =>
  Layer.merge(
    PersonalData.layer({ aggregates }),
    Layer.effect(Raw, Effect.all({ store: EventStore.EventStore, outbox: Outbox.Outbox }))
  ).pipe(Layer.provideMerge(stack))

describe("PersonalData", () => {
  describe("marks", () => {
    const aggregate = <E extends { readonly _tag: string }, I extends { readonly _tag: string }, S = unknown, SI = S>(
      events: Schema.Schema<E, I>,
      state?: Schema.Schema<S, SI>
    ) =>
      Aggregate.make({
        name: "A",
        decider: Decider.make<S | undefined, unknown, E>({
          initialState: undefined,
          evolve: (s) => s,
          decide: () => Effect.succeed([])
        }),
        events,
        ...(state ? { state: Schema.UndefinedOr(state) } : {})
      })

    it("finds the marked top-level fields of classes, structs, optional fields, transformations and state unions", () => {
      const Moved = Schema.TaggedStruct("Moved", {
        customerId: Schema.String,
        address: PersonalData.field(Schema.Struct({ street: Schema.String }), {
          subject: "customerId",
          redacted: {
            street: ""
          }
        }),
        since: PersonalData.field(Schema.Date, { subject: "customerId", redacted: "1970-01-01T00:00:00.000Z" })
      })
      const Active = Schema.Struct({
        status: Schema.Literal("active"),
        customerId: Schema.String,
        email: PersonalData.field(Schema.String, field)
      })
      const Empty = Schema.Struct({ status: Schema.Literal("empty") })
      const fields = PersonalData.fieldsOf(aggregate(Schema.Union(Registered, Moved), Schema.Union(Empty, Active)))
      assert.deepStrictEqual(fields.events, {
        Registered: [{ name: "email", ...field }, { name: "phone", ...field }],
        Moved: [
          { name: "address", subject: "customerId", redacted: { street: "" } },
          { name: "since", subject: "customerId", redacted: "1970-01-01T00:00:00.000Z" }
        ]
      })
      assert.deepStrictEqual(fields.state, [{ name: "email", ...field }])
    })

    it("refuses marks that could not work, when the Layer is made", () => {
      const refused = <E extends { readonly _tag: string }, I extends { readonly _tag: string }>(
        events: Schema.Schema<E, I>,
        message: RegExp
      ) => assert.throws(() => PersonalData.layer({ aggregates: [aggregate(events)] }), message)
      refused(
        Schema.TaggedStruct("E", { email: PersonalData.field(Schema.String, field) }),
        /names subject property "customerId", which it does not have/
      )
      refused(
        Schema.TaggedStruct("E", {
          customerId: PersonalData.field(Schema.String, field),
          email: PersonalData.field(Schema.String, field)
        }),
        /cannot be personal/
      )
      refused(
        Schema.TaggedStruct("E", {
          customerId: Schema.String,
          email: PersonalData.field(Schema.String.pipe(Schema.pattern(/@/)), field)
        }),
        /does not decode with its Schema/
      )
      // Deeper than a top-level property it would be written in plaintext: refused.
      refused(
        Schema.TaggedStruct("E", {
          customerId: Schema.String,
          contact: Schema.Struct({ email: PersonalData.field(Schema.String, field) })
        }),
        /inside property contact is not supported/
      )
      refused(
        Schema.TaggedStruct("E", {
          customerId: Schema.String,
          emails: Schema.Array(PersonalData.field(Schema.String, field))
        }),
        /inside property emails is not supported/
      )
      assert.throws(() => PersonalData.layer({ aggregates: [Customer, Customer] }), /listed twice/)
    })
  })

  it.effect("data written before a field was marked passes untouched; a payload's other fields stay plaintext", () =>
    Effect.gen(function*() {
      const { store } = yield* Raw
      // Written by a release without the mark.
      yield* store.append({
        streamType: "Customer",
        streamId: "c-old",
        events: [{ type: "Registered", payload: { customerId: "c-old", email: "old@example.com" } }]
      })
      const handler = yield* CommandHandler.make(Customer)
      assert.deepStrictEqual(yield* handler.load("c-old"), { state: { email: "old@example.com" }, version: 1 })
      yield* handler.handle("c-new", { _tag: "Register", customerId: "c-new", email: "new@example.com" })
      const [stored] = yield* store.readStream({ streamType: "Customer", streamId: "c-new" })
      const payload = stored!.payload as { customerId: string; email: Record<string, unknown> }
      assert.strictEqual(payload.customerId, "c-new")
      assert.deepStrictEqual(Object.keys(payload.email).sort(), [
        "$pii",
        "data",
        "iv",
        "key",
        "redacted",
        "subject",
        "tag"
      ])
      // An optional field left out stays out.
      assert.deepStrictEqual(Object.keys(payload).sort(), ["customerId", "email"])
    }).pipe(Effect.provide(protectedStack([Customer]))))

  it.effect("values that only look like envelopes are data: they never make a stream unreadable", () =>
    Effect.gen(function*() {
      const { store } = yield* Raw
      const lookalike = { $pii: 1, subject: "c-x", key: "not-a-uuid", redacted: "?" }
      yield* store.append({
        streamType: "Notes",
        streamId: "n-1",
        events: [{ type: "Noted", payload: { note: lookalike, half: { $pii: 1 } } }]
      })
      const decorated = yield* EventStore.EventStore
      const [read] = yield* decorated.readStream({ streamType: "Notes", streamId: "n-1" })
      assert.deepStrictEqual(read!.payload, { note: lookalike, half: { $pii: 1 } })
    }).pipe(Effect.provide(protectedStack([Customer]))))

  it.effect("upcasters run on the decrypted payload: an encrypted field of an older version reads as the current one", () =>
    Effect.gen(function*() {
      // Release 1 called the field `mail`; release 2 renamed it to `email`, with an upcaster.
      class RegisteredV1 extends Schema.TaggedClass<RegisteredV1>()("Registered", {
        customerId: Schema.String,
        mail: PersonalData.field(Schema.String, field)
      }) {}
      const V2 = Aggregate.make({
        name: "Customer",
        decider: decider((c) => new Registered({ customerId: c.customerId, email: c.email })),
        events: Registered,
        evolution: { Registered: { upcasters: [(v1) => ({ customerId: v1["customerId"], email: v1["mail"] })] } }
      })
      // Written (and encrypted) by release 1.
      yield* Effect.flatMap(EventStore.EventStore, (store) =>
        store.append({
          streamType: "Customer",
          streamId: "c-1",
          events: [{
            type: "Registered",
            payload: Schema.encodeSync(RegisteredV1)(new RegisteredV1({ customerId: "c-1", mail: "v1@example.com" }))
          }]
        }))
      const { store } = yield* Raw
      const [stored] = yield* store.readStream({ streamType: "Customer", streamId: "c-1" })
      assert.strictEqual((stored!.payload as { mail: { $pii: number } }).mail.$pii, 1)
      // Read by release 2, whose decorator knows only the new Schema: decryption needs none.
      const typed = yield* EventQuery.readStream(V2, "c-1")
      assert.deepStrictEqual(typed.map((d) => d.event), [
        new Registered({ customerId: "c-1", email: "v1@example.com" })
      ])
    }).pipe(Effect.provide(protectedStack([
      Aggregate.make({
        name: "Customer",
        decider: Decider.make<
          State,
          Command,
          { readonly _tag: "Registered"; readonly customerId: string; readonly mail: string }
        >({
          initialState: { email: "" },
          evolve: (_, e) => ({ email: e.mail }),
          decide: () => Effect.succeed([])
        }),
        events: Schema.TaggedStruct("Registered", {
          customerId: Schema.String,
          mail: PersonalData.field(Schema.String, field)
        })
      })
    ]))))

  it.effect("refused before anything is written: a marked field without its subject, an append without a tenant", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const missing = yield* Effect.flip(
        store.append({
          streamType: "Customer",
          streamId: "c-1",
          events: [{ type: "Registered", payload: { email: "a@b" } }]
        })
      )
      assert.strictEqual(missing._tag, "InvalidInput")
      assert.match(missing.message, /personal field email needs its subject in customerId/)
      assert.strictEqual(yield* store.streamVersion({ streamType: "Customer", streamId: "c-1" }), 0)
    }).pipe(Effect.provide(protectedStack([Customer]))))

  it.effect("multi-tenant stores: no tenant is TenantRequired, before any key is made", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const event = { type: "Registered", payload: { customerId: "c-1", email: "a@b" } }
      const required = yield* Effect.flip(store.append({ streamType: "Customer", streamId: "c-1", events: [event] }))
      assert.strictEqual(required._tag, "TenantRequired")
      const forget = yield* Effect.flip(PersonalData.forget("c-1", { by: "x" }))
      assert.strictEqual(forget._tag, "TenantRequired")
      yield* Tenant.with(store.append({ streamType: "Customer", streamId: "c-1", events: [event] }), "acme")
      const keys = yield* KeyStore.KeyStore
      assert.strictEqual((yield* keys.current("acme", "c-1")).generation, 1)
    }).pipe(
      Effect.provide(
        PersonalData.layer({ aggregates: [Customer] }).pipe(
          Layer.provideMerge(
            Layer.merge(MemoryEventfold.layer({ outbox: true, tenancy: "multi" }), KeyStore.layerMemory)
          )
        )
      )
    ))

  it.effect("counts encrypted, decrypted and redacted fields", () =>
    Effect.gen(function*() {
      const value = (metric: Metric.Metric.Counter<number>, source: string) =>
        Effect.map(Metric.value(Metric.tagged(metric, "source", source)), (state) => state.count)
      const before = yield* Effect.all([
        value(PersonalData.encryptedFields, "events"),
        value(PersonalData.decryptedFields, "events"),
        value(PersonalData.redactedFields, "events")
      ])
      const handler = yield* CommandHandler.make(Customer)
      const id = `c-${crypto.randomUUID()}`
      yield* handler.handle(id, { _tag: "Register", customerId: id, email: "m@example.com" })
      yield* handler.load(id)
      yield* PersonalData.forget(id, { by: "test" })
      yield* handler.load(id)
      const after = yield* Effect.all([
        value(PersonalData.encryptedFields, "events"),
        value(PersonalData.decryptedFields, "events"),
        value(PersonalData.redactedFields, "events")
      ])
      assert.deepStrictEqual(after.map((n, i) => n - before[i]!), [1, 1, 1])
    }).pipe(Effect.provide(protectedStack([Customer]))))

  describe("tampered envelopes", () => {
    /** An event of `streamId` whose envelope was changed after it was written. */
    const tampered = (streamId: string) =>
      Effect.gen(function*() {
        const handler = yield* CommandHandler.make(Customer)
        yield* handler.handle(streamId, { _tag: "Register", customerId: streamId, email: "t@example.com" })
        const { store } = yield* Raw
        const [stored] = yield* store.readStream({ streamType: "Customer", streamId })
        const payload = stored!.payload as { customerId: string; email: Record<string, unknown> }
        const data = Buffer.from(payload.email["data"] as string, "base64")
        data[0] = data[0]! ^ 1
        // Appended again as a later event of the stream, with one bit of the ciphertext flipped.
        return yield* store.append({
          streamType: "Customer",
          streamId,
          events: [{
            type: "Registered",
            payload: { ...payload, email: { ...payload.email, data: data.toString("base64") } }
          }]
        })
      })

    it.effect("a read fails with a StoreError of kind data, naming the field", () =>
      Effect.gen(function*() {
        yield* tampered("c-bad")
        const error = yield* Effect.flip(EventQuery.readStream(Customer, "c-bad"))
        assert.strictEqual(error._tag, "StoreError")
        if (error._tag === "StoreError") {
          assert.deepStrictEqual([error.kind, error.retryable], ["data", false])
          assert.match(error.reason, /the envelope of email does not decrypt/)
        }
      }).pipe(Effect.provide(protectedStack([Customer]))))

    it.effect("the relay dead-letters that outbox row, holds its stream's later rows and publishes the others", () =>
      Effect.gen(function*() {
        const bad = yield* tampered("c-bad")
        const handler = yield* CommandHandler.make(Customer)
        // A later event of the same stream (a command would fail: its load reads the tampered event).
        const { store } = yield* Raw
        const behind = yield* store.append({
          streamType: "Customer",
          streamId: "c-bad",
          events: [{ type: "Registered", payload: { customerId: "c-bad", email: "later@example.com" } }]
        })
        yield* handler.handle("c-good", { _tag: "Register", customerId: "c-good", email: "good@example.com" })
        const memory = yield* OutboxPublisher.Memory
        yield* OutboxRelay.processBatch()
        yield* OutboxRelay.processBatch()
        const published = yield* memory.published
        assert.deepStrictEqual(published.map((m) => [m.streamId, m.version, (m.payload as { email: string }).email]), [
          ["c-bad", 1, "t@example.com"],
          ["c-good", 1, "good@example.com"]
        ])
        // Inspected where it is stored (the decorated `get` would fail on it as a read does).
        const { outbox } = yield* Raw
        const row = yield* Effect.flatten(outbox.get(bad.eventIds[0]!))
        assert.strictEqual(row.status, "failed")
        assert.match(row.lastError ?? "", /does not decrypt/)
        const held = yield* outbox.get(behind.eventIds[0]!)
        assert.deepStrictEqual(Option.map(held, (r) => r.status), Option.some("pending"))
      }).pipe(Effect.provide(OutboxPublisher.layerMemory), Effect.provide(protectedStack([Customer]))))
  })
})
