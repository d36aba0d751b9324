/**
 * Hostile input against every `EventStore`, as one exported test suite: names, payloads and metadata holding lone
 * UTF-16 surrogates, NUL characters, the six characters `\u0000`, multi-byte text at the byte limits, non-finite
 * numbers and deep nesting. Every append either reads back exactly as given or fails with `InvalidInput` and writes
 * nothing: never a `StoreError`, never a defect. Run it against a Layer:
 * `EventStoreInputContract.suite("memory", EventStore.layerMemory)`.
 *
 * @since 0.2.0
 */
import { assert, layer } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as EventMetadata from "./EventMetadata.js"
import * as EventStore from "./EventStore.js"
import { MAX_JSON_DEPTH, MAX_NAME_BYTES, MAX_PAYLOAD_BYTES } from "./EventValidation.js"
import * as ExpectedVersion from "./ExpectedVersion.js"
import type * as NewEvent from "./NewEvent.js"

// The rules, restated apart from EventValidation's code: this is the oracle the stores are held to.

const encoder = new TextEncoder()
const byteLength = (text: string) => encoder.encode(text).length
// In a /u regular expression a surrogate pair is one code point above U+FFFF, so this matches lone surrogates only.
const LONE_SURROGATE = /[\ud800-\udfff]/u
const storable = (text: string) => !LONE_SURROGATE.test(text) && !text.includes("\u0000")
const validName = (name: string) => name.length > 0 && storable(name) && byteLength(name) <= MAX_NAME_BYTES

/** Finite numbers, storable strings and keys, at most MAX_JSON_DEPTH containers deep; iterative, for any depth. */
const validJson = (root: unknown): boolean => {
  const stack: Array<readonly [value: unknown, enclosing: number]> = [[root, 0]]
  while (stack.length > 0) {
    const [value, enclosing] = stack.pop()!
    if (typeof value === "number" && !Number.isFinite(value)) return false
    if (typeof value === "string" && !storable(value)) return false
    if (typeof value !== "object" || value === null) continue
    if (enclosing + 1 > MAX_JSON_DEPTH) return false
    for (const [key, child] of Object.entries(value)) {
      if (!storable(key)) return false
      stack.push([child, enclosing + 1])
    }
  }
  return true
}

const validDocument = (value: unknown) => validJson(value) && byteLength(JSON.stringify(value)) <= MAX_PAYLOAD_BYTES

/**
 * What the rules say an append of `options` must do: `Appended` (and read back exactly) or `InvalidInput`.
 *
 * @since 0.2.0
 * @category oracle
 */
export const expectedOutcome = (options: EventStore.AppendOptions): Outcome["_tag"] => {
  const valid = validName(options.streamType) && validName(options.streamId) && options.events.length > 0 &&
    options.events.every((event) => {
      const metadata = event.metadata ?? {}
      const tenantId: unknown = metadata.tenantId
      return validName(event.type) && validDocument(event.payload) && validDocument(metadata) &&
        !Array.isArray(metadata) &&
        (tenantId === undefined || (typeof tenantId === "string" && byteLength(tenantId) <= MAX_NAME_BYTES))
    })
  return valid ? "Appended" : "InvalidInput"
}

// Generators.

// NUL and other controls, lone surrogates, the six characters \u0000, quotes and SQL LIKE metacharacters.
const hostileUnits = ["\u0000", "\u0001", "\u007f", "\ud800", "\udbff", "\udc00", "\udfff"]
const escapeUnits = ["\\u0000", "\\", "\"", "'", "%", "_"]
// 2, 3 and 4 byte characters, a combining mark, an emoji sequence, U+FFFD, a BOM and the line separator.
const wideUnits = ["é", "e\u0301", "中", "😀", "👍🏽", "\ufffd", "\ufeff", "\u2028"]

const hostileUnit: FastCheck.Arbitrary<string> = FastCheck.oneof(
  FastCheck.constantFrom(...hostileUnits),
  FastCheck.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code))
)

const cleanUnit: FastCheck.Arbitrary<string> = FastCheck.oneof(
  { arbitrary: FastCheck.constantFrom(...escapeUnits, ...wideUnits), weight: 2 },
  { arbitrary: FastCheck.string({ unit: "binary", minLength: 1, maxLength: 1 }), weight: 1 },
  { arbitrary: FastCheck.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 1 }), weight: 3 }
)

