/**
 * @eventfold/postgres/testing: the test harness (`PgTest`: a fresh database and least-privilege role per Layer,
 * on `DATABASE_URL` or an embedded server). The contract suites live in `@eventfold/core/testing`.
 *
 * @since 0.2.0
 */

/** @since 0.2.0 */
export * as PgTest from "./PgTest.js"
