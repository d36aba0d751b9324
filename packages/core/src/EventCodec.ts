/**
 * Versioned events. Stored events never change, but their shapes do: an `EventCodec` pairs the Schema of an event
 * union (the current shapes) with each type's history, its upcasters and its former names, and turns any stored
 * event, of any version and under any name it was ever written with, into the current type.
 *
 * - **Writing** encodes with the current Schema and records the type's current version in the event's
 *   `schemaVersion` (1 for a type with no upcasters).
 * - **Reading** looks the stored type up (a current type or a former name), applies the upcasters from the stored
 *   version to the current one, in order, over the encoded JSON, then decodes once with the current Schema.
 *
 * Upcasters are pure functions over the encoded payload (without `_tag`): the first takes version 1 to 2, the next 2
 * to 3, and so on; the current version of a type is the number of its upcasters plus one. Events written before a
 * type had upcasters are version 1. Keep every upcaster forever: events of every version stay in the store.
 *
 * ```ts
 * const Order = Aggregate.make({
 *   name: "Order",
 *   decider,
 *   events: OrderEvent, // PriceChanged is { amountCents: number; currency: string } today
 *   evolution: {
 *     PriceChanged: {
 *       formerNames: ["PriceUpdated"],
 *       upcasters: [
 *         (v1) => ({ amountCents: Math.round(Number(v1.amount) * 100) }), // v1 -> v2
 *         (v2) => ({ ...v2, currency: "EUR" }) // v2 -> v3
 *       ]
 *     }
 *   }
 * })
 * ```
 *
 * @since 0.4.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as Errors from "./Errors.js"
import type * as RecordedEvent from "./RecordedEvent.js"

/**
 * An encoded payload: a JSON object, without the `_tag`.
 *
 * @since 0.4.0
 * @category models
 */
export type Payload = { readonly [key: string]: unknown }

/**
 * Turns the payload of one version into the payload of the next. `event` is the stored event (its metadata, time,
 * stream), for an upcaster that needs more than the payload. It must be pure: it runs on every read.
 *
 * @since 0.4.0
 * @category models
 */
export type Upcaster = (payload: Payload, event: RecordedEvent.RecordedEvent) => Payload

/**
 * The history of one event type.
 *
 * @since 0.4.0
 * @category models
 */
export interface TypeEvolution {
  /** From each older version to the next, in order: `[v1 -> v2, v2 -> v3]` makes version 3 current. */
  readonly upcasters?: ReadonlyArray<Upcaster> | undefined
  /** The names this type was stored under before it was renamed; read as this type, at the version they carry. */
  readonly formerNames?: ReadonlyArray<string> | undefined
}

/**
 * The evolution of an event union, per current type. Types not listed are at version 1 and were never renamed.
 *
 * @since 0.4.0
 * @category models
 */
export type Evolution<Event extends { readonly _tag: string }> = {
  readonly [Tag in Event["_tag"]]?: TypeEvolution
}

/**
 * An event encoded for the store: its current type, payload and version.
 *
 * @since 0.4.0
 * @category models
 */
export interface Encoded {
  readonly type: string
  readonly payload: unknown
  readonly schemaVersion: number
}

/**
 * What decoding reads of a stored event (a `RecordedEvent` is one): where it is, its stored type and version, and
 * its encoded payload.
 *
 * @since 0.4.0
 * @category models
 */
export interface Stored {
  readonly streamType: string
  readonly streamId: string
  readonly version: number
  readonly type: string
  readonly schemaVersion: number
  readonly payload: unknown
}

/**
 * @since 0.4.0
 * @category models
 */
export interface EventCodec<Event extends { readonly _tag: string }, EventEncoded = unknown> {
  /** The current Schema of the union. */
  readonly schema: Schema.Schema<Event, EventEncoded>
  /** The current types, read from the Schema (empty when the Schema does not expose its tags). */
  readonly types: ReadonlyArray<Event["_tag"]>
  /** The current version of a current type (1 when it has no upcasters). */
  readonly versionOf: (type: Event["_tag"]) => number
  /** The names the given current types are stored under: each type and its former names. All types when omitted. */
  readonly storedNames: (types?: ReadonlyArray<Event["_tag"]>) => ReadonlyArray<string>
  /** The current type a stored name reads as: itself, the type it was renamed to, or undefined when unknown. */
  readonly resolve: (storedName: string) => Event["_tag"] | undefined
  readonly encode: (event: Event) => Either.Either<Encoded, Errors.EventEncodeError>
  /** Upcasts a stored event to the current version of its current type, without decoding it. */
  readonly upcast: (
    event: RecordedEvent.RecordedEvent
  ) => Either.Either<{ readonly type: Event["_tag"]; readonly payload: Payload }, Errors.EventDecodeError>
  readonly decode: (event: RecordedEvent.RecordedEvent) => Either.Either<Event, Errors.EventDecodeError>
  /**
   * `decode` for a reader that holds no `RecordedEvent` per event (a fold over `EventStore.readStreamColumns`): it
   * reads `stored` only while it runs, and calls `event` for the whole event only when an upcaster needs it (without
   * `event`, such an event fails with reason `upcast`).
   */
  readonly decodeStored: (
    stored: Stored,
    event?: () => RecordedEvent.RecordedEvent
  ) => Either.Either<Event, Errors.EventDecodeError>
}

