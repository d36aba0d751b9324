/**
 * Personal data and crypto-shredding. Events are append-only and never rewritten, so personal data in them is
 * encrypted with a key per data subject; forgetting the subject deletes its keys, and every copy of its data, in every
 * event, snapshot and outbox row, is unreadable at once.
 *
 * 1. **Mark** the fields, in the event Schemas (and the state Schema, for snapshots), with the property that holds
 *    the subject's id and the value reads get once the subject is forgotten (the *encoded* value; it must decode with
 *    the field's Schema, which is checked when the Layer is built):
 *
 *    ```ts
 *    class CustomerRegistered extends Schema.TaggedClass<CustomerRegistered>()("CustomerRegistered", {
 *      customerId: Schema.String,
 *      email: PersonalData.field(Schema.String, { subject: "customerId", redacted: "[forgotten]" })
 *    }) {}
 *    ```
 *
 * 2. **Provide** `PersonalData.layer({ aggregates })` over the stack and a `KeyStore`. It decorates the stack's
 *    `EventStore`, `SnapshotStore` and `Outbox`, so nothing else changes: `CommandHandler`, `EventQuery`,
 *    `Subscription`, `PgProjection` and `OutboxRelay` (hence every publisher) all see plaintext, or the redacted value:
 *
 *    ```ts
 *    const Live = PersonalData.layer({ aggregates: [Customer] }).pipe(
 *      Layer.provideMerge(KeyStore.layerMemory), // or PgKeyStore.layer()
 *      Layer.provideMerge(MemoryEventfold.layer({ outbox: true })) // or PgEventfold.layer({ ... })
 *    )
 *    ```
 *
 * 3. **Forget** a subject: `PersonalData.forget("customer-42", { by: "dpo@example.com", reason: "ticket 1234" })`.
 *    Its keys are deleted and an audit record (`KeyStore.Forgotten`) says when, by whom and why.
 *
 * How it works:
 * - **Appends** of the listed aggregates' stream types replace each personal field's encoded value by an envelope,
 *   `{ "$pii": 1, subject, key, iv, tag, data, redacted }`: AES-256-GCM under the subject's current key
 *   (`KeyStore.current`), a 12-byte IV, the field's encoded JSON text as plaintext, and the subject and field name as
 *   additional data. An append with caller-supplied event ids (idempotency keys) derives the IV from the key, the
 *   event, the field and the plaintext, so its retry writes the very same bytes and stays idempotent. Data of a
 *   subject that is already forgotten is stored as its redacted value only, never under a new key.
 * - **Reads** (`readStream`, `readAll`, snapshot loads, outbox claims and `get`) open every envelope found in a
 *   top-level field, whatever the event's type or version (upcasters run after this, on the plaintext), with one key
 *   lookup per call (per tenant). A deleted key reads as the envelope's `redacted` value, which decodes with the
 *   field's Schema. A payload without envelopes (written before a field was marked) passes untouched. An envelope
 *   that does not authenticate is a `StoreError` (`kind: "data"`); in an outbox claim only that row is dead-lettered.
 * - **Rotation** (`PersonalData.rotate` / `KeyStore.rotate`) makes a new key current for new data; older data stays
 *   under the older keys, which `forget` deletes too.
 *
 * What stays in plaintext: subject ids (use pseudonymous ids), metadata (including the SHA-256 command fingerprint
 * of idempotency keys), event types, stream ids, and whatever the relay already handed to a broker that keeps
 * messages. Values must be marked on a top-level property; a mark deeper inside a property is refused at startup.
 *
 * @since 0.4.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Aggregate from "./Aggregate.js"
import * as Errors from "./Errors.js"
import * as EventCodec from "./EventCodec.js"
import * as EventStore from "./EventStore.js"
import * as EventValidation from "./EventValidation.js"
import * as internal from "./internal/personalData.js"
import { streamKey } from "./internal/streamKey.js"
import * as KeyStore from "./KeyStore.js"
import type * as NewEvent from "./NewEvent.js"
import * as Outbox from "./Outbox.js"
import * as SnapshotStore from "./SnapshotStore.js"
import * as Tenant from "./Tenant.js"

/**
 * The annotation id of `field`.
 *
 * @since 0.4.0
 * @category annotations
 */
export const FieldId: typeof internal.FieldId = internal.FieldId

