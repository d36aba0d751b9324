/** @internal The in-memory Outbox. Every operation runs synchronously, so each one is atomic. */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as EventValidation from "../EventValidation.js"
import type * as Outbox from "../Outbox.js"
import type * as RecordedEvent from "../RecordedEvent.js"
import * as Tenant from "../Tenant.js"
import { streamKey } from "./streamKey.js"

interface MutableRow {
  readonly entry: Outbox.Entry
  status: Outbox.Status
  retryCount: number
  lastError: string | null
  nextAttemptAt: number
  claimedBy: string | null
  claimedUntil: number | null
  readonly createdAt: number
  publishedAt: number | null
}

/** The memory event store finds the writer of a memory outbox here, so the public service needs no write method. */
const writers = new WeakMap<Outbox.Outbox["Type"], (events: ReadonlyArray<RecordedEvent.RecordedEvent>) => void>()

/** @internal */
export const writerOf = (
  outbox: Outbox.Outbox["Type"]
): Option.Option<(events: ReadonlyArray<RecordedEvent.RecordedEvent>) => void> =>
  Option.fromNullable(writers.get(outbox))

const toRow = (r: MutableRow): Outbox.Row => ({
  ...r.entry,
  attempts: r.retryCount,
  status: r.status,
  retryCount: r.retryCount,
  lastError: r.lastError,
  nextAttemptAt: new Date(r.nextAttemptAt),
  claimedBy: r.claimedBy,
  claimedUntil: r.claimedUntil === null ? null : new Date(r.claimedUntil),
  createdAt: new Date(r.createdAt),
  publishedAt: r.publishedAt === null ? null : new Date(r.publishedAt)
})

// The same warning as PgOutbox's: the relay published rows another relay took over before they were marked.
const unmarkedWarning = (relayId: string, published: number, marked: number) =>
  Effect.logWarning("outbox lease expired before the batch was marked; those rows will be redelivered").pipe(
    Effect.annotateLogs({ relayId, published, marked })
  )

