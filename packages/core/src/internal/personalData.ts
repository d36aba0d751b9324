/**
 * @internal Crypto-shredding internals: the envelope that replaces a personal field's encoded value (AES-256-GCM),
 * and the walk over a Schema's AST that finds the annotated fields.
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import { Buffer } from "node:buffer"
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto"
import * as EventValidation from "../EventValidation.js"
import type * as KeyStore from "../KeyStore.js"

/** @internal The annotation id of `PersonalData.field`. */
export const FieldId: unique symbol = Symbol.for("@eventfold/core/PersonalData/Field")

/** @internal What `PersonalData.field` annotates a Schema with. */
export interface FieldAnnotation {
  readonly subject: string
  readonly redacted: unknown
}

/** @internal One personal field of a struct: its encoded property name, its subject's property and its redaction. */
export interface FieldPlan {
  readonly name: string
  readonly subject: string
  readonly redacted: unknown
}

/** @internal The version tag of the envelope format, under the reserved key `$pii`. */
export const ENVELOPE_VERSION = 1

/**
 * @internal The stored form of a personal field: the subject, the key, and the ciphertext of the field's encoded JSON
 * text (with its IV and GCM tag, base64), plus the encoded value reads get once the key is gone. Without `key` it is
 * a value written for a subject that was already forgotten: only the redacted value was ever stored.
 */
export interface Envelope {
  readonly $pii: typeof ENVELOPE_VERSION
  readonly subject: string
  readonly key?: string
  readonly iv?: string
  readonly tag?: string
  readonly data?: string
  readonly redacted: unknown
}

type JsonObject = { readonly [key: string]: unknown }

/** @internal */
export const isRecord = (u: unknown): u is JsonObject => typeof u === "object" && u !== null && !Array.isArray(u)

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/**
 * @internal Whether a value is an envelope: the reserved key `$pii` and a well-formed rest, with ciphertext or without
 * (a tombstone). What a read opens, Schema or not. Anything else, also an object that merely carries `$pii`, is data
 * and passes untouched: a value that happens to use the reserved key does not fail reads.
 */
export const isEnvelope = (u: unknown): u is Envelope => {
  if (!isRecord(u) || u["$pii"] !== ENVELOPE_VERSION || typeof u["subject"] !== "string" || !("redacted" in u)) {
    return false
  }
  if (u["key"] === undefined) return u["iv"] === undefined && u["tag"] === undefined && u["data"] === undefined
  return typeof u["key"] === "string" && UUID.test(u["key"]) && typeof u["iv"] === "string" &&
    typeof u["tag"] === "string" && typeof u["data"] === "string"
}

/** GCM's additional data: the subject and the field, so a ciphertext cannot be moved to another subject or field. */
const additionalData = (subject: string, field: string) =>
  Buffer.from(`eventfold-pii/${ENVELOPE_VERSION}\u0000${subject}\u0000${field}`, "utf8")

/**
 * @internal Encrypts a field's encoded JSON text. With an `eventId` the IV is derived from the key, the event, the
 * field and the plaintext (a synthetic IV), so repeating an idempotent append writes the very same envelope; two
 * different plaintexts get different IVs. Without one, the IV is random.
 */
export const seal = (
  key: KeyStore.SubjectKey,
  field: string,
  json: string,
  redacted: unknown,
  eventId: string | undefined
): Envelope => {
  const iv = eventId === undefined
    ? randomBytes(12)
    : createHmac("sha256", key.key).update(`eventfold-pii-iv\u0000${eventId}\u0000${field}\u0000${json}`).digest()
      .subarray(0, 12)
  const cipher = createCipheriv("aes-256-gcm", key.key, iv)
  cipher.setAAD(additionalData(key.subjectId, field))
  const data = Buffer.concat([cipher.update(json, "utf8"), cipher.final()])
  return {
    $pii: ENVELOPE_VERSION,
    subject: key.subjectId,
    key: key.keyId,
    iv: iv.toString("base64"),
    tag: cipher.getAuthTag().toString("base64"),
    data: data.toString("base64"),
    redacted
  }
}

