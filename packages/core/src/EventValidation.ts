/**
 * Input validation and encoding shared by every `EventStore` implementation, so that all of them refuse the same
 * input with the same `InvalidInput`. What a store accepts must read back exactly as given, on PostgreSQL too: text
 * there is UTF-8 without NUL, so lone UTF-16 surrogates and NUL characters are refused, limits count UTF-8 bytes, and
 * JSON holds only finite numbers nested at most `MAX_JSON_DEPTH` deep. For store implementers; applications do not
 * need it.
 *
 * @since 0.1.0
 */
/// <reference lib="es2024.string" />
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Fiber from "effect/Fiber"
import * as Tracer from "effect/Tracer"
import * as Errors from "./Errors.js"
import * as EventId from "./EventId.js"
import type * as EventMetadata from "./EventMetadata.js"
import type * as EventStore from "./EventStore.js"
import * as ExpectedVersion from "./ExpectedVersion.js"
import * as telemetry from "./internal/telemetry.js"
import * as Tenant from "./Tenant.js"

/** @since 0.1.0 */
export const MAX_EVENTS_PER_APPEND = 10_000
/**
 * The most UTF-8 bytes in the JSON text of one payload, and of one metadata.
 *
 * @since 0.1.0
 */
export const MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
/**
 * The most UTF-8 bytes in a name kept as PostgreSQL text: stream type, stream id, event type, tenant id, subscription,
 * owner and relay ids. Two of them plus a version (~2 KB) fit in a btree index entry (at most ~2700 bytes).
 *
 * @since 0.2.0
 */
export const MAX_NAME_BYTES = 1000
/**
 * @deprecated The limit counts UTF-8 bytes, not characters: use `MAX_NAME_BYTES`.
 * @since 0.1.0
 */
export const MAX_NAME_LENGTH = MAX_NAME_BYTES
/**
 * The most arrays and objects nested in one another in a payload, metadata or snapshot state. PostgreSQL 15 parses
 * jsonb up to ~14,500 levels at the default `max_stack_depth` (2 MB) and ~700 at its smallest setting; event data
 * nests a handful of levels deep.
 *
 * @since 0.2.0
 */
export const MAX_JSON_DEPTH = 100

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** @since 0.1.0 */
export interface PreparedEvent {
  readonly eventId: string
  readonly idSupplied: boolean
  readonly type: string
  readonly schemaVersion: number
  /** JSON text of the payload, exactly as it will be stored. */
  readonly payloadJson: string
  readonly metadata: EventMetadata.EventMetadata
  readonly metadataJson: string
}

/** @since 0.1.0 */
export interface PreparedAppend {
  /** The stream's tenant, resolved from the explicit `tenantId`, the ambient tenant, or the mode's default. */
  readonly tenantId: string
  readonly streamType: string
  readonly streamId: string
  readonly expectedVersion: ExpectedVersion.ExpectedVersion
  readonly events: ReadonlyArray<PreparedEvent>
  readonly idsSupplied: boolean
}

const invalid = (reason: string) => Effect.fail(new Errors.InvalidInput({ reason }))

/** UTF-8 takes 1 to 3 bytes per UTF-16 unit, so `Buffer.byteLength` is only needed between `max / 3` and `max`. */
const exceedsBytes = (text: string, max: number): boolean =>
  text.length > max || (text.length * 3 > max && Buffer.byteLength(text) > max)

/** Why PostgreSQL would not keep a text as it is: it stores UTF-8 (a lone surrogate becomes U+FFFD) and no NUL. */
const textProblem = (text: string): string | undefined =>
  !text.isWellFormed()
    ? "contains a lone UTF-16 surrogate"
    : text.includes("\u0000")
    ? "contains a NUL character"
    : undefined

const nameProblem = (name: unknown): string | undefined => {
  if (typeof name !== "string" || name.length === 0) return "must be a non-empty string"
  if (exceedsBytes(name, MAX_NAME_BYTES)) return `exceeds ${MAX_NAME_BYTES} UTF-8 bytes`
  return textProblem(name)
}

/**
 * Checks a name the stores keep as text (a subscription, owner or relay id, a stream type, ...): a non-empty string
 * of at most `MAX_NAME_BYTES` UTF-8 bytes, with no NUL character and no lone UTF-16 surrogate. `what` names it in
 * the `InvalidInput` reason.
 *
 * @since 0.2.0
 */
export const validateName = (what: string, name: string): Effect.Effect<void, Errors.InvalidInput> => {
  const problem = nameProblem(name)
  return problem === undefined ? Effect.void : invalid(`${what} ${problem}`)
}

/**
 * Checks a stream reference: its type and id (and tenant, when given) as `validateName` requires.
 *
 * @since 0.1.0
 */