/**
 * How a personal field is marked: the sibling property holding the subject's id, and the encoded value reads get
 * once the subject is forgotten.
 *
 * @since 0.4.0
 * @category models
 */
export interface FieldOptions<Encoded> {
  /** The top-level property of the same struct whose (encoded, string) value is the data subject's id. */
  readonly subject: string
  /** The encoded value a read yields after the subject was forgotten; it must decode with the field's Schema. */
  readonly redacted: Encoded
}

/**
 * Marks a top-level property of an event (or of a state struct) as personal data of the subject named by the sibling
 * property `subject`. The Schema is unchanged otherwise; `PersonalData.layer` encrypts the property's encoded value.
 *
 * @since 0.4.0
 * @category annotations
 */
export const field = <S extends Schema.Schema.All & Schema.Annotable.All>(
  self: S,
  options: FieldOptions<Schema.Schema.Encoded<S>>
): Schema.Annotable.Self<S> => {
  const annotation: internal.FieldAnnotation = { subject: options.subject, redacted: options.redacted }
  return Schema.annotations(self, { [internal.FieldId]: annotation })
}

/**
 * The personal fields of an aggregate, as `PersonalData.layer` found them: per event type, and of the state.
 *
 * @since 0.4.0
 * @category models
 */
export interface Fields {
  readonly events: { readonly [type: string]: ReadonlyArray<Field> }
  readonly state: ReadonlyArray<Field>
}

/**
 * One personal field: its (encoded) property name and the property holding its subject.
 *
 * @since 0.4.0
 * @category models
 */
export interface Field {
  readonly name: string
  readonly subject: string
  readonly redacted: unknown
}

/**
 * The personal fields of an aggregate's events and state. Throws a `TypeError` for a mark that cannot work: a subject
 * property the struct does not have or that is personal itself, a redacted value that does not decode with the
 * field's Schema, or a mark below a top-level property (which would be written in plaintext).
 *
 * @since 0.4.0
 * @category utils
 */
export const fieldsOf = (aggregate: Aggregate.Aggregate.Any): Fields => {
  const where = `PersonalData(${aggregate.name})`
  const members = EventCodec.members(aggregate.events)
  const events: Record<string, ReadonlyArray<Field>> = {}
  if (members === undefined) {
    // Without tags no event can be matched to its fields; refuse rather than write marked fields in plaintext.
    if (internal.fieldsOf(aggregate.events.ast, where).length > 0) {
      throw new TypeError(`${where}: the events' Schema must be a tagged struct or class, or a union of them`)
    }
  } else {
    for (const member of members) {
      const found = internal.fieldsOf(member.schema.ast, `${where}.${member.tag}`)
      if (found.length > 0) events[member.tag] = found
    }
  }
  const state = aggregate.state === undefined ? [] : internal.fieldsOf(aggregate.state.ast, `${where} state`)
  return { events, state }
}

/**
 * Counts personal fields encrypted on write, tagged by `source` (`events` or `snapshots`).
 *
 * @since 0.4.0
 * @category metrics
 */
export const encryptedFields: Metric.Metric.Counter<number> = Metric.counter("eventfold_personal_data_encrypted", {
  description: "Personal fields encrypted on write",
  incremental: true
})

/**
 * Counts personal fields decrypted on read, tagged by `source` (`events`, `snapshots` or `outbox`).
 *
 * @since 0.4.0
 * @category metrics
 */
export const decryptedFields: Metric.Metric.Counter<number> = Metric.counter("eventfold_personal_data_decrypted", {
  description: "Personal fields decrypted on read",
  incremental: true
})

/**
 * Counts personal fields of forgotten subjects, read (or written) as their redacted value, tagged by `source`.
 *
 * @since 0.4.0
 * @category metrics
 */
export const redactedFields: Metric.Metric.Counter<number> = Metric.counter("eventfold_personal_data_redacted", {
  description: "Personal fields of forgotten subjects, read or written as their redacted value",
  incremental: true
})

type Source = "events" | "snapshots" | "outbox"

const count = (metric: Metric.Metric.Counter<number>, source: Source, n: number) =>
  n === 0 ? Effect.void : Metric.incrementBy(Metric.tagged(metric, "source", source), n)

/**
 * @since 0.4.0
 * @category models
 */
export interface Options {
  /** The aggregates whose marked fields are encrypted on append and snapshot. Reads decrypt every stream type. */
  readonly aggregates: ReadonlyArray<Aggregate.Aggregate.Any>
}

