/**
 * @internal A lock per key, for one process: effects under the same key run one at a time, in arrival order; others
 * run freely. An entry lives only while someone holds or waits for it.
 */
import * as Effect from "effect/Effect"

/** @internal */
export interface KeyedLock {
  readonly withLock: (key: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

/** @internal */
export const make = (): KeyedLock => {
  const locks = new Map<string, { readonly semaphore: Effect.Semaphore; users: number }>()
  return {
    withLock: (key) => (effect) =>
      Effect.suspend(() => {
        let entry = locks.get(key)
        if (entry === undefined) {
          entry = { semaphore: Effect.unsafeMakeSemaphore(1), users: 0 }
          locks.set(key, entry)
        }
        const held = entry
        held.users++
        return held.semaphore.withPermits(1)(effect).pipe(
          Effect.ensuring(Effect.sync(() => {
            if (--held.users === 0) locks.delete(key)
          }))
        )
      })
  }
}

const byStore = new WeakMap<object, KeyedLock>()

/** @internal The lock shared by every handler on one store instance, so two handlers of a stream serialise too. */
export const forStore = (store: object): KeyedLock => {
  let lock = byStore.get(store)
  if (lock === undefined) {
    lock = make()
    byStore.set(store, lock)
  }
  return lock
}