/** @internal */
export const make: Effect.Effect<Outbox.Outbox["Type"]> = Effect.sync(() => {
  // Ordered by global position, like the table's rows.
  let rows: Array<MutableRow> = []
  const byId = new Map<bigint, MutableRow>()
  let nextId = 0n
  const listeners = new Set<Queue.Queue<void>>()

  const write = (events: ReadonlyArray<RecordedEvent.RecordedEvent>) => {
    const now = Date.now()
    for (const e of events) {
      nextId += 1n
      const row: MutableRow = {
        entry: {
          id: nextId,
          eventId: e.eventId,
          tenantId: e.tenantId,
          streamType: e.streamType,
          streamId: e.streamId,
          version: e.version,
          globalPosition: e.globalPosition,
          type: e.type,
          schemaVersion: e.schemaVersion,
          payload: e.payload,
          metadata: e.metadata,
          attempts: 0
        },
        status: "pending",
        retryCount: 0,
        lastError: null,
        // Due at once, whatever the Clock says (a TestClock starts at 0).
        nextAttemptAt: 0,
        claimedBy: null,
        claimedUntil: null,
        createdAt: now,
        publishedAt: null
      }
      rows.push(row)
      byId.set(row.entry.id, row)
    }
    for (const queue of listeners) queue.unsafeOffer(undefined)
  }

  const free = (r: MutableRow, now: number, relayId?: string) =>
    r.claimedUntil === null || r.claimedUntil < now || (relayId !== undefined && r.claimedBy === relayId)

  // A relay keeps its rows until another relay takes them over, even past its lease.
  const held = (relayId: string) => (r: MutableRow) => r.status === "pending" && r.claimedBy === relayId

  // Marks held rows published; the one step behind `markPublished` and a claim's `markPublished`.
  const mark = (relayId: string, ids: ReadonlyArray<bigint>, now: number) => {
    let count = 0
    for (const id of ids) {
      const r = byId.get(id)
      if (r !== undefined && held(relayId)(r)) {
        r.status = "published"
        r.publishedAt = now
        r.claimedBy = null
        r.claimedUntil = null
        count++
      }
    }
    return count
  }

  const claim = (options: Outbox.ClaimOptions) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const toMark = options.markPublished ?? []
      const marked = toMark.length === 0 ? 0 : mark(options.relayId, toMark, now)
      const claimed = claimDue(options, now)
      return marked < toMark.length
        ? Effect.as(unmarkedWarning(options.relayId, toMark.length, marked), claimed)
        : Effect.succeed(claimed)
    })

  const claimDue = (options: Outbox.ClaimOptions, now: number) => {
    const byStream = new Map<string, Array<MutableRow>>()
    for (const r of rows) {
      if (r.status === "published") continue
      const k = streamKey(r.entry.tenantId, r.entry)
      const list = byStream.get(k)
      if (list) list.push(r)
      else byStream.set(k, [r])
    }
    const inFlight = new Set(options.inFlight ?? [])
    // Streams whose head is due and unclaimed: the head and the contiguous pending run behind it. Streams this relay
    // is still publishing, under a live lease: the due, free rows right behind its in-flight rows.
    const heads: Array<Array<MutableRow>> = []
    const continued: Array<Array<MutableRow>> = []
    for (const list of byStream.values()) {
      const head = list[0]!
      if (inFlight.size > 0 && inFlight.has(head.entry.id)) {
        if (head.status !== "pending" || head.claimedBy !== options.relayId || !(head.claimedUntil! > now)) continue
        let last = 0
        list.forEach((r, i) => {
          if (inFlight.has(r.entry.id)) last = i
        })
        const run: Array<MutableRow> = []
        for (let i = last + 1; i < list.length; i++) {
          const r = list[i]!
          if (r.status !== "pending" || r.nextAttemptAt > now || !free(r, now)) break
          run.push(r)
        }
        if (run.length > 0) continued.push(run)
        continue
      }
      if (head.status !== "pending" || head.nextAttemptAt > now || !free(head, now)) continue
      const run = [head]
      for (let i = 1; i < list.length; i++) {
        const r = list[i]!
        if (r.status !== "pending" || !free(r, now, options.relayId)) break
        run.push(r)
      }
      heads.push(run)
    }
    // Oldest head first, as many streams as the claim may start; a stream in flight is continued only with rows older
    // than every head left waiting, so a relay's streams never hold older ones back.
    heads.sort((a, b) => (a[0]!.entry.globalPosition < b[0]!.entry.globalPosition ? -1 : 1))
    const maxNewStreams = options.maxNewStreams === undefined ? Infinity : Math.floor(options.maxNewStreams) || 0
    const started = heads.slice(0, Math.max(0, Math.min(options.limit, maxNewStreams)))
    const oldestLeft = heads[started.length]?.[0]!.entry.globalPosition
    const runs = [
      ...started,
      ...continued.map((run) => oldestLeft === undefined ? run : run.filter((r) => r.entry.globalPosition < oldestLeft))
        .filter((run) => run.length > 0)
    ]
    const picked: Array<MutableRow> = []
    // Round-robin over the runs so a cut keeps each stream's claim a prefix.
    for (let depth = 0; picked.length < options.limit; depth++) {
      let any = false
      for (const run of runs) {
        const r = run[depth]
        if (r && picked.length < options.limit) {
          picked.push(r)
          any = true
        }
      }
      if (!any) break
    }
    const until = now + Duration.toMillis(Duration.decode(options.lease))
    for (const r of picked) {
      r.claimedBy = options.relayId
      r.claimedUntil = until
    }
    return picked
      .sort((a, b) => (a.entry.globalPosition < b.entry.globalPosition ? -1 : 1))
      .map((r): Outbox.Entry => ({ ...r.entry, attempts: r.retryCount }))
  }

  const markPublished = (relayId: string, ids: ReadonlyArray<bigint>) =>
    Effect.map(Clock.currentTimeMillis, (now) => mark(relayId, ids, now))

  const recordFailure = (relayId: string, id: bigint, error: string, retryIn: Option.Option<Duration.Duration>) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const r = byId.get(id)
      if (!r || !held(relayId)(r)) return false
      r.retryCount += 1
      r.lastError = EventValidation.sanitizeText(error)
      r.claimedBy = null
      r.claimedUntil = null
      if (Option.isSome(retryIn)) r.nextAttemptAt = now + Duration.toMillis(retryIn.value)
      else r.status = "failed"
      return true
    })

  const renew = (relayId: string, ids: ReadonlyArray<bigint>, lease: Duration.DurationInput) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      let count = 0
      for (const id of new Set(ids)) {
        const r = byId.get(id)
        if (r !== undefined && held(relayId)(r)) {
          r.claimedUntil = now + Duration.toMillis(Duration.decode(lease))
          count++
        }
      }
      return count
    })

  const release = (relayId: string, ids: ReadonlyArray<bigint>) =>
    Effect.sync(() => {
      for (const id of ids) {
        const r = byId.get(id)
        if (r !== undefined && held(relayId)(r)) {
          r.claimedBy = null
          r.claimedUntil = null
        }
      }
    })

  // Inspection and operator actions keep to the ambient tenant when one is set; without one, every tenant.
  const inTenant = (tenant: Option.Option<string>, r: MutableRow) =>
    Option.isNone(tenant) || r.entry.tenantId === tenant.value

  const retryFailed = (stream?: { readonly streamType: string; readonly streamId?: string | undefined }) =>
    Effect.map(Effect.zip(Clock.currentTimeMillis, Tenant.CurrentTenant), ([now, tenant]) => {
      let count = 0
      for (const r of rows) {
        if (
          r.status === "failed" && inTenant(tenant, r) &&
          (stream === undefined || (r.entry.streamType === stream.streamType &&
            (stream.streamId === undefined || r.entry.streamId === stream.streamId)))
        ) {
          r.status = "pending"
          r.retryCount = 0
          r.nextAttemptAt = now
          count++
        }
      }
      if (count > 0) { for (const queue of listeners) queue.unsafeOffer(undefined) }
      return count
    })

  const cleanup = (retention: Duration.DurationInput) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const cutoff = now - Duration.toMillis(Duration.decode(retention))
      const before = rows.length
      rows = rows.filter((r) => {
        const expired = r.status === "published" && r.publishedAt !== null && r.publishedAt < cutoff
        if (expired) byId.delete(r.entry.id)
        return !expired
      })
      return before - rows.length
    })

  const stats = Effect.map(Clock.currentTimeMillis, (now): Outbox.Stats => {
    let pending = 0
    let failed = 0
    let oldest: number | undefined
    for (const r of rows) {
      if (r.status === "pending") {
        pending++
        if (oldest === undefined || r.createdAt < oldest) oldest = r.createdAt
      } else if (r.status === "failed") failed++
    }
    return {
      pending,
      failed,
      oldestPendingAge: oldest === undefined ? Option.none() : Option.some(Duration.millis(Math.max(0, now - oldest)))
    }
  })

  const wakeups: Stream.Stream<void> = Stream.unwrapScoped(
    Effect.gen(function*() {
      const queue = yield* Queue.sliding<void>(1)
      listeners.add(queue)
      yield* Effect.addFinalizer(() => Effect.sync(() => listeners.delete(queue)))
      return Stream.fromQueue(queue)
    })
  )

  const service: Outbox.Outbox["Type"] = {
    claim,
    markPublished,
    recordFailure,
    renew,
    release,
    retryFailed,
    cleanup,
    stats,
    get: (eventId) =>
      Effect.map(
        Tenant.CurrentTenant,
        (tenant) =>
          Option.map(
            Option.fromNullable(rows.find((r) => r.entry.eventId === eventId && inTenant(tenant, r))),
            toRow
          )
      ),
    wakeups
  }
  writers.set(service, write)
  return service
})
