/**
 * Cost as the log grows: appends (new and existing streams), idempotent appends, a 100-event stream read, snapshot
 * loads and feed pages at 0, 1M and 5M events, with WAL bytes and buffer misses per append and the size of every
 * table and index, projected to 50M and 500M events. Two stores grow side by side: one whose history (and appends)
 * carry time-ordered UUIDv7 event ids, as eventfold generates now, and one with random UUIDv4 ids, as before; a
 * third stays empty as the baseline of every throughput ratio. At 1M events a copy of the v7 store tries what helps
 * stream reads (CLUSTER) and appends (a fillfactor on events and on streams, wal_compression).
 *
 * Histories are written server-side (INSERT ... SELECT generate_series, the rows append_events would write, streams
 * rows included): 10-event streams, 1,000 open at a time and interleaved, and 2 % of the events in 100-event streams
 * spread over their chunk of the log. `SCALE_MAX=1000000` stops at 1M events. `SCALE_WALDUMP=<path to pg_waldump>`
 * (server on this machine, data directory readable) splits each window's WAL into this benchmark's own records and
 * full-page images, so that other activity on the server does not count.
 *
 * @since 0.4.0
 */
import * as EventId from "@eventfold/core/EventId"
import * as EventStore from "@eventfold/core/EventStore"
import * as ExpectedVersion from "@eventfold/core/ExpectedVersion"
import * as Position from "@eventfold/core/Position"
import * as SnapshotStore from "@eventfold/core/SnapshotStore"
import * as PgDatabase from "@eventfold/postgres/PgDatabase"
import * as PgEventStore from "@eventfold/postgres/PgEventStore"
import * as PgMigrations from "@eventfold/postgres/PgMigrations"
import * as PgSnapshotStore from "@eventfold/postgres/PgSnapshotStore"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as url from "node:url"
import pg from "pg"
import * as util from "./util.js"

const SCALE_MAX = Number(process.env.SCALE_MAX ?? 5_000_000)
if (!(SCALE_MAX >= 0)) throw new Error(`SCALE_MAX must be a number of events, got ${process.env.SCALE_MAX}`)
const LEVELS = [0, 1_000_000, 5_000_000].filter((n) => n <= SCALE_MAX)
/** The level at which the copy of the v7 store tries CLUSTER and fillfactor. */
const ADVICE_LEVEL = LEVELS.find((n) => n >= 1_000_000) ?? LEVELS[LEVELS.length - 1]!
const CHUNK = 250_000
/** The fixture every store starts with: 100 streams of 100 events and 1,000 of 10, interleaved. */
const FIXTURE = 20_000
/** Every 50th event of a history belongs to a 100-event stream: one such stream per 5,000 events. */
const LONG_EVERY = 50
const WRITERS = 8
/** Appends per measured window; each window starts after a CHECKPOINT, so it pays the full-page images it causes. */
const APPENDS = 4_000
const ROUNDS = 2
const READS = 200
const FEED_PAGES = 60
const FEED_PAGE = 1_000
const SNAPSHOT_TAILS = [0, 9, 24, 49] as const
const PROJECT_TO = [50_000_000, 500_000_000] as const
const TENANT = "default"

const migrationsDir = path.join(path.dirname(url.fileURLToPath(import.meta.url)), "..", "..", "migrations")

// ---------------------------------------------------------------------------------------------------------------
// Databases and admin queries

interface Db {
  readonly label: string
  readonly url: string
  readonly name: string
  /** How the store's appends name their events: ids it generates (v7) or random v4 ids the bench supplies. */
  readonly ids: "generated" | "v4"
  /** Events written by the population (not by measured appends). */
  populated: number
  chunks: number
}

const withClient = async <A>(dbUrl: string, f: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: dbUrl, connectionTimeoutMillis: 10_000 })
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end()
  }
}

const query = <R extends pg.QueryResultRow>(dbUrl: string, text: string, values?: ReadonlyArray<unknown>) =>
  withClient(dbUrl, async (client) => (await client.query<R>(text, values as Array<unknown> | undefined)).rows)

const migrate = (dbUrl: string) =>
  Effect.runPromise(
    PgMigrations.run().pipe(Effect.provide(PgDatabase.layer({ url: dbUrl, maxConnections: 1 })))
  )

// A UUIDv7 of a given millisecond and counter (rand_a), the rest random, and the population of one chunk:
// the rows append_events writes, streams rows included. Row r of a chunk of n is a 100-event-stream event when
// r % k = k - 1 (n / k / 100 such streams, round-robin); the others fill 10-event streams, 1,000 open at a time.
const POPULATE_SQL = `
CREATE OR REPLACE FUNCTION public.bench_uuid7(p_ms bigint, p_counter integer) RETURNS uuid LANGUAGE sql VOLATILE
AS $$
  SELECT (lpad(to_hex(p_ms), 12, '0') || '7' || lpad(to_hex(p_counter % 4096), 3, '0')
          || to_hex(8 + floor(random() * 4)::integer) || substr(md5(random()::text), 1, 15))::uuid
$$;
CREATE OR REPLACE FUNCTION public.bench_populate(p_chunk integer, p_n integer, p_k integer, p_v7 boolean,
                                                 p_first_ms bigint)
RETURNS void LANGUAGE sql AS $$
  WITH rows AS (
    SELECT r, (r % p_k = p_k - 1) AS long, r / p_k AS idx, r - (r + 1) / p_k AS r2,
           greatest(1, p_n / p_k / 100) AS l
      FROM generate_series(0, p_n - 1) AS r
  ), keyed AS (
    SELECT r,
           CASE WHEN long THEN 'Ledger' ELSE 'Account' END AS stream_type,
           CASE WHEN long THEN 'long-' || p_chunk || '-' || (idx % l)
                ELSE 'acct-' || p_chunk || '-' || (r2 / 10000 * 1000 + r2 % 1000) END AS stream_id,
           CASE WHEN long THEN (idx / l + 1)::integer ELSE ((r2 % 10000) / 1000 + 1)::integer END AS version
      FROM rows
  ), ins AS (
    INSERT INTO eventfold.events (tenant_id, stream_type, stream_id, version, event_id, event_type, schema_version,
                                  payload, metadata, correlation_id)
    SELECT 'default', k.stream_type, k.stream_id, k.version,
           CASE WHEN p_v7 THEN public.bench_uuid7(p_first_ms + k.r / 4096, (k.r % 4096)::integer)
                ELSE gen_random_uuid() END,
           CASE WHEN k.r % 3 = 2 THEN 'Withdrawn' ELSE 'Deposited' END, 1,
           jsonb_build_object('amount', k.r % 100 + 1, 'note', 'benchmark event'),
           jsonb_build_object('correlationId', c.id), c.id
      FROM keyed k CROSS JOIN LATERAL (SELECT gen_random_uuid()::text AS id) c
     ORDER BY k.r
    RETURNING 1
  )
  INSERT INTO eventfold.streams (tenant_id, stream_type, stream_id, version, last_transaction_id)
  SELECT 'default', k.stream_type, k.stream_id, max(k.version), pg_current_xact_id()
    FROM keyed k GROUP BY k.stream_type, k.stream_id
$$;`