/** @internal The envelope of a value of a forgotten subject: nothing but the redacted value is stored. */
export const tombstone = (subject: string, redacted: unknown): Envelope => ({
  $pii: ENVELOPE_VERSION,
  subject,
  redacted
})

/** @internal Decrypts an envelope with its key; the reason as a string when it does not authenticate or parse. */
export const open = (envelope: Envelope, field: string, key: KeyStore.SubjectKey): Either.Either<unknown, string> => {
  if (key.subjectId !== envelope.subject) {
    return Either.left(`the envelope of ${field} names subject ${JSON.stringify(envelope.subject)}, its key another`)
  }
  try {
    const decipher = createDecipheriv("aes-256-gcm", key.key, Buffer.from(envelope.iv!, "base64"))
    decipher.setAAD(additionalData(envelope.subject, field))
    decipher.setAuthTag(Buffer.from(envelope.tag!, "base64"))
    const json = Buffer.concat([decipher.update(Buffer.from(envelope.data!, "base64")), decipher.final()])
      .toString("utf8")
    return Either.right(JSON.parse(json))
  } catch (error) {
    return Either.left(
      `the envelope of ${field} does not decrypt (tampered or corrupt): ${
        error instanceof Error ? error.message : String(error)
      }`
    )
  }
}

/** @internal Adds the key ids a JSON object's top-level envelopes need to `into`; false when it has no envelope. */
export const scan = (value: unknown, into: Set<string>): boolean => {
  if (!isRecord(value)) return false
  let found = false
  for (const field in value) {
    const v = value[field]
    if (!isEnvelope(v)) continue
    found = true
    if (v.key !== undefined) into.add(v.key)
  }
  return found
}

/** @internal What revealing one value did: how many fields decrypted, how many read as redacted. */
export interface Revealed {
  readonly value: unknown
  readonly decrypted: number
  readonly redacted: number
}

/**
 * @internal Replaces every top-level envelope of a JSON object by its plaintext, or by its redacted value when its key
 * is not in `keys` (deleted: the subject is forgotten). No Schema is needed, so every version of every event reads.
 */
export const reveal = (
  value: unknown,
  keys: ReadonlyMap<string, KeyStore.SubjectKey>
): Either.Either<Revealed, string> => {
  if (!isRecord(value)) return Either.right({ value, decrypted: 0, redacted: 0 })
  let out: Record<string, unknown> | undefined
  let decrypted = 0
  let redacted = 0
  for (const field in value) {
    const v = value[field]
    if (!isEnvelope(v)) continue
    out ??= { ...value }
    const key = v.key === undefined ? undefined : keys.get(v.key)
    if (key === undefined) {
      out[field] = v.redacted
      redacted++
      continue
    }
    const opened = open(v, field, key)
    if (Either.isLeft(opened)) return Either.left(opened.left)
    out[field] = opened.right
    decrypted++
  }
  return Either.right({ value: out ?? value, decrypted, redacted })
}

// The Schema walk ----------------------------------------------------------------------------------------------

/** The annotation on a property's type: on the node itself, or through refinements, transformations and unions. */
const annotationOf = (ast: SchemaAST.AST): FieldAnnotation | undefined => {
  const own = ast.annotations[FieldId] as FieldAnnotation | undefined
  if (own !== undefined) return own
  switch (ast._tag) {
    case "Refinement":
      return annotationOf(ast.from)
    case "Transformation":
      return annotationOf(ast.from) ?? annotationOf(ast.to)
    case "Union":
      for (const member of ast.types) {
        const found = annotationOf(member)
        if (found !== undefined) return found
      }
      return undefined
    default:
      return undefined
  }
}

