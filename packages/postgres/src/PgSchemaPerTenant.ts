/**
 * Schema per tenant, the strict-isolation alternative to conjoined tenancy (one set of tables with a tenant column,
 * `PgEventfold` with `tenancy: "multi"`). The Layer provides the same services as `PgEventfold.layer`, and routes every
 * call to the PostgreSQL schema of the call's tenant: the ambient one (`Tenant.with`), or the `tenantId` a
 * `StreamRef` or `ReadAllOptions` names. Each schema holds eventfold's whole set of tables for one tenant; one
 * connection pool serves them all.
 *
 * A tenant's stack (event store, snapshots, checkpoints, feed notifier, outbox) is built on the tenant's first use and
 * kept until the Layer closes. With `migrations: "run"` (the default) that first use migrates the tenant's schema,
 * once per process and safely across processes (`PgMigrations.run` takes an advisory lock per schema); it needs DDL
 * rights (CREATE on the database). An application role without them uses `migrations: "verify"`, and the schemas are
 * migrated ahead by their owner: `PgMigrations.run({ schema })`, then `PgRoles.grantApplicationRole({ schema, role })`.
 * So with `"run"` any tenant id that reaches the Layer creates a schema: check tenant ids before they do, or refuse
 * unknown ones in `schemaOf` (a `schemaOf` that throws fails the call with `InvalidInput`).
 *
 * Inside a tenant's schema the stores run in `single` mode and still stamp the tenant: rows carry `tenant_id` and
 * events carry `metadata.tenantId`, so a schema can be moved into a conjoined store as it is. Two tenants that
 * `schemaOf` maps to one schema share its tables and are kept apart by that column, as in conjoined tenancy.
 *
 * What there is not: a feed over every tenant. `readAll({ allTenants: true })` and subscriptions with `allTenants`
 * fail typed, because each tenant's feed lives in its own schema, with positions of its own; run one subscription per
 * tenant inside `Tenant.with`. Operations whose errors can only be a `StoreError` (checkpoints, the outbox,
 * `headPosition`, `eventExists`) report a missing tenant as a `StoreError` (not retryable) that says so. Event ids are
 * unique per schema, not across tenants.
 *
 * @since 0.3.0
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as CheckpointStore from "@eventfold/core/CheckpointStore"
import * as Errors from "@eventfold/core/Errors"
import * as EventStore from "@eventfold/core/EventStore"
import * as FeedNotifier from "@eventfold/core/FeedNotifier"
import type * as MemoryEventfold from "@eventfold/core/MemoryEventfold"
import * as Outbox from "@eventfold/core/Outbox"
import * as SnapshotStore from "@eventfold/core/SnapshotStore"
import * as StreamLifecycle from "@eventfold/core/StreamLifecycle"
import * as Tenant from "@eventfold/core/Tenant"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SynchronizedRef from "effect/SynchronizedRef"
import * as internal from "./internal/sql.js"
import * as PgCheckpointStore from "./PgCheckpointStore.js"
import * as PgConfig from "./PgConfig.js"
import * as PgDatabase from "./PgDatabase.js"
import type * as PgEventfold from "./PgEventfold.js"
import * as PgEventStore from "./PgEventStore.js"
import * as PgFeedNotifier from "./PgFeedNotifier.js"
import * as PgMigrations from "./PgMigrations.js"
import * as PgOutbox from "./PgOutbox.js"
import * as PgSnapshotStore from "./PgSnapshotStore.js"
import * as PgStreamLifecycle from "./PgStreamLifecycle.js"

/**
 * The shared switches of `PgConfig` (outbox, notify, pooler, row-level security), applied in every tenant's schema,
 * plus the pool, the schema mapping and the migrations mode. There is no `schema` (it comes from `schemaOf`) and no
 * `tenancy` (a schema per tenant is multi-tenant by nature).
 *
 * @since 0.3.0
 * @category models
 */
