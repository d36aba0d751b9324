/**
 * @internal UUIDv7 (RFC 9562, section 5.7): a 48-bit unix-millisecond timestamp, the version, a 12-bit counter in
 * `rand_a` (section 6.2, method 1) that keeps ids of one generator strictly increasing within a millisecond, the
 * variant, and 62 random bits. The counter starts at a random value below 2048 each new millisecond, so at least 2048
 * ids fit in one; past 4095 the timestamp moves one millisecond ahead, as it also stays put when the clock goes back.
 */

/** @internal A source of ids. */
export type Generator = () => string

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"))

// Ten random bytes per id (two seed the counter, eight fill rand_b), drawn in blocks: one `getRandomValues` call per
// 256 ids instead of one per id.
const SLOT = 10
const BLOCK = SLOT * 256

/**
 * @internal A generator reading the time from `now` (unix milliseconds) and filling buffers with `random`.
 */
export const makeGenerator = (
  now: () => number = Date.now,
  random: (bytes: Uint8Array) => void = (bytes) => globalThis.crypto.getRandomValues(bytes)
): Generator => {
  const pool = new Uint8Array(BLOCK)
  let at = BLOCK
  let lastMs = -1
  let counter = 0
  const take = (): number => {
    if (at === BLOCK) {
      random(pool)
      at = 0
    }
    const start = at
    at += SLOT
    return start
  }
  return () => {
    const ms = now()
    const r = take()
    if (ms > lastMs) {
      lastMs = ms
      counter = ((pool[r + 8]! & 0x07) << 8) | pool[r + 9]!
    } else if (++counter > 0xfff) {
      lastMs += 1
      counter = ((pool[r + 8]! & 0x07) << 8) | pool[r + 9]!
    }
    // 48 bits do not fit a 32-bit integer: the high 16 and low 32 are printed apart.
    const high = Math.floor(lastMs / 0x1_0000_0000)
    const low = lastMs - high * 0x1_0000_0000
    const time = high.toString(16).padStart(4, "0") + low.toString(16).padStart(8, "0")
    return `${time.slice(0, 8)}-${time.slice(8, 12)}-${(0x7000 | counter).toString(16)}-${
      HEX[0x80 | (pool[r]! & 0x3f)]
    }${HEX[pool[r + 1]!]}-${HEX[pool[r + 2]!]}${HEX[pool[r + 3]!]}${HEX[pool[r + 4]!]}${HEX[pool[r + 5]!]}${
      HEX[pool[r + 6]!]
    }${HEX[pool[r + 7]!]}`
  }
}
