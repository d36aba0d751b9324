// The schema change guard: records each event type's stored shape per version, and fails on a change without a
// version bump, on a removed upcaster, on a type that disappeared, and (with recording off, as in CI) on a version
// nobody recorded.
import { assert, describe, it } from "@effect/vitest"
import { Aggregate, Decider } from "@eventfold/core"
import { SchemaGuard } from "@eventfold/core/testing"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const decider = <E>() =>
  Decider.make<number, string, E>({ initialState: 0, evolve: (n) => n + 1, decide: () => Effect.succeed([]) })

const Listed = Schema.TaggedStruct("Listed", { name: Schema.String })
const PriceV1 = Schema.TaggedStruct("PriceChanged", { amountCents: Schema.Int })
const PriceV2 = Schema.TaggedStruct("PriceChanged", { amountCents: Schema.Int, currency: Schema.String })

const v1 = Aggregate.make({
  name: "Product",
  decider: decider<typeof PriceV1.Type | typeof Listed.Type>(),
  events: Schema.Union(Listed, PriceV1)
})
// The shape changed, the version did not.
const changedInPlace = Aggregate.make({
  name: "Product",
  decider: decider<typeof PriceV2.Type | typeof Listed.Type>(),
  events: Schema.Union(Listed, PriceV2)
})
// The same change, with a bump: an upcaster from v1.
const bumped = Aggregate.make({
  name: "Product",
  decider: decider<typeof PriceV2.Type | typeof Listed.Type>(),
  events: Schema.Union(Listed, PriceV2),
  evolution: { PriceChanged: { upcasters: [(p) => ({ ...p, currency: "EUR" })] } }
})

const withFolder = <A, E>(f: (directory: string) => Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "eventfold-schemas-"))),
    f,
    (directory) => Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true }))
  )

describe("SchemaGuard", () => {
  it.effect("records each type at its version, then passes while nothing changes", () =>
    withFolder((directory) =>
      Effect.gen(function*() {
        const first = yield* SchemaGuard.check(v1, { directory, record: true })
        assert.deepStrictEqual(first.recorded.map((f) => path.basename(f)).sort(), [
          "Listed.v1.json",
          "PriceChanged.v1.json"
        ])
        const recorded = JSON.parse(fs.readFileSync(path.join(directory, "Product", "PriceChanged.v1.json"), "utf8"))
        assert.deepStrictEqual(recorded.required, ["_tag", "amountCents"])
        const again = yield* SchemaGuard.check(v1, { directory, record: false })
        assert.deepStrictEqual([again.recorded.length, again.unchanged.length], [0, 2])
      })
    ))

  it.effect("a schema change without a version bump fails the guard; with a bump and an upcaster it passes", () =>
    withFolder((directory) =>
      Effect.gen(function*() {
        yield* SchemaGuard.check(v1, { directory, record: true })
        const error = yield* Effect.flip(SchemaGuard.check(changedInPlace, { directory, record: true }))
        assert.strictEqual(error._tag, "SchemaChanged")
        assert.match(error.message, /PriceChanged changed without a version bump/)
        assert.match(error.message, /add an upcaster from v1 to v2/)
        // In CI nothing is recorded: the bumped version must have been committed.
        const ci = yield* Effect.flip(SchemaGuard.check(bumped, { directory, record: false }))
        assert.match(ci.message, /PriceChanged v2 is not recorded/)
        const ok = yield* SchemaGuard.check(bumped, { directory, record: true })
        assert.deepStrictEqual(ok.recorded.map((f) => path.basename(f)), ["PriceChanged.v2.json"])
        // Removing the upcaster again leaves v2 events undecodable.
        const removed = yield* Effect.flip(SchemaGuard.check(v1, { directory, record: true }))
        assert.match(removed.message, /version 2 is recorded: an upcaster was removed/)
      })
    ))

  it.effect("a type that disappears fails the guard unless it is a former name of a current type", () =>
    withFolder((directory) =>
      Effect.gen(function*() {
        yield* SchemaGuard.check(v1, { directory, record: true })
        const Renamed = Schema.TaggedStruct("Cataloged", { name: Schema.String })
        const lost = Aggregate.make({
          name: "Product",
          decider: decider<typeof PriceV1.Type | typeof Renamed.Type>(),
          events: Schema.Union(Renamed, PriceV1)
        })
        const error = yield* Effect.flip(SchemaGuard.check(lost, { directory, record: true }))
        assert.match(error.message, /Listed is recorded but is no longer a type of Product/)
        const renamed = Aggregate.make({
          name: "Product",
          decider: decider<typeof PriceV1.Type | typeof Renamed.Type>(),
          events: Schema.Union(Renamed, PriceV1),
          evolution: { Cataloged: { formerNames: ["Listed"] } }
        })
        yield* SchemaGuard.check(renamed, { directory, record: true })
      })
    ))
})
