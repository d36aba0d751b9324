/**
 * Projections into PostgreSQL read models: a `Subscription` whose handler's writes and checkpoint advance commit in
 * one transaction (`sql.withTransaction`), so each event is applied exactly once, also across crashes, restarts
 * and takeovers. The handler must write through the same database's `SqlClient` (it joins the transaction); the
 * checkpoint's compare-and-set makes a stale owner's transaction roll back.
 *
 * A page is applied in one transaction; when the handler fails on one of its events, the page is rolled back and
 * replayed one event per transaction under the error policy. The page is read before the transaction starts: a
 * transaction that has written holds back the feed horizon, so it must never read the feed.
 *
 * For targets outside this database (HTTP, a broker, another store), use `Subscription.make` directly: the same
 * API with at-least-once delivery, so the handler must be idempotent.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlError from "@effect/sql/SqlError"
import type * as CheckpointStore from "@eventfold/core/CheckpointStore"
import type * as Errors from "@eventfold/core/Errors"
import type * as EventStore from "@eventfold/core/EventStore"
import type * as FeedNotifier from "@eventfold/core/FeedNotifier"
import * as Subscription from "@eventfold/core/Subscription"
import * as Tenant from "@eventfold/core/Tenant"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as internal from "./internal/sql.js"
import * as PgConfig from "./PgConfig.js"
import * as PgTransaction from "./PgTransaction.js"

/**
 * A subscription's options without `transaction`, which the projection supplies.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<E, R> extends Omit<Subscription.Options<E, R>, "transaction"> {}

/**
 * `PgTransaction.withTransaction` on `sql`, with the handler's own SQL failures typed as well: a failed query or
 * COMMIT is a database failure like any other (the subscription claims again and resumes from the stored
 * checkpoint).
 *
 * @since 0.1.0
 * @category utils
 */
export const transaction = (
  sql: SqlClient.SqlClient,
  rowLevelSecurity?: { readonly schema: string } | undefined
): Subscription.Transaction =>
(effect) =>
  PgTransaction.withTransaction(
    // Under row-level security the transaction enters the subscription's scope first (its tenant, or every tenant),
    // so the handler's writes in each event's tenant and the checkpoint advance fit in it.
    rowLevelSecurity === undefined ? effect : Effect.flatMap(
      Tenant.CurrentTenant,
      (tenant) =>
        Effect.zipRight(
          sql`SELECT ${sql(`${rowLevelSecurity.schema}.enter_tenant`)}(${
            Option.getOrElse(tenant, () => Tenant.allScope)
          })`,
          effect
        )
    )
  ).pipe(
    Effect.provideService(SqlClient.SqlClient, sql),
    Effect.mapError((e) => e instanceof SqlError.SqlError ? internal.toStoreError("projection.transaction")(e) : e)
  )

/**
 * Builds a transactional projection from the services in context (see `Subscription.make`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E, R>(
  options: Options<E, R>
): Effect.Effect<
  Subscription.Subscription<E>,
  never,
  EventStore.EventStore | CheckpointStore.CheckpointStore | FeedNotifier.FeedNotifier | SqlClient.SqlClient | R
> =>
  Effect.flatMap(
    Effect.all([SqlClient.SqlClient, PgConfig.PgConfig]),
    ([sql, settings]) =>
      Subscription.make({
        ...options,
        transaction: transaction(sql, settings.rowLevelSecurity ? { schema: settings.schema } : undefined)
      })
  )

/**
 * Builds and runs a transactional projection: `PgProjection.run(options).pipe(Effect.forkScoped)`.
 *
 * @since 0.1.0
 * @category running
 */
export const run = <E, R>(
  options: Options<E, R>
): Effect.Effect<
  never,
  Subscription.SubscriptionStopped | Errors.InvalidInput | Tenant.TenantRequired | Errors.StoreError,
  EventStore.EventStore | CheckpointStore.CheckpointStore | FeedNotifier.FeedNotifier | SqlClient.SqlClient | R
> => Effect.flatMap(make(options), (projection) => projection.run)
