/**
 * Database transactions for code that appends inside its own unit of work: `sql.withTransaction` with every failure
 * typed and classified, and an optional retry of the whole transaction.
 *
 * `@effect/sql` turns a failed COMMIT or ROLLBACK into a defect. Here:
 * - a failure to connect or BEGIN is a `StoreError` (retryable when the server was unreachable): nothing ran;
 * - a failure of the body is returned as it is, whatever happened to the ROLLBACK after it (the transaction did not
 *   commit either way);
 * - a body that caught the failure of one of its statements (PostgreSQL then aborts the transaction, and COMMIT would
 *   quietly roll back) is a retryable `StoreError` with `operation: "commit"` and `code: "25P02"`: nothing committed;
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
 * True for the failures after which running the whole transaction again can succeed: every `ConcurrencyConflict` and
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
  return error ? Effect.fail(internal.toStoreError("begin")(error)) : Effect.failCause(Cause.die(cause))
}

const commitFailed = (cause: Cause.Cause<unknown>): Effect.Effect<never, Errors.StoreError> => {
  const error = sqlErrorOf(cause)
  if (!error) return Effect.failCause(Cause.die(Cause.squash(cause)))
  const info = internal.pgError(error)
  const kind = internal.kindOf(error)
  const detail = info.message ?? error.message
  return Effect.fail(
    new Errors.StoreError({
      operation: "commit",
      reason: kind === "conflict"
        ? `${detail}: nothing was committed; retry the whole transaction`
        : kind === "connection"
        ? `${detail}: the connection was lost during COMMIT, so the transaction may or may not have committed. ` +
          `Appends with caller-supplied event ids can be repeated safely; others cannot`
        : detail,
      // A lost COMMIT is not retryable: the outcome is unknown, and a blind retry could apply the work twice.
      retryable: kind === "conflict",
      kind,
      ...(info.code !== undefined ? { code: info.code } : {}),
      cause: error
    })
  )
}

/**
 * A body can catch the failure of one of its statements and succeed, but PostgreSQL has aborted the transaction, and
 * its COMMIT then quietly rolls back. So before COMMIT the transaction is asked whether it can still commit.
 */
const stillOpen = (sql: SqlClient.SqlClient): Effect.Effect<void, Errors.StoreError> =>
  sql`SELECT 1`.pipe(
    Effect.mapError((error) =>
      internal.pgError(error).code === "25P02"
        ? new Errors.StoreError({
          operation: "commit",
          reason: "the transaction was aborted by a statement whose failure the body caught (a serialization " +
            "failure, a timeout, ...): nothing was committed; retry the whole transaction",
          retryable: true,
          kind: "conflict",
          code: "25P02",
          cause: error
        })
        : internal.toStoreError("commit")(error)
    ),
    Effect.asVoid
  )

const once = <A, E, R>(
  sql: SqlClient.SqlClient,
  effect: Effect.Effect<A, E, R>,
  nested: boolean
): Effect.Effect<A, E | Errors.StoreError, R> =>
  Effect.suspend(() => {
    let bodyExit: Exit.Exit<A, E> | undefined
    const body = Effect.onExit(effect, (exit) => Effect.sync(() => void (bodyExit = exit)))
    // Only the outermost transaction commits; a nested one is a savepoint, checked by the COMMIT around it.
    return sql.withTransaction(nested ? body : Effect.zipLeft(body, stillOpen(sql))).pipe(
      Effect.catchAllCause((cause): Effect.Effect<A, E | Errors.StoreError> => {
        // Nothing ran: the connection or BEGIN failed.
        if (bodyExit === undefined) return beginFailed(cause)
        // The body failed and the transaction was rolled back (or its connection is gone, which rolls it back too).
        if (Exit.isFailure(bodyExit)) return Effect.failCause(bodyExit.cause)
        // The body succeeded, but the transaction could no longer commit (see `stillOpen`): it was rolled back.
        const failure = Cause.failureOption(cause)
        if (Option.isSome(failure) && failure.value instanceof Errors.StoreError) return Effect.fail(failure.value)
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
      const run = once(sql, effect, nested)
      return yield* (options?.retry === undefined || nested
        ? run
        : Effect.retry(run, { schedule: options.retry, while: isRetryable }))
    }).pipe(Effect.withSpan("PgTransaction.withTransaction", { captureStackTrace: false }))
)