/**
 * The millisecond a chunk's v7 ids start at: now, or just after the newest id stored (4,096 ids a millisecond), so
 * that ids keep growing in the order they are written, as an application's would.
 */
const nextMillisecond = async (db: Db): Promise<number> => {
  const [row] = await query<{ ms: string | null }>(
    db.url,
    `SELECT (('x' || substr(replace(event_id::text, '-', ''), 1, 12))::bit(48))::bigint::text AS ms
       FROM eventfold.events ORDER BY event_id DESC LIMIT 1`
  )
  return Math.max(Date.now(), row?.ms == null ? 0 : Number(row.ms) + 1)
}

const populate = async (db: Db, events: number, k: number) => {
  await query(db.url, "SELECT public.bench_populate($1, $2, $3, $4, $5)", [
    db.chunks,
    events,
    k,
    db.ids === "generated",
    db.ids === "generated" ? await nextMillisecond(db) : 0
  ])
  db.chunks += 1
  db.populated += events
}

const growTo = async (db: Db, level: number) => {
  const started = performance.now()
  while (db.populated - FIXTURE < level) {
    await populate(db, Math.min(CHUNK, level - (db.populated - FIXTURE)), LONG_EVERY)
    process.stdout.write(`  ${db.label}: ${util.formatNumber(db.populated - FIXTURE)} events\r`)
  }
  // What autovacuum would have done by now: visibility map and statistics.
  await query(db.url, "VACUUM (ANALYZE) eventfold.events")
  await query(db.url, "VACUUM (ANALYZE) eventfold.streams")
  console.log(
    `  ${db.label}: ${util.formatNumber(level)} events (${((performance.now() - started) / 1000).toFixed(0)} s)`
  )
}

// ---------------------------------------------------------------------------------------------------------------
// WAL and buffer misses

interface WalSplit {
  /** WAL of this database's records (and its commits), per append. */
  readonly ownPerAppend: number
  /** Of which full-page images. */
  readonly fpiPerAppend: number
  /** The relation with the most full-page image bytes, and its share of them. */
  readonly topFpi: string
}

const waldump = process.env.SCALE_WALDUMP

const lsn = async (serverUrl: string): Promise<string> =>
  (await query<{ lsn: string }>(serverUrl, "SELECT pg_current_wal_insert_lsn()::text AS lsn"))[0]!.lsn

const lsnDiff = async (serverUrl: string, from: string, to: string): Promise<number> =>
  Number((await query<{ d: string }>(serverUrl, "SELECT pg_wal_lsn_diff($1, $2)::text AS d", [to, from]))[0]!.d)

const checkpoint = async (serverUrl: string): Promise<void> => {
  // Needs superuser or pg_checkpoint; without, windows start wherever the last checkpoint left them.
  await query(serverUrl, "CHECKPOINT").catch(() => undefined)
}

/**
 * Keeps the WAL from now on until `release`: a temporary physical replication slot, held by a session of its own (it
 * goes with the session, also if this process dies). Only when the WAL is to be read with pg_waldump.
 */
const holdWal = async (serverUrl: string): Promise<() => Promise<void>> => {
  if (waldump === undefined) return () => Promise.resolve()
  const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 10_000 })
  await client.connect()
  try {
    await client.query("SELECT pg_create_physical_replication_slot($1, true, true)", [
      `eventfold_scale_${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`
    ])
  } catch (error) {
    console.log(`  (no replication slot: ${error instanceof Error ? error.message : String(error)})`)
  }
  return () => client.end()
}

const RECORD = /^rmgr: (\S+)\s+len \(rec\/tot\):\s*(\d+)\/\s*(\d+), tx:\s*(\d+),/
const BLOCK = /blkref #\d+: rel \d+\/(\d+)\/(\d+)(?: fork \w+)? blk \d+( FPW)?/g

/** Reads the window's WAL with pg_waldump and keeps this database's records; undefined when it cannot. */
const splitWal = async (db: Db, from: string, to: string, appends: number): Promise<WalSplit | undefined> => {
  if (waldump === undefined) return undefined
  try {
    const [settings] = await query<{ dir: string; oid: string; tli: number }>(
      db.url,
      `SELECT current_setting('data_directory') AS dir, (SELECT oid::text FROM pg_database
         WHERE datname = current_database()) AS oid, (SELECT timeline_id FROM pg_control_checkpoint()) AS tli`
    )
    const names = new Map(
      (await query<{ node: string; name: string }>(
        db.url,
        "SELECT relfilenode::text AS node, relname AS name FROM pg_class WHERE relfilenode <> 0"
      )).map((r) => [r.node, r.name] as const)
    )
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        waldump,
        ["-p", path.join(settings!.dir, "pg_wal"), "-t", String(settings!.tli), "-s", from, "-e", to],
        { maxBuffer: 1 << 30 },
        // pg_waldump exits with an error at the end of the WAL written so far; what it printed until then counts.
        (error, stdout, stderr) =>
          error && stdout.length === 0 ? reject(new Error(stderr.trim() || error.message)) : resolve(stdout)
      )
    )
    let own = 0
    let fpi = 0
    const ownXids = new Set<string>()
    const commits: Array<[string, number]> = []
    const fpiByRelation = new Map<string, number>()
    for (const line of out.split("\n")) {
      const record = RECORD.exec(line)
      if (!record) continue
      const [, rmgr, rec, tot, tx] = record
      const total = Number(tot)
      if (rmgr === "Transaction") {
        commits.push([tx!, total])
        continue
      }
      const blocks = [...line.matchAll(BLOCK)]
      if (!blocks.some((b) => b[1] === settings!.oid)) continue
      own += total
      if (tx !== "0") ownXids.add(tx!)
      const images = blocks.filter((b) => b[3] !== undefined)
      if (images.length > 0) {
        const bytes = total - Number(rec)
        fpi += bytes
        for (const b of images) {
          const name = names.get(b[2]!) ?? b[2]!
          fpiByRelation.set(name, (fpiByRelation.get(name) ?? 0) + bytes / images.length)
        }
      }
    }
    for (const [tx, total] of commits) if (ownXids.has(tx)) own += total
    const top = [...fpiByRelation].sort((a, b) => b[1] - a[1])[0]
    return {
      ownPerAppend: own / appends,
      fpiPerAppend: fpi / appends,
      topFpi: top ? `${top[0]} ${Math.round((100 * top[1]) / Math.max(fpi, 1))} %` : "none"
    }
  } catch (error) {
    console.log(`  (pg_waldump: ${error instanceof Error ? error.message.split("\n")[0] : String(error)})`)
    return undefined
  }
}

