// The input rules every store shares: names and JSON must reach PostgreSQL unchanged, and limits count UTF-8 bytes.
import { assert, describe, it } from "@effect/vitest"
import { EventValidation, Tenant } from "@eventfold/core"
import type { EventStore } from "@eventfold/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"

const { MAX_JSON_DEPTH, MAX_NAME_BYTES, MAX_PAYLOAD_BYTES } = EventValidation

// An unexpected success is reported without its value, which may be megabytes of JSON.
const reason = <A>(effect: Effect.Effect<A, { readonly _tag: string }>) =>
  Effect.map(
    Effect.either(effect),
    Either.match({
      onLeft: (
        error
      ) => (error._tag === "InvalidInput" ? (error as unknown as { readonly reason: string }).reason : error._tag),
      onRight: () => assert.fail("accepted")
    })
  )

const encoded = (value: unknown) => EventValidation.encodeJson("payload", value)

const refusedJson = (value: unknown): string =>
  Either.match(encoded(value), {
    onLeft: (error) => error.reason,
    onRight: (json) => assert.fail(`accepted ${json.slice(0, 80)}`)
  })

const nested = (depth: number, leaf: unknown = 1): unknown => {
  let value = leaf
  for (let i = 0; i < depth; i++) value = [value]
  return value
}

const append = (overrides: Partial<EventStore.AppendOptions> = {}): EventStore.AppendOptions => ({
  streamType: "Order",
  streamId: "o-1",
  events: [{ type: "Placed", payload: { n: 1 } }],
  ...overrides
})

describe("EventValidation.validateName", () => {
  it.effect("accepts ordinary, multi-byte and emoji names, and U+FFFD itself", () =>
    Effect.gen(function*() {
      for (const name of ["acct-1", "Zoë", "注文", "😀", "acct-\ufffd", "\\u0000", "a'b\"c%_"]) {
        yield* EventValidation.validateName("name", name)
      }
    }))

  it.effect("refuses empty names, NUL characters and lone surrogates of either kind", () =>
    Effect.gen(function*() {
      assert.include(yield* reason(EventValidation.validateName("subscription id", "")), "subscription id")
      assert.include(yield* reason(EventValidation.validateName("name", "a\u0000b")), "NUL")
      for (const lone of ["acct-\ud800", "acct-\udbff", "\udc00", "x\udfffy", "\ude00\ud83d"]) {
        assert.include(yield* reason(EventValidation.validateName("name", lone)), "lone UTF-16 surrogate")
      }
    }))

  it.effect("counts UTF-8 bytes, not characters: 1000 CJK characters are 3000 bytes", () =>
    Effect.gen(function*() {
      assert.strictEqual(EventValidation.MAX_NAME_LENGTH, MAX_NAME_BYTES)
      yield* EventValidation.validateName("name", "a".repeat(MAX_NAME_BYTES))
      yield* EventValidation.validateName("name", `${"中".repeat(333)}a`)
      yield* EventValidation.validateName("name", "😀".repeat(250))
      assert.include(yield* reason(EventValidation.validateName("name", "中".repeat(1000))), "1000 UTF-8 bytes")
      assert.include(yield* reason(EventValidation.validateName("name", `${"中".repeat(333)}ab`)), "UTF-8 bytes")
      assert.include(yield* reason(EventValidation.validateName("name", `${"😀".repeat(250)}a`)), "UTF-8 bytes")
      assert.include(yield* reason(EventValidation.validateName("name", "a".repeat(MAX_NAME_BYTES + 1))), "bytes")
    }))

  it.effect("validateStream names the field: acct-\\ud800 and acct-\\udbff are both refused", () =>
    Effect.gen(function*() {
      const streamIdReason = yield* reason(
        EventValidation.validateStream({ streamType: "Account", streamId: "acct-\ud800" })
      )
      assert.include(streamIdReason, "streamId")
      yield* reason(EventValidation.validateStream({ streamType: "Account", streamId: "acct-\udbff" }))
      assert.include(
        yield* reason(EventValidation.validateStream({ streamType: "A\u0000", streamId: "a" })),
        "streamType"
      )
    }))
})

describe("EventValidation.encodeJson", () => {
  it("refuses NaN and ±Infinity anywhere, naming where", () => {
    assert.include(refusedJson(Number.NaN), "NaN")
    assert.include(refusedJson({ a: [1, Number.POSITIVE_INFINITY] }), "$.a[1]")
    assert.include(refusedJson({ "odd key": { x: Number.NEGATIVE_INFINITY } }), `$["odd key"].x`)
    // What JSON.stringify would write is checked: a boxed number and a toJSON result too.
    assert.include(refusedJson([Object(Number.NaN)]), "NaN")
    assert.include(refusedJson({ toJSON: () => Number.NaN }), "NaN")
  })

  it("the six characters \\u0000 are text like any other and round-trip exactly", () => {
    const value = { "\\u0000": "\\u0000", list: ["a\\u0000b", "\\\\u0000", "\\\u00e9"] }
    const json = Either.getOrThrow(encoded(value))
    assert.deepStrictEqual(JSON.parse(json), value)
  })

  it("refuses a real NUL character or a lone surrogate in a string or a key", () => {
    assert.include(refusedJson({ s: "a\u0000b" }), "NUL")
    assert.include(refusedJson({ "k\u0000": 1 }), "key")
    assert.include(refusedJson(["\ud800"]), "lone UTF-16 surrogate")
    assert.include(refusedJson({ "\udfff": true }), "key")
    assert.deepStrictEqual(JSON.parse(Either.getOrThrow(encoded({ emoji: "😀\ud83d\ude00" }))), { emoji: "😀😀" })
  })

  it(`bounds nesting at ${MAX_JSON_DEPTH} arrays or objects, without overflowing the stack far beyond`, () => {
    assert.isTrue(Either.isRight(encoded(nested(MAX_JSON_DEPTH))))
    assert.include(refusedJson(nested(MAX_JSON_DEPTH + 1)), `deeper than ${MAX_JSON_DEPTH}`)
    assert.include(refusedJson(nested(1_000_000)), `deeper than ${MAX_JSON_DEPTH}`)
    const circular: { self?: unknown } = {}
    circular.self = circular
    assert.include(refusedJson(circular), "circular")
  })

  it("follows JSON.stringify: properties it leaves out are not checked, values it cannot write are refused", () => {
    assert.strictEqual(Either.getOrThrow(encoded({ "\u0000": undefined, f: () => 1 })), "{}")
    assert.strictEqual(Either.getOrThrow(encoded({ at: new Date(0) })), `{"at":"1970-01-01T00:00:00.000Z"}`)
    assert.include(refusedJson(undefined), "not JSON-serializable")
    assert.include(refusedJson({ n: 1n }), "not JSON-serializable")
  })
})

