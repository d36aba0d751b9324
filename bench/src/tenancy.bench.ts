/**
 * The cost of tenancy and of row-level security: the whole PostgreSQL stack (`PgEventfold`) as the least-privilege
 * application role, single-tenant without row-level security (the default), multi-tenant without it, and
 * multi-tenant with it, each on a fresh database of its own (`PgTest.freshDatabase`) on the same server, measured in
 * alternating rounds. Multi-tenant work is spread over 10 tenants with `Tenant.with`; the single-tenant
 * configuration does the same work on the same number of streams in the default tenant.
 * The bar: append and load with tenancy and row-level security on, against off, within 10 %.
 *
 * @since 0.3.0
 */
import * as CommandHandler from "@eventfold/core/CommandHandler"
import * as EventStore from "@eventfold/core/EventStore"
import * as ExpectedVersion from "@eventfold/core/ExpectedVersion"
import * as SnapshotStore from "@eventfold/core/SnapshotStore"
import * as Tenant from "@eventfold/core/Tenant"
import * as PgEventfold from "@eventfold/postgres/PgEventfold"
import * as PgTest from "@eventfold/postgres/PgTest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import pg from "pg"
import * as util from "./util.js"

const POOL_SIZE = 10
const ROUNDS = 7
const WARMUP_MS = 250
const DURATION_MS = 1_000
const TENANTS = 10
/** Streams per tenant seeded for the read workloads: 10 × 10 = 100 streams of `STREAM_EVENTS` events. */
const STREAMS_PER_TENANT = 10
const STREAM_EVENTS = 100
const PAGE = 500
const STREAM_TYPE = "Account"

const AccountState = Schema.Struct({ balance: Schema.Number, events: Schema.Number })
type AccountState = typeof AccountState.Type

/** Loads replay every event; the snapshotting twin (same stream type) only writes the snapshots the seed leaves. */
const { replaying, snapshotting } = util.accountAggregates({
  name: STREAM_TYPE,
  state: AccountState,
  initialState: { balance: 0, events: 0 },
  evolve: (state, event) => ({
    balance: event._tag === "Deposited" ? state.balance + event.amount : state.balance - event.amount,
    events: state.events + 1
  }),
  every: STREAM_EVENTS
})

const metadata = { correlationId: "bench" }
const eventsOf = (count: number) =>
  Array.from({ length: count }, (_, i) => ({
    type: i % 3 === 2 ? "Withdrawn" : "Deposited",
    payload: { amount: (i % 97) + 1, note: "benchmark event" },
    metadata
  }))
const oneEvent = eventsOf(1)

interface Configuration {
  readonly name: string
  readonly tenancy: Tenant.Mode
  readonly rowLevelSecurity: boolean
}

const configurations: ReadonlyArray<Configuration> = [
  { name: "single", tenancy: "single", rowLevelSecurity: false },
  { name: "multi", tenancy: "multi", rowLevelSecurity: false },
  { name: "multi+RLS", tenancy: "multi", rowLevelSecurity: true }
]

type Runtime = ManagedRuntime.ManagedRuntime<PgEventfold.Services, unknown>

