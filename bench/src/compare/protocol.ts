/**
 * What the comparison's coordinator asks of each system's worker process, and what the worker answers. Each system
 * (eventfold, raw `pg`, Emmett) runs in a process of its own, so no library's process-wide settings (Emmett's Dumbo
 * sets `pg`'s global type parsers) leak into another's numbers.
 *
 * @since 0.5.0
 */
import type * as util from "../util.js"

/**
 * The systems that run in a worker process; pgbench runs as a command of its own.
 *
 * @since 0.5.0
 * @category models
 */
export type SystemName = "eventfold" | "raw" | "emmett"

/**
 * `workers` writers, each appending `batchSize` events at a time to its own new stream, with its exact expected
 * version, in a loop for the warm-up and then for the measured window.
 *
 * @since 0.5.0
 * @category workloads
 */
export interface AppendSpec {
  readonly label: string
  readonly workers: number
  readonly batchSize: number
  readonly warmupMs: number
  readonly durationMs: number
}

/**
 * `writers` concurrent commands on one stream (`streamId`, made with one event before the round): each reads and
 * folds the stream, decides one event and appends it at the version it read, retrying a conflict.
 *
 * @since 0.5.0
 * @category workloads
 */
export interface ContentionSpec {
  readonly streamId: string
  readonly writers: number
  readonly warmupMs: number
  readonly durationMs: number
}

/**
 * @since 0.5.0
 * @category results
 */
export interface ContentionResult {
  readonly throughput: util.Throughput
  /** Attempts that lost the race (a version conflict) and were retried or gave up, in the measured window. */
  readonly conflicts: number
  /** Commands that still conflicted after the last retry, in the measured window. */
  readonly failures: number
  /** Every command that succeeded in the round (warm-up included), against the stream's final version. */
  readonly succeeded: number
  readonly finalVersion: number
}

/**
 * @since 0.5.0
 * @category workloads
 */
export interface FoldSpec {
  readonly streamId: string
  /** With Schema decode of every event into the account's `TaggedClass`es, or over the parsed JSON alone. */
  readonly typed: boolean
  readonly runs: number
}

/**
 * @since 0.5.0
 * @category results
 */
export interface FoldResult {
  /** The median of `runs` read + fold times. */
  readonly ms: number
  readonly balance: number
  readonly events: number
}

/**
 * How a feed is caught up on: `read` pages through the log (no checkpoint); `consumer` is the system's subscription
 * (Subscription / Emmett's consumer with a reactor), which stores a checkpoint per page.
 *
 * @since 0.5.0
 * @category workloads
 */
export interface FeedSpec {
  readonly mode: "read" | "consumer"
  readonly pageSize: number
}

/**
 * @since 0.5.0
 * @category results
 */
export interface FeedResult {
  readonly events: number
  readonly ms: number
}

/**
 * `writers` writers each appending one event every `1000 / ratePerWriter` ms to streams of their own while a live
 * subscription handles them; latency is the handler's time minus the time the append was called.
 *
 * @since 0.5.0
 * @category workloads
 */
export interface LiveSpec {
  readonly label: string
  readonly mode: "subscription" | "projection"
  readonly writers: number
  readonly ratePerWriter: number
  readonly warmupMs: number
  readonly durationMs: number
}

/**
 * @since 0.5.0
 * @category results
 */
export interface LiveResult {
  /** Milliseconds from append call to handler, for the appends started in the measured window. */
  readonly latencies: ReadonlyArray<number>
  readonly appended: number
  /** Appended events the consumer never handled (Emmett's reactor can skip one that commits late). */
  readonly missed?: number | undefined
}

/**
 * The operations every worker serves; `live` only where the system has a live consumer.
 *
 * @since 0.5.0
 * @category models
 */
export interface System {
  readonly append: (spec: AppendSpec) => Promise<util.Throughput>
  readonly contention: (spec: ContentionSpec) => Promise<ContentionResult>
  readonly seedStream: (spec: { readonly streamId: string; readonly events: number }) => Promise<void>
  readonly fold: (spec: FoldSpec) => Promise<FoldResult>
  readonly seedFeed: (spec: { readonly events: number }) => Promise<void>
  readonly feed: (spec: FeedSpec) => Promise<FeedResult>
  readonly live?: ((spec: LiveSpec) => Promise<LiveResult>) | undefined
  readonly close: () => Promise<void>
}

/**
 * @since 0.5.0
 * @category models
 */
export type Operation = Exclude<keyof System, "close">

/**
 * The argument of an operation.
 *
 * @since 0.5.0
 * @category models
 */
export type SpecOf<K extends Operation> = Parameters<NonNullable<System[K]>>[0]

/**
 * The result of an operation.
 *
 * @since 0.5.0
 * @category models
 */
export type ResultOf<K extends Operation> = Awaited<ReturnType<NonNullable<System[K]>>>

/**
 * A request from the coordinator: an operation, or `close` (the worker releases everything and exits).
 *
 * @since 0.5.0
 * @category protocol
 */
export type Request =
  | { readonly id: number; readonly op: Operation; readonly spec: unknown }
  | { readonly id: number; readonly op: "close" }

/**
 * A worker's answer: `ready` once after start-up (or its failure), then one reply per request.
 *
 * @since 0.5.0
 * @category protocol
 */
export type Reply =
  | { readonly kind: "ready"; readonly live: boolean }
  | { readonly kind: "failed"; readonly error: string }
  | { readonly kind: "reply"; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly kind: "reply"; readonly id: number; readonly ok: false; readonly error: string }