/** Blocks this database read from outside shared buffers, as its backends report them when they exit. */
const blocksRead = async (db: Db): Promise<number> => {
  const [row] = await query<{ n: string }>(
    db.url,
    `SELECT (coalesce(sum(heap_blks_read), 0) + coalesce(sum(idx_blks_read), 0) + coalesce(sum(toast_blks_read), 0)
             + coalesce(sum(tidx_blks_read), 0))::text AS n
       FROM pg_statio_user_tables WHERE schemaname = 'eventfold'`
  )
  return Number(row!.n)
}

const hotUpdates = async (db: Db): Promise<{ readonly updates: number; readonly hot: number }> => {
  const [row] = await query<{ upd: string; hot: string }>(
    db.url,
    `SELECT n_tup_upd::text AS upd, n_tup_hot_upd::text AS hot FROM pg_stat_user_tables
      WHERE schemaname = 'eventfold' AND relname = 'streams'`
  )
  return { updates: Number(row!.upd), hot: Number(row!.hot) }
}

/**
 * CPU time of a window's server backends, found by application name, from /proc/<pid>/schedstat (nanoseconds on a
 * CPU): only when the server runs on this machine and its processes are readable; CPU time is far less disturbed than
 * wall time by other load on a shared machine.
 */
const backendCpu = async (serverUrl: string, applicationName: string) => {
  const pids = (await query<{ pid: number }>(
    serverUrl,
    "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
    [applicationName]
  )).map((r) => r.pid)
  const read = (): number | undefined => {
    try {
      return pids.reduce((sum, pid) => sum + Number(fs.readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]), 0)
    } catch {
      return undefined
    }
  }
  return { pids, read }
}

/** CPU microseconds of this Node process (user + system). */
const clientCpu = (): number => {
  const usage = process.cpuUsage()
  return usage.user + usage.system
}

// ---------------------------------------------------------------------------------------------------------------
// Stores

type Store = EventStore.EventStore["Type"]

/** Runs an effect of the bench's stores; its failures reject the promise. */
type Run = <A, E>(effect: Effect.Effect<A, E>) => Promise<A>

/** A store over a pool of its own, closed by `dispose` (its backends then report their statistics). */
const openStore = async (db: Db, maxConnections = WRITERS, applicationName = "eventfold-scale") => {
  const runtime = ManagedRuntime.make(
    Layer.mergeAll(
      Layer.scoped(EventStore.EventStore, PgEventStore.make()),
      Layer.effect(SnapshotStore.SnapshotStore, PgSnapshotStore.make())
    ).pipe(Layer.provideMerge(PgDatabase.layer({ url: db.url, maxConnections, applicationName })))
  )
  const [store, snapshots] = await runtime.runPromise(Effect.all([EventStore.EventStore, SnapshotStore.SnapshotStore]))
  let disposed = false
  const run: Run = (effect) => runtime.runPromise(effect)
  const dispose = async () => {
    if (!disposed) {
      disposed = true
      await runtime.dispose()
    }
  }
  return { run, dispose, store, snapshots }
}

type Target = "new" | "new-random" | "existing"

interface Window {
  readonly perSecond: number
  readonly walPerAppend: number
  readonly wal: WalSplit | undefined
  readonly missesPerAppend: number
  /** Server backends' CPU µs per append, when readable (see `backendCpu`). */
  readonly serverCpu: number | undefined
  /** This process's CPU µs per append. */
  readonly clientCpu: number
}

const payload = (i: number) => ({ amount: (i % 100) + 1, note: "benchmark event" })

/**
 * `APPENDS` one-event appends by `WRITERS` fibers, after a CHECKPOINT: to new streams (ids in one key range, as a
 * sequence or a time-ordered id gives; or random UUIDs), or to random existing 10-event streams. Event ids are
 * generated by the store, or supplied (v4 or v7).
 */
