/**
 * The published comparison (issue 16): eventfold against a raw `pg` baseline, Emmett 0.42
 * (`@event-driven-io/emmett-postgresql`) and pgbench, on the same PostgreSQL server, each system in a fresh database
 * of its own (made and dropped here) and in a process of its own (`compare/worker.ts`), each driven through its
 * public API with the same workloads, pool size 10 everywhere, alternating rounds, medians of 3.
 *
 * Workloads: appends (1 event × 1 and 8 writers, 100 events × 1 writer; pgbench's one-statement INSERT as the
 * ceiling), 8 concurrent commands on one stream (read, fold, append with retry), read + fold of a 10,000-event stream
 * (untyped and with Schema decode), catch-up on a 100,000-event feed (paging reads and consumers), live latency from
 * append to handler under a steady load. Prints the table and writes `bench/results/` (compare.json, compare.md and
 * SVG charts). `COMPARE_QUICK=1` runs a short version into a temporary directory; `COMPARE_RESULTS=<dir>` writes
 * elsewhere.
 *
 * @since 0.5.0
 */
import * as os from "node:os"
import * as path from "node:path"
import * as url from "node:url"
import * as PgBench from "./compare/pgbench.js"
import * as report from "./compare/report.js"
import * as workers from "./compare/workers.js"
import * as workloads from "./compare/workloads.js"
import * as util from "./util.js"

const FULL: workloads.Config = {
  rounds: 3,
  consumerRounds: 1,
  appendWarmupMs: 300,
  appendDurationMs: 1_200,
  contentionWriters: 8,
  contentionWarmupMs: 300,
  contentionDurationMs: 1_500,
  foldEvents: 10_000,
  foldRuns: 5,
  feedEvents: 100_000,
  feedPage: 1_000,
  liveWriters: 8,
  liveRatePerWriter: 50,
  liveWarmupMs: 500,
  liveDurationMs: 2_500,
  pgbenchSeconds: 5
}

const QUICK: workloads.Config = {
  ...FULL,
  rounds: 1,
  appendWarmupMs: 100,
  appendDurationMs: 400,
  contentionWarmupMs: 100,
  contentionDurationMs: 500,
  foldEvents: 2_000,
  foldRuns: 3,
  feedEvents: 20_000,
  liveWarmupMs: 200,
  liveDurationMs: 800,
  pgbenchSeconds: 1
}

const setups: ReadonlyArray<string> = [
  "Every system: its own fresh database on the same server (made and dropped by the bench), its own Node process " +
  "(so no library's process-wide settings reach another), a pool of 10 connections, the same events (`Deposited` / " +
  "`Withdrawn` with `{ amount, note }` and a correlation id in the metadata), new streams for each append round.",
  "eventfold: `PgEventStore.layer()` with its defaults (group commit on, a coalesced NOTIFY hint after appends) over " +
  "`PgDatabase.layer({ maxConnections: 10 })`, migrated by `PgMigrations.layer()`; workloads run as fibers of one " +
  "Effect program. Appends: `EventStore.append` with `ExpectedVersion.Exact(n)`. Commands: `CommandHandler.make` " +
  "(its default retry: 5 ms doubling to 200 ms, jittered, 20 retries). Untyped fold: `EventStore.readStream` + fold " +
  "of the payloads; typed fold: `CommandHandler.load` (row decode, Schema decode into `TaggedClass`es, evolve). Feed: " +
  "`EventStore.streamAll({ pageSize: 1000 })` (row Schema decode). Consumers: `Subscription` (checkpoint per page) " +
  "and `PgProjection` (handler + checkpoint in one transaction per page), live mode woken by `PgFeedNotifier` " +
  "(LISTEN on one extra connection outside the pool).",
  "raw pg: `pg.Pool({ max: 10 })` over eventfold's own tables. Append: BEGIN; INSERT (new stream) or UPDATE the " +
  "stream row at the expected version; one multi-row INSERT of the events; COMMIT (4 round trips). Command: SELECT " +
  "the stream's events, fold, append at the version read, retry a conflict with eventfold's delays. Folds: SELECT of " +
  "the columns eventfold reads, fold over pg's parsed JSON (typed: the same Schema decode per event). Feed: keyset " +
  "pages of 1,000 on `(transaction_id, global_position)` below `pg_snapshot_xmin(pg_current_snapshot())`, same " +
  "columns. No consumer, no live row.",
  "Emmett 0.42: `getPostgreSQLEventStore(url, { connectionOptions: { pool: new pg.Pool({ max: 10 }) } })`, schema " +
  "by `store.schema.migrate()`. Appends: `appendToStream(name, events, { expectedStreamVersion })` (BEGIN; " +
  "`emt_append_to_stream(...)`; COMMIT). Commands: `CommandHandler({ evolve, initialState, retry: { " +
  "onVersionConflict: { retries: 20, factor: 2, minTimeout: 3.3, maxTimeout: 200, randomize: true } } })` — " +
  "eventfold's policy as async-retry can say it (Emmett's own default is 3 retries from 100 ms). Folds: " +
  "`aggregateStream` (typed: the same Schema decode inside `evolve`). Feed: `readMessagesBatch(execute, { after, " +
  "batchSize: 1000 })`, what its consumers page with (0.42 pages on `global_position` below the xmin horizon). " +
  "Consumers: `store.consumer({ pulling: { batchSize: 1000 } })` with a reactor (one transaction per batch: each " +
  "message's handler and a checkpoint update per message), live from the current last position (0.42's " +
  "`startFrom: 'END'` starts from the first), its default polling (50 ms between full batches, backing off to 1 s when a batch is not " +
  "full); Emmett has no LISTEN/NOTIFY. Dumbo parses jsonb with its own JSON serializer and bigint columns to BigInt.",
  "pgbench: `pgbench -n -c <1|8> -j <1|2> -T <s> -f script.sql`, the script one INSERT of one event row into an " +
  "events table migrated as eventfold's (same indexes), no stream row, no version check: a ceiling, not a peer."
]

