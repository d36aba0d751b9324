/** @internal The in-memory EventStore. Every operation runs synchronously, so each append is atomic. */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Errors from "../Errors.js"
import type * as EventStore from "../EventStore.js"
import * as prepare from "../EventValidation.js"
import * as ExpectedVersion from "../ExpectedVersion.js"
import * as Position from "../Position.js"
import type * as RecordedEvent from "../RecordedEvent.js"
import * as StreamLifecycle from "../StreamLifecycle.js"
import * as Tenant from "../Tenant.js"
import { instrument } from "./eventStoreTelemetry.js"
import { jsonEquals } from "./json.js"
import * as streamColumns from "./streamColumns.js"
import { streamKey } from "./streamKey.js"

interface StreamState {
  /** The stored events of the stream, from `firstVersion` (truncation removes older ones). */
  events: Array<RecordedEvent.RecordedEvent>
  /** The version of its last event, stored or not. */
  version: number
  /** The first version reads return. */
  firstVersion: number
  archived: boolean
  /** A tombstone. */
  deleted: boolean
  /** Deleted with recreate allowed: reads see no stream until the next append. */
  softDeleted: boolean
  /** The version its current life began after (the version it had when last soft-deleted). */
  origin: number
}

/** @internal The in-memory event store and its lifecycle operations, over the same streams. */
export interface MemoryStore {
  readonly store: EventStore.EventStore["Type"]
  readonly lifecycle: StreamLifecycle.StreamLifecycle["Type"]
}

/** @internal */
export interface MemoryHooks {
  /** Runs inside the append, after its events are recorded; a failure undoes the append. */
  readonly onAppend?: (events: ReadonlyArray<RecordedEvent.RecordedEvent>) => void
  /** Runs after an append's events are visible in the feed (wakes subscriptions). */
  readonly onCommitted?: (events: ReadonlyArray<RecordedEvent.RecordedEvent>) => void
}

/** @internal */
export const makeWith = (hooks: MemoryHooks = {}): Effect.Effect<EventStore.EventStore["Type"]> =>
  Effect.map(makeStoreWith(hooks), (made) => made.store)

/** @internal */
export const makeStoreWith = (hooks: MemoryHooks = {}): Effect.Effect<MemoryStore> =>
  Effect.flatMap(Tenant.Tenancy, (mode) => makeFor(mode, hooks))

