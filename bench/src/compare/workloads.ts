/**
 * The comparison's workloads, one function per group, each run in alternating rounds over the worker processes and
 * turned into table rows with the issue's targets. They run in the order of `all`: the feed first (while each
 * database holds exactly the seeded events), then folds, appends, commands on one stream, and live latency.
 *
 * @since 0.5.0
 */
import * as util from "../util.js"
import * as domain from "./domain.js"
import * as horizon from "./horizon.js"
import type * as PgBench from "./pgbench.js"
import type * as protocol from "./protocol.js"
import * as report from "./report.js"
import type * as workers from "./workers.js"

/**
 * The sizes and durations of one run.
 *
 * @since 0.5.0
 * @category models
 */
export interface Config {
  readonly rounds: number
  /** Consumer catch-up is slow for Emmett (it sleeps between batches): fewer rounds keep the module's time down. */
  readonly consumerRounds: number
  readonly appendWarmupMs: number
  readonly appendDurationMs: number
  readonly contentionWriters: number
  readonly contentionWarmupMs: number
  readonly contentionDurationMs: number
  readonly foldEvents: number
  readonly foldRuns: number
  readonly feedEvents: number
  readonly feedPage: number
  readonly liveWriters: number
  readonly liveRatePerWriter: number
  readonly liveWarmupMs: number
  readonly liveDurationMs: number
  readonly pgbenchSeconds: number
}

/**
 * The systems that run in worker processes, in the order they are listed.
 *
 * @since 0.5.0
 * @category constants
 */
export const SYSTEMS: ReadonlyArray<protocol.SystemName> = ["eventfold", "raw", "emmett"]

/** How often a live run is tried when a transaction elsewhere holds the xmin horizon while it runs. */
const HORIZON_ATTEMPTS = 3

/**
 * What every workload group gets: the run's configuration, the workers and pgbench, and where to note findings.
 *
 * @since 0.5.0
 * @category models
 */
export interface Context {
  readonly config: Config
  readonly workers: Record<protocol.SystemName, workers.Worker>
  /** Absent when no pgbench is installed. */
  readonly pgbench: PgBench.PgBench | undefined
  readonly serverUrl: string
  readonly findings: Array<string>
  readonly horizonNotes: Array<string>
  horizonReruns: number
}

/**
 * Runs every contender once per round, in an order rotated each round, so that load from elsewhere on the machine
 * and the order itself hit every contender alike.
 */
const alternate = async <C extends string, A>(
  rounds: number,
  contenders: ReadonlyArray<C>,
  run: (contender: C, round: number) => Promise<A>
): Promise<Map<C, ReadonlyArray<A>>> => {
  const results = new Map<C, Array<A>>(contenders.map((c) => [c, []]))
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < contenders.length; i++) {
      const contender = contenders[(i + round) % contenders.length]!
      results.get(contender)!.push(await run(contender, round))
    }
  }
  return results
}

/** The median of each contender's rounds, and the rounds themselves. */
const valuesOf = <C extends string>(results: Map<C, ReadonlyArray<number>>) => {
  const values: Partial<Record<C, number>> = {}
  const rounds: Partial<Record<C, ReadonlyArray<number>>> = {}
  for (const [c, samples] of results) {
    values[c] = util.median(samples)
    rounds[c] = samples
  }
  return { values, rounds }
}

const mapValues = <C extends string, A>(results: Map<C, ReadonlyArray<A>>, f: (a: A) => number) =>
  new Map([...results].map(([c, samples]) => [c, samples.map(f)] as const))

const sum = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0)

/**
 * Runs a live run once no transaction elsewhere on the server holds the xmin horizon back (consumers see no event
 * committed after such a transaction began until it ends), watching for one while it runs: a disturbed run is run
 * again, up to `HORIZON_ATTEMPTS` times in all (its latencies are the other transaction's, not the system's), and
 * noted when the last try is still disturbed.
 */
const guarded = async <A>(ctx: Context, what: string, f: (attempt: number) => Promise<A>): Promise<A> => {
  for (let attempt = 1;; attempt++) {
    const waited = await horizon.waitForRecentHorizon(ctx.serverUrl, { maxAgeMs: 2_000, timeoutMs: 120_000 })
    if (waited !== undefined) console.log(`  · before ${what}: ${waited}`)
    const { held, value } = await horizon.watched(ctx.serverUrl, 1_000, () => f(attempt))
    if (held === undefined) return value
    console.log(`  · during ${what}: ${held} held the xmin horizon`)
    if (attempt >= HORIZON_ATTEMPTS) {
      ctx.horizonNotes.push(`${what} (${held})`)
      return value
    }
    ctx.horizonReruns++
  }
}

