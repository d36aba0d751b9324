/**
 * The whole PostgreSQL stack from one options object: pool, shared settings (`PgConfig`), migrations (run or verify),
 * event store, snapshot store, checkpoint store, feed notifier and outbox. `MemoryEventfold.layer` takes the same
 * switches, so a test swaps one Layer for the other. The fine-grained Layers stay for experts.
 *
 * @since 0.2.0
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as Errors from "@eventfold/core/Errors"
import type * as MemoryEventfold from "@eventfold/core/MemoryEventfold"
import * as Outbox from "@eventfold/core/Outbox"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PgCheckpointStore from "./PgCheckpointStore.js"
import * as PgConfig from "./PgConfig.js"
import * as PgDatabase from "./PgDatabase.js"
import * as PgEventStore from "./PgEventStore.js"
import * as PgFeedNotifier from "./PgFeedNotifier.js"
import * as PgMigrations from "./PgMigrations.js"
import * as PgOutbox from "./PgOutbox.js"
import * as PgSnapshotStore from "./PgSnapshotStore.js"
import * as PgStreamLifecycle from "./PgStreamLifecycle.js"

/**
 * What to do with the schema at startup: apply pending migrations (`"run"`, needs DDL rights), or only check that
 * nothing is pending and fail typed otherwise (`"verify"`, for an application role without DDL rights).
 *
 * @since 0.2.0
 * @category models
 */
export type Migrations = "run" | "verify"

/**
 * @since 0.2.0
 * @category models
 */
export interface Options extends PgConfig.Options {
  /** The connection pool. */
  readonly database: PgDatabase.Options
  /** Defaults to `"run"`. */
  readonly migrations?: Migrations | undefined
}

/**
 * What the stack provides: the eventfold services, the shared settings and the SQL client (for the application's
 * own tables and for `PgTransaction`).
 *
 * @since 0.2.0
 * @category models
 */
export type Services = MemoryEventfold.Services | PgConfig.PgConfig | PgClient.PgClient | SqlClient.SqlClient

/**
 * The stack over its own pool, built from validated settings.
 */
const assemble = <E>(
  database: Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, E>,
  settings: PgConfig.Settings,
  migrations: Migrations
): Layer.Layer<Services, E | Errors.StoreError | Errors.InvalidInput> => {
  const outbox = settings.outbox
    ? PgOutbox.layer()
    : Layer.succeed(Outbox.Outbox, Outbox.disabled("PgEventfold outbox: false / EVENTFOLD_OUTBOX=false"))
  const services = Layer.mergeAll(
    PgEventStore.layer(),
    PgSnapshotStore.layer(),
    PgCheckpointStore.layer(),
    PgFeedNotifier.layer(),
    PgStreamLifecycle.layer(),
    outbox
  )
  return services.pipe(
    // Built after the schema is migrated or verified: the stores check their tables when they start.
    Layer.provide(migrations === "verify" ? PgMigrations.layerVerify() : PgMigrations.layer()),
    Layer.provideMerge(Layer.succeed(PgConfig.PgConfig, settings)),
    Layer.provideMerge(database)
  )
}

/**
 * The stack from options in code.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Services, Errors.StoreError | Errors.InvalidInput> => {
  const { database, migrations, ...settings } = options
  return Layer.unwrapEffect(
    Effect.map(PgConfig.make(settings), (valid) => assemble(PgDatabase.layer(database), valid, migrations ?? "run"))
  )
}

/**
 * The stack from the environment: the pool from `PgDatabase.layerConfig` (`DATABASE_URL`, ...), the shared settings
 * from `PgConfig.config` (`EVENTFOLD_SCHEMA`, `EVENTFOLD_OUTBOX`, `EVENTFOLD_NOTIFY`, `EVENTFOLD_POOLER`) and
 * `EVENTFOLD_MIGRATIONS` (`run` or `verify`, default `run`).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (): Layer.Layer<
  Services,
  Errors.StoreError | Errors.InvalidInput | ConfigError.ConfigError
> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const settings = yield* Effect.flatMap(PgConfig.config, PgConfig.make)
    const migrations = yield* Config.literal("run", "verify")("EVENTFOLD_MIGRATIONS").pipe(Config.withDefault("run"))
    return assemble(PgDatabase.layerConfig(), settings, migrations)
  }))