const appendWindow = async (
  serverUrl: string,
  db: Db,
  target: Target,
  ids: "generated" | "v4" | "v7",
  existing: ReadonlyArray<string>,
  small = false
): Promise<Window> => {
  const run = `${target}-${crypto.randomUUID().slice(0, 8)}`
  const { dispose, run: runEffect, store } = await openStore(db, WRITERS, `eventfold-scale-${run}`)
  let release = (): Promise<void> => Promise.resolve()
  const streamOf = (i: number): { streamType: string; streamId: string } =>
    target === "existing"
      ? { streamType: "Account", streamId: existing[i % existing.length]! }
      : { streamType: "Account", streamId: target === "new" ? `${run}-${i}` : crypto.randomUUID() }
  // The events carry a correlation id, as CommandHandler's do and as the histories' do: rows of one size. Smaller rows
  // would fit the few bytes VACUUM finds free in every old page (see the events fillfactor advice).
  const metadata = (): { metadata?: { correlationId: string } } =>
    small ? {} : { metadata: { correlationId: crypto.randomUUID() } }
  const eventId = (): { eventId?: string } =>
    ids === "generated" ? {} : { eventId: ids === "v4" ? crypto.randomUUID() : EventId.unsafeMake() }
  let next = 0
  const worker = Effect.gen(function*() {
    while (next < APPENDS) {
      const i = next++
      yield* store.append({
        ...streamOf(i),
        expectedVersion: target === "existing" ? ExpectedVersion.Any : ExpectedVersion.NoStream,
        events: [{ type: i % 3 === 2 ? "Withdrawn" : "Deposited", payload: payload(i), ...metadata(), ...eventId() }]
      })
    }
  })
  try {
    // Opens the pool's connections (no table touched), so the window times appends only.
    await runEffect(
      Effect.forEach(
        Array.from({ length: WRITERS }),
        () => store.streamVersion({ streamType: "Warm", streamId: "x" }),
        {
          concurrency: "unbounded"
        }
      )
    )
    await checkpoint(serverUrl)
    release = await holdWal(serverUrl)
    const readBefore = await blocksRead(db)
    const backends = await backendCpu(serverUrl, `eventfold-scale-${run}`)
    const from = await lsn(serverUrl)
    const serverBefore = backends.read()
    const clientBefore = clientCpu()
    const started = performance.now()
    await runEffect(Effect.all(Array.from({ length: WRITERS }, () => worker), { concurrency: "unbounded" }))
    const seconds = (performance.now() - started) / 1000
    const clientAfter = clientCpu()
    const serverAfter = backends.read()
    const to = await lsn(serverUrl)
    await dispose()
    await new Promise((resolve) => setTimeout(resolve, 300))
    const wal = await splitWal(db, from, to, APPENDS)
    return {
      perSecond: APPENDS / seconds,
      walPerAppend: (await lsnDiff(serverUrl, from, to)) / APPENDS,
      wal,
      missesPerAppend: ((await blocksRead(db)) - readBefore) / APPENDS,
      serverCpu: serverBefore !== undefined && serverAfter !== undefined && backends.pids.length > 0
        ? (serverAfter - serverBefore) / 1000 / APPENDS
        : undefined,
      clientCpu: (clientAfter - clientBefore) / APPENDS
    }
  } finally {
    await release()
    await dispose()
  }
}

const mean = (windows: ReadonlyArray<Window>): Window => ({
  perSecond: windows.length / windows.reduce((s, w) => s + 1 / w.perSecond, 0),
  walPerAppend: windows.reduce((s, w) => s + w.walPerAppend, 0) / windows.length,
  wal: windows.every((w) => w.wal !== undefined)
    ? {
      ownPerAppend: windows.reduce((s, w) => s + w.wal!.ownPerAppend, 0) / windows.length,
      fpiPerAppend: windows.reduce((s, w) => s + w.wal!.fpiPerAppend, 0) / windows.length,
      topFpi: windows[windows.length - 1]!.wal!.topFpi
    }
    : undefined,
  missesPerAppend: windows.reduce((s, w) => s + w.missesPerAppend, 0) / windows.length,
  serverCpu: windows.every((w) => w.serverCpu !== undefined)
    ? windows.reduce((s, w) => s + w.serverCpu!, 0) / windows.length
    : undefined,
  clientCpu: windows.reduce((s, w) => s + w.clientCpu, 0) / windows.length
})

/** Runs the contenders in alternating rounds, so load from elsewhere on the machine hits all of them alike. */
const alternate = async <A>(
  contenders: ReadonlyArray<() => Promise<A>>,
  combine: (results: ReadonlyArray<A>) => A
): Promise<ReadonlyArray<A>> => {
  const results = contenders.map((): Array<A> => [])
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < contenders.length; i++) results[i]!.push(await contenders[i]!())
  }
  return results.map(combine)
}

const sampleStreams = async (db: Db, streamType: string, count: number, minVersion = 1) =>
  (await query<{ id: string }>(
    db.url,
    `SELECT stream_id AS id FROM eventfold.streams WHERE tenant_id = 'default' AND stream_type = $1
        AND version >= $2 ORDER BY random() LIMIT $3`,
    [streamType, minVersion, count]
  )).map((r) => r.id)

// ---------------------------------------------------------------------------------------------------------------
// Idempotent appends: through the store, and append_events of 0012 against that of 0009 in plain SQL

/** append_events as migration 0009 defined it, as public.bench_append_events_0009 over the eventfold schema. */
const installOldAppend = async (db: Db) => {
  const text = fs.readFileSync(path.join(migrationsDir, "0009_lifecycle.sql"), "utf8")
  const start = text.indexOf("CREATE OR REPLACE FUNCTION append_events(")
  const end = text.indexOf("\n$$;", start) + 4
  const fn = text.slice(start, end)
    .replace("FUNCTION append_events(", "FUNCTION public.bench_append_events_0009(")
    .replace("SET search_path FROM CURRENT", "SET search_path = eventfold, pg_catalog")
  await query(db.url, fn)
}

/** Throughput and CPU of a window of plain `pg` calls. */
interface SqlWindow {
  readonly perSecond: number
  readonly serverCpu: number | undefined
}

/** `APPENDS` calls of an append function by `WRITERS` connections of a plain `pg` pool. */
const sqlWindow = async (serverUrl: string, db: Db, fn: string, checkIds: boolean): Promise<SqlWindow> => {
  const run = `sql-${crypto.randomUUID().slice(0, 8)}`
  const pool = new pg.Pool({ connectionString: db.url, max: WRITERS, application_name: `eventfold-scale-${run}` })
  const text = `SELECT * FROM ${fn}($1, 'Account', $2, 'no_stream', 0, $3, ARRAY[$4::uuid], ARRAY['Deposited'],
    ARRAY[1], ARRAY[$5::jsonb], ARRAY[$6::jsonb], false, false)`
  try {
    await Promise.all(Array.from({ length: WRITERS }, () => pool.query("SELECT 1")))
    const backends = await backendCpu(serverUrl, `eventfold-scale-${run}`)
    const before = backends.read()
    let next = 0
    const started = performance.now()
    await Promise.all(Array.from({ length: WRITERS }, async () => {
      while (next < APPENDS) {
        const i = next++
        await pool.query(text, [
          TENANT,
          `${run}-${i}`,
          checkIds,
          EventId.unsafeMake(),
          JSON.stringify(payload(i)),
          JSON.stringify({ correlationId: crypto.randomUUID() })
        ])
      }
    }))
    const perSecond = APPENDS / ((performance.now() - started) / 1000)
    const after = backends.read()
    return {
      perSecond,
      serverCpu: before !== undefined && after !== undefined && backends.pids.length > 0
        ? (after - before) / 1000 / APPENDS
        : undefined
    }
  } finally {
    await pool.end()
  }
}

const meanSql = (windows: ReadonlyArray<SqlWindow>): SqlWindow => ({
  perSecond: windows.length / windows.reduce((s, w) => s + 1 / w.perSecond, 0),
  serverCpu: windows.every((w) => w.serverCpu !== undefined)
    ? windows.reduce((s, w) => s + w.serverCpu!, 0) / windows.length
    : undefined
})