export const validateStream = (stream: EventStore.StreamRef): Effect.Effect<void, Errors.InvalidInput> => {
  if (stream.tenantId !== undefined) {
    const tenantProblem = nameProblem(stream.tenantId)
    if (tenantProblem !== undefined) return invalid(`tenantId ${tenantProblem}`)
  }
  const typeProblem = nameProblem(stream.streamType)
  if (typeProblem !== undefined) return invalid(`streamType ${typeProblem}`)
  const idProblem = nameProblem(stream.streamId)
  if (idProblem !== undefined) return invalid(`streamId ${idProblem}`)
  return Effect.void
}

/**
 * Checks the filters of a feed read: text PostgreSQL compares as given, with no NUL character and no lone surrogate.
 *
 * @since 0.2.0
 */
export const validateFilter = (
  filter: Pick<EventStore.ReadAllOptions, "eventTypes" | "streamTypes">
): Effect.Effect<void, Errors.InvalidInput> => {
  const problem = filterProblem(filter.eventTypes, "eventTypes") ?? filterProblem(filter.streamTypes, "streamTypes")
  return problem === undefined ? Effect.void : invalid(problem)
}

const filterProblem = (values: ReadonlyArray<string> | undefined, what: string): string | undefined => {
  if (values === undefined) return undefined
  for (const value of values) {
    const problem = typeof value === "string" ? textProblem(value) : "must be a string"
    if (problem !== undefined) return `filter ${what} ${problem}`
  }
  return undefined
}

/**
 * The earliest time PostgreSQL's `timestamptz` holds (4714-11-24 BC, UTC), in epoch milliseconds.
 *
 * @since 0.4.0
 */
export const MIN_TIME_MILLIS = -210_866_803_200_000

/**
 * Checks the `since` of a feed read: a valid `Date` that PostgreSQL can compare (from 4714 BC; JavaScript dates end
 * before PostgreSQL's do).
 *
 * @since 0.4.0
 */
export const validateSince = (since: Date | undefined): Effect.Effect<void, Errors.InvalidInput> => {
  if (since === undefined) return Effect.void
  const time = since instanceof Date ? since.getTime() : Number.NaN
  if (Number.isNaN(time)) return invalid(`since must be a valid Date, got ${String(since)}`)
  if (time < MIN_TIME_MILLIS) return invalid(`since must not be before 4714-11-24 BC, got ${since.toISOString()}`)
  return Effect.void
}

/**
 * Checks a feed read (its filters, `since` and limit) and returns its limit, `defaultLimit` when none is given.
 *
 * @since 0.2.0
 */
export const validateReadAll = (
  options: EventStore.ReadAllOptions,
  defaultLimit: number
): Effect.Effect<number, Errors.InvalidInput> =>
  Effect.zipRight(
    Effect.zipRight(validateFilter(options), validateSince(options.since)),
    validateLimit(options.limit, defaultLimit)
  )

/**
 * Replaces what PostgreSQL text cannot hold (NUL characters and lone surrogates) with U+FFFD, for free-form
 * diagnostics such as a parked event's error, which are kept rather than refused.
 *
 * @since 0.2.0
 */
export const sanitizeText = (text: string): string =>
  text.isWellFormed() && !text.includes("\u0000") ? text : text.toWellFormed().replaceAll("\u0000", "\uFFFD")

interface JsonProblem {
  /** Where, as a JSONPath-like suffix of `$`. */
  readonly path: string
  readonly reason: string
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/

const keyPath = (key: string) =>
  IDENTIFIER.test(key) && key.length <= 64
    ? `.${key}`
    : `[${JSON.stringify(key.length <= 64 ? key : key.slice(0, 64) + "…")}]`

const at = (segment: string, problem: JsonProblem): JsonProblem => ({
  path: segment + problem.path,
  reason: problem.reason
})

/** What `JSON.stringify` writes for a property: the result of its `toJSON`, boxed primitives unboxed. */
const serialized = (value: unknown, key: string): unknown => {
  if (typeof value !== "object" || value === null) return value
  let json: unknown = value
  if ("toJSON" in value && typeof value.toJSON === "function") {
    json = value.toJSON(key)
    if (typeof json !== "object" || json === null) return json
  }
  return json instanceof Number ? Number(json) : json instanceof String ? String(json) : json
}

/**
 * One walk over what `JSON.stringify` will write (`value` already through `serialized`): numbers finite, strings
 * and keys without NUL or lone surrogates, at most `MAX_JSON_DEPTH` arrays and objects deep.
 */
const jsonProblem = (value: unknown, depth: number): JsonProblem | undefined => {
  switch (typeof value) {
    case "string": {
      const reason = textProblem(value)
      return reason === undefined ? undefined : { path: "", reason }
    }
    case "number":
      return Number.isFinite(value) ? undefined : { path: "", reason: `is ${value}, which JSON cannot hold` }
    case "object": {
      if (value === null) return undefined
      if (depth >= MAX_JSON_DEPTH) {
        return { path: "", reason: `nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels (or is circular)` }
      }
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const problem = jsonProblem(serialized(value[i], String(i)), depth + 1)
          if (problem !== undefined) return at(`[${i}]`, problem)
        }
        return undefined
      }
      const keys = Object.keys(value)
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!
        const property = serialized(Reflect.get(value, key), key)
        // Undefined, functions and symbols are left out of the JSON, their keys too.
        if (property === undefined || typeof property === "function" || typeof property === "symbol") continue
        const keyReason = textProblem(key)
        if (keyReason !== undefined) return { path: keyPath(key), reason: `has a key that ${keyReason}` }
        const problem = jsonProblem(property, depth + 1)
        if (problem !== undefined) return at(keyPath(key), problem)
      }
      return undefined
    }
    default:
      // Booleans are written as they are; bigints make JSON.stringify throw.
      return undefined
  }
}

