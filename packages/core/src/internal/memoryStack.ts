/** @internal One in-memory stack: the event store with its after-append work (outbox rows, feed hints) wired in. */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Runtime from "effect/Runtime"
import type * as EventStore from "../EventStore.js"
import type * as FeedNotifier from "../FeedNotifier.js"
import type * as Outbox from "../Outbox.js"
import type * as StreamLifecycle from "../StreamLifecycle.js"
import * as memoryEventStore from "./memoryEventStore.js"
import * as memoryOutbox from "./memoryOutbox.js"

/** @internal */
export interface MemoryStack {
  readonly store: EventStore.EventStore["Type"]
  readonly lifecycle: StreamLifecycle.StreamLifecycle["Type"]
  readonly outbox: Outbox.Outbox["Type"] | undefined
  readonly notifier: FeedNotifier.FeedNotifier["Type"]
}

/**
 * @internal The only place where the memory store's hooks are chosen: `outbox` writes each append's outbox rows
 * inside the append (atomically), `notify` wakes feed readers after it.
 */
export const make = (options: { readonly outbox: boolean; readonly notify: boolean }): Effect.Effect<MemoryStack> =>
  Effect.gen(function*() {
    const hub = yield* PubSub.sliding<void>(1)
    const runtime = yield* Effect.runtime<never>()
    const outbox = options.outbox ? yield* memoryOutbox.make : undefined
    const onAppend = outbox ? Option.getOrUndefined(memoryOutbox.writerOf(outbox)) : undefined
    // Publishing to a sliding PubSub never suspends, so it can run synchronously inside the append.
    const onCommitted = () => void Runtime.runSync(runtime)(PubSub.publish(hub, undefined))
    const { lifecycle, store } = yield* memoryEventStore.makeStoreWith({
      ...(onAppend ? { onAppend } : {}),
      ...(options.notify ? { onCommitted } : {})
    })
    return { store, lifecycle, outbox, notifier: { subscribe: PubSub.subscribe(hub) } }
  })
