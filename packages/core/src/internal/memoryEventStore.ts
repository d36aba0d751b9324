/** @internal The in-memory EventStore. Every operation runs synchronously, so each append is atomic. */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Errors from "../Errors.js"
import type * as EventStore from "../EventStore.js"
import * as prepare from "../EventValidation.js"
import * as ExpectedVersion from "../ExpectedVersion.js"
import * as Position from "../Position.js"
import type * as RecordedEvent from "../RecordedEvent.js"
import * as Tenant from "../Tenant.js"
import { jsonEquals } from "./json.js"
import { streamKey } from "./streamKey.js"

interface StreamState {
  readonly events: Array<RecordedEvent.RecordedEvent>
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
  Effect.flatMap(Tenant.Tenancy, (mode) => makeFor(mode, hooks))

const makeFor = (mode: Tenant.Mode, hooks: MemoryHooks): Effect.Effect<EventStore.EventStore["Type"]> =>
  Effect.sync(() => {
    const all: Array<RecordedEvent.RecordedEvent> = []
    const streams = new Map<string, StreamState>()
    const byId = new Map<string, RecordedEvent.RecordedEvent>()
    let transactionId = 0n

    const versionOf = (tenantId: string, streamType: string, streamId: string) =>
      streams.get(streamKey(tenantId, { streamType, streamId }))?.events.length ?? 0

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
            const actual = versionOf(tenantId, streamType, streamId)
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
              version: actual + i + 1,
              globalPosition: BigInt(all.length + i + 1),
              transactionId,
              type: e.type,
              schemaVersion: e.schemaVersion,
              payload: JSON.parse(e.payloadJson),
              metadata: JSON.parse(e.metadataJson),
              recordedAt
            }))
            hooks.onAppend?.(recorded)
            const k = streamKey(tenantId, { streamType, streamId })
            let stream = streams.get(k)
            if (!stream) {
              stream = { events: [] }
              streams.set(k, stream)
            }
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

    const readStream = (options: EventStore.ReadStreamOptions) =>
      Effect.gen(function*() {
        yield* prepare.validateStream(options)
        yield* prepare.validateFromVersion(options.fromVersion)
        const limit = yield* prepare.validateLimit(options.limit, Number.MAX_SAFE_INTEGER)
        const tenantId = yield* Tenant.resolve(mode, "readStream", options.tenantId)
        const stream = streams.get(streamKey(tenantId, options))
        if (!stream) {
          return yield* new Errors.StreamNotFound({
            tenantId,
            streamType: options.streamType,
            streamId: options.streamId
          })
        }
        if (options.direction === "backward") {
          const from = Math.min(options.fromVersion ?? stream.events.length, stream.events.length)
          const start = Math.max(0, from - limit)
          return stream.events.slice(start, from).reverse()
        }
        const from = Math.max(1, options.fromVersion ?? 1)
        return stream.events.slice(from - 1, from - 1 + limit)
      })

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
            out.push(e)
          }
          return out
        }
      )

    return {
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
  })

/** @internal */
export const make = makeWith()