/**
 * Encodes a payload, metadata or snapshot state as the JSON text a store keeps, refusing what would not read back
 * the same: non-finite numbers (JSON writes null), NUL characters and lone surrogates in strings or keys (PostgreSQL
 * refuses or alters them), nesting deeper than `MAX_JSON_DEPTH`, and values JSON cannot encode at all. One walk over
 * the value, then one `JSON.stringify`. `what` names the value in the `InvalidInput` reason.
 *
 * @since 0.2.0
 */
export const encodeJson = (what: string, value: unknown): Either.Either<string, Errors.InvalidInput> => {
  try {
    const problem = jsonProblem(serialized(value, ""), 0)
    if (problem !== undefined) {
      return Either.left(
        new Errors.InvalidInput({
          reason: problem.path === "" ? `${what} ${problem.reason}` : `${what} at $${problem.path} ${problem.reason}`
        })
      )
    }
    const json = JSON.stringify(value)
    if (json === undefined) return Either.left(new Errors.InvalidInput({ reason: `${what} is not JSON-serializable` }))
    return Either.right(json)
  } catch (error) {
    return Either.left(new Errors.InvalidInput({ reason: `${what} is not JSON-serializable: ${String(error)}` }))
  }
}

/**
 * Validates and encodes an append, and resolves its tenant (see `Tenant.resolve`). Each event's metadata must name
 * no other tenant than the append's, and is stamped with it; in `single` mode with no tenant given, metadata is kept
 * as it is (a tenant there is a label only, as before tenancy).
 *
 * When a tracer that exports spans is installed (`@effect/opentelemetry`, ...), each event's metadata also records
 * the current span (the store's `EventStore.append`) as a W3C `traceparent` header (`EventMetadata.traceHeader`),
 * unless the caller set one, or it would take the metadata past `MAX_PAYLOAD_BYTES`. Idempotent repeats compare
 * type and payload, never metadata, so a repeat traced differently is still the same append.
 *
 * @since 0.1.0
 */
export const prepareAppend = (
  options: EventStore.AppendOptions,
  mode: Tenant.Mode = "single"
): Effect.Effect<PreparedAppend, Errors.InvalidInput | Tenant.TenantRequired> =>
  Effect.flatMap(
    Tenant.resolve(mode, "append", options.tenantId),
    (tenantId) => Effect.withFiberRuntime((fiber) => prepare(options, mode, tenantId, traceparentOf(fiber)))
  )

// Effect's built-in tracer records spans nowhere: with it installed nobody listens, and no trace context is recorded.
const nativeTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/** The current span's W3C `traceparent` when a tracer that exports spans is installed: one step on the hot path. */
const traceparentOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): string | undefined => {
  if (fiber.currentTracer === nativeTracer) return undefined
  const span = fiber.currentSpan
  return span === undefined ? undefined : telemetry.formatTraceparent(span)
}

