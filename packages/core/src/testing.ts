/**
 * @eventfold/core/testing: the decider test kit and the contract suites every store implementation runs.
 * Kept apart from the runtime entry so applications never load vitest.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as DeciderSpec from "./DeciderSpec.js"
/** @since 0.1.0 */
export * as EventStoreContract from "./EventStoreContract.js"
/** @since 0.1.0 */
export * as SnapshotStoreContract from "./SnapshotStoreContract.js"
/** @since 0.1.0 */
export * as CheckpointStoreContract from "./CheckpointStoreContract.js"
/** @since 0.1.0 */
export * as SubscriptionContract from "./SubscriptionContract.js"
/** @since 0.1.0 */
export * as OutboxContract from "./OutboxContract.js"
/** @since 0.2.0 */
export * as EventStoreInputContract from "./EventStoreInputContract.js"
/** @since 0.2.0 */
export * as CommandHandlerContract from "./CommandHandlerContract.js"
/** @since 0.3.0 */
export * as TenancyContract from "./TenancyContract.js"
/**
 * The schema change guard: fails a test when an event Schema changes without a version bump.
 *
 * @since 0.4.0
 */
export * as SchemaGuard from "./SchemaGuard.js"
/** @since 0.4.0 */
export * as EvolutionContract from "./EvolutionContract.js"
/** @since 0.4.0 */
export * as PersonalDataContract from "./PersonalDataContract.js"
/** @since 0.4.0 */
export * as LifecycleContract from "./LifecycleContract.js"
/** @since 0.4.0 */
export * as TelemetryContract from "./TelemetryContract.js"
/** @since 0.4.0 */
export * as LoadContract from "./LoadContract.js"