interface Plans {
  /** Per stream type and event type. */
  readonly events: ReadonlyMap<string, ReadonlyArray<Field>>
  /** Per stream type. */
  readonly states: ReadonlyMap<string, ReadonlyArray<Field>>
}

const eventKey = (streamType: string, type: string) => `${streamType}\u0000${type}`

const plansOf = (aggregates: ReadonlyArray<Aggregate.Aggregate.Any>): Plans => {
  const events = new Map<string, ReadonlyArray<Field>>()
  const states = new Map<string, ReadonlyArray<Field>>()
  const names = new Set<string>()
  for (const aggregate of aggregates) {
    if (names.has(aggregate.name)) {
      throw new TypeError(`PersonalData.layer: aggregate ${aggregate.name} is listed twice`)
    }
    names.add(aggregate.name)
    const fields = fieldsOf(aggregate)
    for (const [type, list] of Object.entries(fields.events)) events.set(eventKey(aggregate.name, type), list)
    if (fields.state.length > 0) states.set(aggregate.name, fields.state)
  }
  return { events, states }
}

type Keys = ReadonlyMap<string, KeyStore.SubjectKey | KeyStore.SubjectForgotten>

/** The subjects of a value's present personal fields; `InvalidInput` when a field has no usable subject. */
const subjectsOf = (
  value: unknown,
  fields: ReadonlyArray<Field>,
  what: string,
  into: Set<string>
): Either.Either<void, Errors.InvalidInput> => {
  if (!internal.isRecord(value)) return Either.void
  for (const f of fields) {
    if (value[f.name] === undefined) continue
    const subject = value[f.subject]
    if (typeof subject !== "string" || subject.length === 0) {
      return Either.left(
        new Errors.InvalidInput({
          reason: `${what}: personal field ${f.name} needs its subject in ${f.subject}, a non-empty string, got ${
            JSON.stringify(subject)
          }`
        })
      )
    }
    into.add(subject)
  }
  return Either.void
}

/** A value with its present personal fields sealed under their subjects' keys (or tombstoned for forgotten ones). */
const sealValue = (
  value: unknown,
  fields: ReadonlyArray<Field>,
  keys: Keys,
  eventId: string | undefined,
  what: string
): Either.Either<
  { readonly value: unknown; readonly sealed: number; readonly redacted: number },
  Errors.InvalidInput
> => {
  if (!internal.isRecord(value)) return Either.right({ value, sealed: 0, redacted: 0 })
  const out: Record<string, unknown> = { ...value }
  let sealed = 0
  let redacted = 0
  for (const f of fields) {
    const plain = value[f.name]
    if (plain === undefined) continue
    const subject = value[f.subject]
    const key = typeof subject === "string" ? keys.get(subject) : undefined
    if (typeof subject !== "string" || key === undefined) {
      return Either.left(new Errors.InvalidInput({ reason: `${what}: personal field ${f.name} has no subject` }))
    }
    if (key instanceof KeyStore.SubjectForgotten) {
      out[f.name] = internal.tombstone(subject, f.redacted)
      redacted++
      continue
    }
    const json = EventValidation.encodeJson(`${what}: ${f.name}`, plain)
    if (Either.isLeft(json)) return Either.left(json.left)
    out[f.name] = internal.seal(key, f.name, json.right, f.redacted, eventId)
    sealed++
  }
  return Either.right({ value: out, sealed, redacted })
}

/** The current key of each subject, or its `SubjectForgotten`. */
const keysFor = (keyStore: KeyStore.KeyStore["Type"], tenantId: string, subjects: ReadonlySet<string>) =>
  Effect.map(
    Effect.forEach(subjects, (subject) =>
      keyStore.current(tenantId, subject).pipe(
        Effect.catchTag("SubjectForgotten", (forgotten) => Effect.succeed(forgotten)),
        Effect.map((key) => [subject, key] as const)
      )),
    (entries): Keys => new Map(entries)
  )

const dataError = (operation: string, reason: string) =>
  new Errors.StoreError({ operation, reason, retryable: false, kind: "data" })

/**
 * Opens the envelopes of many items with one key lookup per tenant. Each item's result is its revealed form, or the
 * reason it does not decrypt. Items without envelopes come back as they are.
 */