/**
 * Catch-up on the seeded feed: paging reads (eventfold, raw pg, Emmett) and consumers (eventfold `Subscription`,
 * Emmett's reactor). Every run must read exactly the seeded events.
 *
 * @since 0.5.0
 * @category workloads
 */
export const feed = async (ctx: Context): Promise<ReadonlyArray<report.Row>> => {
  const { config, workers: w } = ctx
  const n = util.formatNumber
  await Promise.all(SYSTEMS.map((s) => w[s].call("seedFeed", { events: config.feedEvents })))
  // The seed is read below the xmin horizon: every transaction older than it must have ended. Later transactions
  // elsewhere hide nothing of it.
  const waited = await horizon.waitPastNow(ctx.serverUrl, 300_000)
  if (waited !== undefined) console.log(`  · before the feed catch-up: ${waited} for the xmin horizon to pass the seed`)
  const read = { mode: "read", pageSize: config.feedPage } as const
  for (const s of SYSTEMS) await w[s].call("feed", read) // warm-up
  const reads = await alternate(config.rounds, SYSTEMS, (s) => w[s].call("feed", read))
  const consumers = await alternate(
    config.consumerRounds,
    ["eventfold", "emmett"] as const,
    (s) => w[s].call("feed", { mode: "consumer", pageSize: config.feedPage })
  )
  for (const [s, results] of [...reads, ...consumers]) {
    for (const r of results) {
      if (r.events !== config.feedEvents) {
        throw new Error(`${s} caught up on ${r.events} events, expected ${config.feedEvents}`)
      }
    }
  }
  const rate = (r: protocol.FeedResult) => r.events / (r.ms / 1000)
  const readRow: report.Row = {
    id: "feed-read",
    group: "reads",
    workload: `feed catch-up, ${n(config.feedEvents)} events, pages of ${n(config.feedPage)}`,
    unit: "events/s",
    higherIsBetter: true,
    ...valuesOf(mapValues(reads, rate))
  }
  return [
    { ...readRow, target: { text: "≥ 0.6× raw keyset read", met: (report.ratio(readRow, "raw") ?? 0) >= 0.6 } },
    {
      id: "feed-consumer",
      group: "reads",
      workload: `consumer catch-up, ${n(config.feedEvents)} events, checkpointed${
        config.consumerRounds === config.rounds ? "" : `, ${config.consumerRounds} round`
      }`,
      unit: "events/s",
      higherIsBetter: true,
      labels: { eventfold: "eventfold Subscription", emmett: "Emmett reactor" },
      ...valuesOf(mapValues(consumers, rate))
    }
  ]
}

/**
 * Read + fold of one long stream, untyped and typed; every fold must reach the same balance.
 *
 * @since 0.5.0
 * @category workloads
 */
export const folds = async (ctx: Context): Promise<ReadonlyArray<report.Row>> => {
  const { config, workers: w } = ctx
  const streamId = "fold"
  await Promise.all(SYSTEMS.map((s) => w[s].call("seedStream", { streamId, events: config.foldEvents })))
  const expected = domain.expectedBalance(config.foldEvents)
  const rows: Array<report.Row> = []
  for (const typed of [false, true]) {
    for (const s of SYSTEMS) await w[s].call("fold", { streamId, typed, runs: 2 }) // warm-up
    const results = await alternate(
      config.rounds,
      SYSTEMS,
      (s) => w[s].call("fold", { streamId, typed, runs: config.foldRuns })
    )
    for (const [s, samples] of results) {
      for (const r of samples) {
        if (r.balance !== expected.balance || r.events !== expected.events) {
          throw new Error(`${s} folded ${JSON.stringify(r)}, expected ${JSON.stringify(expected)}`)
        }
      }
    }
    const row: report.Row = {
      id: typed ? "fold-typed" : "fold-untyped",
      group: "reads",
      workload: `read + fold ${util.formatNumber(config.foldEvents)}-event stream, ${
        typed ? "typed (Schema decode)" : "no Schema decode"
      }`,
      unit: "ms",
      higherIsBetter: false,
      ...valuesOf(mapValues(results, (r) => r.ms))
    }
    const limit = typed ? 2 : 1.5
    rows.push({ ...row, target: { text: `≤ ${limit}× raw pg`, met: (report.ratio(row, "raw") ?? Infinity) <= limit } })
  }
  return rows
}

/**
 * Appends of 1 event (1 and 8 writers, with pgbench's ceiling) and of 100 events (1 writer); each round writes new
 * streams.
 *
 * @since 0.5.0
 * @category workloads
 */