/**
 * @since 0.4.0
 * @category models
 */
export declare namespace EventCodec {
  /** Any codec. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export type Any = EventCodec<any, any>
}

const isRecord = (u: unknown): u is Payload => typeof u === "object" && u !== null && !Array.isArray(u)

/** The `_tag` literal of a struct or class member, if it has one. */
const tagOf = (ast: SchemaAST.AST): string | undefined => {
  try {
    const tag = SchemaAST.getPropertySignatures(ast).find((p) => p.name === "_tag")?.type
    return tag && SchemaAST.isLiteral(tag) && typeof tag.literal === "string" ? tag.literal : undefined
  } catch {
    return undefined
  }
}

/**
 * The members of an event union Schema with their tags: one per member of a `Schema.Union` of tagged structs or
 * classes, or the single member of a tagged struct or class. Undefined when some member has no literal `_tag`.
 *
 * @since 0.4.0
 * @category utils
 */
export const members = (
  schema: Schema.Schema.Any
): ReadonlyArray<{ readonly tag: string; readonly schema: Schema.Schema.Any }> | undefined => {
  const asts = SchemaAST.isUnion(schema.ast) ? schema.ast.types : [schema.ast]
  const found: Array<{ readonly tag: string; readonly schema: Schema.Schema.Any }> = []
  for (const ast of asts) {
    const tag = tagOf(ast)
    if (tag === undefined) return undefined
    found.push({ tag, schema: Schema.make(ast) })
  }
  return found
}

/**
 * Builds a codec. Throws a `TypeError` at construction for an evolution that cannot be right: an entry for a type
 * the Schema does not have, a former name that is a current type or is claimed twice, an upcaster that is not a
 * function. `streamType` names the codec in its errors (an aggregate passes its name).
 *
 * @since 0.4.0
 * @category constructors
 */
export const make = <Event extends { readonly _tag: string }, EventEncoded>(
  schema: Schema.Schema<Event, EventEncoded>,
  evolution: Evolution<Event> = {},
  streamType = "events"
): EventCodec<Event, EventEncoded> => {
  const where = `EventCodec(${streamType})`
  const found = members(schema)
  const types = (found?.map((m) => m.tag) ?? []) as ReadonlyArray<Event["_tag"]>
  const current = new Set<string>(types)
  const upcasters = new Map<string, ReadonlyArray<Upcaster>>()
  const formerNames = new Map<string, ReadonlyArray<string>>()
  const renamed = new Map<string, string>()
  for (const [type, entry] of Object.entries(evolution) as Array<[string, TypeEvolution | undefined]>) {
    if (entry === undefined) continue
    if (found && !current.has(type)) {
      throw new TypeError(`${where}: evolution of "${type}", which is not a type of the Schema`)
    }
    const steps = entry.upcasters ?? []
    steps.forEach((step, i) => {
      if (typeof step !== "function") {
        throw new TypeError(`${where}: upcaster ${i + 1} of "${type}" (v${i + 1} -> v${i + 2}) is not a function`)
      }
    })
    upcasters.set(type, steps)
    const names = entry.formerNames ?? []
    for (const name of names) {
      if (typeof name !== "string" || name.length === 0) {
        throw new TypeError(`${where}: a former name of "${type}" must be a non-empty string`)
      }
      if (current.has(name) || name === type) {
        throw new TypeError(`${where}: "${name}", a former name of "${type}", is a current type`)
      }
      const other = renamed.get(name)
      if (other !== undefined) {
        throw new TypeError(`${where}: "${name}" is a former name of both "${other}" and "${type}"`)
      }
      renamed.set(name, type)
    }
    formerNames.set(type, names)
  }

  const encodeEither = Schema.encodeEither(schema)
  const decodeEither = Schema.decodeUnknownEither(schema)
  const versionOf = (type: string) => (upcasters.get(type)?.length ?? 0) + 1
  const resolve = (name: string): Event["_tag"] | undefined =>
    current.has(name) ? name : (renamed.get(name) ?? (found ? undefined : name))

  const encode = (event: Event): Either.Either<Encoded, Errors.EventEncodeError> => {
    const result = encodeEither(event)
    if (Either.isLeft(result)) {
      return Either.left(
        new Errors.EventEncodeError({
          streamType,
          type: String(event?._tag),
          issue: ParseResult.TreeFormatter.formatErrorSync(result.left)
        })
      )
    }
    const { _tag, ...payload } = result.right as { readonly _tag: string }
    return Either.right({ type: _tag, payload, schemaVersion: versionOf(_tag) })
  }

  const failure = (event: Stored, reason: Errors.DecodeFailure, issue: string) =>
    Either.left(
      new Errors.EventDecodeError({
        streamType: event.streamType,
        streamId: event.streamId,
        version: event.version,
        type: event.type,
        issue,
        reason,
        schemaVersion: event.schemaVersion
      })
    )

  // `whole` is the event itself when the caller has it, else a way to build it (only an upcaster needs it).
  const upcastStored = (
    event: Stored,
    whole: RecordedEvent.RecordedEvent | (() => RecordedEvent.RecordedEvent) | undefined
  ): Either.Either<{ readonly type: Event["_tag"]; readonly payload: Payload }, Errors.EventDecodeError> => {
    const type = resolve(event.type)
    if (type === undefined) {
      return failure(
        event,
        "unknown-type",
        `unknown event type "${event.type}" (known: ${[...current, ...renamed.keys()].join(", ")})`
      )
    }
    if (!isRecord(event.payload)) {
      return failure(event, "payload", `payload must be a JSON object, got ${JSON.stringify(event.payload)}`)
    }
    const steps = upcasters.get(type)
    const target = (steps?.length ?? 0) + 1
    const stored = event.schemaVersion
    if (stored === target) return Either.right({ type, payload: event.payload })
    if (!Number.isSafeInteger(stored) || stored < 1) {
      return failure(event, "newer-version", `schema version ${stored} is not a positive integer`)
    }
    if (stored > target) {
      return failure(
        event,
        "newer-version",
        `schema version ${stored} is newer than the current version ${target} of "${type}": ` +
          "it was written by newer code"
      )
    }
    if (whole === undefined) {
      return failure(event, "upcast", `upcasting "${type}" from version ${stored} needs the whole stored event`)
    }
    const recorded = typeof whole === "function" ? whole() : whole
    let payload = event.payload
    for (let version = stored; version < target; version++) {
      try {
        const next: unknown = steps![version - 1]!(payload, recorded)
        if (!isRecord(next)) {
          return failure(
            event,
            "upcast",
            `the upcaster v${version} -> v${version + 1} of "${type}" returned ${JSON.stringify(next)}, not an object`
          )
        }
        payload = next
      } catch (error) {
        return failure(
          event,
          "upcast",
          `the upcaster v${version} -> v${version + 1} of "${type}" threw: ${
            error instanceof Error ? error.message : String(error)
          }`
        )
      }
    }
    return Either.right({ type, payload })
  }

  const upcast = (
    event: RecordedEvent.RecordedEvent
  ): Either.Either<{ readonly type: Event["_tag"]; readonly payload: Payload }, Errors.EventDecodeError> =>
    upcastStored(event, event)

  const decodeStored = (
    event: Stored,
    whole: RecordedEvent.RecordedEvent | (() => RecordedEvent.RecordedEvent) | undefined
  ): Either.Either<Event, Errors.EventDecodeError> => {
    let type = resolve(event.type)
    let payload: Payload
    // The common case, a current event, without the intermediate result of `upcast`.
    if (type !== undefined && event.schemaVersion === versionOf(type) && isRecord(event.payload)) {
      payload = event.payload
    } else {
      const upcasted = upcastStored(event, whole)
      if (Either.isLeft(upcasted)) return Either.left(upcasted.left)
      type = upcasted.right.type
      payload = upcasted.right.payload
    }
    const result = decodeEither({ ...payload, _tag: type })
    return Either.isRight(result)
      ? Either.right(result.right)
      : failure(event, "payload", ParseResult.TreeFormatter.formatErrorSync(result.left))
  }

  const decode = (event: RecordedEvent.RecordedEvent): Either.Either<Event, Errors.EventDecodeError> =>
    decodeStored(event, event)

  const storedNames = (selected?: ReadonlyArray<Event["_tag"]>): ReadonlyArray<string> =>
    (selected ?? types).flatMap((type) => [type, ...(formerNames.get(type) ?? [])])

  return {
    schema,
    types,
    versionOf,
    storedNames,
    resolve,
    encode,
    upcast,
    decode,
    decodeStored: (stored, event) => decodeStored(stored, event)
  }
}