const revealEach = <A>(
  keyStore: KeyStore.KeyStore["Type"],
  items: ReadonlyArray<A>,
  tenantOf: (a: A) => string,
  valueOf: (a: A) => unknown,
  withValue: (a: A, value: unknown) => A,
  source: Source
): Effect.Effect<ReadonlyArray<Either.Either<A, string>> | undefined, Errors.StoreError> => {
  const wanted = new Map<string, Set<string>>()
  let found = false
  for (const item of items) {
    const tenant = tenantOf(item)
    let ids = wanted.get(tenant)
    if (ids === undefined) {
      ids = new Set()
      wanted.set(tenant, ids)
    }
    if (internal.scan(valueOf(item), ids)) found = true
  }
  // The common case of data without personal fields: no lookup, no copy.
  if (!found) return Effect.succeed(undefined)
  const operation = `personalData.${source}`
  return Effect.forEach(
    [...wanted].filter(([, ids]) => ids.size > 0),
    ([tenant, ids]) =>
      keyStore.get(tenant, [...ids]).pipe(
        Effect.catchTag("InvalidInput", (e) => Effect.fail(dataError(operation, e.reason))),
        Effect.map((keys) => [tenant, keys] as const)
      )
  ).pipe(
    Effect.flatMap((lookups) => {
      const byTenant = new Map(lookups)
      const none = new Map<string, KeyStore.SubjectKey>()
      let decrypted = 0
      let redacted = 0
      const results = items.map((item) => {
        const revealed = internal.reveal(valueOf(item), byTenant.get(tenantOf(item)) ?? none)
        if (Either.isLeft(revealed)) return Either.left(revealed.left)
        decrypted += revealed.right.decrypted
        redacted += revealed.right.redacted
        return Either.right(
          revealed.right.decrypted + revealed.right.redacted === 0 ? item : withValue(item, revealed.right.value)
        )
      })
      return Effect.as(
        Effect.zipRight(count(decryptedFields, source, decrypted), count(redactedFields, source, redacted)),
        results
      )
    }),
    Effect.withSpan("PersonalData.reveal", { attributes: { source, items: items.length }, captureStackTrace: false })
  )
}

/** `revealEach` where the first item that does not decrypt fails the lot. */
const revealAll = <A>(
  keyStore: KeyStore.KeyStore["Type"],
  items: ReadonlyArray<A>,
  tenantOf: (a: A) => string,
  valueOf: (a: A) => unknown,
  withValue: (a: A, value: unknown) => A,
  source: Source
): Effect.Effect<ReadonlyArray<A>, Errors.StoreError> =>
  Effect.flatMap(revealEach(keyStore, items, tenantOf, valueOf, withValue, source), (results) => {
    if (results === undefined) return Effect.succeed(items)
    const out: Array<A> = new Array(results.length)
    for (let i = 0; i < results.length; i++) {
      const result = results[i]!
      if (Either.isLeft(result)) return Effect.fail(dataError(`personalData.${source}`, result.left))
      out[i] = result.right
    }
    return Effect.succeed(out)
  })

const withPayload = <A extends { readonly payload: unknown }>(a: A, payload: unknown): A => ({ ...a, payload })

const decorateEventStore = (
  store: EventStore.EventStore["Type"],
  keyStore: KeyStore.KeyStore["Type"],
  plans: Plans
): EventStore.EventStore["Type"] => {
  const revealEvents = <A extends { readonly tenantId: string; readonly payload: unknown }>(events: ReadonlyArray<A>) =>
    revealAll(keyStore, events, (e) => e.tenantId, (e) => e.payload, withPayload, "events")

  const append: EventStore.EventStore["Type"]["append"] = (options) =>
    Effect.suspend(() => {
      const fields = (options.events ?? []).map((e) => plans.events.get(eventKey(options.streamType, e?.type)))
      if (fields.every((f) => f === undefined)) return store.append(options)
      return Effect.gen(function*() {
        const tenantId = yield* Tenant.resolve(store.tenancy, "append", options.tenantId)
        const what = `append to ${options.streamType}/${options.streamId}`
        const subjects = new Set<string>()
        for (let i = 0; i < options.events.length; i++) {
          const f = fields[i]
          if (f !== undefined) yield* subjectsOf(options.events[i]!.payload, f, what, subjects)
        }
        const keys = yield* keysFor(keyStore, tenantId, subjects)
        let sealed = 0
        let redacted = 0
        const events: Array<NewEvent.NewEvent> = []
        for (let i = 0; i < options.events.length; i++) {
          const event = options.events[i]!
          const f = fields[i]
          if (f === undefined) {
            events.push(event)
            continue
          }
          const result = yield* sealValue(event.payload, f, keys, event.eventId, what)
          sealed += result.sealed
          redacted += result.redacted
          events.push({ ...event, payload: result.value })
        }
        yield* count(encryptedFields, "events", sealed)
        yield* count(redactedFields, "events", redacted)
        return yield* store.append({ ...options, events })
      }).pipe(Effect.withSpan("PersonalData.append", {
        attributes: { streamType: options.streamType },
        captureStackTrace: false
      }))
    })

  return {
    ...store,
    append,
    readStream: (options) => Effect.flatMap(store.readStream(options), revealEvents),
    readAll: (options) => Effect.flatMap(store.readAll(options), revealEvents)
  }
}