describe("EventValidation.prepareAppend", () => {
  it.effect("refuses a NUL or a lone surrogate in an event type", () =>
    Effect.gen(function*() {
      assert.include(
        yield* reason(EventValidation.prepareAppend(append({ events: [{ type: "Paid\u0000", payload: {} }] }))),
        "event 0: type"
      )
      yield* reason(EventValidation.prepareAppend(append({ events: [{ type: "Paid\ud800", payload: {} }] })))
      yield* reason(EventValidation.prepareAppend(append({ events: [{ type: "中".repeat(334), payload: {} }] })))
    }))

  it.effect("limits payload and metadata in UTF-8 bytes of JSON: 9 MB of metadata is refused", () =>
    Effect.gen(function*() {
      const nineMegabytes = "é".repeat(4_500_000)
      assert.include(
        yield* reason(EventValidation.prepareAppend(append({
          events: [{ type: "Big", payload: {}, metadata: { headers: { nineMegabytes } } }]
        }))),
        "metadata exceeds"
      )
      // A JSON string is its text and two quotes: exactly at the limit, then one byte over.
      const atLimit = "中".repeat((MAX_PAYLOAD_BYTES - 2) / 3)
      const prepared = yield* EventValidation.prepareAppend(append({ events: [{ type: "Big", payload: atLimit }] }))
      assert.strictEqual(Buffer.byteLength(prepared.events[0]!.payloadJson), MAX_PAYLOAD_BYTES)
      assert.include(
        yield* reason(EventValidation.prepareAppend(append({ events: [{ type: "Big", payload: `${atLimit}a` }] }))),
        "payload exceeds"
      )
    }))

  it.effect("metadata must be a JSON object", () =>
    Effect.gen(function*() {
      // JSON.parse stands for an untyped caller.
      for (const metadata of [JSON.parse("[]"), JSON.parse(`"x"`), JSON.parse("1"), new Date(0)]) {
        assert.include(
          yield* reason(EventValidation.prepareAppend(append({ events: [{ type: "T", payload: {}, metadata }] }))),
          "metadata must be a JSON object"
        )
      }
      yield* EventValidation.prepareAppend(
        append({ events: [{ type: "T", payload: {}, metadata: JSON.parse("null") }] })
      )
    }))

  it.effect("refuses NaN in metadata and a tenant id too long for its index", () =>
    Effect.gen(function*() {
      const metadata = { correlationId: "c", extra: Number.NaN }
      assert.include(
        yield* reason(EventValidation.prepareAppend(append({ events: [{ type: "T", payload: {}, metadata }] }))),
        "event 0: metadata at $.extra"
      )
      const tenantId = "中".repeat(334)
      assert.include(
        yield* reason(
          EventValidation.prepareAppend(append({ events: [{ type: "T", payload: {}, metadata: { tenantId } }] }))
        ),
        "tenantId"
      )
    }))
})

describe("EventValidation.validateFilter and sanitizeText", () => {
  it.effect("feed filters may not hold NUL characters or lone surrogates", () =>
    Effect.gen(function*() {
      yield* EventValidation.validateFilter({ eventTypes: ["Paid", "注文"], streamTypes: [] })
      assert.include(yield* reason(EventValidation.validateFilter({ eventTypes: ["Paid\u0000"] })), "eventTypes")
      assert.include(yield* reason(EventValidation.validateFilter({ streamTypes: ["\ud800"] })), "streamTypes")
      assert.strictEqual(yield* EventValidation.validateReadAll({}, 1000), 1000)
      assert.include(yield* reason(Tenant.resolveScope("single", "readAll", { tenantId: "\udfff" })), "tenant id")
      assert.include(yield* reason(Tenant.resolveScope("multi", "readAll", { tenantId: "\u0000" })), "tenant id")
    }))

  it("sanitizeText keeps diagnostics storable: NUL and lone surrogates become U+FFFD, pairs stay", () => {
    assert.strictEqual(EventValidation.sanitizeText("ok 😀"), "ok 😀")
    assert.strictEqual(EventValidation.sanitizeText("a\u0000b\ud800c\udc00"), "a\ufffdb\ufffdc\ufffd")
    assert.strictEqual(EventValidation.sanitizeText("\ud83d\ude00\ud83d"), "😀\ufffd")
  })
})