export interface Options extends Omit<PgConfig.Options, "schema" | "tenancy"> {
  /** The one connection pool every tenant shares. */
  readonly database: PgDatabase.Options
  /**
   * The schema of a tenant's tables. Defaults to `tenant_<id>` for ids of 1 to 55 characters among `a-z`, `0-9` and
   * `_`; any other id then fails with `InvalidInput`. The result must be a plain lower-case identifier. Throw to
   * refuse a tenant: the call fails with `InvalidInput`.
   */
  readonly schemaOf?: ((tenantId: string) => string) | undefined
  /**
   * `"run"` (the default): a tenant's first use migrates its schema, which needs DDL rights. `"verify"`: it only
   * checks that the schema was migrated ahead, and fails the call with a typed `StoreError` otherwise.
   */
  readonly migrations?: PgEventfold.Migrations | undefined
}

/**
 * What the Layer provides: the eventfold services, routed by tenant, and the shared pool's SQL client (for the
 * application's own tables and for `PgTransaction`; one transaction may span several tenants' schemas). No
 * `PgConfig`: there is no one schema to share.
 *
 * @since 0.3.0
 * @category models
 */
export type Services = MemoryEventfold.Services | PgClient.PgClient | SqlClient.SqlClient

const DEFAULT_TENANT_ID = /^[a-z0-9_]{1,55}$/

/**
 * The schema of a tenant: `schemaOf(tenantId)`, or `tenant_<id>` by default, validated as a plain lower-case
 * PostgreSQL identifier. For operators: migrating, granting, backing up or dropping one tenant.
 *
 * @since 0.3.0
 * @category utils
 */
export const schemaFor = (
  tenantId: string,
  schemaOf?: ((tenantId: string) => string) | undefined
): Effect.Effect<string, Errors.InvalidInput> =>
  Effect.flatMap(
    schemaOf === undefined
      ? DEFAULT_TENANT_ID.test(tenantId)
        ? Effect.succeed(`tenant_${tenantId}`)
        : Effect.fail(
          new Errors.InvalidInput({
            reason:
              `tenant id ${
                JSON.stringify(tenantId).slice(0, 160)
              } does not fit the default schema mapping tenant_<id> (1 to 55 characters among a-z, 0-9 and _): pass ` +
              "schemaOf to PgSchemaPerTenant.layer to map such ids to schema names"
          })
        )
      : Effect.try({
        try: () => schemaOf(tenantId),
        catch: (cause) =>
          new Errors.InvalidInput({
            reason: `schemaOf refused tenant ${JSON.stringify(tenantId).slice(0, 160)}: ${
              cause instanceof Error ? cause.message : String(cause)
            }`
          })
      }),
    internal.validateSchema
  )

const isTenantFailure = (u: unknown): u is Tenant.TenantRequired | Errors.InvalidInput =>
  u instanceof Tenant.TenantRequired || u instanceof Errors.InvalidInput

/** One tenant schema's services. */
interface Stack {
  readonly store: EventStore.EventStore["Type"]
  readonly snapshots: SnapshotStore.SnapshotStore["Type"]
  readonly checkpoints: CheckpointStore.CheckpointStore["Type"]
  readonly notifier: FeedNotifier.FeedNotifier["Type"]
  readonly outbox: Outbox.Outbox["Type"]
  readonly lifecycle: StreamLifecycle.StreamLifecycle["Type"]
}

type BuildError = Errors.StoreError | Errors.InvalidInput

/** The Layers of `PgEventfold` for one schema, in `single` mode, over the shared pool. */
const stackLayer = (
  settings: PgConfig.Settings,
  migrations: PgEventfold.Migrations
): Layer.Layer<MemoryEventfold.Services, BuildError, PgClient.PgClient | SqlClient.SqlClient> => {
  const outbox = settings.outbox
    ? PgOutbox.layer()
    : Layer.succeed(Outbox.Outbox, Outbox.disabled("PgSchemaPerTenant outbox: false"))
  return Layer.mergeAll(
    PgEventStore.layer(),
    PgSnapshotStore.layer(),
    PgCheckpointStore.layer(),
    PgFeedNotifier.layer(),
    PgStreamLifecycle.layer(),
    outbox
  ).pipe(
    // Built after the schema is migrated or verified: the stores check their tables when they start.
    Layer.provide(migrations === "verify" ? PgMigrations.layerVerify() : PgMigrations.layer()),
    Layer.provide(Layer.succeed(PgConfig.PgConfig, settings))
  )
}