const decorateSnapshotStore = (
  snapshots: SnapshotStore.SnapshotStore["Type"],
  keyStore: KeyStore.KeyStore["Type"],
  plans: Plans,
  mode: Tenant.Mode
): SnapshotStore.SnapshotStore["Type"] => ({
  ...snapshots,
  load: (stream) =>
    Effect.flatMap(snapshots.load(stream), (found) =>
      Option.isNone(found) ? Effect.succeed(found) : Effect.map(
        revealAll(
          keyStore,
          [found.value],
          (s) => s.tenantId,
          (s) => s.state,
          (s, state) => ({ ...s, state }),
          "snapshots"
        ),
        (revealed) => Option.some(revealed[0]!)
      )),
  save: (options) =>
    Effect.suspend(() => {
      const fields = plans.states.get(options.streamType)
      if (fields === undefined) return snapshots.save(options)
      return Effect.gen(function*() {
        const tenantId = yield* Tenant.resolve(mode, "saveSnapshot", options.tenantId)
        const what = `snapshot of ${options.streamType}/${options.streamId}`
        const subjects = new Set<string>()
        yield* subjectsOf(options.state, fields, what, subjects)
        const keys = yield* Effect.catchTag(
          keysFor(keyStore, tenantId, subjects),
          "InvalidInput",
          (e) => Effect.fail(new Errors.InvalidInput({ reason: `${what}: ${e.reason}` }))
        )
        // A random IV: a snapshot is a cache, rewritten freely, never compared for idempotency.
        const result = yield* sealValue(options.state, fields, keys, undefined, what)
        yield* count(encryptedFields, "snapshots", result.sealed)
        yield* count(redactedFields, "snapshots", result.redacted)
        return yield* snapshots.save({ ...options, state: result.value })
      }).pipe(Effect.withSpan("PersonalData.saveSnapshot", {
        attributes: { streamType: options.streamType },
        captureStackTrace: false
      }))
    })
})

const decorateOutbox = (
  outbox: Outbox.Outbox["Type"],
  keyStore: KeyStore.KeyStore["Type"]
): Outbox.Outbox["Type"] => ({
  ...outbox,
  claim: (options) =>
    Effect.flatMap(outbox.claim(options), (entries) =>
      revealEach(
        keyStore,
        entries,
        (e) => e.tenantId,
        (e) => e.payload,
        withPayload,
        "outbox"
      ).pipe(
        // Nothing is published from a claim whose keys cannot be read: give the rows back for the next attempt.
        Effect.tapError(() => outbox.release(options.relayId, entries.map((e) => e.id)).pipe(Effect.ignore)),
        Effect.flatMap((results) => {
          if (results === undefined) return Effect.succeed(entries)
          // A row that does not decrypt is dead-lettered with the reason; its stream's later rows wait behind it.
          const blocked = new Set<string>()
          const ready: Array<Outbox.Entry> = []
          const failed: Array<readonly [Outbox.Entry, string]> = []
          const held: Array<bigint> = []
          results.forEach((result, i) => {
            const entry = entries[i]!
            const stream = streamKey(entry.tenantId, entry)
            if (blocked.has(stream)) held.push(entry.id)
            else if (Either.isLeft(result)) {
              blocked.add(stream)
              failed.push([entry, result.left])
            } else ready.push(result.right)
          })
          if (failed.length === 0) return Effect.succeed(ready)
          return Effect.as(
            Effect.zipRight(
              Effect.forEach(
                failed,
                ([entry, reason]) => outbox.recordFailure(options.relayId, entry.id, reason, Option.none()),
                { discard: true }
              ),
              held.length === 0 ? Effect.void : outbox.release(options.relayId, held)
            ),
            ready
          )
        })
      )),
  get: (eventId) =>
    Effect.flatMap(outbox.get(eventId), (row) =>
      Option.isNone(row) ? Effect.succeed(row) : Effect.map(
        revealAll(keyStore, [row.value], (r) => r.tenantId, (r) => r.payload, withPayload, "outbox"),
        (revealed) => Option.some(revealed[0]!)
      ))
})

