/**
 * @internal Idempotency keys for commands. A keyed command's event ids are derived from its stream and key, so a
 * repeat appends the same ids and the store keeps one copy. Its events carry the key and a fingerprint of the
 * command, so a repeat finds the first result in the stream and a different command under the same key is told apart.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { Buffer } from "node:buffer"
import { createHash } from "node:crypto"
import * as Errors from "../Errors.js"
import type * as EventStore from "../EventStore.js"
import type * as RecordedEvent from "../RecordedEvent.js"
import * as Tenant from "../Tenant.js"

/** @internal The metadata header holding a keyed command's idempotency key. */
export const keyHeader = "eventfold-idempotency-key"

/** @internal The metadata header holding the SHA-256 of a keyed command's canonical form. */
export const commandHeader = "eventfold-command-sha256"

// eventfold's own UUID namespace: changing it would change every derived id.
const namespace = Buffer.from("5f0c8a7e2b9d4e61a3c4d7e8f9012b3c", "hex")

/**
 * @internal The id of a keyed command's `index`-th event: a UUID laid out as version 5 (SHA-1 over the namespace and
 * the length-prefixed tenant, stream type, stream id, key and index, so no two inputs share a name). Event ids are
 * unique across tenants, so the tenant is part of the name; the default tenant's is left out, so the ids of keys
 * used before tenancy stay the same.
 */
export const eventId = (tenantId: string, streamType: string, streamId: string, key: string, index: number): string => {
  const hash = createHash("sha1").update(namespace)
  if (tenantId !== Tenant.defaultId) hash.update(`tenant:${Buffer.byteLength(tenantId)}:${tenantId};`)
  for (const part of [streamType, streamId, key, String(index)]) hash.update(`${Buffer.byteLength(part)}:${part};`)
  const bytes = hash.digest()
  bytes[6] = (bytes[6]! & 0x0f) | 0x50
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  const hex = bytes.subarray(0, 16).toString("hex")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

// A stable text form: object keys sorted, undefined fields dropped (as JSON does), bigints, dates, maps and sets
// spelled out, class names kept. `path` holds the objects being written, to cut cycles.
const canonical = (value: unknown, path: Set<object>): string => {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value)
    case "number":
    case "boolean":
    case "undefined":
      return String(value)
    case "bigint":
      return `${value}n`
    case "symbol":
      return value.toString()
    case "function":
      return "function"
  }
  if (value === null || typeof value !== "object") return "null"
  if (path.has(value)) return "circular"
  path.add(value)
  try {
    if (value instanceof Date) return `Date(${value.getTime()})`
    if (Array.isArray(value)) return `[${value.map((item) => canonical(item, path)).join(",")}]`
    if (value instanceof Map) {
      return `Map{${[...value].map(([k, v]) => `${canonical(k, path)}=>${canonical(v, path)}`).sort().join(",")}}`
    }
    if (value instanceof Set) return `Set{${[...value].map((item) => canonical(item, path)).sort().join(",")}}`
    if (ArrayBuffer.isView(value)) {
      return `Bytes(${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex")})`
    }
    const record = value as Record<string, unknown>
    const keys = Object.keys(record)
    // A `_tag` on the prototype (Option, Either) tells variants apart.
    if ("_tag" in record && !keys.includes("_tag")) keys.push("_tag")
    const fields = keys.sort().flatMap((k) =>
      record[k] === undefined ? [] : [`${JSON.stringify(k)}:${canonical(record[k], path)}`]
    )
    const name = Object.getPrototypeOf(value)?.constructor?.name
    return `${name && name !== "Object" ? name : ""}{${fields.join(",")}}`
  } finally {
    path.delete(value)
  }
}

/** @internal The SHA-256 (hex) of a command's canonical form. */
export const fingerprint = (command: unknown): string =>
  createHash("sha256").update(canonical(command, new Set())).digest("hex")

/**
 * @internal The events a keyed command appended, read back from its stream; None when the key wrote nothing. Repeats
 * come soon after the first attempt, so the stream is searched backwards from its end. An id of the key held by
 * another stream fails with `DuplicateEvent`.
 */
export const findKeyed = (
  store: EventStore.EventStore["Type"],
  ref: EventStore.StreamRef & { readonly tenantId: string },
  key: string
): Effect.Effect<
  Option.Option<ReadonlyArray<RecordedEvent.RecordedEvent>>,
  | Errors.DuplicateEvent
  | Errors.StreamArchived
  | Errors.StreamDeleted
  | Errors.InvalidInput
  | Tenant.TenantRequired
  | Errors.StoreError
> =>
  Effect.gen(function*() {
    const first = eventId(ref.tenantId, ref.streamType, ref.streamId, key, 0)
    if (!(yield* store.eventExists(first))) return Option.none()
    const newestFirst: Array<RecordedEvent.RecordedEvent> = []
    let fromVersion: number | undefined
    while (true) {
      const page = yield* store.readStream({
        ...ref,
        direction: "backward",
        limit: 256,
        ...(fromVersion === undefined ? {} : { fromVersion })
      }).pipe(Effect.catchTag("StreamNotFound", () => Effect.succeed([])))
      newestFirst.push(...page)
      const at = newestFirst.findIndex((e) => e.eventId.toLowerCase() === first)
      if (at >= 0) {
        const keyed: Array<RecordedEvent.RecordedEvent> = []
        for (let i = at; i >= 0; i--) {
          const event = newestFirst[i]!
          if (
            event.eventId.toLowerCase() !== eventId(ref.tenantId, ref.streamType, ref.streamId, key, keyed.length)
          ) break
          keyed.push(event)
        }
        return Option.some(keyed)
      }
      const oldest = page[page.length - 1]
      if (oldest === undefined || oldest.version <= 1) {
        return yield* new Errors.DuplicateEvent({ eventId: first, streamType: ref.streamType, streamId: ref.streamId })
      }
      fromVersion = oldest.version - 1
    }
  })