const cleanText = (minLength = 0) => FastCheck.string({ unit: cleanUnit, minLength, maxLength: 10 })

/** Text with a NUL, another control character or a lone surrogate somewhere in it. */
const hostileText: FastCheck.Arbitrary<string> = FastCheck.tuple(cleanText(), hostileUnit, cleanText()).map(
  ([before, unit, after]) => before + unit + after
)

/**
 * Short text (possibly empty): the six characters `\u0000`, quotes, emoji, combining marks and other multi-byte
 * characters, and in one string out of ten a NUL character or a lone surrogate.
 *
 * @since 0.2.0
 * @category generators
 */
export const arbitraryText: FastCheck.Arbitrary<string> = FastCheck.oneof(
  { arbitrary: cleanText(), weight: 9 },
  { arbitrary: hostileText, weight: 1 }
)

/** Code point ranges whose characters take 1, 2, 3 and 4 UTF-8 bytes. */
const planes = [
  { bytes: 1, min: 0x21, max: 0x7e },
  { bytes: 2, min: 0x100, max: 0x7ff },
  { bytes: 3, min: 0x4e00, max: 0x9fff },
  { bytes: 4, min: 0x1f300, max: 0x1faff }
] as const

/** Random (so incompressible) text of exactly `bytes` UTF-8 bytes, sometimes with a hostile character in front. */
const textOfBytes = (bytes: number): FastCheck.Arbitrary<string> =>
  FastCheck.constantFrom(...planes).chain((plane) =>
    FastCheck.tuple(
      FastCheck.array(FastCheck.integer({ min: plane.min, max: plane.max }), {
        minLength: Math.floor(bytes / plane.bytes),
        maxLength: Math.floor(bytes / plane.bytes)
      }),
      FastCheck.option(FastCheck.constantFrom("\u0000", "\ud800", "\udfff", "\\u0000"), { freq: 4 })
    ).map(([codes, hostile]) => {
      const text = String.fromCodePoint(...codes) + "a".repeat(bytes % plane.bytes)
      return hostile === null ? text : hostile + text.slice(hostile.length)
    })
  )

/**
 * A name: short hostile text (empty included), or random multi-byte text 1 byte under, at or over `MAX_NAME_BYTES`.
 *
 * @since 0.2.0
 * @category generators
 */
export const arbitraryName: FastCheck.Arbitrary<string> = FastCheck.oneof(
  { arbitrary: cleanText(1), weight: 30 },
  { arbitrary: hostileText, weight: 1 },
  { arbitrary: FastCheck.constant(""), weight: 1 },
  { arbitrary: FastCheck.constantFrom(-1, 0, 1).chain((delta) => textOfBytes(MAX_NAME_BYTES + delta)), weight: 3 }
)

const finiteNumber: FastCheck.Arbitrary<number> = FastCheck.oneof(
  // JSON has no negative zero: -0 is written as 0, which is what every store reads back.
  FastCheck.double({ noNaN: true, noDefaultInfinity: true }).map((n) => (Object.is(n, -0) ? 0 : n)),
  FastCheck.integer(),
  FastCheck.constantFrom(Number.MAX_VALUE, Number.MIN_VALUE, Number.MAX_SAFE_INTEGER, 1e21, -1e-7, 0.1)
)

const cleanLeaf: FastCheck.Arbitrary<unknown> = FastCheck.oneof(
  cleanText(),
  finiteNumber,
  FastCheck.boolean(),
  FastCheck.constant(null)
)

const hostileLeaf: FastCheck.Arbitrary<unknown> = FastCheck.oneof(
  hostileText,
  FastCheck.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY)
)

const treeOf = (leaf: FastCheck.Arbitrary<unknown>, key: FastCheck.Arbitrary<string>): FastCheck.Arbitrary<unknown> =>
  FastCheck.letrec((tie) => ({
    value: FastCheck.oneof({ depthSize: "small" }, leaf, tie("array"), tie("object")),
    array: FastCheck.array(tie("value"), { maxLength: 4 }),
    object: FastCheck.dictionary(key, tie("value"), { maxKeys: 4, noNullPrototype: true })
  })).value

const cleanTree = treeOf(cleanLeaf, cleanText())

