/**
 * @eventfold/postgres: PostgreSQL Layers for eventfold over `@effect/sql-pg`.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as PgDatabase from "./PgDatabase.js"
/** @since 0.1.0 */
export * as PgEmbedded from "./PgEmbedded.js"
/** @since 0.1.0 */
export * as PgEventStore from "./PgEventStore.js"
/** @since 0.1.0 */
export * as PgMigrations from "./PgMigrations.js"
/** @since 0.2.0 */
export * as PgRoles from "./PgRoles.js"
/** @since 0.1.0 */
export * as PgTest from "./PgTest.js"
/** @since 0.1.0 */
export * as PgSnapshotStore from "./PgSnapshotStore.js"
/** @since 0.1.0 */
export * as PgCheckpointStore from "./PgCheckpointStore.js"
/** @since 0.1.0 */
export * as PgFeedNotifier from "./PgFeedNotifier.js"
/** @since 0.1.0 */
export * as PgProjection from "./PgProjection.js"
/** @since 0.1.0 */
export * as PgOutbox from "./PgOutbox.js"
/** @since 0.2.0 */
export * as PgTransaction from "./PgTransaction.js"
/** @since 0.2.0 */
export * as PgConfig from "./PgConfig.js"
/** @since 0.2.0 */
export * as PgEventfold from "./PgEventfold.js"
/** @since 0.3.0 */
export * as PgSchemaPerTenant from "./PgSchemaPerTenant.js"
/** @since 0.3.0 */
export * as PgTenantMove from "./PgTenantMove.js"
/** @since 0.4.0 */
export * as PgKeyStore from "./PgKeyStore.js"
/** @since 0.4.0 */
export * as PgStreamLifecycle from "./PgStreamLifecycle.js"
