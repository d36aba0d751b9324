/**
 * @eventfold/outbox-nats: the NATS JetStream publisher for eventfold's outbox relay.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as NatsPublisher from "./NatsPublisher.js"