export const appends = async (ctx: Context): Promise<ReadonlyArray<report.Row>> => {
  const { config, pgbench, workers: w } = ctx
  const rows: Array<report.Row> = []
  for (const [writers, batchSize] of [[1, 1], [8, 1], [1, 100]] as const) {
    const contenders = batchSize === 1 && pgbench ? [...SYSTEMS, "pgbench" as const] : SYSTEMS
    const results = await alternate(config.rounds, contenders, (c, round) =>
      c === "pgbench"
        ? pgbench!.run(writers, config.pgbenchSeconds)
        : w[c].call("append", {
          label: `w${writers}b${batchSize}r${round}`,
          workers: writers,
          batchSize,
          warmupMs: config.appendWarmupMs,
          durationMs: config.appendDurationMs
        }).then((t) => t.perSecond))
    const { rounds, values } = valuesOf(results)
    const row: report.Row = {
      id: `append-${batchSize}x${writers}`,
      group: "appends",
      workload: `append ${batchSize} event${batchSize === 1 ? "" : "s"}, ${writers} writer${writers === 1 ? "" : "s"}`,
      unit: batchSize === 1 ? "appends/s" : "events/s",
      higherIsBetter: true,
      values,
      rounds
    }
    const vsRaw = report.ratio(row, "raw") ?? 0
    const vsEmmett = report.ratio(row, "emmett") ?? 0
    rows.push(
      writers === 1 && batchSize === 1
        ? { ...row, target: { text: "≥ 1.3× raw pg", met: vsRaw >= 1.3 } }
        : writers === 8
        ? { ...row, target: { text: "≥ 2× raw pg and ≥ 2× Emmett", met: vsRaw >= 2 && vsEmmett >= 2 } }
        : row
    )
    if (values.pgbench !== undefined && values.eventfold !== undefined) {
      ctx.findings.push(
        `${row.workload}: eventfold reaches ${(100 * values.eventfold / values.pgbench).toFixed(0)} % of ` +
          `pgbench's one-statement ceiling (${util.formatNumber(values.pgbench)} transactions/s with ${writers} ` +
          `client${writers === 1 ? "" : "s"}).`
      )
    }
  }
  return rows
}

/**
 * Concurrent commands on one stream (a new one, with one event, per round and system); every success must show in
 * the stream's final version.
 *
 * @since 0.5.0
 * @category workloads
 */
export const contention = async (ctx: Context): Promise<ReadonlyArray<report.Row>> => {
  const { config, workers: w } = ctx
  const results = await alternate(config.rounds, SYSTEMS, async (s, round) => {
    const streamId = `contention-${round}`
    await w[s].call("seedStream", { streamId, events: 1 })
    const result = await w[s].call("contention", {
      streamId,
      writers: config.contentionWriters,
      warmupMs: config.contentionWarmupMs,
      durationMs: config.contentionDurationMs
    })
    if (result.finalVersion !== result.succeeded + 1) {
      throw new Error(`${s}: ${result.succeeded} commands succeeded but the stream is at ${result.finalVersion}`)
    }
    return result
  })
  const conflicts = valuesOf(mapValues(results, (r) => r.conflicts))
  const failures = mapValues(results, (r) => r.failures)
  const row: report.Row = {
    id: "contention-8",
    group: "appends",
    workload: `${config.contentionWriters} writers on one stream, read-then-append with retry`,
    unit: "successes/s",
    higherIsBetter: true,
    ...valuesOf(mapValues(results, (r) => r.throughput.perSecond))
  }
  const eventfoldClean = sum(conflicts.rounds.eventfold ?? []) === 0 && sum(failures.get("eventfold") ?? []) === 0
  ctx.findings.push(
    `${config.contentionWriters} writers on one stream: commands that gave up after ${domain.MAX_RETRIES} retries ` +
      `(all rounds): ${SYSTEMS.map((s) => `${s} ${sum(failures.get(s) ?? [])}`).join(", ")}; conflicts per round: ` +
      `${SYSTEMS.map((s) => `${s} ${(conflicts.rounds[s] ?? []).join("/")}`).join(", ")}.`
  )
  return [
    {
      ...row,
      target: { text: "≥ 1× raw pg, zero conflicts", met: (report.ratio(row, "raw") ?? 0) >= 1 && eventfoldClean }
    },
    {
      id: "contention-8-conflicts",
      group: undefined,
      workload: "  conflicts in the measured window (median of rounds)",
      unit: "conflicts",
      higherIsBetter: false,
      ratios: false,
      ...conflicts
    }
  ]
}

/**
 * Live latency, append → handler, under a steady paced load: eventfold `Subscription` and `PgProjection`, and
 * Emmett's reactor when its worker has a consumer; each round's percentiles, median of the rounds.
 *
 * @since 0.5.0
 * @category workloads
 */