/** One configuration's stack, and how it runs an operation for the tenant with index `t`. */
interface Stack {
  readonly configuration: Configuration
  readonly runtime: Runtime
  readonly store: EventStore.EventStore["Type"]
  readonly snapshots: SnapshotStore.SnapshotStore["Type"]
  readonly handler: CommandHandler.CommandHandler<AccountState, util.Noop, util.AccountEvent, never>
  /** Multi-tenant: `Tenant.with("tenant-t")`. Single-tenant: as it is (the default tenant). */
  readonly inTenant: (t: number) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

/** The seeded stream `n` of tenant `t`: the same ids in every configuration, in its default tenant when single. */
const seededStream = (t: number, n: number) => `load-${t}-${n}`

/** Fails the run when a measured operation returned the wrong thing: a fast empty read proves nothing. */
class WrongResult extends Schema.TaggedError<WrongResult>()("WrongResult", { message: Schema.String }) {}
const expect = (ok: boolean, message: () => string): Effect.Effect<void, WrongResult> =>
  ok ? Effect.void : Effect.fail(new WrongResult({ message: message() }))

/**
 * A workload builds, per configuration, the operation of worker `w`; `k` counts that worker's operations, so each
 * operation moves on to the next tenant (and its stream), in every configuration alike.
 */
interface Workload {
  readonly name: string
  readonly unit: string
  readonly workers: number
  /** Counted in the bar (append and load). */
  readonly bar: boolean
  readonly op: (stack: Stack, label: string) => (worker: number, k: number) => Effect.Effect<number, unknown>
}

/** Worker `w`'s `k`-th operation targets tenant `(w + k) % TENANTS` and, for reads, one of its seeded streams. */
const tenantOf = (worker: number, k: number) => (worker + k) % TENANTS
const streamOf = (worker: number, k: number) => (worker * 3 + Math.floor(k / TENANTS)) % STREAMS_PER_TENANT

const appendWorkload = (workers: number): Workload => ({
  name: `append 1 event, ${workers} writer${workers === 1 ? "" : "s"}${workers > 1 ? " (own streams)" : ""}`,
  unit: "appends/s",
  workers,
  bar: true,
  op: (stack, label) => {
    const versions = new Map<string, number>()
    return (worker, k) => {
      const t = tenantOf(worker, k)
      const streamId = `${label}-w${worker}-t${t}`
      return stack.store.append({
        streamType: STREAM_TYPE,
        streamId,
        expectedVersion: ExpectedVersion.Exact(versions.get(streamId) ?? 0),
        events: oneEvent
      }).pipe(
        Effect.map((result) => {
          versions.set(streamId, result.version)
          return 1
        }),
        stack.inTenant(t)
      )
    }
  }
})

const loadWorkload = (workers: number): Workload => ({
  name: `CommandHandler.load, ${STREAM_EVENTS}-event stream, ${workers} reader${workers === 1 ? "" : "s"}`,
  unit: "loads/s",
  workers,
  bar: true,
  op: (stack) => (worker, k) => {
    const t = tenantOf(worker, k)
    return stack.handler.load(seededStream(t, streamOf(worker, k))).pipe(
      Effect.flatMap((loaded) =>
        expect(
          loaded.version === STREAM_EVENTS && loaded.state.events === STREAM_EVENTS,
          () => `load: version ${loaded.version}`
        )
      ),
      Effect.as(1),
      stack.inTenant(t)
    )
  }
})

const readStreamWorkload = (workers: number): Workload => ({
  name: `EventStore.readStream, ${STREAM_EVENTS} events, ${workers} readers`,
  unit: "reads/s",
  workers,
  bar: true,
  op: (stack) => (worker, k) => {
    const t = tenantOf(worker, k)
    return stack.store.readStream({ streamType: STREAM_TYPE, streamId: seededStream(t, streamOf(worker, k)) }).pipe(
      Effect.flatMap((events) => expect(events.length === STREAM_EVENTS, () => `readStream: ${events.length} events`)),
      Effect.as(1),
      stack.inTenant(t)
    )
  }
})

/** The first page of the feed: one tenant's (multi-tenant), the whole feed (single-tenant, all in one tenant). */
const readAllWorkload: Workload = {
  name: `readAll, page of ${PAGE}, 1 reader`,
  unit: "pages/s",
  workers: 1,
  bar: false,
  op: (stack) => (worker, k) => {
    const t = tenantOf(worker, k)
    return stack.store.readAll({ limit: PAGE }).pipe(
      Effect.flatMap((events) =>
        expect(
          events.length === PAGE &&
            (stack.configuration.tenancy === "single" || events.every((e) => e.tenantId === `tenant-${t}`)),
          () => `readAll: ${events.length} events`
        )
      ),
      Effect.as(1),
      stack.inTenant(t)
    )
  }
}

const snapshotWorkload: Workload = {
  name: "SnapshotStore.load, 8 readers",
  unit: "loads/s",
  workers: 8,
  bar: false,
  op: (stack) => (worker, k) => {
    const t = tenantOf(worker, k)
    return stack.snapshots.load({ streamType: STREAM_TYPE, streamId: seededStream(t, streamOf(worker, k)) }).pipe(
      Effect.flatMap((snapshot) =>
        expect(
          Option.isSome(snapshot) && snapshot.value.version === STREAM_EVENTS,
          () => "snapshot load: none"
        )
      ),
      Effect.as(1),
      stack.inTenant(t)
    )
  }
}

const workloads: ReadonlyArray<Workload> = [
  appendWorkload(1),
  appendWorkload(8),
  loadWorkload(1),
  loadWorkload(8),
  readStreamWorkload(8),
  readAllWorkload,
  snapshotWorkload
]

/** Runs `op` on `workers` fibers for a warm-up and a measured window; `k` counts each worker's operations. */
const measure = (
  runtime: Runtime,
  workers: number,
  op: (worker: number, k: number) => Effect.Effect<number, unknown>
) => {
  const counts = new Array<number>(workers).fill(0)
  const options: util.ThroughputOptions = { workers, warmupMs: WARMUP_MS, durationMs: DURATION_MS }
  return () => runtime.runPromise(util.throughputEffect(options, (worker) => op(worker, counts[worker]!++)))
}

/** 100 streams of `STREAM_EVENTS` events (10 per tenant, interleaved in the feed), each with a snapshot at its head. */
const seed = (stack: Stack) =>
  Effect.gen(function*() {
    const snapshotter = yield* CommandHandler.make(snapshotting)
    const streams = Array.from(
      { length: TENANTS * STREAMS_PER_TENANT },
      (_, i) => ({ t: i % TENANTS, n: Math.floor(i / TENANTS) })
    )
    const events = eventsOf(STREAM_EVENTS)
    yield* Effect.forEach(streams, ({ n, t }) =>
      stack.store.append({
        streamType: STREAM_TYPE,
        streamId: seededStream(t, n),
        expectedVersion: ExpectedVersion.NoStream,
        events
      }).pipe(stack.inTenant(t)))
    yield* Effect.forEach(
      streams,
      ({ n, t }) =>
        snapshotter.snapshot(seededStream(t, n)).pipe(
          Effect.flatMap((written) => expect(Option.isSome(written), () => `no snapshot of ${seededStream(t, n)}`)),
          stack.inTenant(t)
        ),
      { concurrency: 4 }
    )
  })

/** As the tables' owner: fresh statistics and visibility map after a batch of writes, in every database alike. */
const vacuumAnalyze = async (database: PgTest.TestDatabase) => {
  const client = new pg.Client({ connectionString: database.adminUrl, connectionTimeoutMillis: 5_000 })
  await client.connect()
  try {
    await client.query("VACUUM ANALYZE eventfold.events, eventfold.streams, eventfold.snapshots")
  } finally {
    await client.end()
  }
}

/**
 * @since 0.3.0
 */
export const main = async (ctx: { readonly serverUrl: string }): Promise<void> => {
  // PgTest creates its databases on DATABASE_URL, else on EVENTFOLD_TEST_ADMIN_URL: the runner's server either way.
  const previousAdminUrl = process.env.EVENTFOLD_TEST_ADMIN_URL
  if (!process.env.DATABASE_URL) process.env.EVENTFOLD_TEST_ADMIN_URL = ctx.serverUrl
  const scope = Effect.runSync(Scope.make())
  const stacks: Array<Stack> = []
  const databases: Array<PgTest.TestDatabase> = []
  try {
    const server = await util.describeServer(ctx.serverUrl)
    for (const configuration of configurations) {
      const database = await Effect.runPromise(
        Scope.extend(PgTest.freshDatabase({ rowLevelSecurity: configuration.rowLevelSecurity }), scope)
      )
      databases.push(database)
      // PgTest.eventfold with the pool size pinned: the stack as the application role, the schema only verified.
      const runtime: Runtime = ManagedRuntime.make(PgEventfold.layer({
        tenancy: configuration.tenancy,
        rowLevelSecurity: configuration.rowLevelSecurity,
        database: { url: database.url, maxConnections: POOL_SIZE, applicationName: `bench-${configuration.name}` },
        migrations: "verify"
      }))
      const [store, snapshots, handler] = await runtime.runPromise(
        Effect.all([EventStore.EventStore, SnapshotStore.SnapshotStore, CommandHandler.make(replaying)])
      )
      const stack: Stack = {
        configuration,
        runtime,
        store,
        snapshots,
        handler,
        inTenant: configuration.tenancy === "multi" ? (t) => Tenant.with(`tenant-${t}`) : () => (effect) => effect
      }
      stacks.push(stack)
      await runtime.runPromise(seed(stack))
      await vacuumAnalyze(database)
    }

    const rows: Array<ReadonlyArray<string>> = []
    const detail: Array<ReadonlyArray<string>> = []
    const summary: Array<{
      readonly workload: Workload
      readonly medians: ReadonlyArray<number>
      readonly ratios: ReadonlyArray<number>
    }> = []
    for (const [index, workload] of workloads.entries()) {
      const label = `x${index}`
      const contenders = stacks.map((stack) => measure(stack.runtime, workload.workers, workload.op(stack, label)))
      const perRound = stacks.map((): Array<number> => [])
      for (let round = 0; round < ROUNDS; round++) {
        // Each round starts with the next configuration, so none always runs first (or right after another).
        for (let j = 0; j < contenders.length; j++) {
          const i = (round + j) % contenders.length
          perRound[i]!.push((await contenders[i]!()).perSecond)
        }
      }
      const [single, multi, rls] = perRound.map(util.median) as [number, number, number]
      // Ratios are medians of the per-round ratios: the contenders of a round ran back to back, so a slow phase of
      // the machine hits both sides of each ratio.
      const ratios = [[1, 0], [2, 0], [2, 1]].map(([a, b]) =>
        util.median(perRound[a!]!.map((value, round) => value / perRound[b!]![round]!))
      ) as [number, number, number]
      summary.push({ workload, medians: [single, multi, rls], ratios })
      rows.push([
        workload.name,
        workload.unit,
        util.formatNumber(single),
        util.formatNumber(multi),
        util.formatNumber(rls),
        ...ratios.map((r) => `${r.toFixed(2)}×`)
      ])
      detail.push([
        workload.name,
        ...perRound.map((values) => values.map((v) => util.formatNumber(v)).join(" "))
      ])
      // The appends grew the events table: fresh statistics before the reads, in every database alike.
      if (workload.name.startsWith("append")) await Promise.all(databases.map(vacuumAnalyze))
    }

    const worst = summary.filter((s) => s.workload.bar).map((s) => ({
      name: s.workload.name,
      overhead: 1 - s.ratios[1]!
    })).sort((a, b) => b.overhead - a.overhead)[0]
    console.log(
      [
        `tenancy and row-level security: ${server}; PgEventfold as the application role, pool ${POOL_SIZE}, ` +
        `each configuration on its own fresh database; multi-tenant work spread over ${TENANTS} tenants; ` +
        `medians of ${ROUNDS} alternating rounds of ${WARMUP_MS / 1000} s warm-up + ${DURATION_MS / 1000} s measured ` +
        "(ratios: medians of the per-round ratios)",
        "",
        util.formatTable(
          ["workload", "unit", "single", "multi", "multi+RLS", "multi/single", "RLS/single", "RLS/multi"],
          rows
        ),
        "",
        worst === undefined ? "" : `issue's bar (append and load, RLS/single ≥ 0.90×): worst ${worst.name}, ` +
          `${(100 * worst.overhead).toFixed(1)} % overhead -> ${worst.overhead <= 0.1 ? "met" : "NOT met"}`,
        "",
        "rounds (per second, in round order; round r starts with configuration r mod 3):",
        util.formatTable(["workload", "single", "multi", "multi+RLS"], detail)
      ].join("\n")
    )
  } finally {
    for (const stack of stacks) await stack.runtime.dispose()
    await Effect.runPromise(Scope.close(scope, Exit.void))
    if (previousAdminUrl === undefined) delete process.env.EVENTFOLD_TEST_ADMIN_URL
    else process.env.EVENTFOLD_TEST_ADMIN_URL = previousAdminUrl
  }
}
