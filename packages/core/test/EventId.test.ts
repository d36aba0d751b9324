// Time-ordered event ids (UUIDv7, RFC 9562): layout, order within one millisecond and across clock steps back, and
// uniqueness.
import { assert, describe, it } from "@effect/vitest"
import * as EventId from "@eventfold/core/EventId"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as uuidv7 from "../src/internal/uuidv7.js"

const bytesOf = (id: string): Uint8Array => Uint8Array.from(id.replace(/-/g, "").match(/../g)!, (h) => parseInt(h, 16))

/** The 12-bit counter in rand_a. */
const counterOf = (id: string): number => parseInt(id.slice(15, 18), 16)

const assertIncreasing = (ids: ReadonlyArray<string>) => {
  for (let i = 1; i < ids.length; i++) {
    // Lower-case hex compares as the bytes do, which is how PostgreSQL orders uuid.
    assert.isTrue(ids[i - 1]! < ids[i]!, `not increasing at ${i}: ${ids[i - 1]} then ${ids[i]}`)
  }
}

describe("EventId", () => {
  it("lays out a UUIDv7: the millisecond in the first 48 bits, version 7, RFC 9562 variant", () => {
    const before = Date.now()
    const id = EventId.unsafeMake()
    const after = Date.now()
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    const bytes = bytesOf(id)
    assert.strictEqual(bytes[6]! >> 4, 7)
    assert.strictEqual(bytes[8]! >> 6, 0b10)
    const ms = bytes.slice(0, 6).reduce((acc, b) => acc * 256 + b, 0)
    assert.isTrue(ms >= before && ms <= after, `${ms} outside ${before}..${after}`)
    assert.deepStrictEqual(EventId.timestampMillis(id), Option.some(ms))
    assert.isTrue(EventId.isTimeOrdered(id))
  })

  it("tells time-ordered ids from others", () => {
    const v4 = crypto.randomUUID()
    assert.isFalse(EventId.isTimeOrdered(v4))
    assert.isTrue(Option.isNone(EventId.timestampMillis(v4)))
    assert.isFalse(EventId.isTimeOrdered("not-a-uuid"))
    // Version 7 with the wrong variant bits is not an RFC 9562 id.
    assert.isFalse(EventId.isTimeOrdered("01890a5d-ac96-774b-cc9a-8a0f9b0c1d2e"))
    assert.isTrue(EventId.isTimeOrdered("01890A5D-AC96-774B-BC9A-8A0F9B0C1D2E"))
  })

  it("prints the full 48-bit timestamp", () => {
    const generate = uuidv7.makeGenerator(() => 0xffff_ffff_fffe)
    const id = generate()
    assert.strictEqual(id.slice(0, 13), "ffffffff-fffe")
    assert.deepStrictEqual(EventId.timestampMillis(id), Option.some(0xffff_ffff_fffe))
    assert.strictEqual(uuidv7.makeGenerator(() => 1)().slice(0, 13), "00000000-0001")
  })

  it("orders many ids made within one millisecond by their counter, then borrows the next millisecond", () => {
    const generate = uuidv7.makeGenerator(() => 1_700_000_000_000)
    const ids = Array.from({ length: 20_000 }, generate)
    assertIncreasing(ids)
    // The counter starts below 2048, so 2048 ids always fit in the clock's own millisecond.
    assert.isTrue(counterOf(ids[0]!) < 2048)
    for (const id of ids.slice(0, 2049)) {
      assert.deepStrictEqual(EventId.timestampMillis(id), Option.some(1_700_000_000_000))
    }
    // 20,000 ids outrun the counter: the timestamp moves ahead of the clock, a few milliseconds at most.
    const last = Option.getOrThrow(EventId.timestampMillis(ids[ids.length - 1]!))
    assert.isTrue(last > 1_700_000_000_000 && last <= 1_700_000_000_000 + 10, `${last}`)
  })

  it("stays increasing when the clock steps back", () => {
    const times = [5_000, 5_000, 4_000, 4_500, 5_000, 5_001, 3_000]
    let i = 0
    const generate = uuidv7.makeGenerator(() => times[Math.min(i++, times.length - 1)]!)
    const ids = Array.from({ length: 50 }, generate)
    assertIncreasing(ids)
    assert.deepStrictEqual(EventId.timestampMillis(ids[2]!), Option.some(5_000))
    assert.deepStrictEqual(EventId.timestampMillis(ids[5]!), Option.some(5_001))
  })

  it("makes unique ids: 100,000 from one generator, and two generators in one millisecond", () => {
    const ids = Array.from({ length: 100_000 }, EventId.unsafeMake)
    assert.strictEqual(new Set(ids).size, ids.length)
    assertIncreasing(ids)
    const a = uuidv7.makeGenerator(() => 42)
    const b = uuidv7.makeGenerator(() => 42)
    const both = new Set([...Array.from({ length: 1000 }, a), ...Array.from({ length: 1000 }, b)])
    assert.strictEqual(both.size, 2000)
  })

  it.effect("make is a new id each time it runs", () =>
    Effect.gen(function*() {
      const [first, second] = yield* Effect.all([EventId.make, EventId.make])
      assert.isTrue(EventId.isTimeOrdered(first))
      assert.isTrue(first < second)
    }))
})
