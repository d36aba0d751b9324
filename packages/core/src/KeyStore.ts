/**
 * The `KeyStore` service: the per-subject data keys of crypto-shredding (see `PersonalData`), and the audit trail of
 * forgotten subjects.
 *
 * Each data subject (a customer, a patient, ...) of a tenant has one current AES-256 key, created on first use.
 * `rotate` makes a new key current and keeps the old ones, so data written before still decrypts: rotation bounds what
 * one leaked key exposes, it never rewrites events. `forget` deletes every key of the subject and records who forgot
 * it, when and why; from then on everything encrypted for the subject reads as its redacted value, and no new key is
 * ever created for it (`current` and `rotate` fail with `SubjectForgotten`). Forgetting is final and idempotent.
 *
 * Subject ids stay in plaintext (in the key tables and next to the ciphertext): use a pseudonymous id such as a
 * customer UUID, never an e-mail address.
 *
 * @since 0.4.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { randomBytes, randomUUID } from "node:crypto"
import * as Errors from "./Errors.js"
import * as EventValidation from "./EventValidation.js"
import * as Tenant from "./Tenant.js"

/**
 * The length of a data key in bytes (AES-256).
 *
 * @since 0.4.0
 * @category constants
 */
export const KEY_BYTES = 32

/**
 * One data key of a subject.
 *
 * @since 0.4.0
 * @category models
 */
export interface SubjectKey {
  readonly tenantId: string
  readonly subjectId: string
  /** A UUID, stored next to every value the key encrypted. */
  readonly keyId: string
  /** 1 for the subject's first key, one more for each rotation; the highest is the current key. */
  readonly generation: number
  /** `KEY_BYTES` random bytes. */
  readonly key: Uint8Array
  readonly createdAt: Date
}

/**
 * The audit record of one `forget`.
 *
 * @since 0.4.0
 * @category models
 */
export interface Forgotten {
  readonly tenantId: string
  readonly subjectId: string
  readonly forgottenAt: Date
  /** Who forgot the subject: a user, an operator, a job. */
  readonly forgottenBy: string
  /** Why, when given (a ticket, "GDPR art. 17 request"). */
  readonly reason: string | null
  /** How many keys this call deleted: 0 when the subject was already forgotten or never had data. */
  readonly keysDeleted: number
}

/**
 * What `forget` records besides the subject.
 *
 * @since 0.4.0
 * @category models
 */
export interface ForgetOptions {
  /** Who forgets the subject; kept in the audit record. */
  readonly by: string
  readonly reason?: string | undefined
}

/**
 * A key was asked for a subject that is forgotten: no key is ever created for it again.
 *
 * @since 0.4.0
 * @category errors
 */
export class SubjectForgotten extends Schema.TaggedError<SubjectForgotten>()("SubjectForgotten", {
  tenantId: Schema.String,
  subjectId: Schema.String,
  forgottenAt: Schema.DateFromSelf
}) {
  override get message(): string {
    return `Subject ${JSON.stringify(this.subjectId)} of tenant ${JSON.stringify(this.tenantId)} was forgotten at ` +
      `${this.forgottenAt.toISOString()}: its personal data can no longer be written`
  }
}

/**
 * The key store. Every implementation passes `PersonalDataContract`.
 *
 * @since 0.4.0
 * @category tags
 */