/**
 * Decorates the `EventStore`, `SnapshotStore` and `Outbox` in context: appends and snapshots of the aggregates'
 * stream types encrypt their marked fields; every read opens envelopes (see the module documentation). Throws a
 * `TypeError` at once for marks that cannot work (see `fieldsOf`).
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<
  EventStore.EventStore | SnapshotStore.SnapshotStore | Outbox.Outbox,
  never,
  EventStore.EventStore | SnapshotStore.SnapshotStore | Outbox.Outbox | KeyStore.KeyStore
> => {
  const plans = plansOf(options.aggregates)
  return Layer.effectContext(
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const snapshots = yield* SnapshotStore.SnapshotStore
      const outbox = yield* Outbox.Outbox
      const keyStore = yield* KeyStore.KeyStore
      return Context.make(EventStore.EventStore, decorateEventStore(store, keyStore, plans)).pipe(
        Context.add(SnapshotStore.SnapshotStore, decorateSnapshotStore(snapshots, keyStore, plans, store.tenancy)),
        Context.add(Outbox.Outbox, decorateOutbox(outbox, keyStore))
      )
    })
  )
}

/** The tenant of a subject operation: explicit (admin tools) or ambient, as the event store resolves it. */
const tenantOf = (operation: string, explicit: string | undefined) =>
  Effect.flatMap(EventStore.EventStore, (store) => Tenant.resolve(store.tenancy, operation, explicit))

/**
 * Forgets a subject in the ambient tenant (or `tenantId`): deletes its keys, so every value encrypted for it reads as
 * redacted from now on, and returns the audit record. Repeating it succeeds (and records it again).
 *
 * @since 0.4.0
 * @category operations
 */
export const forget = (
  subjectId: string,
  options: KeyStore.ForgetOptions & { readonly tenantId?: string | undefined }
): Effect.Effect<
  KeyStore.Forgotten,
  Errors.InvalidInput | Tenant.TenantRequired | Errors.StoreError,
  KeyStore.KeyStore | EventStore.EventStore
> =>
  Effect.flatMap(
    Effect.zip(KeyStore.KeyStore, tenantOf("forget", options.tenantId)),
    ([keys, tenantId]) => keys.forget(tenantId, subjectId, options)
  ).pipe(Effect.withSpan("PersonalData.forget"))

/**
 * Rotates a subject's key in the ambient tenant (or `tenantId`): new data is encrypted under a new key; older data
 * keeps decrypting under the older ones.
 *
 * @since 0.4.0
 * @category operations
 */
export const rotate = (
  subjectId: string,
  options?: { readonly tenantId?: string | undefined }
): Effect.Effect<
  KeyStore.SubjectKey,
  KeyStore.SubjectForgotten | Errors.InvalidInput | Tenant.TenantRequired | Errors.StoreError,
  KeyStore.KeyStore | EventStore.EventStore
> =>
  Effect.flatMap(
    Effect.zip(KeyStore.KeyStore, tenantOf("rotate", options?.tenantId)),
    ([keys, tenantId]) => keys.rotate(tenantId, subjectId)
  ).pipe(Effect.withSpan("PersonalData.rotate"))

/**
 * The audit record of a subject's forgetting in the ambient tenant (or `tenantId`), if it was forgotten.
 *
 * @since 0.4.0
 * @category operations
 */
export const forgotten = (
  subjectId: string,
  options?: { readonly tenantId?: string | undefined }
): Effect.Effect<
  Option.Option<KeyStore.Forgotten>,
  Errors.InvalidInput | Tenant.TenantRequired | Errors.StoreError,
  KeyStore.KeyStore | EventStore.EventStore
> =>
  Effect.flatMap(
    Effect.zip(KeyStore.KeyStore, tenantOf("forgotten", options?.tenantId)),
    ([keys, tenantId]) => keys.forgotten(tenantId, subjectId)
  )