export const live = async (ctx: Context): Promise<ReadonlyArray<report.Row>> => {
  const { config, workers: w } = ctx
  const contenders = [
    "eventfold-subscription",
    "eventfold-projection",
    ...(w.emmett.live ? ["emmett" as const] : [])
  ] as const
  const results = await alternate(
    config.rounds,
    contenders,
    (c, round) =>
      guarded(
        ctx,
        `${c}'s live round ${round + 1}`,
        (attempt) =>
          (c === "emmett" ? w.emmett : w.eventfold).call("live", {
            label: `${c}-r${round}-a${attempt}`,
            mode: c === "eventfold-projection" ? "projection" : "subscription",
            writers: config.liveWriters,
            ratePerWriter: config.liveRatePerWriter,
            warmupMs: config.liveWarmupMs,
            durationMs: config.liveDurationMs
          })
      )
  )
  const rows: Array<report.Row> = []
  for (const mode of ["subscription", "projection"] as const) {
    const name = mode === "subscription" ? "Subscription" : "PgProjection"
    const own = new Map<report.Contender, ReadonlyArray<protocol.LiveResult>>([
      ["eventfold", results.get(`eventfold-${mode}`) ?? []],
      ...(results.has("emmett") ? [["emmett", results.get("emmett") ?? []] as const] : [])
    ])
    for (const p of [50, 99]) {
      // Each round's percentile, then the median of the rounds, as every other row: one disturbed round (load
      // from elsewhere on the machine) does not decide the number.
      const row: report.Row = {
        id: `live-${mode}-p${p}`,
        group: "latency",
        workload: `live latency p${p}, eventfold ${name} vs Emmett reactor`,
        unit: "ms",
        higherIsBetter: false,
        labels: { eventfold: `eventfold ${name}`, emmett: "Emmett reactor" },
        ...valuesOf(mapValues(own, (r) => domain.percentile(r.latencies, p)))
      }
      rows.push(
        p === 99 ? { ...row, target: { text: "≤ 50 ms", met: (row.values.eventfold ?? Infinity) <= 50 } } : row
      )
    }
  }
  const samples = [...results].map(([c, r]) => `${c} ${util.formatNumber(sum(r.map((x) => x.latencies.length)))}`)
  for (const [c, r] of results) {
    const missed = sum(r.map((x) => x.missed ?? 0))
    if (missed > 0) {
      ctx.findings.push(
        `live: ${c}'s consumer never handled ${missed} of ${sum(r.map((x) => x.appended))} appended events ` +
          `(skipped: it pages by global_position, and an event whose transaction commits late falls behind its checkpoint).`
      )
    }
  }
  ctx.findings.push(
    `live latency: ${config.liveWriters} writers × ${config.liveRatePerWriter} appends/s; each round's percentile ` +
      `over its events, median of ${config.rounds} round${config.rounds === 1 ? "" : "s"} (${samples.join(", ")} ` +
      "samples in all)."
  )
  return rows
}

/**
 * Every workload group in measuring order, the rows in the issue's order, and the findings (ending with any
 * disturbance of the xmin horizon).
 *
 * @since 0.5.0
 * @category workloads
 */
export const all = async (
  ctx: Context
): Promise<{ readonly rows: ReadonlyArray<report.Row>; readonly findings: ReadonlyArray<string> }> => {
  const started = performance.now()
  const step = async (what: string, run: (ctx: Context) => Promise<ReadonlyArray<report.Row>>) => {
    const rows = await run(ctx)
    console.log(`  · ${what} (${((performance.now() - started) / 1000).toFixed(1)} s)`)
    return rows
  }
  const feedRows = await step("feed catch-up", feed)
  const foldRows = await step("read + fold", folds)
  const appendRows = await step("appends", appends)
  const contentionRows = await step("commands on one stream", contention)
  const liveRows = await step("live latency", live)
  if (ctx.horizonReruns > 0) {
    ctx.findings.push(
      `${ctx.horizonReruns} live run${ctx.horizonReruns === 1 ? " was" : "s were"} run again because a ` +
        "transaction elsewhere on the server held the xmin horizon (> 1 s) meanwhile."
    )
  }
  if (ctx.horizonNotes.length > 0) {
    ctx.findings.push(
      `A transaction elsewhere on the server held the xmin horizon (> 1 s) during ${ctx.horizonNotes.join("; ")}, ` +
        `even after ${HORIZON_ATTEMPTS} tries: those latencies measure the server's other work, not the system. ` +
        "Rerun on a quiet server."
    )
  }
  return {
    rows: [...appendRows, ...contentionRows, ...foldRows, ...feedRows, ...liveRows],
    findings: ctx.findings
  }
}