/** Whether an annotation sits anywhere below a node (a field nested in a struct or an array is not supported). */
const containsAnnotation = (ast: SchemaAST.AST, seen: Set<SchemaAST.AST> = new Set()): boolean => {
  if (seen.has(ast)) return false
  seen.add(ast)
  if (ast.annotations[FieldId] !== undefined) return true
  switch (ast._tag) {
    case "Refinement":
      return containsAnnotation(ast.from, seen)
    case "Transformation":
      return containsAnnotation(ast.from, seen) || containsAnnotation(ast.to, seen)
    case "Union":
      return ast.types.some((t) => containsAnnotation(t, seen))
    case "TypeLiteral":
      return ast.propertySignatures.some((p) => containsAnnotation(p.type, seen)) ||
        ast.indexSignatures.some((i) => containsAnnotation(i.type, seen))
    case "TupleType":
      return ast.elements.some((e) => containsAnnotation(e.type, seen)) ||
        ast.rest.some((r) => containsAnnotation(r.type, seen))
    case "Declaration":
      return ast.typeParameters.some((t) => containsAnnotation(t, seen))
    case "Suspend":
      return containsAnnotation(ast.f(), seen)
    default:
      return false
  }
}

/** The encoded side's struct(s) of a struct, class, filtered struct or union of them (and of null or undefined). */
const typeLiteralsOf = (ast: SchemaAST.AST): ReadonlyArray<SchemaAST.TypeLiteral> | undefined => {
  switch (ast._tag) {
    case "TypeLiteral":
      return [ast]
    case "Transformation":
    case "Refinement":
      return typeLiteralsOf(ast.from)
    case "Union": {
      const all: Array<SchemaAST.TypeLiteral> = []
      for (const member of ast.types) {
        // `undefined` and `null` members carry no fields.
        if (SchemaAST.isUndefinedKeyword(member) || (SchemaAST.isLiteral(member) && member.literal === null)) continue
        const found = typeLiteralsOf(member)
        if (found === undefined) return undefined
        all.push(...found)
      }
      return all
    }
    default:
      return undefined
  }
}

/**
 * @internal The personal fields of a struct-like Schema (an event member, or an aggregate's state), checked: each
 * names an existing, non-personal sibling as its subject, its redacted value decodes with the field's Schema, and no
 * annotation hides deeper than a top-level property (it would be written in plaintext). Throws a `TypeError` naming
 * `where` otherwise.
 */
export const fieldsOf = (ast: SchemaAST.AST, where: string): ReadonlyArray<FieldPlan> => {
  const literals = typeLiteralsOf(ast)
  if (literals === undefined) {
    if (containsAnnotation(ast)) {
      throw new TypeError(`${where}: PersonalData.field must annotate a top-level property of a struct or class`)
    }
    return []
  }
  const plans = new Map<string, FieldPlan>()
  for (const literal of literals) {
    const names = new Set(literal.propertySignatures.map((p) => p.name))
    for (const property of literal.propertySignatures) {
      const annotation = annotationOf(property.type)
      if (annotation === undefined) {
        if (containsAnnotation(property.type)) {
          throw new TypeError(
            `${where}: PersonalData.field inside property ${String(property.name)} is not supported: annotate the ` +
              `whole top-level property (its value is then encrypted as a whole)`
          )
        }
        continue
      }
      const name = property.name
      if (typeof name !== "string") throw new TypeError(`${where}: a personal property must have a string name`)
      const subject = literal.propertySignatures.find((p) => p.name === annotation.subject)
      if (!names.has(annotation.subject) || subject === undefined) {
        throw new TypeError(`${where}: ${name} names subject property "${annotation.subject}", which it does not have`)
      }
      if (annotationOf(subject.type) !== undefined) {
        throw new TypeError(`${where}: the subject property "${annotation.subject}" of ${name} cannot be personal`)
      }
      if (Either.isLeft(EventValidation.encodeJson(`${where}: the redacted value of ${name}`, annotation.redacted))) {
        throw new TypeError(`${where}: the redacted value of ${name} is not JSON`)
      }
      if (Either.isLeft(Schema.decodeUnknownEither(Schema.make(property.type))(annotation.redacted))) {
        throw new TypeError(
          `${where}: the redacted value of ${name}, ${JSON.stringify(annotation.redacted)}, does not decode with ` +
            `its Schema: reads after a forget would fail`
        )
      }
      const plan = { name, subject: annotation.subject, redacted: annotation.redacted }
      const other = plans.get(name)
      if (other !== undefined && other.subject !== plan.subject) {
        throw new TypeError(`${where}: ${name} is personal data of two different subject properties`)
      }
      plans.set(name, plan)
    }
  }
  return [...plans.values()]
}