const ALL_TENANTS = "readAll({ allTenants: true }) is not available with PgSchemaPerTenant: each tenant's feed lives " +
  "in its own schema, with positions of its own. Read (or subscribe to) each tenant's feed inside Tenant.with(tenantId)"

/** The routing services over the pool in context; tenant stacks live in the Scope. */
const make = (
  settings: PgConfig.Settings,
  migrations: PgEventfold.Migrations,
  schemaOf: ((tenantId: string) => string) | undefined
): Effect.Effect<
  Context.Context<MemoryEventfold.Services>,
  never,
  PgClient.PgClient | SqlClient.SqlClient | Scope.Scope
> =>
  Effect.gen(function*() {
    const pool = yield* Effect.context<PgClient.PgClient | SqlClient.SqlClient>()
    const scope = yield* Effect.scope
    // Per schema, the stack or its build in progress; a failed build is forgotten, so the next call tries again.
    const stacks = yield* SynchronizedRef.make(HashMap.empty<string, Deferred.Deferred<Stack, BuildError>>())

    const build = (schema: string): Effect.Effect<Stack, BuildError> =>
      Effect.flatMap(Scope.fork(scope, ExecutionStrategy.sequential), (stackScope) =>
        Layer.buildWithScope(stackLayer({ ...settings, schema }, migrations), stackScope).pipe(
          Effect.onError((cause) =>
            Scope.close(stackScope, Exit.failCause(cause))
          ),
          Effect.map((context): Stack => ({
            store: Context.get(context, EventStore.EventStore),
            snapshots: Context.get(context, SnapshotStore.SnapshotStore),
            checkpoints: Context.get(context, CheckpointStore.CheckpointStore),
            notifier: Context.get(context, FeedNotifier.FeedNotifier),
            outbox: Context.get(context, Outbox.Outbox),
            lifecycle: Context.get(context, StreamLifecycle.StreamLifecycle)
          }))
        )).pipe(
          // Only the pool's context: a first use inside a caller's transaction must not migrate on its connection.
          Effect.mapInputContext((_: Context.Context<never>) => pool),
          Effect.tap(() => Effect.logDebug(`PgSchemaPerTenant: schema ${schema} ready`)),
          Effect.withSpan("PgSchemaPerTenant.build", { attributes: { schema, migrations } })
        )

    // The build runs in a fiber of the Layer's Scope: a caller interrupted while waiting does not cancel it for others.
    const buildOnce = (schema: string): Effect.Effect<Stack, BuildError> =>
      SynchronizedRef.modifyEffect(stacks, (map) =>
        Option.match(HashMap.get(map, schema), {
          onSome: (pending) => Effect.succeed([pending, map] as const),
          onNone: () =>
            Effect.gen(function*() {
              const pending = yield* Deferred.make<Stack, BuildError>()
              yield* build(schema).pipe(
                Effect.onExit((exit) =>
                  Exit.isSuccess(exit) ? Effect.void : SynchronizedRef.update(stacks, HashMap.remove(schema))
                ),
                Effect.intoDeferred(pending),
                Effect.forkIn(scope)
              )
              return [pending, HashMap.set(map, schema, pending)] as const
            })
        })).pipe(Effect.flatMap(Deferred.await))

    // Known schemas skip the lock, so tenants' calls never queue behind another tenant's first use.
    const stackOf = (schema: string): Effect.Effect<Stack, BuildError> =>
      Effect.flatMap(SynchronizedRef.get(stacks), (map) =>
        Option.match(HashMap.get(map, schema), {
          onSome: Deferred.await,
          onNone: () => buildOnce(schema)
        }))

    const inTenant = <A, E, R>(tenantId: string, use: (stack: Stack) => Effect.Effect<A, E, R>) =>
      schemaFor(tenantId, schemaOf).pipe(
        Effect.flatMap(stackOf),
        Effect.flatMap((stack) => Tenant.with(use(stack), tenantId))
      )

    /** An operation in its explicit or ambient tenant; none is `TenantRequired`. */
    const routed = <A, E, R>(
      operation: string,
      explicit: string | undefined,
      use: (stack: Stack) => Effect.Effect<A, E, R>
    ) => Effect.flatMap(Tenant.resolve("multi", operation, explicit), (tenantId) => inTenant(tenantId, use))

    /** An operation whose failures are the store's own: a missing or unusable tenant becomes a `StoreError`. */
    const routedStore = <A, E extends Errors.StoreError | CheckpointStore.CheckpointConflict, R>(
      operation: string,
      use: (stack: Stack) => Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | Errors.StoreError, R> =>
      routed(operation, undefined, use).pipe(
        Effect.catchIf(isTenantFailure, (error) =>
          Effect.fail(
            new Errors.StoreError({
              operation,
              reason: error._tag === "TenantRequired"
                ? `${error.message} (with a schema per tenant there is no store over every tenant)`
                : error.message,
              retryable: false,
              cause: error
            })
          ))
      )

    const store: EventStore.EventStore["Type"] = {
      tenancy: "multi",
      append: (options) => routed("append", options.tenantId, (s) => s.store.append(options)),
      readStream: (options) => routed("readStream", options.tenantId, (s) => s.store.readStream(options)),
      readAll: (options = {}) =>
        options.allTenants === true
          ? Effect.fail(new Errors.InvalidInput({ reason: ALL_TENANTS }))
          : routed("readAll", options.tenantId, (s) => s.store.readAll(options)),
      headPosition: routedStore("headPosition", (s) => s.store.headPosition),
      streamVersion: (stream) => routed("streamVersion", stream.tenantId, (s) => s.store.streamVersion(stream)),
      eventExists: (eventId) => routedStore("eventExists", (s) => s.store.eventExists(eventId))
    }

    const snapshots: SnapshotStore.SnapshotStore["Type"] = {
      load: (stream) => routed("loadSnapshot", stream.tenantId, (s) => s.snapshots.load(stream)),
      save: (snapshot) => routed("saveSnapshot", snapshot.tenantId, (s) => s.snapshots.save(snapshot)),
      delete: (stream) => routed("deleteSnapshot", stream.tenantId, (s) => s.snapshots.delete(stream)),
      // Every schema is on the one pool, so any transaction of it is this store's.
      inTransaction: Effect.map(Effect.serviceOption(SqlClient.TransactionConnection), Option.isSome)
    }

    const checkpoints: CheckpointStore.CheckpointStore["Type"] = {
      get: (id) => routedStore("checkpoint.get", (s) => s.checkpoints.get(id)),
      claim: (options) => routedStore("checkpoint.claim", (s) => s.checkpoints.claim(options)),
      release: (id, owner, status) =>
        routedStore("checkpoint.release", (s) => s.checkpoints.release(id, owner, status)),
      commit: (options) => routedStore("checkpoint.commit", (s) => s.checkpoints.commit(options)),
      reset: (id, position) => routedStore("checkpoint.reset", (s) => s.checkpoints.reset(id, position)),
      lock: (id) => routedStore("checkpoint.lock", (s) => s.checkpoints.lock(id)),
      park: (deadLetter) => routedStore("checkpoint.park", (s) => s.checkpoints.park(deadLetter)),
      deadLetters: (id) => routedStore("checkpoint.deadLetters", (s) => s.checkpoints.deadLetters(id))
    }

    // Hints are only hints: without a usable tenant stack a reader falls back to its poll interval, and its next
    // read reports why.
    const notifier: FeedNotifier.FeedNotifier["Type"] = {
      subscribe: routed("feed.subscribe", undefined, (s) => s.notifier.subscribe).pipe(
        Effect.catchAll((error) =>
          Effect.zipRight(
            Effect.logDebug(`PgSchemaPerTenant: no feed hints, readers poll: ${error.message}`),
            FeedNotifier.polling.subscribe
          )
        )
      )
    }

    const outbox: Outbox.Outbox["Type"] = settings.outbox
      ? {
        claim: (options) => routedStore("outbox.claim", (s) => s.outbox.claim(options)),
        markPublished: (relayId, ids) =>
          routedStore("outbox.markPublished", (s) => s.outbox.markPublished(relayId, ids)),
        recordFailure: (relayId, id, error, retryIn) =>
          routedStore("outbox.recordFailure", (s) => s.outbox.recordFailure(relayId, id, error, retryIn)),
        renew: (relayId, ids, lease) => routedStore("outbox.renew", (s) => s.outbox.renew(relayId, ids, lease)),
        release: (relayId, ids) => routedStore("outbox.release", (s) => s.outbox.release(relayId, ids)),
        retryFailed: (stream) => routedStore("outbox.retryFailed", (s) => s.outbox.retryFailed(stream)),
        cleanup: (retention) => routedStore("outbox.cleanup", (s) => s.outbox.cleanup(retention)),
        stats: routedStore("outbox.stats", (s) => s.outbox.stats),
        get: (eventId) => routedStore("outbox.get", (s) => s.outbox.get(eventId)),
        // A relay subscribes again after the stream ends, and polls meanwhile.
        wakeups: Stream.unwrap(
          routed("outbox.wakeups", undefined, (s) => Effect.succeed(s.outbox.wakeups)).pipe(
            Effect.catchAll((error) =>
              Effect.as(Effect.logDebug(`PgSchemaPerTenant: no outbox wake-ups: ${error.message}`), Stream.empty)
            )
          )
        )
      }
      : Outbox.disabled("PgSchemaPerTenant outbox: false")

    const lifecycle: StreamLifecycle.StreamLifecycle["Type"] = {
      info: (stream) => routed("streamInfo", stream.tenantId, (s) => s.lifecycle.info(stream)),
      archive: (stream) => routed("archive", stream.tenantId, (s) => s.lifecycle.archive(stream)),
      unarchive: (stream) => routed("unarchive", stream.tenantId, (s) => s.lifecycle.unarchive(stream)),
      delete: (stream, options) => routed("delete", stream.tenantId, (s) => s.lifecycle.delete(stream, options)),
      truncateBefore: (stream, version) =>
        routed("truncateBefore", stream.tenantId, (s) => s.lifecycle.truncateBefore(stream, version)),
      // One tenant's schema at a time: there is no store over every tenant.
      expire: (options) =>
        options.allTenants === true
          ? Effect.fail(
            new Errors.InvalidInput({
              reason: "expire({ allTenants: true }) is not available with PgSchemaPerTenant: expire each tenant's " +
                "events inside Tenant.with(tenantId)"
            })
          )
          : routed("expire", options.tenantId, (s) => s.lifecycle.expire(options))
    }

    return Context.make(EventStore.EventStore, store).pipe(
      Context.add(StreamLifecycle.StreamLifecycle, lifecycle),
      Context.add(SnapshotStore.SnapshotStore, snapshots),
      Context.add(CheckpointStore.CheckpointStore, checkpoints),
      Context.add(FeedNotifier.FeedNotifier, notifier),
      Context.add(Outbox.Outbox, outbox)
    )
  })

/**
 * The stack with a schema per tenant, over one pool.
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Services, Errors.StoreError | Errors.InvalidInput> => {
  const { database, migrations, schemaOf, ...switches } = options
  return Layer.scopedContext(
    Effect.flatMap(
      PgConfig.make({ ...switches, tenancy: "single" }),
      (settings) => make(settings, migrations ?? "run", schemaOf)
    )
  ).pipe(Layer.provideMerge(PgDatabase.layer(database)))
}
