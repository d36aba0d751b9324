/**
 * @internal Column readers: a store's fast way to read a stream for a fold, attached to its very `readStream`
 * function, so that a decorator which replaces `readStream` (to decrypt, route, filter) is never bypassed.
 */
import * as Effect from "effect/Effect"
import type * as Errors from "../Errors.js"
import type * as EventStore from "../EventStore.js"
import type * as RecordedEvent from "../RecordedEvent.js"

type ReadStream = EventStore.EventStore["Type"]["readStream"]

const readers = new WeakMap<ReadStream, EventStore.ReadColumns>()

/** @internal */
export const attach = <F extends ReadStream>(readStream: F, read: EventStore.ReadColumns): F => {
  readers.set(readStream, read)
  return readStream
}

/** @internal The column reader attached to this `readStream`, if any. */
export const readerOf = (readStream: ReadStream): EventStore.ReadColumns | undefined => readers.get(readStream)

const none: ReadonlyArray<Date> = []

/** @internal Columns over recorded events, as every column reader must return them for the same options. */
export const fromEvents = (
  events: ReadonlyArray<RecordedEvent.RecordedEvent>,
  options: Pick<EventStore.ReadColumnsOptions, "recordedAt" | "events">
): EventStore.StreamColumns => {
  const n = events.length
  const versions = new Array<number>(n)
  const types = new Array<string>(n)
  const schemaVersions = new Array<number>(n)
  const payloads = new Array<unknown>(n)
  for (let i = 0; i < n; i++) {
    const event = events[i]!
    versions[i] = event.version
    types[i] = event.type
    schemaVersions[i] = event.schemaVersion
    payloads[i] = event.payload
  }
  return {
    exists: true,
    versions,
    types,
    schemaVersions,
    payloads,
    recordedAt: options.recordedAt === true ? events.map((e) => e.recordedAt) : none,
    event: options.events === true ? (i) => events[i]! : undefined
  }
}

/** @internal The columns of a stream that does not exist. */
export const missing: EventStore.StreamColumns = {
  exists: false,
  versions: [],
  types: [],
  schemaVersions: [],
  payloads: [],
  recordedAt: none,
  event: undefined
}

const isNotFound = (e: EventStore.ReadStreamError): e is Errors.StreamNotFound => e._tag === "StreamNotFound"

/** @internal `readStreamColumns`: the attached reader, else `readStream` itself. */
export const read = (
  store: EventStore.EventStore["Type"],
  options: EventStore.ReadColumnsOptions
): Effect.Effect<EventStore.StreamColumns, EventStore.ReadColumnsError> => {
  const reader = readers.get(store.readStream)
  if (reader !== undefined) return reader(options)
  const { events, recordedAt, ...rest } = options
  return store.readStream({ ...rest, direction: "forward" }).pipe(
    Effect.map((read) => fromEvents(read, { recordedAt, events })),
    Effect.catchIf(isNotFound, () => Effect.succeed(missing))
  )
}