/** A tree where a leaf in three may be hostile, and a key in ten. */
const mixedTree = treeOf(
  FastCheck.oneof({ arbitrary: cleanLeaf, weight: 2 }, { arbitrary: hostileLeaf, weight: 1 }),
  arbitraryText
)

/**
 * `depth` arrays or objects nested in one another around `leaf`.
 *
 * @since 0.2.0
 * @category generators
 */
export const nested = (depth: number, leaf: unknown, kind: "array" | "object" = "array"): unknown => {
  let value = leaf
  for (let i = 0; i < depth; i++) value = kind === "array" ? [value] : { nested: value }
  return value
}

const deepTree: FastCheck.Arbitrary<unknown> = FastCheck.tuple(
  FastCheck.oneof(
    { arbitrary: FastCheck.integer({ min: MAX_JSON_DEPTH - 2, max: MAX_JSON_DEPTH + 2 }), weight: 4 },
    { arbitrary: FastCheck.constant(20_000), weight: 1 }
  ),
  FastCheck.oneof({ arbitrary: cleanLeaf, weight: 3 }, { arbitrary: hostileLeaf, weight: 1 }),
  FastCheck.constantFrom("array" as const, "object" as const)
).map(([depth, leaf, kind]) => nested(depth, leaf, kind))

/** `make(text)` whose JSON text is 1 byte under, at or over `MAX_PAYLOAD_BYTES`, in 1 to 4 byte characters. */
const nearPayloadLimit = <A>(make: (text: string) => A): FastCheck.Arbitrary<A> =>
  FastCheck.tuple(FastCheck.constantFrom("a", "é", "中", "😀"), FastCheck.constantFrom(-1, 0, 1)).map(
    ([character, delta]) => {
      const room = MAX_PAYLOAD_BYTES + delta - byteLength(JSON.stringify(make("")))
      const width = byteLength(character)
      return make(character.repeat(Math.floor(room / width)) + "a".repeat(room % width))
    }
  )

/**
 * A payload: a small JSON tree of text and numbers (sometimes with a NUL, a lone surrogate, NaN or ±Infinity),
 * nesting around `MAX_JSON_DEPTH` (and far beyond), or a string whose JSON is within a byte of `MAX_PAYLOAD_BYTES`.
 *
 * @since 0.2.0
 * @category generators
 */
export const arbitraryPayload: FastCheck.Arbitrary<unknown> = FastCheck.oneof(
  { arbitrary: cleanTree, weight: 30 },
  { arbitrary: mixedTree, weight: 6 },
  { arbitrary: deepTree, weight: 3 },
  { arbitrary: nearPayloadLimit((text) => text), weight: 1 }
)

const metadataOf = (text: FastCheck.Arbitrary<string>, extra: FastCheck.Arbitrary<unknown>) =>
  FastCheck.record({
    correlationId: text,
    causationId: text,
    actorId: text,
    tenantId: arbitraryName,
    headers: FastCheck.dictionary(text, text, { maxKeys: 3, noNullPrototype: true }),
    extra
  }, { requiredKeys: [] })

/**
 * Metadata: none, text fields, headers and an extra JSON tree (sometimes hostile), deep nesting, or headers within a
 * byte of `MAX_PAYLOAD_BYTES`.
 *
 * @since 0.2.0
 * @category generators
 */
export const arbitraryMetadata: FastCheck.Arbitrary<EventMetadata.EventMetadata | undefined> = FastCheck.oneof(
  { arbitrary: FastCheck.constant(undefined), weight: 8 },
  { arbitrary: metadataOf(cleanText(), cleanTree), weight: 16 },
  { arbitrary: metadataOf(arbitraryText, mixedTree), weight: 4 },
  { arbitrary: deepTree.map((extra) => ({ correlationId: "deep", extra })), weight: 2 },
  { arbitrary: nearPayloadLimit((blob) => ({ headers: { blob } })), weight: 1 }
)

/**
 * An append of 1 to 3 events with hostile names, payloads and metadata.
 *
 * @since 0.2.0
 * @category generators
 */
export const arbitraryAppend: FastCheck.Arbitrary<EventStore.AppendOptions> = FastCheck.record({
  streamType: arbitraryName,
  streamId: arbitraryName,
  events: FastCheck.array(
    FastCheck.record({ type: arbitraryName, payload: arbitraryPayload, metadata: arbitraryMetadata }).map(
      (event): NewEvent.NewEvent => event
    ),
    { minLength: 1, maxLength: 3 }
  )
})

