/**
 * Database transactions for code that appends inside its own unit of work: `sql.withTransaction` with every failure
 * typed and classified, and an optional retry of the whole transaction.
 *
 * `@effect/sql` turns a failed COMMIT or ROLLBACK into a defect. Here:
 * - a failure to connect or BEGIN is a `StoreError` (retryable when the server was unreachable): nothing ran;
 * - a failure of the body is returned as it is, whatever happened to the ROLLBACK after it (the transaction did not
 *   commit either way);
 * - a failed COMMIT is a `StoreError` with `operation: "commit"`. A serialization failure there (SQLSTATE 40001) is
 *   retryable: nothing was committed. A connection lost during COMMIT is not: the transaction may or may not have
 *   committed, so only appends with caller-supplied event ids (which the store recognises) are safe to repeat.
 *
 * With `retry`, the whole transaction runs again, from its start and with a new transaction id, after a
 * `ConcurrencyConflict` (of any reason: a stale read, a `transaction-order` refusal, a serialization failure) or a
 * retryable `StoreError`. Inside an enclosing transaction the body runs in a savepoint and is never retried: only
 * the outermost transaction can be.
 *
 * @since 0.2.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlError from "@effect/sql/SqlError"
import * as Errors from "@eventfold/core/Errors"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { dual } from "effect/Function"
import * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import * as internal from "./internal/sql.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /**
   * Run the whole transaction again under this schedule after a failure that a new transaction can fix (see
   * `isRetryable`). No retry when absent.
   */
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
}

/**
 * True for the failures after which running the whole transaction again can succeed: any `ConcurrencyConflict` and
 * any `StoreError` marked retryable.
 *
 * @since 0.2.0
 * @category refinements
 */
export const isRetryable = (u: unknown): boolean =>
  u instanceof Errors.ConcurrencyConflict || Errors.isRetryableStoreError(u)

const sqlErrorOf = (cause: Cause.Cause<unknown>): SqlError.SqlError | undefined => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure) && failure.value instanceof SqlError.SqlError) return failure.value
  const defect = Cause.dieOption(cause)
  return Option.isSome(defect) && defect.value instanceof SqlError.SqlError ? defect.value : undefined
}

const beginFailed = (cause: Cause.Cause<unknown>): Effect.Effect<never, Errors.StoreError> => {
  const error = sqlErrorOf(cause)
  return error ? Effect.fail(internal.toStoreError("begin", "eventfold")(error)) : Effect.failCause(Cause.die(cause))
}

const commitFailed = (cause: Cause.Cause<unknown>): Effect.Effect<never, Errors.StoreError> => {
  const error = sqlErrorOf(cause)
  if (!error) return Effect.failCause(Cause.die(Cause.squash(cause)))
  const info = internal.pgError(error)
  const serialization = info.code === "40001" || info.code === "40P01"
  const connectionLost = !serialization && internal.isRetryable(error)
  return Effect.fail(
    new Errors.StoreError({
      operation: "commit",
      reason: serialization
        ? `${info.message ?? error.message}: nothing was committed; retry the whole transaction`
        : connectionLost
        ? `${info.message ?? error.message}: the connection was lost during COMMIT, so the transaction may or may ` +
          `not have committed. Appends with caller-supplied event ids can be repeated safely; others cannot`
        : info.message ?? error.message,
      retryable: serialization,
      ...(info.code !== undefined ? { code: info.code } : {}),
      cause: error
    })
  )
}

const once = <A, E, R>(
  sql: SqlClient.SqlClient,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | Errors.StoreError, R> =>
  Effect.suspend(() => {
    let bodyExit: Exit.Exit<A, E> | undefined
    return sql.withTransaction(Effect.onExit(effect, (exit) => Effect.sync(() => void (bodyExit = exit)))).pipe(
      Effect.catchAllCause((cause): Effect.Effect<A, E | Errors.StoreError> => {
        // Nothing ran: the connection or BEGIN failed.
        if (bodyExit === undefined) return beginFailed(cause)
        // The body failed and the transaction was rolled back (or its connection is gone, which rolls it back too).
        if (Exit.isFailure(bodyExit)) return Effect.failCause(bodyExit.cause)
        return commitFailed(cause)
      })
    )
  })

/**
 * Runs `effect` in a database transaction on the `SqlClient` in context, with typed failures and an optional retry
 * of the whole transaction (see the module doc).
 *
 * @since 0.2.0
 * @category combinators
 */
export const withTransaction: {
  (
    options?: Options
  ): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | Errors.StoreError, R | SqlClient.SqlClient>
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    options?: Options
  ): Effect.Effect<A, E | Errors.StoreError, R | SqlClient.SqlClient>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    options?: Options
  ): Effect.Effect<A, E | Errors.StoreError, R | SqlClient.SqlClient> =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const nested = Option.isSome(yield* Effect.serviceOption(SqlClient.TransactionConnection))
      const run = once(sql, effect)
      return yield* (options?.retry === undefined || nested
        ? run
        : Effect.retry(run, { schedule: options.retry, while: isRetryable }))
    }).pipe(Effect.withSpan("PgTransaction.withTransaction", { captureStackTrace: false }))
)