// ---------------------------------------------------------------------------------------------------------------
// Reads

interface Latency {
  readonly p50: number
  readonly p99: number
}

const percentile = (values: ReadonlyArray<number>, p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

const latency = (values: ReadonlyArray<number>): Latency => ({
  p50: percentile(values, 50),
  p99: percentile(values, 99)
})

/** Times `op` on each input, one after another. */
const timeEach = async <A>(inputs: ReadonlyArray<A>, op: (input: A) => Promise<unknown>): Promise<Latency> => {
  const times: Array<number> = []
  for (const input of inputs) {
    const started = performance.now()
    await op(input)
    times.push(performance.now() - started)
  }
  return latency(times)
}

/** `count` of the items in random order, each once while there are enough (then again from the start). */
const pick = <A>(items: ReadonlyArray<A>, count: number): ReadonlyArray<A> => {
  const shuffled = [...items]
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!]
  }
  return Array.from({ length: count }, (_, i) => shuffled[i % shuffled.length]!)
}

/**
 * The 100-event streams of the histories, in random order; the fixture's (which share a few hundred pages) only when
 * there are no others.
 */
const longStreams = async (db: Db): Promise<ReadonlyArray<string>> => {
  const all = await sampleStreams(db, "Ledger", 100_000, 100)
  const history = all.filter((id) => !id.startsWith("long-0-"))
  return history.length > 0 ? history : all
}

interface ReadCost {
  readonly read: Latency
  /** Distinct heap pages a 100-event stream's rows lie on (mean over the sample). */
  readonly heapPages: number
  /** Shared-buffer hits and reads of one read's plan (mean over the sample). */
  readonly hits: number
  readonly reads: number
}

