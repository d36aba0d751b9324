/**
 * The whole in-memory stack from one options object: event store, snapshot store, checkpoint store, feed notifier
 * and outbox. It takes the same switches as `PgEventfold.layer` where they apply, so a test swaps one Layer for the
 * other and the program does not change.
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as CheckpointStore from "./CheckpointStore.js"
import * as EventStore from "./EventStore.js"
import * as FeedNotifier from "./FeedNotifier.js"
import * as memoryStack from "./internal/memoryStack.js"
import * as Outbox from "./Outbox.js"
import * as SnapshotStore from "./SnapshotStore.js"
import * as StreamLifecycle from "./StreamLifecycle.js"
import * as Tenant from "./Tenant.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /**
   * Appends write outbox rows (atomically) for an `OutboxRelay`; defaults to false. When off, the `Outbox` service
   * is still provided, and every operation on it fails with a `StoreError` saying the outbox is off.
   */
  readonly outbox?: boolean | undefined
  /** Appends wake feed readers at once; defaults to true. When off, readers rely on their poll interval. */
  readonly notify?: boolean | undefined
  /**
   * `single` (the default): operations without a tenant use `Tenant.defaultId`. `multi`: they fail with
   * `TenantRequired` (see `Tenant`). Defaults to the `Tenant.Tenancy` in context.
   */
  readonly tenancy?: Tenant.Mode | undefined
}

/**
 * The services every eventfold stack provides.
 *
 * @since 0.2.0
 * @category models
 */
export type Services =
  | EventStore.EventStore
  | SnapshotStore.SnapshotStore
  | CheckpointStore.CheckpointStore
  | FeedNotifier.FeedNotifier
  | Outbox.Outbox
  | StreamLifecycle.StreamLifecycle

/**
 * Builds the stack; each Layer build is a fresh, empty store.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Services> =>
  Layer.effectContext(Effect.gen(function*() {
    const tenancy = options?.tenancy ?? (yield* Tenant.Tenancy)
    const outboxOn = options?.outbox ?? false
    const notify = options?.notify ?? true
    const stack = yield* Effect.provideService(memoryStack.make({ outbox: outboxOn, notify }), Tenant.Tenancy, tenancy)
    return Context.make(EventStore.EventStore, stack.store).pipe(
      Context.add(FeedNotifier.FeedNotifier, notify ? stack.notifier : FeedNotifier.polling),
      Context.add(Outbox.Outbox, stack.outbox ?? Outbox.disabled("MemoryEventfold.layer({ outbox: false })")),
      Context.add(
        SnapshotStore.SnapshotStore,
        yield* Effect.provideService(SnapshotStore.makeMemory, Tenant.Tenancy, tenancy)
      ),
      Context.add(CheckpointStore.CheckpointStore, yield* CheckpointStore.makeMemory),
      Context.add(StreamLifecycle.StreamLifecycle, stack.lifecycle)
    )
  }))
