/**
 * The `SnapshotStore` service: the latest snapshot of an aggregate's state per stream, a cache that bounds load time.
 * Events stay the truth; a snapshot only lets a load skip the events it already covers.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Errors from "./Errors.js"
import type * as EventStore from "./EventStore.js"
import * as EventValidation from "./EventValidation.js"
import { streamKey } from "./internal/streamKey.js"
import * as Tenant from "./Tenant.js"

/**
 * A stored snapshot: the Schema-encoded state of a stream after its event `version`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot extends EventStore.StreamRef {
  /** The stream's tenant. */
  readonly tenantId: string
  /** The stream version the state covers: the fold of events 1..version. */
  readonly version: number
  /** The aggregate's state schema version when the snapshot was taken. */
  readonly schemaVersion: number
  /** The encoded state, as JSON. */
  readonly state: unknown
  readonly createdAt: Date
}

/**
 * What `save` takes: a snapshot without its timestamp.
 *
 * @since 0.1.0
 * @category models
 */
export interface SaveOptions extends EventStore.StreamRef {
  readonly version: number
  readonly schemaVersion: number
  readonly state: unknown
}

/**
 * A validated save, with the state's JSON text exactly as it will be stored.
 *
 * @since 0.1.0
 * @category models
 */
export interface PreparedSave extends SaveOptions {
  /** The resolved tenant (see `Tenant.resolve`). */
  readonly tenantId: string
  readonly stateJson: string
}

/**
 * The snapshot store. Every implementation passes `SnapshotStoreContract`.
 *
 * @since 0.1.0
 * @category tags
 */
export class SnapshotStore extends Context.Tag("@eventfold/core/SnapshotStore")<SnapshotStore, {
  /** The latest snapshot of a stream, if any. */
  readonly load: (
    stream: EventStore.StreamRef
  ) => Effect.Effect<Option.Option<Snapshot>, Errors.InvalidInput | Tenant.TenantRequired | Errors.StoreError>
  /**
   * Stores a snapshot unless the stream already has a newer one (a higher version, or the same version with a
   * schema version at least as high). Returns whether it was stored.
   */
  readonly save: (
    snapshot: SaveOptions
  ) => Effect.Effect<boolean, Errors.InvalidInput | Tenant.TenantRequired | Errors.StoreError>
  /** Removes a stream's snapshot; removing a missing one succeeds. */
  readonly delete: (
    stream: EventStore.StreamRef
  ) => Effect.Effect<void, Errors.InvalidInput | Tenant.TenantRequired | Errors.StoreError>
  /**
   * Whether the calling fiber is inside a transaction of this store's database. A "background" snapshot is then
   * written inline instead, so it commits or rolls back with the events it covers. Absent: never.
   */
  readonly inTransaction?: Effect.Effect<boolean> | undefined
}>() {}

/**
 * The aggregate's state could not be encoded with its Schema when a snapshot was requested.
 *
 * @since 0.1.0
 * @category errors
 */
export class SnapshotEncodeError extends Schema.TaggedError<SnapshotEncodeError>()("SnapshotEncodeError", {
  streamType: Schema.String,
  streamId: Schema.String,
  version: Schema.Number,
  issue: Schema.String
}) {
  override get message(): string {
    return `Cannot encode the state of ${this.streamType}/${this.streamId}@${this.version}: ${this.issue}`
  }
}

/**
 * Why a load ignored a stored snapshot and replayed events instead.
 *
 * @since 0.1.0
 * @category models
 */
export type MissReason = "schema-version" | "decode" | "read-error" | "ahead-of-stream"

/**
 * Counts snapshots a load could not use, tagged by `aggregate` and `reason` (a `MissReason`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const misses: Metric.Metric.Counter<number> = Metric.counter("eventfold_snapshot_misses", {
  description: "Snapshots ignored on load (stale schema version, undecodable state, ...); the load replayed events",
  incremental: true
})

/**
 * Counts loads that started from a snapshot (and read only the events after it), tagged by `aggregate`. A load of a
 * stream with no snapshot yet is neither a hit nor a miss.
 *
 * @since 0.4.0
 * @category metrics
 */
export const hits: Metric.Metric.Counter<number> = Metric.counter("eventfold_snapshot_hits", {
  description: "Loads that started from a snapshot",
  incremental: true
})