/** Reads of random 100-event streams: latency through the store, pages and buffers from the plan. */
const readCost = async (db: Db, store: Store, run: Run): Promise<ReadCost> => {
  const streams = await longStreams(db)
  // First the plans of 20 streams nothing read yet (apart from the timed reads' when there are too few streams),
  // then their pages, then the timed reads: each stream once while there are enough, as aggregates loaded for
  // commands, not one stream read in a loop.
  const sample = streams.length >= READS + 20 ? streams.slice(READS, READS + 20) : pick(streams, 20)
  let heapPages = 0
  let hits = 0
  let reads = 0
  for (const streamId of sample) {
    const [plan] = await query<{ "QUERY PLAN": ReadonlyArray<{ Plan: Record<string, number> }> }>(
      db.url,
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM eventfold.events
        WHERE tenant_id = 'default' AND stream_type = 'Ledger' AND stream_id = $1 AND version >= 1
        ORDER BY version LIMIT 100`,
      [streamId]
    )
    const root = plan!["QUERY PLAN"][0]!.Plan
    hits += root["Shared Hit Blocks"] ?? 0
    reads += root["Shared Read Blocks"] ?? 0
    const [pages] = await query<{ n: number }>(
      db.url,
      `SELECT count(DISTINCT (ctid::text::point)[0])::integer AS n FROM eventfold.events
        WHERE tenant_id = 'default' AND stream_type = 'Ledger' AND stream_id = $1 AND version <= 100`,
      [streamId]
    )
    heapPages += pages!.n
  }
  const read = await timeEach(
    pick(streams.length >= READS + 20 ? streams.slice(0, READS) : streams, READS),
    (streamId) => run(store.readStream({ streamType: "Ledger", streamId, limit: 100 }))
  )
  return { read, heapPages: heapPages / sample.length, hits: hits / sample.length, reads: reads / sample.length }
}

/** Loads through a snapshot: the snapshot row, then the last `tail` events of a 100-event stream. */
const snapshotLoads = async (
  db: Db,
  store: Store,
  snapshots: SnapshotStore.SnapshotStore["Type"],
  run: Run
): Promise<ReadonlyArray<readonly [tail: number, latency: Latency]>> => {
  const perTail = Math.ceil(READS / SNAPSHOT_TAILS.length)
  const streams = pick(await longStreams(db), perTail * SNAPSHOT_TAILS.length)
  await run(Effect.forEach(streams, (streamId) =>
    snapshots.save({
      streamType: "Ledger",
      streamId,
      version: 100,
      schemaVersion: 1,
      state: { balance: 4_950, events: 100, lastNote: "benchmark event" }
    }), { discard: true }))
  const result: Array<readonly [number, Latency]> = []
  for (const [i, tail] of SNAPSHOT_TAILS.entries()) {
    result.push([
      tail,
      await timeEach(streams.slice(i * perTail, (i + 1) * perTail), (streamId) =>
        run(Effect.gen(function*() {
          const snapshot = yield* snapshots.load({ streamType: "Ledger", streamId })
          if (Option.isNone(snapshot)) return yield* Effect.die(new Error(`no snapshot for ${streamId}`))
          if (tail > 0) {
            yield* store.readStream({ streamType: "Ledger", streamId, fromVersion: 101 - tail, limit: tail })
          }
        })))
    ])
  }
  return result
}

/** Feed pages of 1,000 events after random positions of the log. */
const feedPages = async (db: Db, store: Store, run: Run): Promise<Latency> => {
  const [{ max }] =
    (await query<{ max: string }>(db.url, "SELECT max(global_position)::text AS max FROM eventfold.events"))
      .map((r) => ({ max: Number(r.max) }))
  const positions: Array<Position.Position> = []
  for (let i = 0; i < FEED_PAGES; i++) {
    const [row] = await query<{ x: string; g: string }>(
      db.url,
      `SELECT transaction_id::text AS x, global_position::text AS g FROM eventfold.events
        WHERE global_position >= $1 ORDER BY global_position LIMIT 1`,
      [1 + Math.floor(Math.random() * Math.max(1, max - FEED_PAGE))]
    )
    if (row) positions.push(Position.make(BigInt(row.x), BigInt(row.g)))
  }
  return timeEach(positions, (after) => run(store.readAll({ after, limit: FEED_PAGE })))
}

// ---------------------------------------------------------------------------------------------------------------
// Sizes

interface Size {
  readonly name: string
  readonly bytes: number
}

const sizes = async (db: Db): Promise<ReadonlyArray<Size>> =>
  (await query<{ name: string; bytes: string }>(
    db.url,
    `SELECT c.relname AS name, pg_relation_size(c.oid)::text AS bytes FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'eventfold' AND c.relkind IN ('r', 'i')
        AND (c.relname IN ('events', 'streams') OR c.oid IN (
          SELECT indexrelid FROM pg_index WHERE indrelid IN ('eventfold.events'::regclass, 'eventfold.streams'::regclass)))
     UNION ALL
     SELECT 'events (toast)', coalesce(pg_total_relation_size(reltoastrelid), 0)::text FROM pg_class
      WHERE oid = 'eventfold.events'::regclass
     ORDER BY 1`
  )).map((r) => ({ name: r.name, bytes: Number(r.bytes) }))

const rowCounts = async (db: Db): Promise<{ readonly events: number; readonly streams: number }> => {
  const [row] = await query<{ events: string; streams: string }>(
    db.url,
    `SELECT (SELECT count(*) FROM eventfold.events)::text AS events,
            (SELECT count(*) FROM eventfold.streams)::text AS streams`
  )
  return { events: Number(row!.events), streams: Number(row!.streams) }
}

// ---------------------------------------------------------------------------------------------------------------
// One level

interface LevelResult {
  readonly level: number
  readonly newStreams: ReadonlyArray<readonly [string, Window]>
  readonly existingStreams: ReadonlyArray<readonly [string, Window]>
  readonly idempotent: ReadonlyArray<readonly [string, Window]>
  readonly idempotentSql: ReadonlyArray<readonly [string, SqlWindow]>
  readonly reads: ReadCost
  readonly snapshots: ReadonlyArray<readonly [number, Latency]>
  readonly feed: Latency
  readonly sizes: ReadonlyArray<
    readonly [string, { readonly events: number; readonly streams: number }, ReadonlyArray<Size>]
  >
}

const measureLevel = async (serverUrl: string, level: number, empty: Db, v7: Db, v4: Db): Promise<LevelResult> => {
  const existing = new Map<Db, ReadonlyArray<string>>()
  for (const db of [empty, v7, v4]) existing.set(db, await sampleStreams(db, "Account", APPENDS))
  const idsOf = (db: Db) => (db.ids === "v4" ? "v4" as const : "generated" as const)
  const contenders = (target: Target) =>
    [empty, v7, v4].map((db) => () => appendWindow(serverUrl, db, target, idsOf(db), existing.get(db)!))

  console.log("  appends to new streams")
  // With a fillfactor on events and streams, inserts stay out of the bytes VACUUM found free in old pages (first in
  // each round: the others fill some of those bytes).
  const withFillfactor = async () => {
    await query(v7.url, "ALTER TABLE eventfold.events SET (fillfactor = 95)")
    await query(v7.url, "ALTER TABLE eventfold.streams SET (fillfactor = 90)")
    try {
      return await appendWindow(serverUrl, v7, "new", "generated", [])
    } finally {
      await query(v7.url, "ALTER TABLE eventfold.events RESET (fillfactor)")
      await query(v7.url, "ALTER TABLE eventfold.streams RESET (fillfactor)")
    }
  }
  const [newEmpty, newV7Fillfactor, newV7, newV4] = await alternate([
    () => appendWindow(serverUrl, empty, "new", "generated", []),
    withFillfactor,
    () => appendWindow(serverUrl, v7, "new", "generated", []),
    () => appendWindow(serverUrl, v4, "new", "v4", [])
  ], mean)
  const [randomIds] = await alternate([() => appendWindow(serverUrl, v7, "new-random", "generated", [])], mean)
  console.log("  appends to existing streams")
  const existingWindows = await alternate(contenders("existing"), mean)

  console.log("  idempotent appends")
  const idempotent = await alternate(
    (["generated", "v4", "v7"] as const).map((ids) => () => appendWindow(serverUrl, v7, "new", ids, [])),
    mean
  )
  const idempotentSql = await alternate([
    () => sqlWindow(serverUrl, v7, "eventfold.append_events", false),
    () => sqlWindow(serverUrl, v7, "eventfold.append_events", true),
    () => sqlWindow(serverUrl, v7, "public.bench_append_events_0009", true)
  ], meanSql)

  console.log("  reads")
  const { dispose, run, snapshots, store } = await openStore(v7, 2)
  try {
    const reads = await readCost(v7, store, run)
    const snapshotLatency = await snapshotLoads(v7, store, snapshots, run)
    const feed = await feedPages(v7, store, run)
    return {
      level,
      newStreams: [
        ["empty store", newEmpty!],
        ["v7 history, generated ids", newV7!],
        ["v7 history, generated ids, fillfactor events 95 / streams 90", newV7Fillfactor!],
        ["v7 history, generated ids, random stream ids", randomIds!],
        ["v4 history, v4 ids (before)", newV4!]
      ],
      existingStreams: [
        ["empty store", existingWindows[0]!],
        ["v7 history, generated ids", existingWindows[1]!],
        ["v4 history, v4 ids (before)", existingWindows[2]!]
      ],
      idempotent: [
        ["ids generated (plain)", idempotent[0]!],
        ["ids supplied, random v4", idempotent[1]!],
        ["ids supplied, v7 (EventId.make)", idempotent[2]!]
      ],
      idempotentSql: [
        ["append_events, no id check", idempotentSql[0]!],
        ["append_events 0012, id check", idempotentSql[1]!],
        ["append_events 0009, id check", idempotentSql[2]!]
      ],
      reads,
      snapshots: snapshotLatency,
      feed,
      sizes: await Promise.all([v7, v4].map(async (db) => [db.label, await rowCounts(db), await sizes(db)] as const))
    }
  } finally {
    await dispose()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// What helps, on a copy: CLUSTER for stream reads; fillfactors and wal_compression for appends

interface Advice {
  readonly level: number
  readonly clusterSeconds: number
  readonly before: ReadCost
  readonly after: ReadCost
  /** Append windows before and after a change: what was measured, the window, the share of HOT updates of streams. */
  readonly appends: ReadonlyArray<readonly [string, Window, number]>
}

const copyDatabase = async (serverUrl: string, source: Db, suffix: string): Promise<util.BenchDatabase> => {
  const name = `${source.name}_${suffix}`
  for (let attempt = 0;; attempt++) {
    try {
      // FILE_COPY: a checkpoint and a file copy, instead of writing the whole database into the WAL.
      await query(
        serverUrl,
        `CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE ${pg.escapeIdentifier(source.name)}
        STRATEGY = FILE_COPY`
      )
      break
    } catch (error) {
      // Autovacuum may be connected to the source for a moment.
      if (attempt >= 20) throw error
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
  }
  const dbUrl = new URL(serverUrl)
  dbUrl.pathname = `/${name}`
  return {
    url: dbUrl.toString(),
    name,
    drop: () =>
      query(serverUrl, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`).then(() => undefined)
  }
}

