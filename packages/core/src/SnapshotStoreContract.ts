/**
 * The behaviour every `SnapshotStore` implementation must have, as one exported test suite. Run it against a Layer:
 * `SnapshotStoreContract.suite("memory", SnapshotStore.layerMemory)`.
 *
 * @since 0.1.0
 */
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as SnapshotStore from "./SnapshotStore.js"

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID()}`

const deep = (depth: number): unknown => Array.from({ length: depth }).reduce<unknown>((inner) => [inner], 0)

/**
 * Registers the contract suite against a SnapshotStore Layer. The Layer is built once for the suite; every test uses
 * its own stream type, so tests never see each other's snapshots.
 *
 * @since 0.1.0
 * @category suites
 */
export const suite = <E>(name: string, storeLayer: Layer.Layer<SnapshotStore.SnapshotStore, E>): void =>
  layer(storeLayer, { excludeTestServices: true, timeout: "120 seconds" })(`SnapshotStore contract: ${name}`, (it) => {
    it.effect("a stream without a snapshot loads None", () =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const loaded = yield* store.load({ streamType: unique("Empty"), streamId: "e-1" })
        assert.isTrue(Option.isNone(loaded))
      }))

    it.effect("a saved snapshot loads with its version, schema version, state and timestamp", () =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const stream = { streamType: unique("Account"), streamId: "a-1" }
        const state = {
          balance: 120,
          owner: "quotes ' \" \\ and ünïcødé 🚀",
          tags: ["x", { nested: [1, 2, null] }],
          snake_case: { inner_key: true },
          empty: {}
        }
        const before = Date.now()
        assert.isTrue(yield* store.save({ ...stream, version: 7, schemaVersion: 3, state }))
        const loaded = Option.getOrThrow(yield* store.load(stream))
        assert.strictEqual(loaded.streamType, stream.streamType)
        assert.strictEqual(loaded.streamId, "a-1")
        assert.strictEqual(loaded.version, 7)
        assert.strictEqual(loaded.schemaVersion, 3)
        assert.deepStrictEqual(loaded.state, state)
        assert.instanceOf(loaded.createdAt, Date)
        // Database and test clocks may differ slightly; a minute of slack still catches a wrong column.
        assert.isTrue(Math.abs(loaded.createdAt.getTime() - before) < 60_000)
      }))

    it.effect("states that are not objects round-trip: arrays, strings, numbers, null", () =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const streamType = unique("Shapes")
        const states: ReadonlyArray<unknown> = [[1, "two", { three: 3 }], "plain", 42.5, null, true]
        for (const [i, state] of states.entries()) {
          yield* store.save({ streamType, streamId: `s-${i}`, version: 1, schemaVersion: 1, state })
        }
        for (const [i, state] of states.entries()) {
          const loaded = Option.getOrThrow(yield* store.load({ streamType, streamId: `s-${i}` }))
          assert.deepStrictEqual(loaded.state, state)
        }
      }))

    it.effect("the state is stored as JSON: a Date comes back as its ISO string", () =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const stream = { streamType: unique("Json"), streamId: "j-1" }
        const at = new Date("2024-02-29T12:34:56.789Z")
        yield* store.save({ ...stream, version: 1, schemaVersion: 1, state: { at, gone: undefined } })
        const loaded = Option.getOrThrow(yield* store.load(stream))
        assert.deepStrictEqual(loaded.state, { at: "2024-02-29T12:34:56.789Z" })
      }))

    it.effect("only the latest snapshot is kept, and an older one never replaces a newer one", () =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const stream = { streamType: unique("Latest"), streamId: "l-1" }
        assert.isTrue(yield* store.save({ ...stream, version: 5, schemaVersion: 1, state: { v: 5 } }))
        assert.isTrue(yield* store.save({ ...stream, version: 10, schemaVersion: 1, state: { v: 10 } }))
        assert.isFalse(yield* store.save({ ...stream, version: 7, schemaVersion: 1, state: { v: 7 } }))
        assert.isFalse(yield* store.save({ ...stream, version: 7, schemaVersion: 9, state: { v: 7 } }))
        const loaded = Option.getOrThrow(yield* store.load(stream))
        assert.deepStrictEqual([loaded.version, loaded.schemaVersion, loaded.state], [10, 1, { v: 10 }])
      }))

    it.effect("at the same version, only a higher schema version replaces the stored snapshot", () =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const stream = { streamType: unique("Upgrade"), streamId: "u-1" }
        assert.isTrue(yield* store.save({ ...stream, version: 4, schemaVersion: 2, state: { shape: "v2" } }))
        assert.isFalse(yield* store.save({ ...stream, version: 4, schemaVersion: 2, state: { shape: "again" } }))
        assert.isFalse(yield* store.save({ ...stream, version: 4, schemaVersion: 1, state: { shape: "v1" } }))
        const unchanged = Option.getOrThrow(yield* store.load(stream))
        assert.deepStrictEqual([unchanged.schemaVersion, unchanged.state], [2, { shape: "v2" }])
        assert.isTrue(yield* store.save({ ...stream, version: 4, schemaVersion: 3, state: { shape: "v3" } }))
        const upgraded = Option.getOrThrow(yield* store.load(stream))
        assert.deepStrictEqual([upgraded.version, upgraded.schemaVersion, upgraded.state], [4, 3, { shape: "v3" }])
      }))

    it.effect("32 fibers saving versions 1..32 in random order leave version 32", () =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const stream = { streamType: unique("Race"), streamId: "r-1" }
        const versions = yield* Random.shuffle(Array.from({ length: 32 }, (_, i) => i + 1))
        yield* Effect.forEach(
          versions,
          (version) => store.save({ ...stream, version, schemaVersion: 1, state: { version } }),
          { concurrency: "unbounded" }
        )
        const loaded = Option.getOrThrow(yield* store.load(stream))
        assert.deepStrictEqual([loaded.version, loaded.state], [32, { version: 32 }])
      }))

    it.effect("delete removes one stream's snapshot; deleting a missing one succeeds", () =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const streamType = unique("Delete")
        yield* store.save({ streamType, streamId: "d-1", version: 3, schemaVersion: 1, state: { n: 1 } })
        yield* store.save({ streamType, streamId: "d-2", version: 3, schemaVersion: 1, state: { n: 2 } })
        yield* store.delete({ streamType, streamId: "d-1" })
        yield* store.delete({ streamType, streamId: "d-1" })
        yield* store.delete({ streamType, streamId: "never" })
        assert.isTrue(Option.isNone(yield* store.load({ streamType, streamId: "d-1" })))
        assert.strictEqual(Option.getOrThrow(yield* store.load({ streamType, streamId: "d-2" })).version, 3)
        // After a delete any version may be saved again.
        assert.isTrue(yield* store.save({ streamType, streamId: "d-1", version: 1, schemaVersion: 1, state: {} }))
      }))

    it.effect("streams are isolated by type and id, including ids with quotes and SQL metacharacters", () =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const typeA = unique("Weird'; DROP TABLE snapshots; --")
        const typeB = unique("Other")
        const ids = ["o'brien", "a\"b", "x; DROP TABLE snapshots; --", "$1", "%_\\", "ünï 🚀"]
        for (const [i, streamId] of ids.entries()) {
          yield* store.save({ streamType: typeA, streamId, version: i + 1, schemaVersion: 1, state: { i } })
        }
        yield* store.save({ streamType: typeB, streamId: ids[0]!, version: 99, schemaVersion: 1, state: "b" })
        for (const [i, streamId] of ids.entries()) {
          const loaded = Option.getOrThrow(yield* store.load({ streamType: typeA, streamId }))
          assert.deepStrictEqual([loaded.streamType, loaded.streamId, loaded.version, loaded.state], [
            typeA,
            streamId,
            i + 1,
            { i }
          ])
        }
        assert.strictEqual(Option.getOrThrow(yield* store.load({ streamType: typeB, streamId: ids[0]! })).version, 99)
      }))

    it.effect("text with the six characters \\u0000, emoji and 100 levels of nesting round-trips exactly", () =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const stream = { streamType: unique("Escaped"), streamId: "e-\\u0000-😀" }
        const state = { "\\u0000": "\\u0000", list: ["a\\u0000b", "\\\\u0000", "😀"], deep: deep(99) }
        assert.isTrue(yield* store.save({ ...stream, version: 1, schemaVersion: 1, state }))
        assert.deepStrictEqual(Option.getOrThrow(yield* store.load(stream)).state, state)
      }))

    it.effect("bad input fails with InvalidInput and stores nothing", () =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const streamType = unique("Bad")
        const ok = { streamType, streamId: "b", version: 1, schemaVersion: 1, state: {} }
        const cases: ReadonlyArray<SnapshotStore.SaveOptions> = [
          { ...ok, streamId: "" },
          { ...ok, streamType: "" },
          { ...ok, version: 0 },
          { ...ok, version: -3 },
          { ...ok, version: 1.5 },
          { ...ok, version: Number.NaN },
          { ...ok, version: 2 ** 31 },
          { ...ok, schemaVersion: 0.5 },
          { ...ok, state: undefined },
          { ...ok, state: { n: 1n } },
          { ...ok, state: { nul: "a\u0000b" } },
          { ...ok, state: { "k\u0000": 1 } },
          { ...ok, state: { lone: "\ud800" } },
          { ...ok, state: [Number.NaN] },
          { ...ok, state: { n: Number.POSITIVE_INFINITY } },
          { ...ok, state: deep(101) },
          { ...ok, streamId: "b\ud800" },
          { ...ok, streamId: "b\u0000" },
          { ...ok, streamType: `${streamType}\udfff` },
          { ...ok, streamId: "中".repeat(334) }
        ]
        for (const [i, options] of cases.entries()) {
          const error = yield* Effect.flip(store.save(options))
          assert.strictEqual(error._tag, "InvalidInput", `case ${i}`)
        }
        assert.isTrue(Option.isNone(yield* store.load({ streamType, streamId: "b" })))
        assert.strictEqual((yield* Effect.flip(store.load({ streamType, streamId: "" })))._tag, "InvalidInput")
        assert.strictEqual((yield* Effect.flip(store.delete({ streamType: "", streamId: "b" })))._tag, "InvalidInput")
      }))
  })