const prepare = (
  options: EventStore.AppendOptions,
  mode: Tenant.Mode,
  tenantId: string,
  traceparent: string | undefined
): Effect.Effect<PreparedAppend, Errors.InvalidInput> =>
  Effect.suspend(() => {
    const checkTenant = mode === "multi" || tenantId !== Tenant.defaultId
    const { events } = options
    if (!Array.isArray(events) || events.length === 0) return invalid("an append needs at least one event")
    if (events.length > MAX_EVENTS_PER_APPEND) {
      return invalid(`an append may hold at most ${MAX_EVENTS_PER_APPEND} events, got ${events.length}`)
    }
    const expectedVersion = options.expectedVersion ?? ExpectedVersion.Any
    if (
      expectedVersion._tag === "Exact" &&
      !(Number.isSafeInteger(expectedVersion.version) && expectedVersion.version >= 0)
    ) {
      return invalid(`expected version must be a non-negative integer, got ${expectedVersion.version}`)
    }
    return Effect.flatMap(validateStream(options), () => {
      const prepared: Array<PreparedEvent> = []
      const seen = new Set<string>()
      let idsSupplied = false
      for (let i = 0; i < events.length; i++) {
        const event = events[i]!
        const typeProblem = nameProblem(event.type)
        if (typeProblem !== undefined) return invalid(`event ${i}: type ${typeProblem}`)
        const schemaVersion = event.schemaVersion ?? 1
        if (!Number.isSafeInteger(schemaVersion) || schemaVersion < 1 || schemaVersion > 2_147_483_647) {
          return invalid(`event ${i}: schemaVersion must be a positive integer`)
        }
        let eventId: string
        if (event.eventId !== undefined) {
          if (typeof event.eventId !== "string" || !UUID.test(event.eventId)) {
            return invalid(`event ${i}: eventId must be a UUID, got ${JSON.stringify(event.eventId)}`)
          }
          eventId = event.eventId.toLowerCase()
          idsSupplied = true
        } else {
          eventId = EventId.unsafeMake()
        }
        if (seen.has(eventId)) return invalid(`event ${i}: eventId ${eventId} appears twice in one append`)
        seen.add(eventId)
        const payloadJson = encodeJson(`event ${i}: payload`, event.payload)
        if (Either.isLeft(payloadJson)) return Effect.fail(payloadJson.left)
        if (exceedsBytes(payloadJson.right, MAX_PAYLOAD_BYTES)) {
          return invalid(`event ${i}: payload exceeds ${MAX_PAYLOAD_BYTES} UTF-8 bytes of JSON`)
        }
        let metadata = event.metadata ?? {}
        if (checkTenant && typeof metadata === "object" && metadata !== null) {
          const stamped = Tenant.stampMetadata(tenantId, metadata)
          if (Either.isLeft(stamped)) return invalid(`event ${i}: ${stamped.left}`)
          metadata = stamped.right
        }
        let metadataJson = encodeJson(`event ${i}: metadata`, metadata)
        if (Either.isLeft(metadataJson)) return Effect.fail(metadataJson.left)
        // Stores read metadata back as an object; an array, string or number would make every later read fail.
        if (metadataJson.right.charCodeAt(0) !== 123) return invalid(`event ${i}: metadata must be a JSON object`)
        if (exceedsBytes(metadataJson.right, MAX_PAYLOAD_BYTES)) {
          return invalid(`event ${i}: metadata exceeds ${MAX_PAYLOAD_BYTES} UTF-8 bytes of JSON`)
        }
        if (traceparent !== undefined) {
          // Tracing never makes an append fail: the header is left out where it would not fit.
          const traced = telemetry.withTraceparent(metadata, traceparent)
          const tracedJson = traced === metadata ? metadataJson : encodeJson(`event ${i}: metadata`, traced)
          if (Either.isRight(tracedJson) && !exceedsBytes(tracedJson.right, MAX_PAYLOAD_BYTES)) {
            metadata = traced
            metadataJson = tracedJson
          }
        }
        // The tenant id is also a column under a btree index, and feed filters compare it as text.
        const metadataTenant: unknown = metadata.tenantId
        if (
          metadataTenant !== undefined &&
          (typeof metadataTenant !== "string" || exceedsBytes(metadataTenant, MAX_NAME_BYTES))
        ) {
          return invalid(`event ${i}: metadata.tenantId must be a string of at most ${MAX_NAME_BYTES} UTF-8 bytes`)
        }
        prepared.push({
          eventId,
          idSupplied: event.eventId !== undefined,
          type: event.type,
          schemaVersion,
          payloadJson: payloadJson.right,
          metadata,
          metadataJson: metadataJson.right
        })
      }
      return Effect.succeed<PreparedAppend>({
        tenantId,
        streamType: options.streamType,
        streamId: options.streamId,
        expectedVersion,
        events: prepared,
        idsSupplied
      })
    })
  })

/** @since 0.1.0 */
export const validateLimit = (
  limit: number | undefined,
  fallback: number
): Effect.Effect<number, Errors.InvalidInput> => {
  if (limit === undefined) return Effect.succeed(fallback)
  if (!Number.isSafeInteger(limit) || limit < 1) return invalid(`limit must be a positive integer, got ${limit}`)
  return Effect.succeed(limit)
}

/** @since 0.1.0 */
export const validateFromVersion = (from: number | undefined): Effect.Effect<void, Errors.InvalidInput> =>
  from === undefined || (Number.isSafeInteger(from) && from >= 0)
    ? Effect.void
    : invalid(`fromVersion must be a non-negative integer, got ${from}`)
