/**
 * @eventfold/core: event sourcing for Effect.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Aggregate from "./Aggregate.js"
/** @since 0.1.0 */
export * as CommandHandler from "./CommandHandler.js"
/** @since 0.1.0 */
export * as Decider from "./Decider.js"
/** @since 0.1.0 */
export * from "./Errors.js"
/** @since 0.1.0 */
export * as EventMetadata from "./EventMetadata.js"
/**
 * Versioned events: current shapes, upcasters and former names.
 *
 * @since 0.4.0
 */
export * as EventCodec from "./EventCodec.js"

/** @since 0.4.0 */
export * as EventId from "./EventId.js"
/**
 * Typed reads of streams and the feed, and typed subscription handlers.
 *
 * @since 0.4.0
 */
export * as EventQuery from "./EventQuery.js"
/** @since 0.1.0 */
export * as EventStore from "./EventStore.js"
/** @since 0.1.0 */
export * as ExpectedVersion from "./ExpectedVersion.js"
/** @since 0.1.0 */
export * as NewEvent from "./NewEvent.js"
/** @since 0.1.0 */
export * as Position from "./Position.js"
/** @since 0.1.0 */
export * as RecordedEvent from "./RecordedEvent.js"
/** @since 0.1.0 */
export * as EventValidation from "./EventValidation.js"
/** @since 0.1.0 */
export * as SnapshotStore from "./SnapshotStore.js"
/** @since 0.1.0 */
export * as CheckpointStore from "./CheckpointStore.js"
/** @since 0.1.0 */
export * as FeedNotifier from "./FeedNotifier.js"
/**
 * Stream lifecycle and retention: archive, tombstone, soft delete, truncation, expiry.
 *
 * @since 0.4.0
 */
export * as StreamLifecycle from "./StreamLifecycle.js"
/** @since 0.1.0 */
export * as Subscription from "./Subscription.js"
/** @since 0.1.0 */
export * as Outbox from "./Outbox.js"
/** @since 0.1.0 */
export * as OutboxPublisher from "./OutboxPublisher.js"
/** @since 0.1.0 */
export * as OutboxRelay from "./OutboxRelay.js"
/** @since 0.2.0 */
export * as MemoryEventfold from "./MemoryEventfold.js"

/**
 * Tenants: the ambient tenant, the tenancy mode, and how an operation's tenant is resolved.
 *
 * @since 0.3.0
 */
export * as Tenant from "./Tenant.js"

/**
 * Personal data: fields marked in event Schemas, encrypted per data subject and shredded by forgetting the subject.
 *
 * @since 0.4.0
 */
export * as PersonalData from "./PersonalData.js"
/**
 * The per-subject data keys of `PersonalData`, and the audit trail of forgotten subjects.
 *
 * @since 0.4.0
 */
export * as KeyStore from "./KeyStore.js"