export class KeyStore extends Context.Tag("@eventfold/core/KeyStore")<KeyStore, {
  /** The subject's current key, created on first use. */
  readonly current: (
    tenantId: string,
    subjectId: string
  ) => Effect.Effect<SubjectKey, SubjectForgotten | Errors.InvalidInput | Errors.StoreError>
  /** The keys with these ids in the tenant, in one lookup; a missing id is a key that was deleted (forgotten). */
  readonly get: (
    tenantId: string,
    keyIds: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyMap<string, SubjectKey>, Errors.InvalidInput | Errors.StoreError>
  /** Makes a new key current; the older keys stay, so what they encrypted still decrypts. */
  readonly rotate: (
    tenantId: string,
    subjectId: string
  ) => Effect.Effect<SubjectKey, SubjectForgotten | Errors.InvalidInput | Errors.StoreError>
  /** Deletes every key of the subject and records the audit record it returns. Repeating it succeeds. */
  readonly forget: (
    tenantId: string,
    subjectId: string,
    options: ForgetOptions
  ) => Effect.Effect<Forgotten, Errors.InvalidInput | Errors.StoreError>
  /** The first audit record of the subject, when it is forgotten. */
  readonly forgotten: (
    tenantId: string,
    subjectId: string
  ) => Effect.Effect<Option.Option<Forgotten>, Errors.InvalidInput | Errors.StoreError>
}>() {}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * Checks a tenant id and a subject id the way every key store does: a valid tenant id (see `Tenant.validate`) and a
 * subject id as `EventValidation.validateName` requires.
 *
 * @since 0.4.0
 * @category validation
 */
export const validateSubject = (tenantId: string, subjectId: string): Effect.Effect<void, Errors.InvalidInput> =>
  Effect.zipRight(Tenant.validate(tenantId), EventValidation.validateName("subject id", subjectId))

/**
 * Checks the key ids of a lookup: UUIDs. Returns them lower-cased and without duplicates.
 *
 * @since 0.4.0
 * @category validation
 */
export const validateKeyIds = (
  tenantId: string,
  keyIds: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<string>, Errors.InvalidInput> =>
  Effect.zipRight(
    Tenant.validate(tenantId),
    Effect.suspend(() => {
      const bad = keyIds.find((id) => typeof id !== "string" || !UUID.test(id))
      return bad === undefined
        ? Effect.succeed([...new Set(keyIds.map((id) => id.toLowerCase()))])
        : Effect.fail(new Errors.InvalidInput({ reason: `key id must be a UUID, got ${JSON.stringify(bad)}` }))
    })
  )

/**
 * Checks a forget: the subject, who forgets it, and the reason when given.
 *
 * @since 0.4.0
 * @category validation
 */
export const validateForget = (
  tenantId: string,
  subjectId: string,
  options: ForgetOptions
): Effect.Effect<void, Errors.InvalidInput> =>
  Effect.all([
    validateSubject(tenantId, subjectId),
    EventValidation.validateName("forget: by", options?.by),
    options?.reason === undefined ? Effect.void : EventValidation.validateName("forget: reason", options.reason)
  ], { discard: true })

/**
 * A fresh key's id and bytes, from the operating system's cryptographic random source.
 *
 * @since 0.4.0
 * @category constructors
 */
export const generateKey: Effect.Effect<{ readonly keyId: string; readonly key: Uint8Array }> = Effect.sync(() => ({
  keyId: randomUUID(),
  key: new Uint8Array(randomBytes(KEY_BYTES))
}))

/**
 * An in-memory `KeyStore`, for tests and prototypes, with the same behaviour as the PostgreSQL one.
 *
 * @since 0.4.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<KeyStore["Type"]> = Effect.sync(() => {
  // Per (tenant, subject): its keys, oldest first. Every step below runs synchronously, so each is atomic.
  const keys = new Map<string, Array<SubjectKey>>()
  // Per (tenant, key id), for lookups.
  const byId = new Map<string, SubjectKey>()
  const audit: Array<Forgotten> = []
  const subjectKey = (tenantId: string, subjectId: string) => `${tenantId}\u0000${subjectId}`
  const firstForget = (tenantId: string, subjectId: string) =>
    Option.fromNullable(audit.find((r) => r.tenantId === tenantId && r.subjectId === subjectId))

  const addKey = (tenantId: string, subjectId: string, onlyIfNone: boolean) =>
    Effect.flatMap(
      // A subject that has its key needs no new one: none is generated to be thrown away.
      Effect.suspend((): Effect.Effect<readonly [{ readonly keyId: string; readonly key: Uint8Array }, number]> => {
        const existing = keys.get(subjectKey(tenantId, subjectId))
        return onlyIfNone && existing !== undefined && existing.length > 0
          ? Effect.succeed([{ keyId: "", key: new Uint8Array(0) }, 0])
          : Effect.all([generateKey, Clock.currentTimeMillis])
      }),
      ([fresh, now]) =>
        Effect.suspend((): Effect.Effect<SubjectKey, SubjectForgotten> => {
          const forgotten = firstForget(tenantId, subjectId)
          if (Option.isSome(forgotten)) {
            return Effect.fail(new SubjectForgotten({ tenantId, subjectId, forgottenAt: forgotten.value.forgottenAt }))
          }
          const existing = keys.get(subjectKey(tenantId, subjectId)) ?? []
          const latest = existing[existing.length - 1]
          if (onlyIfNone && latest !== undefined) return Effect.succeed(latest)
          const created: SubjectKey = {
            tenantId,
            subjectId,
            keyId: fresh.keyId,
            generation: (latest?.generation ?? 0) + 1,
            key: fresh.key,
            createdAt: new Date(now)
          }
          keys.set(subjectKey(tenantId, subjectId), [...existing, created])
          byId.set(subjectKey(tenantId, created.keyId), created)
          return Effect.succeed(created)
        })
    )

  return KeyStore.of({
    current: (tenantId, subjectId) =>
      Effect.zipRight(validateSubject(tenantId, subjectId), addKey(tenantId, subjectId, true)),
    get: (tenantId, keyIds) =>
      Effect.map(validateKeyIds(tenantId, keyIds), (ids) => {
        const found = new Map<string, SubjectKey>()
        for (const id of ids) {
          const key = byId.get(subjectKey(tenantId, id))
          if (key !== undefined) found.set(id, key)
        }
        return found
      }),
    rotate: (tenantId, subjectId) =>
      Effect.zipRight(validateSubject(tenantId, subjectId), addKey(tenantId, subjectId, false)),
    forget: (tenantId, subjectId, options) =>
      Effect.zipRight(
        validateForget(tenantId, subjectId, options),
        Effect.map(Clock.currentTimeMillis, (now) => {
          const deleted = keys.get(subjectKey(tenantId, subjectId)) ?? []
          for (const key of deleted) byId.delete(subjectKey(tenantId, key.keyId))
          keys.delete(subjectKey(tenantId, subjectId))
          const record: Forgotten = {
            tenantId,
            subjectId,
            forgottenAt: new Date(now),
            forgottenBy: options.by,
            reason: options.reason ?? null,
            keysDeleted: deleted.length
          }
          audit.push(record)
          return record
        })
      ),
    forgotten: (tenantId, subjectId) =>
      Effect.zipRight(
        validateSubject(tenantId, subjectId),
        Effect.sync(() => firstForget(tenantId, subjectId))
      )
  })
})

/**
 * @since 0.4.0
 * @category layers
 */
export const layerMemory: Layer.Layer<KeyStore> = Layer.effect(KeyStore, makeMemory)