/**
 * An event as read back, reduced to what the caller gave.
 *
 * @since 0.2.0
 * @category models
 */
export interface StoredEvent {
  readonly streamType: string
  readonly streamId: string
  readonly type: string
  readonly payload: unknown
  readonly metadata: unknown
}

/**
 * What an append did: its events read back, or `InvalidInput` with nothing written.
 *
 * @since 0.2.0
 * @category models
 */
export type Outcome =
  | { readonly _tag: "Appended"; readonly events: ReadonlyArray<StoredEvent> }
  | { readonly _tag: "InvalidInput" }

/**
 * Appends `options` (at any expected version) and asserts the contract: the outcome the rules expect; on success
 * the events read back exactly as given; on failure an `InvalidInput` (no `StoreError`, no defect), with the feed
 * head and the stream version unchanged.
 *
 * @since 0.2.0
 * @category assertions
 */
export const attempt = (
  store: EventStore.EventStore["Type"],
  options: EventStore.AppendOptions
): Effect.Effect<Outcome, EventStore.ReadStreamError> =>
  Effect.gen(function*() {
    const { streamId, streamType } = options
    const expected = expectedOutcome(options)
    const refValid = validName(streamType) && validName(streamId)
    const versionBefore = refValid ? yield* store.streamVersion(options) : 0
    const tracked = withIds(options)
    const exit = yield* Effect.exit(store.append({ ...tracked, expectedVersion: ExpectedVersion.Any }))
    if (Exit.isFailure(exit)) {
      const failure = Cause.failureOption(exit.cause)
      assert.strictEqual(
        Cause.isDie(exit.cause) || Option.isNone(failure) ? "defect" : failure.value._tag,
        "InvalidInput",
        Cause.pretty(exit.cause)
      )
      assert.strictEqual(expected, "InvalidInput", `valid input refused: ${Cause.pretty(exit.cause)}`)
      assert.isTrue(yield* noneStored(store, tracked), "a refused append wrote events")
      if (refValid) assert.strictEqual(yield* store.streamVersion(options), versionBefore)
      return { _tag: "InvalidInput" }
    }
    assert.strictEqual(expected, "Appended", "input the rules refuse was accepted")
    assert.strictEqual(exit.value.version, versionBefore + options.events.length)
    const read = yield* store.readStream({ streamType, streamId, fromVersion: versionBefore + 1 })
    const events = read.map((e): StoredEvent => ({
      streamType: e.streamType,
      streamId: e.streamId,
      type: e.type,
      payload: e.payload,
      metadata: e.metadata
    }))
    assert.deepStrictEqual(
      events,
      options.events.map((e): StoredEvent => ({
        streamType,
        streamId,
        type: e.type,
        payload: e.payload,
        metadata: e.metadata ?? {}
      }))
    )
    return { _tag: "Appended", events }
  })

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID()}`

/** A deterministic pseudo-random stream of CJK characters (3 UTF-8 bytes each), so compression cannot shrink it. */
const cjk = (count: number, seed = 1): string => {
  let state = seed
  let text = ""
  for (let i = 0; i < count; i++) {
    state = (state * 1103515245 + 12345) % 2147483648
    text += String.fromCharCode(0x4e00 + (state % 0x5200))
  }
  return text
}

/** `prefix` followed by incompressible text, `bytes` UTF-8 bytes in all. */
const ofBytes = (prefix: string, bytes: number, seed?: number): string => {
  const room = bytes - byteLength(prefix)
  return prefix + cjk(Math.floor(room / 3), seed) + "a".repeat(room % 3)
}

// An unexpected success is reported without its value, which may be megabytes of payload.
const refused = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>, why: string) =>
  Effect.map(Effect.either(effect), (result) => {
    if (result._tag === "Right") assert.fail(`accepted: ${why}`)
    assert.strictEqual(result.left._tag, "InvalidInput", why)
  })

/** The events with an id each (generated where the caller gave none), so that what a store wrote can be looked up. */
const withIds = (options: EventStore.AppendOptions): EventStore.AppendOptions => ({
  ...options,
  events: options.events.map((e) => (e.eventId === undefined ? { ...e, eventId: crypto.randomUUID() } : e))
})

/**
 * True when none of the append's events is stored. Looked up by id, not by the feed head: the feed may still be
 * catching up with earlier, committed appends (an open transaction elsewhere on the server holds its horizon back).
 */
const noneStored = (store: EventStore.EventStore["Type"], options: EventStore.AppendOptions) =>
  Effect.map(
    Effect.forEach(options.events, (e) =>
      typeof e.eventId === "string" ? store.eventExists(e.eventId) : Effect.succeed(false)),
    (found) =>
      found.every((exists) => !exists)
  )

/** `refused` for an append, which must also have written none of its events. */
const refusedAppend = (store: EventStore.EventStore["Type"], options: EventStore.AppendOptions, why: string) =>
  Effect.gen(function*() {
    const tracked = withIds(options)
    yield* refused(store.append(tracked), why)
    assert.isTrue(yield* noneStored(store, tracked), `a refused append wrote events: ${why}`)
  })

const shortened = (text: string, max = 2000) =>
  text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text

/**
 * fast-check parameters for hostile-input properties: `numRuns` runs, at most 30 seconds for runs and shrinking
 * together, and a failure report whose counterexample is cut short (an input can hold megabytes of text or 20,000
 * levels of nesting).
 *
 * @since 0.2.0
 * @category suites
 */
export const parameters = <T>(numRuns: number): FastCheck.Parameters<T> => ({
  numRuns,
  interruptAfterTimeLimit: 30_000,
  reporter: (details) => {
    if (!details.failed) return
    let example: string
    try {
      example = FastCheck.stringify(details.counterexample)
    } catch {
      example = "(too deep to print)"
    }
    const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
    throw new Error(
      `Property failed after ${details.numRuns} runs and ${details.numShrinks} shrinks ` +
        `{ seed: ${details.seed}, path: "${shortened(details.counterexamplePath ?? "", 200)}" }\n` +
        `Counterexample: ${shortened(example)}\nError: ${shortened(error)}`
    )
  }
})

/**
 * Registers the suite against an EventStore Layer, built once for the suite: the property test with `numRuns`
 * generated appends (100 by default), then a deterministic case for each kind of bad input.
 *
 * @since 0.2.0
 * @category suites
 */
export const suite = <E>(
  name: string,
  storeLayer: Layer.Layer<EventStore.EventStore, E>,
  options?: { readonly numRuns?: number | undefined }
): void =>
  layer(storeLayer, { excludeTestServices: true, timeout: "120 seconds" })(
    `EventStore input contract: ${name}`,
    (it) => {
      it.effect.prop(
        "hostile names, payloads and metadata: an exact round trip or InvalidInput, never a StoreError, defect or partial write",
        { append: arbitraryAppend },
        // fast-check counts any returned value but true or undefined as a failure, hence asVoid.
        ({ append }) => Effect.asVoid(Effect.flatMap(EventStore.EventStore, (store) => attempt(store, append))),
        { timeout: 120_000, fastCheck: parameters(options?.numRuns ?? 100) }
      )

      it.effect("lone surrogates in names are refused, so acct-\\ud800 and acct-\\udbff never become one stream", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const streamType = unique("Account")
          const event = { type: "Opened", payload: {} }
          for (const streamId of ["acct-\ud800", "acct-\udbff", "acct-\udc00x", "\udfff"]) {
            yield* refusedAppend(store, { streamType, streamId, events: [event] }, `append to ${streamId}`)
            yield* refused(store.readStream({ streamType, streamId }), "readStream")
            yield* refused(store.streamVersion({ streamType, streamId }), "streamVersion")
          }
          yield* refusedAppend(store, { streamType: `${streamType}\ud800`, streamId: "a", events: [event] }, "type")
          yield* refusedAppend(store, { streamType, streamId: "a", events: [{ ...event, type: "Op\udbffened" }] }, "ev")
          // U+FFFD itself is a character like any other, and the stream it names holds only its own events.
          yield* store.append({ streamType, streamId: "acct-\ufffd", events: [event] })
          assert.strictEqual(yield* store.streamVersion({ streamType, streamId: "acct-\ufffd" }), 1)
          // A well-formed pair (an emoji) is a different, valid id.
          yield* store.append({ streamType, streamId: "acct-\ud83d\ude00", events: [event] })
          assert.strictEqual((yield* store.readStream({ streamType, streamId: "acct-😀" }))[0]!.streamId, "acct-😀")
        }))

      it.effect("NaN and ±Infinity in a payload or metadata are refused and nothing is written", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const stream = { streamType: unique("Reading"), streamId: "r-1" }
          const metadata = { correlationId: "c", extra: { reading: Number.POSITIVE_INFINITY } }
          const bad: ReadonlyArray<NewEvent.NewEvent> = [
            { type: "Read", payload: { value: Number.NaN } },
            { type: "Read", payload: [1, Number.POSITIVE_INFINITY] },
            { type: "Read", payload: Number.NEGATIVE_INFINITY },
            { type: "Read", payload: { deep: { er: [{ x: Number.NaN }] } } },
            { type: "Read", payload: {}, metadata }
          ]
          for (const event of bad) {
            // With a valid event before it, so a half-done append would show.
            yield* refusedAppend(store, { ...stream, events: [{ type: "Ok", payload: { n: 1 } }, event] }, "NaN")
          }
          assert.strictEqual(yield* store.streamVersion(stream), 0)
        }))

      it.effect("names are limited in UTF-8 bytes: 1000 CJK characters are refused, 1000 bytes each fit", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const event = { type: "Named", payload: {} }
          const streamType = unique("Named")
          yield* refusedAppend(store, { streamType, streamId: cjk(1000), events: [event] }, "1000 CJK stream id")
          yield* refusedAppend(store, { streamType: cjk(1000), streamId: "n", events: [event] }, "1000 CJK type")
          yield* refusedAppend(
            store,
            { streamType, streamId: "n", events: [{ ...event, type: cjk(1000) }] },
            "1000 CJK"
          )
          yield* refusedAppend(
            store,
            { streamType, streamId: ofBytes("n-", MAX_NAME_BYTES + 1), events: [event] },
            "1001 bytes"
          )
          yield* refused(store.readStream({ streamType, streamId: ofBytes("n-", MAX_NAME_BYTES + 1) }), "read 1001")
          // The tenant id is a column under a btree index too.
          const tenantId = ofBytes("t-", MAX_NAME_BYTES + 1)
          yield* refusedAppend(
            store,
            { streamType, streamId: "n", events: [{ ...event, metadata: { tenantId } }] },
            "tenant"
          )
          assert.strictEqual(yield* store.streamVersion({ streamType, streamId: "n" }), 0)
          // Exactly at the limit, in all three names and the tenant id at once, with text compression cannot shrink.
          const full = {
            streamType: ofBytes(`${streamType}-`, MAX_NAME_BYTES, 2),
            streamId: ofBytes("id-", MAX_NAME_BYTES, 3),
            events: [{
              type: ofBytes("type-", MAX_NAME_BYTES, 4),
              payload: { n: 1 },
              metadata: { tenantId: ofBytes("tenant-", MAX_NAME_BYTES, 5) }
            }]
          }
          assert.strictEqual((yield* attempt(store, full))._tag, "Appended")
          assert.strictEqual((yield* attempt(store, full))._tag, "Appended")
        }))

      it.effect("payload and metadata are limited in UTF-8 bytes: 9 MB of metadata is refused", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const stream = { streamType: unique("Big"), streamId: "b-1" }
          // 4.5 million characters, 9 million bytes: under the limit in characters, over it in bytes.
          const nineMegabytes = "é".repeat(4_500_000)
          yield* refusedAppend(store, {
            ...stream,
            events: [{ type: "Big", payload: {}, metadata: { headers: { nineMegabytes } } }]
          }, "9 MB of metadata")
          yield* refusedAppend(store, { ...stream, events: [{ type: "Big", payload: nineMegabytes }] }, "9 MB")
          // A JSON string is its text plus two quotes: at the limit exactly, then one byte over.
          const atLimit = ofBytes("", MAX_PAYLOAD_BYTES - 2)
          assert.strictEqual(byteLength(JSON.stringify(atLimit)), MAX_PAYLOAD_BYTES)
          yield* refusedAppend(store, { ...stream, events: [{ type: "Big", payload: `${atLimit}c` }] }, "+1 byte")
          assert.strictEqual(yield* store.streamVersion(stream), 0)
          assert.strictEqual(
            (yield* attempt(store, { ...stream, events: [{ type: "Big", payload: atLimit }] }))._tag,
            "Appended"
          )
        }))

      it.effect("a NUL character in an event type, stream type or stream id is refused", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const stream = { streamType: unique("Nul"), streamId: "n-1" }
          yield* refusedAppend(store, { ...stream, events: [{ type: "Bad\u0000Type", payload: {} }] }, "event type")
          yield* refusedAppend(store, { ...stream, events: [{ type: "\u0000", payload: {} }] }, "event type NUL")
          yield* refusedAppend(store, { ...stream, streamId: "n\u0000", events: [{ type: "T", payload: {} }] }, "id")
          yield* refusedAppend(store, {
            ...stream,
            streamType: `${stream.streamType}\u0000`,
            events: [{ type: "T", payload: {} }]
          }, "stream type")
          yield* refused(store.readAll({ eventTypes: ["Bad\u0000Type"] }), "readAll eventTypes filter")
          yield* refused(store.readAll({ streamTypes: ["\ud800"] }), "readAll streamTypes filter")
          yield* refused(store.readAll({ tenantId: "t\u0000" }), "readAll tenantId filter")
        }))

      it.effect("metadata that is not a JSON object is refused, so the stream stays readable", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const stream = { streamType: unique("Meta"), streamId: "m-1" }
          yield* store.append({ ...stream, events: [{ type: "T", payload: {} }] })
          // JSON.parse stands for an untyped caller.
          for (const metadata of [JSON.parse("[]"), JSON.parse(`"x"`), JSON.parse("7"), new Date(0)]) {
            yield* refusedAppend(store, { ...stream, events: [{ type: "T", payload: {}, metadata }] }, "metadata")
          }
          assert.strictEqual((yield* store.readStream(stream)).length, 1)
        }))

      it.effect("the six characters \\u0000 round-trip exactly; a real NUL in a string or a key is refused", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const stream = { streamType: unique("Escape"), streamId: "e-1" }
          const text = "\\u0000"
          assert.strictEqual(text.length, 6)
          const payload = { [text]: text, list: [text, `a${text}b`, "\\\\u0000", "\\\u00e9"], nested: { "\\": "\\\\" } }
          const metadata = { correlationId: text, headers: { [text]: `x${text}` } }
          const outcome = yield* attempt(store, { ...stream, events: [{ type: `Type${text}`, payload, metadata }] })
          assert.strictEqual(outcome._tag, "Appended")
          yield* refusedAppend(store, { ...stream, events: [{ type: "T", payload: { s: "a\u0000b" } }] }, "string")
          yield* refusedAppend(store, { ...stream, events: [{ type: "T", payload: { "k\u0000": 1 } }] }, "key")
          yield* refusedAppend(store, { ...stream, events: [{ type: "T", payload: ["\u0000"] }] }, "element")
          yield* refusedAppend(store, {
            ...stream,
            events: [{ type: "T", payload: {}, metadata: { headers: { h: "\u0000" } } }]
          }, "metadata")
          yield* refusedAppend(store, { ...stream, events: [{ type: "T", payload: { s: "\udc00" } }] }, "surrogate")
          yield* refusedAppend(store, { ...stream, events: [{ type: "T", payload: { "\ud800": 1 } }] }, "key")
          assert.strictEqual(yield* store.streamVersion(stream), 1)
        }))

      it.effect(
        `nesting: ${MAX_JSON_DEPTH} levels round-trip, ${
          MAX_JSON_DEPTH + 1
        } and 20,000 are refused (not a StoreError or a stack overflow)`,
        () =>
          Effect.gen(function*() {
            const store = yield* EventStore.EventStore
            const stream = { streamType: unique("Deep"), streamId: "d-1" }
            for (const kind of ["array", "object"] as const) {
              const ok = yield* attempt(store, {
                ...stream,
                events: [{ type: "Deep", payload: nested(MAX_JSON_DEPTH, 1, kind) }]
              })
              assert.strictEqual(ok._tag, "Appended")
              for (const depth of [MAX_JSON_DEPTH + 1, 20_000, 1_000_000]) {
                const payload = nested(depth, "leaf", kind)
                const metadata = { actorId: "a", extra: nested(depth - 1, "leaf", kind) }
                yield* refusedAppend(store, { ...stream, events: [{ type: "Deep", payload }] }, `payload ${depth}`)
                yield* refusedAppend(store, { ...stream, events: [{ type: "Deep", payload: {}, metadata }] }, "meta")
              }
            }
            assert.strictEqual(yield* store.streamVersion(stream), 2)
          })
      )
    }
  )
