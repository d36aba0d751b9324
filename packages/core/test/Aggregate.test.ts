import { assert, describe, it } from "@effect/vitest"
import { Aggregate, Decider, type RecordedEvent } from "@eventfold/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", {
  amount: Schema.BigInt,
  at: Schema.Date
}) {}
class Closed extends Schema.TaggedClass<Closed>()("Closed", {}) {}
const AccountEvent = Schema.Union(Deposited, Closed)
type AccountEvent = typeof AccountEvent.Type

const AccountState = Schema.Struct({ balance: Schema.BigInt, open: Schema.Boolean })
type AccountState = typeof AccountState.Type

const decider = Decider.make<AccountState, AccountEvent, AccountEvent>({
  initialState: { balance: 0n, open: true },
  evolve: (state, event) =>
    event._tag === "Deposited" ? { ...state, balance: state.balance + event.amount } : { ...state, open: false },
  decide: (command) => Effect.succeed([command])
})

const Account = Aggregate.make({ name: "Account", decider, events: AccountEvent, state: AccountState })

/** A stored event, as a store hands it back after a JSON round trip. */
const recorded = (type: string, payload: unknown, version = 1): RecordedEvent.RecordedEvent => ({
  eventId: crypto.randomUUID(),
  tenantId: "default",
  streamType: "Account",
  streamId: "a-1",
  version,
  globalPosition: BigInt(version),
  transactionId: BigInt(version),
  type,
  schemaVersion: 1,
  payload: JSON.parse(JSON.stringify(payload)),
  metadata: {},
  recordedAt: new Date()
})

const deposited = new Deposited({ amount: 12_345_678_901_234_567_890n, at: new Date("2024-02-29T23:59:59.123Z") })

describe("Aggregate", () => {
  describe("make", () => {
    it("binds the name, decider and Schemas", () => {
      assert.strictEqual(Account.name, "Account")
      assert.strictEqual(Account.decider, decider)
      assert.strictEqual(Account.events, AccountEvent)
      assert.strictEqual(Account.state, AccountState)
      assert.isUndefined(Account.snapshot)
    })

    it("refuses an empty name and a snapshot policy without a state Schema", () => {
      assert.throws(() => Aggregate.make({ name: "", decider, events: AccountEvent }), /name must not be empty/)
      assert.throws(
        () =>
          Aggregate.make({ name: "Account", decider, events: AccountEvent, snapshot: { every: 10, schemaVersion: 1 } }),
        /needs a state Schema/
      )
      assert.throws(
        () =>
          Aggregate.make({
            name: "Account",
            decider,
            events: AccountEvent,
            state: AccountState,
            snapshot: { every: 0, schemaVersion: 1 }
          }),
        /positive integer/
      )
    })
  })

  describe("encodeEvent / decodeEvent", () => {
    it.effect("encodes a bigint as a string and a Date as an ISO string, without the tag in the payload", () =>
      Effect.gen(function*() {
        const encoded = yield* Account.encodeEvent(deposited)
        assert.deepStrictEqual(encoded, {
          type: "Deposited",
          payload: { amount: "12345678901234567890", at: "2024-02-29T23:59:59.123Z" },
          schemaVersion: 1
        })
      }))

    it.effect("round-trips a bigint and a Date through JSON", () =>
      Effect.gen(function*() {
        const encoded = yield* Account.encodeEvent(deposited)
        const decoded = yield* Account.decodeEvent(recorded(encoded.type, encoded.payload))
        assert.instanceOf(decoded, Deposited)
        assert.deepStrictEqual(decoded, deposited)
        if (decoded._tag === "Deposited") {
          assert.strictEqual(decoded.amount, 12_345_678_901_234_567_890n)
          assert.instanceOf(decoded.at, Date)
          assert.strictEqual(decoded.at.toISOString(), "2024-02-29T23:59:59.123Z")
        }
      }))

    it.effect("round-trips an event with no fields", () =>
      Effect.gen(function*() {
        const encoded = yield* Account.encodeEvent(new Closed())
        assert.deepStrictEqual(encoded, { type: "Closed", payload: {}, schemaVersion: 1 })
        assert.deepStrictEqual(yield* Account.decodeEvent(recorded("Closed", {})), new Closed())
      }))

    it.effect("takes the type from the envelope, not from a _tag in the payload", () =>
      Effect.gen(function*() {
        const decoded = yield* Account.decodeEvent(recorded("Closed", { _tag: "Deposited" }))
        assert.deepStrictEqual(decoded, new Closed())
      }))

    it.effect("fails with EventEncodeError on an event its Schema refuses", () =>
      Effect.gen(function*() {
        const invalid = new Deposited({ amount: 1n, at: new Date(Number.NaN) }, { disableValidation: true })
        const error = yield* Effect.flip(Account.encodeEvent(invalid))
        assert.strictEqual(error._tag, "EventEncodeError")
        assert.strictEqual(error.streamType, "Account")
        assert.strictEqual(error.type, "Deposited")
      }))

    it.effect("fails with EventDecodeError on an unknown type", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Account.decodeEvent(recorded("Withdrawn", { amount: "1" }, 7)))
        assert.strictEqual(error._tag, "EventDecodeError")
        assert.strictEqual(error.type, "Withdrawn")
        assert.strictEqual(error.version, 7)
        assert.strictEqual(error.streamType, "Account")
        assert.strictEqual(error.streamId, "a-1")
      }))

    it.effect("fails with EventDecodeError on a malformed field", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          Account.decodeEvent(recorded("Deposited", { amount: "12.5", at: "2024-02-29T23:59:59.123Z" }))
        )
        assert.strictEqual(error._tag, "EventDecodeError")
        assert.include(error.issue, "amount")
        const badDate = yield* Effect.flip(Account.decodeEvent(recorded("Deposited", { amount: "1", at: "yesterday" })))
        assert.include(badDate.issue, "at")
      }))

    it.effect("fails with EventDecodeError when the payload is not an object", () =>
      Effect.gen(function*() {
        for (const payload of [42, "text", null, [1, 2]]) {
          const error = yield* Effect.flip(Account.decodeEvent(recorded("Closed", payload)))
          assert.strictEqual(error._tag, "EventDecodeError")
          assert.strictEqual(error.type, "Closed")
          assert.include(error.issue, "payload must be a JSON object")
        }
      }))

    it("decodes synchronously with decodeEventEither", () => {
      const ok = Account.decodeEventEither(recorded("Closed", {}))
      assert.isTrue(Either.isRight(ok) && ok.right instanceof Closed)
      const bad = Account.decodeEventEither(recorded("Nope", {}))
      assert.isTrue(Either.isLeft(bad) && bad.left._tag === "EventDecodeError")
    })
  })

  it.effect("has a state Schema that round-trips a bigint balance, ready for snapshots", () =>
    Effect.gen(function*() {
      const state = Decider.fold(decider, [deposited, deposited])
      const json = JSON.parse(JSON.stringify(yield* Schema.encode(AccountState)(state)))
      assert.deepStrictEqual(json, { balance: "24691357802469135780", open: true })
      assert.deepStrictEqual(yield* Schema.decodeUnknown(AccountState)(json), state)
    }))
})
