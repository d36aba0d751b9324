/**
 * The schema change guard: a test helper that keeps a JSON Schema of every event type's stored shape, per version,
 * in a folder committed with the code, and fails when an event's Schema changed without a version bump.
 *
 * `SchemaGuard.check(Order, { directory: "schemas" })` writes `schemas/Order/PriceChanged.v3.json` (Effect's
 * `JSONSchema.make` of the encoded side, refinements included) for each type at its current version, and on later
 * runs compares. It fails with `SchemaChanged` when:
 * - a type's encoded shape differs from the file recorded for its current version (changed without a bump: add an
 *   upcaster, which makes the next version current, or revert the change);
 * - a newer version than the current one is recorded (an upcaster was removed);
 * - a recorded type is neither a current type nor a former name of one (a type was removed or renamed without
 *   `formerNames`: its stored events would no longer decode);
 * - a version is not recorded yet and recording is off (`record: false`, the default when the `CI` environment
 *   variable is true): run the tests locally and commit the new file.
 *
 * @since 0.4.0
 */
import * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as JSONSchema from "effect/JSONSchema"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as path from "node:path"
import type * as Aggregate from "./Aggregate.js"
import * as EventCodec from "./EventCodec.js"

/**
 * The guard found event Schemas that changed unsafely; `problems` says which and what to do.
 *
 * @since 0.4.0
 * @category errors
 */
export class SchemaChanged extends Data.TaggedError("SchemaChanged")<{
  readonly aggregate: string
  readonly problems: ReadonlyArray<string>
}> {
  override get message(): string {
    return `Event schemas of ${this.aggregate} changed unsafely:\n- ${this.problems.join("\n- ")}`
  }
}

/**
 * The guard could not read or write its folder.
 *
 * @since 0.4.0
 * @category errors
 */
export class SchemaGuardError extends Data.TaggedError("SchemaGuardError")<{
  readonly path: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `SchemaGuard cannot use ${this.path}: ${this.cause instanceof Error ? this.cause.message : this.cause}`
  }
}

/**
 * What a check found: the files it compared and the files it recorded.
 *
 * @since 0.4.0
 * @category models
 */
export interface Report {
  readonly unchanged: ReadonlyArray<string>
  readonly recorded: ReadonlyArray<string>
}

/**
 * @since 0.4.0
 * @category models
 */
export interface Options {
  /** The folder of recorded schemas; each aggregate gets a subfolder named after it. */
  readonly directory: string
  /** Record versions not recorded yet. Defaults to true, except when the `CI` environment variable is true. */
  readonly record?: boolean | undefined
}

/**
 * The JSON Schema of a type's stored shape, as the guard records it.
 *
 * @since 0.4.0
 * @category utils
 */
export const jsonSchema = (member: Schema.Schema.Any): string =>
  JSON.stringify(JSONSchema.make(Schema.encodedBoundSchema(member)), null, 2) + "\n"

const FILE = /^(.+)\.v(\d+)\.json$/

const io = <A>(file: string, f: () => A) =>
  Effect.try({ try: f, catch: (cause) => new SchemaGuardError({ path: file, cause }) })

/**
 * Checks an aggregate's event Schemas against the recorded ones (see the module's description).
 *
 * @since 0.4.0
 * @category checks
 */
export const check = (
  aggregate: Aggregate.Aggregate.Any,
  options: Options
): Effect.Effect<Report, SchemaChanged | SchemaGuardError> =>
  Effect.gen(function*() {
    // A CI variable that is not a boolean is a typed error, not a defect.
    const record = options.record ?? !(yield* Config.boolean("CI").pipe(
      Config.withDefault(false),
      Effect.mapError((cause) => new SchemaGuardError({ path: "the CI environment variable", cause }))
    ))
    const members = EventCodec.members(aggregate.events)
    if (members === undefined) {
      return yield* new SchemaChanged({
        aggregate: aggregate.name,
        problems: ["its event Schema is not a union of tagged structs or classes, so its types cannot be guarded"]
      })
    }
    const folder = path.join(options.directory, aggregate.name)
    yield* io(folder, () => fs.mkdirSync(folder, { recursive: true }))
    const files = yield* io(folder, () => fs.readdirSync(folder))
    const recordedVersions = new Map<string, Array<number>>()
    for (const file of files) {
      const match = FILE.exec(file)
      if (match) recordedVersions.set(match[1]!, [...(recordedVersions.get(match[1]!) ?? []), Number(match[2])])
    }
    const problems: Array<string> = []
    const unchanged: Array<string> = []
    const recorded: Array<string> = []
    const current = new Set(members.map((m) => m.tag))
    for (const { schema, tag } of members) {
      const version = aggregate.codec.versionOf(tag)
      const file = path.join(folder, `${tag}.v${version}.json`)
      const shape = jsonSchema(schema)
      const newer = (recordedVersions.get(tag) ?? []).filter((v) => v > version)
      if (newer.length > 0) {
        problems.push(
          `${tag} is at version ${version} but version ${
            Math.max(...newer)
          } is recorded: an upcaster was removed, so events of the newer versions no longer decode`
        )
        continue
      }
      if (!fs.existsSync(file)) {
        if (record) {
          yield* io(file, () => fs.writeFileSync(file, shape))
          recorded.push(file)
        } else {
          problems.push(
            `${tag} v${version} is not recorded in ${file}: run the tests where CI is not set, and commit the file`
          )
        }
        continue
      }
      const stored = yield* io(file, () => fs.readFileSync(file, "utf8"))
      if (stored === shape) {
        unchanged.push(file)
      } else {
        problems.push(
          `${tag} changed without a version bump: its stored shape differs from ${file}. If events already stored ` +
            `no longer decode as the new shape, add an upcaster from v${version} to v${version + 1} ` +
            `(evolution.${tag}.upcasters), which makes v${version + 1} current; otherwise revert the change`
        )
      }
    }
    for (const name of recordedVersions.keys()) {
      if (current.has(name) || aggregate.codec.resolve(name) !== undefined) continue
      problems.push(
        `${name} is recorded but is no longer a type of ${aggregate.name}: its stored events would not decode. ` +
          "Keep the type, or declare its new name's formerNames"
      )
    }
    if (problems.length > 0) return yield* new SchemaChanged({ aggregate: aggregate.name, problems })
    return { unchanged, recorded }
  })
