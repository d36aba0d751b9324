/**
 * The settings every PostgreSQL Layer of eventfold shares: the schema and the feature switches. Provide it once
 * (`PgConfig.layer(...)`, `PgConfig.layerConfig()`, or through `PgEventfold`) and every Layer reads it, so two
 * Layers can never disagree on the schema or on whether the outbox is on. Without it, the defaults apply.
 *
 * @since 0.2.0
 */
import * as Errors from "@eventfold/core/Errors"
import type * as Tenant from "@eventfold/core/Tenant"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as internal from "./internal/sql.js"

/**
 * How the application reaches PostgreSQL: directly (`"none"`), or through a pooler in transaction mode
 * (`"transaction"`, e.g. PgBouncer), where LISTEN cannot work: every LISTEN is then off and readers poll.
 *
 * @since 0.2.0
 * @category models
 */
export type Pooler = "none" | "transaction"

/**
 * @since 0.2.0
 * @category models
 */
export interface Settings {
  /** The PostgreSQL schema holding eventfold's tables. */
  readonly schema: string
  /** Appends write one outbox row per event in their transaction. */
  readonly outbox: boolean
  /** Appends send a NOTIFY wake-up hint (coalesced); readers poll either way. */
  readonly notify: boolean
  /** See `Pooler`. */
  readonly pooler: Pooler
  /**
   * `single` (default): operations without a tenant use the default tenant. `multi`: they fail with
   * `TenantRequired` (see `@eventfold/core/Tenant`).
   */
  readonly tenancy: Tenant.Mode
  /**
   * Row-level security by tenant (migrations/row_level_security.sql) is on: `PgMigrations.run` enables it, `verify`
   * checks it, and the stores set the transaction's tenant (`eventfold.tenant`) before every statement that is not
   * one of eventfold's functions (which set it themselves).
   */
  readonly rowLevelSecurity: boolean
  /** Group commit of concurrent standalone appends (see `PgEventStore.Options.groupCommit`). */
  readonly groupCommit: boolean
  /** The most appends one group commit sends together. */
  readonly groupCommitMaxBatch: number
}

/**
 * @since 0.2.0
 * @category models
 */
export type Options = Partial<Settings>

/**
 * The defaults: schema "eventfold", outbox off, NOTIFY on, no pooler.
 *
 * @since 0.2.0
 * @category constants
 */
export const defaults: Settings = {
  schema: internal.DEFAULT_SCHEMA,
  outbox: false,
  notify: true,
  pooler: "none",
  tenancy: "single",
  rowLevelSecurity: false,
  groupCommit: true,
  groupCommitMaxBatch: 64
}

/**
 * The shared settings; `defaults` when none are provided.
 *
 * @since 0.2.0
 * @category tags
 */
export class PgConfig extends Context.Reference<PgConfig>()("@eventfold/postgres/PgConfig", {
  defaultValue: (): Settings => defaults
}) {}

/**
 * Validates options into settings: the schema must be a plain lower-case identifier.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Settings, Errors.InvalidInput> =>
  Effect.gen(function*() {
    const settings = { ...defaults, ...definedOnly(options) }
    if (settings.pooler !== "none" && settings.pooler !== "transaction") {
      return yield* new Errors.InvalidInput({
        reason: `pooler must be "none" or "transaction", got ${JSON.stringify(settings.pooler)}`
      })
    }
    if (settings.tenancy !== "single" && settings.tenancy !== "multi") {
      return yield* new Errors.InvalidInput({
        reason: `tenancy must be "single" or "multi", got ${JSON.stringify(settings.tenancy)}`
      })
    }
    const maxBatch = settings.groupCommitMaxBatch
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 1000) {
      return yield* new Errors.InvalidInput({
        reason: `groupCommitMaxBatch must be an integer from 1 to 1000, got ${JSON.stringify(maxBatch)}`
      })
    }
    return { ...settings, schema: yield* internal.validateSchema(settings.schema) }
  })

const definedOnly = (options: Options): Options =>
  Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined))

/**
 * The settings from the environment: `EVENTFOLD_SCHEMA` (default "eventfold"), `EVENTFOLD_OUTBOX` (default false),
 * `EVENTFOLD_NOTIFY` (default true), `EVENTFOLD_POOLER` ("none" or "transaction", default "none"), `EVENTFOLD_TENANCY`,
 * `EVENTFOLD_ROW_LEVEL_SECURITY`, `EVENTFOLD_GROUP_COMMIT` (default true) and `EVENTFOLD_GROUP_COMMIT_MAX_BATCH`
 * (default 64).
 *
 * @since 0.2.0
 * @category config
 */
export const config: Config.Config<Settings> = Config.all({
  schema: Config.string("EVENTFOLD_SCHEMA").pipe(Config.withDefault(defaults.schema)),
  outbox: Config.boolean("EVENTFOLD_OUTBOX").pipe(Config.withDefault(defaults.outbox)),
  notify: Config.boolean("EVENTFOLD_NOTIFY").pipe(Config.withDefault(defaults.notify)),
  pooler: Config.literal("none", "transaction")("EVENTFOLD_POOLER").pipe(Config.withDefault(defaults.pooler)),
  tenancy: Config.literal("single", "multi")("EVENTFOLD_TENANCY").pipe(Config.withDefault(defaults.tenancy)),
  rowLevelSecurity: Config.boolean("EVENTFOLD_ROW_LEVEL_SECURITY").pipe(Config.withDefault(defaults.rowLevelSecurity)),
  groupCommit: Config.boolean("EVENTFOLD_GROUP_COMMIT").pipe(Config.withDefault(defaults.groupCommit)),
  groupCommitMaxBatch: Config.integer("EVENTFOLD_GROUP_COMMIT_MAX_BATCH").pipe(
    Config.withDefault(defaults.groupCommitMaxBatch)
  )
})

/**
 * @since 0.2.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<PgConfig, Errors.InvalidInput> =>
  Layer.effect(PgConfig, make(options))

/**
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  settings: Config.Config<Settings> = config
): Layer.Layer<PgConfig, Errors.InvalidInput | ConfigError.ConfigError> =>
  Layer.effect(PgConfig, Effect.flatMap(settings, make))

/**
 * The schema a Layer works on: its explicit option when given (for experts), else the shared setting; validated.
 *
 * @since 0.2.0
 * @category utils
 */
export const schema = (explicit?: string | undefined): Effect.Effect<string, Errors.InvalidInput> =>
  Effect.flatMap(PgConfig, (settings) => internal.validateSchema(explicit ?? settings.schema))