/**
 * Counts snapshot writes after an append that failed and were swallowed, tagged by `aggregate`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const writeFailures: Metric.Metric.Counter<number> = Metric.counter("eventfold_snapshot_write_failures", {
  description: "Snapshot writes that failed; the command still succeeded",
  incremental: true
})

/**
 * Whether an append from version `from` to version `to` crosses a multiple of `every`, so a snapshot is due.
 *
 * @since 0.1.0
 * @category utils
 */
export const crosses = (every: number, from: number, to: number): boolean =>
  Math.floor(to / every) > Math.floor(from / every)

/**
 * Validates a save the same way in every store: a stream reference, a positive integer version, an integer schema
 * version and a JSON state that PostgreSQL's jsonb holds unchanged (see `EventValidation.encodeJson`).
 *
 * @since 0.1.0
 * @category validation
 */
export const prepareSave = (
  options: SaveOptions,
  mode: Tenant.Mode = "single"
): Effect.Effect<PreparedSave, Errors.InvalidInput | Tenant.TenantRequired> =>
  Effect.flatMap(
    Effect.zipRight(EventValidation.validateStream(options), Tenant.resolve(mode, "saveSnapshot", options.tenantId)),
    (tenantId) => {
      const invalid = (reason: string) => Effect.fail(new Errors.InvalidInput({ reason: `snapshot: ${reason}` }))
      if (!Number.isSafeInteger(options.version) || options.version < 1 || options.version > 2_147_483_647) {
        return invalid(`version must be a positive 32-bit integer, got ${options.version}`)
      }
      if (
        !Number.isSafeInteger(options.schemaVersion) || options.schemaVersion < -2_147_483_648 ||
        options.schemaVersion > 2_147_483_647
      ) {
        return invalid(`schemaVersion must be a 32-bit integer, got ${options.schemaVersion}`)
      }
      // The same JSON rules as event payloads, so the state reads back exactly as it was saved.
      return Either.match(EventValidation.encodeJson("snapshot: state", options.state), {
        onLeft: Effect.fail,
        onRight: (stateJson) =>
          Effect.succeed({
            tenantId,
            streamType: options.streamType,
            streamId: options.streamId,
            version: options.version,
            schemaVersion: options.schemaVersion,
            state: options.state,
            stateJson
          })
      })
    }
  )

/**
 * Whether a snapshot at (`version`, `schemaVersion`) replaces the stored one: a later version, or the same version
 * under a higher schema version (a re-snapshot after a state Schema change).
 *
 * @since 0.1.0
 * @category utils
 */
export const replaces = (
  candidate: { readonly version: number; readonly schemaVersion: number },
  stored: { readonly version: number; readonly schemaVersion: number }
): boolean =>
  candidate.version > stored.version ||
  (candidate.version === stored.version && candidate.schemaVersion > stored.schemaVersion)

/**
 * An in-memory `SnapshotStore`. It stores the state's JSON text, so what comes back is what PostgreSQL would return.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<SnapshotStore["Type"]> = Effect.flatMap(
  Tenant.Tenancy,
  (mode) =>
    Effect.sync(() => {
      const snapshots = new Map<string, Omit<Snapshot, "state"> & { readonly stateJson: string }>()
      const keyOf = (stream: EventStore.StreamRef, operation: string) =>
        Effect.zipRight(
          EventValidation.validateStream(stream),
          Effect.map(Tenant.resolve(mode, operation, stream.tenantId), (tenantId) => streamKey(tenantId, stream))
        )
      return SnapshotStore.of({
        load: (stream) =>
          Effect.map(
            keyOf(stream, "loadSnapshot"),
            (key) =>
              Option.map(Option.fromNullable(snapshots.get(key)), ({ stateJson, ...rest }) => ({
                ...rest,
                state: JSON.parse(stateJson)
              }))
          ),
        save: (options) =>
          Effect.map(prepareSave(options, mode), (prepared) => {
            const key = streamKey(prepared.tenantId, prepared)
            const stored = snapshots.get(key)
            if (stored && !replaces(prepared, stored)) return false
            snapshots.set(key, {
              tenantId: prepared.tenantId,
              streamType: prepared.streamType,
              streamId: prepared.streamId,
              version: prepared.version,
              schemaVersion: prepared.schemaVersion,
              stateJson: prepared.stateJson,
              createdAt: new Date()
            })
            return true
          }),
        delete: (stream) =>
          Effect.map(keyOf(stream, "deleteSnapshot"), (key) => {
            snapshots.delete(key)
          })
      })
    })
)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<SnapshotStore> = Layer.effect(SnapshotStore, makeMemory)