/**
 * Runs the comparison on `ctx.serverUrl`, prints the table and writes the results.
 *
 * @since 0.5.0
 * @category main
 */
export const main = async (ctx: { readonly serverUrl: string }): Promise<void> => {
  const quick = process.env.COMPARE_QUICK === "1"
  const config = quick ? QUICK : FULL
  const server = await util.describeServer(ctx.serverUrl)
  const databases: Array<util.BenchDatabase> = []
  const running: Array<workers.Worker> = []
  let pgbench: PgBench.PgBench | undefined
  try {
    for (const name of [...workloads.SYSTEMS, "pgbench"]) {
      databases.push(await util.createDatabase(ctx.serverUrl, `eventfold_compare_${name}`))
    }
    const started = await Promise.allSettled(workloads.SYSTEMS.map((s, i) => workers.spawn(s, databases[i]!.url)))
    for (const s of started) if (s.status === "fulfilled") running.push(s.value)
    const failed = started.find((s) => s.status === "rejected")
    if (failed) throw failed.reason
    pgbench = await PgBench.make(databases[workloads.SYSTEMS.length]!.url)
    if (!pgbench) console.log("  · pgbench is not installed: the table has no ceiling column")
    const byName = (name: string) => {
      const worker = running.find((w) => w.name === name)
      if (!worker) throw new Error(`no ${name} worker`)
      return worker
    }
    const { findings, rows } = await workloads.all({
      config,
      workers: { eventfold: byName("eventfold"), raw: byName("raw"), emmett: byName("emmett") },
      pgbench,
      serverUrl: ctx.serverUrl,
      findings: [],
      horizonNotes: [],
      horizonReruns: 0
    })

    const method = `pool 10 for every system; ${config.rounds} alternating round${config.rounds === 1 ? "" : "s"} ` +
      `(order rotated), medians; appends ${config.appendWarmupMs} ms warm-up + ${config.appendDurationMs} ms ` +
      `measured; commands ${config.contentionWarmupMs} + ${config.contentionDurationMs} ms; folds: median of ` +
      `${config.foldRuns} loads per round; consumer catch-up: ${config.consumerRounds} round; pgbench -T ` +
      `${config.pgbenchSeconds}; live: ${config.liveWarmupMs} + ` +
      `${config.liveDurationMs} ms per round`
    const result: report.Report = {
      generatedAt: new Date().toISOString(),
      server,
      machine: `${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ` +
        `${os.platform()} ${os.release()}`,
      quick,
      method,
      rows,
      findings,
      setups,
      config
    }
    console.log(
      [
        `eventfold vs raw pg vs Emmett 0.42 vs pgbench (${server}; ${method})`,
        "",
        report.table(rows),
        "",
        ...findings,
        "ratio = eventfold / other: higher is better for /s rows, lower is better for ms rows."
      ].join("\n")
    )
    const dir = process.env.COMPARE_RESULTS ??
      (quick
        ? path.join(os.tmpdir(), "eventfold-compare-quick")
        : path.join(path.dirname(url.fileURLToPath(import.meta.url)), "..", "results"))
    console.log(`\nwrote ${report.write(result, dir).join(", ")}`)
  } finally {
    await Promise.all(running.map((worker) => worker.close()))
    pgbench?.close()
    for (const database of databases) {
      await database.drop().catch((e) => console.error(`could not drop ${database.name}:`, e))
    }
  }
}