const advise = async (serverUrl: string, v7: Db): Promise<Advice> => {
  const copy = await copyDatabase(serverUrl, v7, "advice")
  const db: Db = { ...v7, label: "v7 copy", url: copy.url, name: copy.name }
  try {
    const readNow = async () => {
      const { dispose, run, store } = await openStore(db, 2)
      try {
        return await readCost(db, store, run)
      } finally {
        await dispose()
      }
    }
    const before = await readNow()

    const appends: Array<readonly [string, Window, number]> = []
    const measure = async (label: string, target: Target, small = false) => {
      const streams = target === "existing" ? await sampleStreams(db, "Account", APPENDS) : []
      const hot0 = await hotUpdates(db)
      const window = await appendWindow(serverUrl, db, target, "generated", streams, small)
      const hot1 = await hotUpdates(db)
      appends.push([label, window, (hot1.hot - hot0.hot) / Math.max(1, hot1.updates - hot0.updates)])
    }
    // Events smaller than the history's fit the bytes VACUUM left free in its pages: each lands on an old page. A
    // fillfactor keeps inserts out of pages past it, so they go to the end of the table.
    await measure("new streams, smaller events, events fillfactor 100 (default)", "new", true)
    await query(db.url, "ALTER TABLE eventfold.events SET (fillfactor = 95)")
    await measure("new streams, smaller events, events fillfactor 95", "new", true)
    await query(db.url, "ALTER TABLE eventfold.events RESET (fillfactor)")
    // Existing streams: each append dirties its stream's row and index pages, whose first change after a checkpoint
    // writes a full-page image.
    await measure("existing streams", "existing")
    await query(db.url, `ALTER DATABASE ${pg.escapeIdentifier(db.name)} SET wal_compression = 'lz4'`)
    await measure("existing streams, wal_compression = lz4", "existing")
    await query(db.url, `ALTER DATABASE ${pg.escapeIdentifier(db.name)} RESET wal_compression`)
    await query(db.url, "ALTER TABLE eventfold.streams SET (fillfactor = 80)")
    await query(db.url, "VACUUM (FULL, ANALYZE) eventfold.streams")
    await measure("existing streams, streams fillfactor 80 (after VACUUM FULL)", "existing")

    const started = performance.now()
    await query(db.url, "CLUSTER eventfold.events USING events_stream_version_key")
    await query(db.url, "ANALYZE eventfold.events")
    const clusterSeconds = (performance.now() - started) / 1000
    const after = await readNow()
    return { level: ADVICE_LEVEL, clusterSeconds, before, after, appends }
  } finally {
    await copy.drop()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Printing

const kb = (bytes: number) => `${(bytes / 1024).toFixed(2)} KB`
const mb = (bytes: number) => `${util.formatNumber(bytes / (1024 * 1024), 1)} MB`
const gb = (bytes: number) => `${util.formatNumber(bytes / 1024 ** 3, 1)} GB`
const ms = (value: number) => util.formatNumber(value, 2)
const levelName = (level: number) => (level === 0 ? "0" : `${util.formatNumber(level / 1_000_000)}M`)

const appendTable = (results: ReadonlyArray<LevelResult>, key: "newStreams" | "existingStreams") =>
  util.formatTable(
    [
      "events",
      "store",
      "appends/s",
      "× empty",
      "WAL/append",
      "own WAL (FPI)",
      "most FPI",
      "misses/append",
      "server CPU"
    ],
    results.flatMap((r) => {
      const base = r[key][0]![1].perSecond
      return r[key].map(([label, w]) => [
        levelName(r.level),
        label,
        util.formatNumber(w.perSecond),
        `${(w.perSecond / base).toFixed(2)}×`,
        kb(w.walPerAppend),
        w.wal ? `${kb(w.wal.ownPerAppend)} (${kb(w.wal.fpiPerAppend)})` : "n/a",
        w.wal?.topFpi ?? "n/a",
        util.formatNumber(w.missesPerAppend, 2),
        w.serverCpu === undefined ? "n/a" : `${util.formatNumber(w.serverCpu)} µs`
      ])
    })
  )

const print = (server: string, results: ReadonlyArray<LevelResult>, advice: Advice | undefined) => {
  console.log(
    `\n${server}; ${WRITERS} writers, ${util.formatNumber(APPENDS)} one-event appends per window after a ` +
      `CHECKPOINT, ${ROUNDS} alternating rounds; levels count events besides the ${
        util.formatNumber(FIXTURE)
      }-event fixture`
  )

  console.log("\nAppends to new streams (NoStream; stream ids in one key range unless random)")
  console.log(appendTable(results, "newStreams"))
  console.log("\nAppends to existing streams (Any; random 10-event streams of the whole history)")
  console.log(appendTable(results, "existingStreams"))

  console.log(
    "\nIdempotent appends: caller-supplied ids against generated ones (new streams, v7 store); CPU per append"
  )
  const cpu = (value: number | undefined) => (value === undefined ? "n/a" : `${util.formatNumber(value)} µs`)
  const ratio = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? "n/a" : `${(a / b).toFixed(2)}×`
  const totalCpu = (w: Window) => (w.serverCpu === undefined ? undefined : w.serverCpu + w.clientCpu)
  console.log(util.formatTable(
    ["events", "path", "appends/s", "× plain", "server CPU", "client CPU", "CPU × plain"],
    results.flatMap((r) => {
      const plain = r.idempotent[0]![1]
      const plainSql = r.idempotentSql[0]![1]
      return [
        ...r.idempotent.map(([label, w]) => [
          levelName(r.level),
          `EventStore.append: ${label}`,
          util.formatNumber(w.perSecond),
          `${(w.perSecond / plain.perSecond).toFixed(2)}×`,
          cpu(w.serverCpu),
          cpu(w.clientCpu),
          ratio(totalCpu(w), totalCpu(plain))
        ]),
        ...r.idempotentSql.map(([label, w]) => [
          levelName(r.level),
          `plain SQL: ${label}`,
          util.formatNumber(w.perSecond),
          `${(w.perSecond / plainSql.perSecond).toFixed(2)}×`,
          cpu(w.serverCpu),
          "",
          ratio(w.serverCpu, plainSql.serverCpu)
        ])
      ]
    })
  ))

  console.log(
    `\nReads (v7 store): a random 100-event stream (${READS} reads), feed pages of ${
      util.formatNumber(FEED_PAGE)
    } after random positions (${FEED_PAGES} pages)`
  )
  console.log(util.formatTable(
    ["events", "stream read p50", "p99", "heap pages/read", "buffer hits", "buffer reads", "feed page p50", "p99"],
    results.map((r) => [
      levelName(r.level),
      `${ms(r.reads.read.p50)} ms`,
      `${ms(r.reads.read.p99)} ms`,
      util.formatNumber(r.reads.heapPages, 1),
      util.formatNumber(r.reads.hits, 1),
      util.formatNumber(r.reads.reads, 1),
      `${ms(r.feed.p50)} ms`,
      `${ms(r.feed.p99)} ms`
    ])
  ))

  console.log("\nLoading a 100-event stream through a snapshot: the snapshot row, then the events after it")
  console.log(util.formatTable(
    ["events", ...SNAPSHOT_TAILS.map((t) => `snapshot + ${t} events p50 / p99`), "100 events, no snapshot p50 / p99"],
    results.map((r) => [
      levelName(r.level),
      ...r.snapshots.map(([, l]) => `${ms(l.p50)} / ${ms(l.p99)} ms`),
      `${ms(r.reads.read.p50)} / ${ms(r.reads.read.p99)} ms`
    ])
  ))

  // Streams relations grow by stream, the rest by event; projections assume 10 events per stream, as the histories.
  const last = results[results.length - 1]!
  for (const [label, counts, relations] of last.sizes) {
    console.log(
      `\nSizes, ${label}: ${util.formatNumber(counts.events)} events in ${
        util.formatNumber(counts.streams)
      } streams; bytes per event (per stream for streams relations), projected at 10 events per stream`
    )
    const perRow = (rel: Size) => rel.bytes / (rel.name.startsWith("streams") ? counts.streams : counts.events)
    const projected = (rel: Size, events: number) =>
      perRow(rel) * (rel.name.startsWith("streams") ? events / 10 : events)
    const sizeAt = (r: LevelResult, name: string) => {
      const found = r.sizes.find(([l]) => l === label)![2]
      return name === "total" ? found.reduce((s, x) => s + x.bytes, 0) : found.find((x) => x.name === name)?.bytes ?? 0
    }
    console.log(util.formatTable(
      [
        "relation",
        ...results.map((r) => `at ${levelName(r.level)}`),
        "bytes/row",
        ...PROJECT_TO.map((n) => `${levelName(n)} events`)
      ],
      [
        ...relations.map((rel) => [
          rel.name,
          ...results.map((r) => mb(sizeAt(r, rel.name))),
          util.formatNumber(perRow(rel), 1),
          ...PROJECT_TO.map((n) => gb(projected(rel, n)))
        ]),
        [
          "total",
          ...results.map((r) => mb(sizeAt(r, "total"))),
          "",
          ...PROJECT_TO.map((n) => gb(relations.reduce((s, rel) => s + projected(rel, n), 0)))
        ]
      ]
    ))
  }

  if (advice !== undefined) {
    console.log(`\nWhat helps, on a copy of the v7 store at ${levelName(advice.level)} events`)
    console.log(util.formatTable(
      ["100-event stream read", "p50", "p99", "heap pages/read", "buffer hits", "buffer reads"],
      [["as appended", advice.before], [
        `after CLUSTER (${util.formatNumber(advice.clusterSeconds, 1)} s)`,
        advice.after
      ]]
        .map(([label, c]) => {
          const cost = c as ReadCost
          return [
            label as string,
            `${ms(cost.read.p50)} ms`,
            `${ms(cost.read.p99)} ms`,
            util.formatNumber(cost.heapPages, 1),
            util.formatNumber(cost.hits, 1),
            util.formatNumber(cost.reads, 1)
          ]
        })
    ))
    console.log(util.formatTable(
      ["appends", "appends/s", "WAL/append", "own WAL (FPI)", "most FPI", "misses/append", "HOT updates of streams"],
      advice.appends.map(([label, w, hot]) => [
        label,
        util.formatNumber(w.perSecond),
        kb(w.walPerAppend),
        w.wal ? `${kb(w.wal.ownPerAppend)} (${kb(w.wal.fpiPerAppend)})` : "n/a",
        w.wal?.topFpi ?? "n/a",
        util.formatNumber(w.missesPerAppend, 2),
        `${Math.round(hot * 100)} %`
      ])
    ))
  }
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * Grows the stores level by level, measures each level, and prints the tables.
 *
 * @since 0.4.0
 * @category main
 */
export const main = async (ctx: { readonly serverUrl: string }): Promise<void> => {
  const server = await util.describeServer(ctx.serverUrl)
  const made: Array<util.BenchDatabase> = []
  try {
    const dbs: Array<Db> = []
    for (const [label, ids] of [["empty", "generated"], ["v7", "generated"], ["v4", "v4"]] as const) {
      const database = await util.createDatabase(ctx.serverUrl, "eventfold_scale")
      made.push(database)
      await migrate(database.url)
      await query(database.url, POPULATE_SQL)
      const db: Db = { label, url: database.url, name: database.name, ids, populated: 0, chunks: 0 }
      // The fixture: 100 streams of 100 events and 1,000 of 10, interleaved.
      await populate(db, FIXTURE, 2)
      await query(db.url, "VACUUM (ANALYZE) eventfold.events")
      dbs.push(db)
    }
    const [empty, v7, v4] = dbs as [Db, Db, Db]
    await installOldAppend(v7)
    const results: Array<LevelResult> = []
    let advice: Advice | undefined
    for (const level of LEVELS) {
      console.log(`level ${levelName(level)}`)
      await growTo(v7, level)
      await growTo(v4, level)
      results.push(await measureLevel(ctx.serverUrl, level, empty, v7, v4))
      if (level === ADVICE_LEVEL && level > 0) {
        console.log("  CLUSTER and fillfactor, on a copy")
        advice = await advise(ctx.serverUrl, v7)
      }
    }
    print(server, results, advice)
  } finally {
    for (const database of made) await database.drop()
  }
}