const makeFor = (mode: Tenant.Mode, hooks: MemoryHooks): Effect.Effect<MemoryStore> =>
  Effect.sync(() => {
    const all: Array<RecordedEvent.RecordedEvent> = []
    const streams = new Map<string, StreamState>()
    const byId = new Map<string, RecordedEvent.RecordedEvent>()
    let transactionId = 0n

    /** The version expected-version checks see: 0 for a missing or soft-deleted stream. */
    const versionOf = (tenantId: string, streamType: string, streamId: string) => {
      const stream = streams.get(streamKey(tenantId, { streamType, streamId }))
      return stream === undefined || stream.softDeleted ? 0 : stream.version
    }

    const sameStream = (found: RecordedEvent.RecordedEvent, req: prepare.PreparedAppend) =>
      found.tenantId === req.tenantId && found.streamType === req.streamType && found.streamId === req.streamId

    const append = (options: EventStore.AppendOptions) =>
      Effect.flatMap(
        prepare.prepareAppend(options, mode),
        (req) =>
          Effect.suspend((): Effect.Effect<EventStore.AppendResult, EventStore.AppendError> => {
            const { streamId, streamType, tenantId } = req
            if (req.idsSupplied) {
              const existing = req.events.flatMap((e) => {
                const found = byId.get(e.eventId)
                return found ? [[e, found] as const] : []
              })
              if (existing.length > 0) {
                const same = existing.length === req.events.length && existing.every(([e, found]) =>
                  sameStream(found, req) && found.type === e.type &&
                  jsonEquals(found.payload, JSON.parse(e.payloadJson))
                )
                if (!same) {
                  const first = existing.find(([e, found]) =>
                    !(sameStream(found, req) && found.type === e.type &&
                      jsonEquals(found.payload, JSON.parse(e.payloadJson)))
                  ) ?? existing[0]!
                  return Effect.fail(new Errors.DuplicateEvent({ eventId: first[0].eventId, streamType, streamId }))
                }
                const last = existing[existing.length - 1]![1]
                return Effect.succeed({
                  tenantId,
                  streamType,
                  streamId,
                  version: last.version,
                  eventIds: req.events.map((e) => e.eventId),
                  position: Position.make(last.transactionId, last.globalPosition),
                  idempotent: true
                })
              }
            }
            const k = streamKey(tenantId, { streamType, streamId })
            const current = streams.get(k)
            if (current?.deleted) {
              return Effect.fail(new Errors.StreamDeleted({ tenantId, streamType, streamId }))
            }
            if (current?.archived) {
              return Effect.fail(new Errors.StreamArchived({ tenantId, streamType, streamId }))
            }
            const actual = versionOf(tenantId, streamType, streamId)
            // A soft-deleted stream is recreated: its versions continue after the old ones.
            const base = current?.version ?? 0
            if (!ExpectedVersion.matches(req.expectedVersion, actual)) {
              return Effect.fail(
                new Errors.ConcurrencyConflict({
                  tenantId,
                  streamType,
                  streamId,
                  expected: req.expectedVersion,
                  actual
                })
              )
            }
            transactionId += 1n
            const recordedAt = new Date()
            const recorded = req.events.map((e, i): RecordedEvent.RecordedEvent => ({
              eventId: e.eventId,
              tenantId,
              streamType,
              streamId,
              version: base + i + 1,
              globalPosition: BigInt(all.length + i + 1),
              transactionId,
              type: e.type,
              schemaVersion: e.schemaVersion,
              payload: JSON.parse(e.payloadJson),
              metadata: JSON.parse(e.metadataJson),
              recordedAt
            }))
            hooks.onAppend?.(recorded)
            let stream = current
            if (!stream) {
              stream = {
                events: [],
                version: 0,
                firstVersion: 1,
                archived: false,
                deleted: false,
                softDeleted: false,
                origin: 0
              }
              streams.set(k, stream)
            }
            stream.softDeleted = false
            stream.version = base + recorded.length
            for (const event of recorded) {
              stream.events.push(event)
              all.push(event)
              byId.set(event.eventId, event)
            }
            hooks.onCommitted?.(recorded)
            const last = recorded[recorded.length - 1]!
            return Effect.succeed({
              tenantId,
              streamType,
              streamId,
              version: last.version,
              eventIds: recorded.map((e) => e.eventId),
              position: Position.make(last.transactionId, last.globalPosition),
              idempotent: false
            })
          })
      )

    // The events a read selects; a missing stream is `missing`, so that a column read makes no error for it.
    const readEvents = <Missing>(
      options: EventStore.ReadStreamOptions,
      missing: (ref: EventStore.StreamRef) => Missing
    ) =>
      Effect.gen(function*() {
        yield* prepare.validateStream(options)
        yield* prepare.validateFromVersion(options.fromVersion)
        const limit = yield* prepare.validateLimit(options.limit, Number.MAX_SAFE_INTEGER)
        const tenantId = yield* Tenant.resolve(mode, "readStream", options.tenantId)
        const stream = streams.get(streamKey(tenantId, options))
        const ref = { tenantId, streamType: options.streamType, streamId: options.streamId }
        if (!stream || stream.softDeleted) return { missing: missing(ref) }
        if (stream.deleted) return yield* new Errors.StreamDeleted(ref)
        if (stream.archived && options.includeArchived !== true) return yield* new Errors.StreamArchived(ref)
        // Stored events are versions firstVersion..version, less any removed by expiry: select by version.
        const events = stream.events
        if (options.direction === "backward") {
          const from = Math.min(options.fromVersion ?? stream.version, stream.version)
          const out: Array<RecordedEvent.RecordedEvent> = []
          for (let i = events.length - 1; i >= 0 && out.length < limit; i--) {
            const version = events[i]!.version
            if (version < stream.firstVersion) break
            if (version <= from) out.push(events[i]!)
          }
          return out
        }
        // Soft-deleted events stay stored below firstVersion, hidden from reads.
        const from = Math.max(stream.firstVersion, options.fromVersion ?? 1)
        const out: Array<RecordedEvent.RecordedEvent> = []
        for (let i = 0; i < events.length && out.length < limit; i++) {
          if (events[i]!.version >= from) out.push(events[i]!)
        }
        return out
      })

    const notFound = (ref: EventStore.StreamRef) => new Errors.StreamNotFound(ref)
    const readStream = streamColumns.attach(
      (options: EventStore.ReadStreamOptions) =>
        Effect.flatMap(readEvents(options, notFound), (read) =>
          Array.isArray(read) ? Effect.succeed(read) : Effect.fail(read.missing)),
      (options) => {
        const { events, recordedAt, ...rest } = options
        return Effect.map(
          readEvents(rest, () =>
            streamColumns.missing),
          (read) => Array.isArray(read) ? streamColumns.fromEvents(read, { recordedAt, events }) : read.missing
        )
      }
    )

    // The first index whose position is after `after`; positions grow monotonically in memory.
    const firstAfter = (after: Position.Position) => {
      let lo = 0
      let hi = all.length
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if (Position.isAfter(Position.make(all[mid]!.transactionId, all[mid]!.globalPosition), after)) {
          hi = mid
        } else lo = mid + 1
      }
      return lo
    }

    const readAll = (options: EventStore.ReadAllOptions = {}) =>
      Effect.map(
        Effect.all([prepare.validateReadAll(options, 1000), Tenant.resolveScope(mode, "readAll", options)]),
        ([limit, scope]) => {
          const eventTypes = options.eventTypes ? new Set(options.eventTypes) : undefined
          const streamTypes = options.streamTypes ? new Set(options.streamTypes) : undefined
          const since = options.since?.getTime()
          const out: Array<RecordedEvent.RecordedEvent> = []
          for (let i = firstAfter(options.after ?? Position.start); i < all.length && out.length < limit; i++) {
            const e = all[i]!
            if (eventTypes && !eventTypes.has(e.type)) {
              continue
            }
            if (streamTypes && !streamTypes.has(e.streamType)) {
              continue
            }
            if (scope !== Tenant.allScope && e.tenantId !== scope) {
              continue
            }
            if (since !== undefined && e.recordedAt.getTime() < since) {
              continue
            }
            if (streamTypes && options.includeArchived !== true && streams.get(streamKey(e.tenantId, e))?.archived) {
              continue
            }
            out.push(e)
          }
          return out
        }
      )

    const store: EventStore.EventStore["Type"] = {
      tenancy: mode,
      append,
      readStream,
      readAll,
      headPosition: Effect.sync(() => {
        const last = all[all.length - 1]
        return last ? Position.make(last.transactionId, last.globalPosition) : Position.start
      }),
      streamVersion: (stream) =>
        Effect.zipRight(
          prepare.validateStream(stream),
          Effect.map(
            Tenant.resolve(mode, "streamVersion", stream.tenantId),
            (tenantId) => versionOf(tenantId, stream.streamType, stream.streamId)
          )
        ),
      eventExists: (eventId) =>
        Effect.map(Tenant.CurrentTenant, (tenant) => {
          const found = byId.get(eventId.toLowerCase())
          return found !== undefined && (Option.isNone(tenant) || found.tenantId === tenant.value)
        })
    }

    /** Removes events from the store: from their stream, the feed and the id index. */
    const remove = (stream: StreamState, doomed: (e: RecordedEvent.RecordedEvent) => boolean): number => {
      const gone = stream.events.filter(doomed)
      if (gone.length === 0) return 0
      const ids = new Set(gone.map((e) => e.eventId))
      stream.events = stream.events.filter((e) => !ids.has(e.eventId))
      for (const id of ids) byId.delete(id)
      const kept = all.filter((e) => !ids.has(e.eventId))
      all.length = 0
      for (const e of kept) all.push(e)
      return gone.length
    }

    const existing = (operation: string, ref: EventStore.StreamRef) =>
      Effect.flatMap(
        Effect.zipRight(prepare.validateStream(ref), Tenant.resolve(mode, operation, ref.tenantId)),
        (tenantId) => {
          const stream = streams.get(streamKey(tenantId, ref))
          const full = { tenantId, streamType: ref.streamType, streamId: ref.streamId }
          return stream === undefined
            ? Effect.fail(new Errors.StreamNotFound(full))
            : Effect.succeed({ stream, ref: full })
        }
      )

    const setArchived = (operation: string, archived: boolean) => (ref: EventStore.StreamRef) =>
      Effect.flatMap(existing(operation, ref), ({ ref, stream }) => {
        if (stream.deleted) return Effect.fail(new Errors.StreamDeleted(ref))
        stream.archived = archived
        return Effect.void
      })

    const lifecycle: StreamLifecycle.StreamLifecycle["Type"] = {
      info: (ref) =>
        Effect.flatMap(
          Effect.zipRight(prepare.validateStream(ref), Tenant.resolve(mode, "info", ref.tenantId)),
          (tenantId) =>
            Effect.sync(() =>
              Option.map(Option.fromNullable(streams.get(streamKey(tenantId, ref))), (stream) => ({
                tenantId,
                streamType: ref.streamType,
                streamId: ref.streamId,
                version: stream.version,
                state: stream.deleted
                  ? "deleted" as const
                  : stream.softDeleted
                  ? "soft-deleted" as const
                  : stream.archived
                  ? "archived" as const
                  : "active" as const,
                firstVersion: stream.firstVersion,
                origin: stream.origin
              }))
            )
        ),
      archive: setArchived("archive", true),
      unarchive: setArchived("unarchive", false),
      delete: (ref, options) =>
        Effect.flatMap(existing("delete", ref), ({ ref, stream }) => {
          // A tombstone is for good: tombstoning again changes nothing, a soft delete is refused.
          if (stream.deleted) {
            return options?.recreate === true ? Effect.fail(new Errors.StreamDeleted(ref)) : Effect.void
          }
          return Effect.sync(() => {
            if (options?.recreate === true) {
              if (!stream.softDeleted) {
                stream.softDeleted = true
                stream.firstVersion = stream.version + 1
                stream.origin = stream.version
              }
              stream.archived = false
            } else {
              stream.deleted = true
            }
          })
        }),
      truncateBefore: (ref, version) =>
        Effect.flatMap(existing("truncateBefore", ref), ({ ref, stream }): Effect.Effect<
          number,
          Errors.StreamDeleted | Errors.InvalidInput
        > => {
          if (stream.deleted) return Effect.fail(new Errors.StreamDeleted(ref))
          if (!Number.isSafeInteger(version) || version < 1 || version > stream.version + 1) {
            return Effect.fail(
              new Errors.InvalidInput({
                reason: `truncateBefore: version must be an integer from 1 to ${stream.version + 1}, got ${version}`
              })
            )
          }
          return Effect.sync(() => {
            stream.firstVersion = Math.max(stream.firstVersion, version)
            return remove(stream, (e) => e.version < version)
          })
        }),
      expire: (options) =>
        Effect.gen(function*() {
          const maxAge = yield* StreamLifecycle.validateExpire(options)
          const scope = yield* Tenant.resolveScope(mode, "expire", options)
          const cutoff = Date.now() - maxAge
          const types = new Set(options.streamTypes)
          let deleted = 0
          for (const stream of streams.values()) {
            const first = stream.events[0]
            if (first === undefined || !types.has(first.streamType)) continue
            if (scope !== Tenant.allScope && first.tenantId !== scope) continue
            deleted += remove(stream, (e) => e.recordedAt.getTime() < cutoff)
            stream.firstVersion = stream.events[0]?.version ?? stream.version + 1
          }
          return deleted
        })
    }

    return { store: instrument(store), lifecycle }
  })

/** @internal */
export const make = makeWith()
