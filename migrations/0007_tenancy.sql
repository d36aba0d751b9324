-- eventfold 0007: tenancy. Every stream belongs to one tenant: a stream is (tenant_id, stream_type, stream_id), so two
-- tenants that use the same stream id have two independent streams. Every table gets a NOT NULL tenant_id column;
-- existing data lands in tenant 'default' (events, streams, snapshots, outbox) or '*' (checkpoints and dead letters:
-- the scope of a subscription over every tenant). The old nullable tenant_id columns of events and streams, copied
-- from metadata->>'tenantId', are dropped; the metadata keeps the value.
-- No table is rewritten: a column added with a constant default costs nothing per row, and the default is then
-- dropped (except on checkpoints and dead_letters), so a writer that names no tenant fails instead of landing in
-- 'default'. The unique keys are rebuilt with the tenant in front, which reads events and streams once while holding
-- their locks: on a large store, apply it in a quiet moment.
-- append_events gets the tenant as its first argument (the previous 12-argument function is dropped, so a previous
-- release of the library cannot append any more: migrate, then deploy the release that ships this migration).
-- read_stream reads one stream in one round trip. Both scope their transaction to the tenant (enter_tenant): a
-- transaction works in one tenant, unless it set eventfold.tenant to '*' (cross-tenant admin work) first. That scope
-- is what the opt-in row-level security of row_level_security.sql filters on.
-- tenant_blocks lists the tenants whose writes this store refuses (append_events returns status 'blocked'): a tenant
-- moved to another store, or one being moved into this one. tenant_moves is the progress of moves into this store
-- (PgTenantMove).
-- Apply with psql:  psql "$DATABASE_URL" -v schema=eventfold -f migrations/0007_tenancy.sql
-- The library applies the same text through PgMigrations, substituting :"schema" (psql's quoted-identifier form).
\if :{?schema}
\else
\set schema eventfold
\endif

CREATE SCHEMA IF NOT EXISTS :"schema";
SET search_path TO :"schema", pg_catalog;

-- events: the tenant is a NOT NULL column set by append_events, no longer a copy of the metadata.
DROP INDEX IF EXISTS events_tenant_idx;
DO $$
BEGIN
  -- The 0001 column is nullable; the column of this migration is not (so a second run keeps it).
  IF EXISTS (SELECT 1 FROM pg_attribute
              WHERE attrelid = 'events'::regclass AND attname = 'tenant_id' AND NOT attisdropped AND NOT attnotnull) THEN
    ALTER TABLE events DROP COLUMN tenant_id;
  END IF;
END;
$$;
ALTER TABLE events ADD COLUMN IF NOT EXISTS tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE events ALTER COLUMN tenant_id DROP DEFAULT;
-- The backstop against forked streams, now per tenant. The name stays: clients recognise a lost race by it.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint
                  WHERE conrelid = 'events'::regclass AND conname = 'events_stream_version_key'
                    AND pg_get_constraintdef(oid) = 'UNIQUE (tenant_id, stream_type, stream_id, version)') THEN
    ALTER TABLE events
      DROP CONSTRAINT IF EXISTS events_stream_version_key,
      ADD CONSTRAINT events_stream_version_key UNIQUE (tenant_id, stream_type, stream_id, version);
  END IF;
END;
$$;
-- events_event_id_key stays global: an event id is unique across tenants.
-- One tenant's feed, read in (transaction_id, global_position) order like the whole feed (events_feed_idx).
CREATE INDEX IF NOT EXISTS events_tenant_feed_idx ON events (tenant_id, transaction_id, global_position);

-- streams: the row is the stream's optimistic-concurrency lock, one per (tenant, type, id).
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_attribute
              WHERE attrelid = 'streams'::regclass AND attname = 'tenant_id' AND NOT attisdropped AND NOT attnotnull) THEN
    ALTER TABLE streams DROP COLUMN tenant_id;
  END IF;
END;
$$;
ALTER TABLE streams ADD COLUMN IF NOT EXISTS tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE streams ALTER COLUMN tenant_id DROP DEFAULT;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint
                  WHERE conrelid = 'streams'::regclass AND conname = 'streams_pkey'
                    AND pg_get_constraintdef(oid) = 'PRIMARY KEY (tenant_id, stream_type, stream_id)') THEN
    ALTER TABLE streams
      DROP CONSTRAINT IF EXISTS streams_pkey,
      ADD CONSTRAINT streams_pkey PRIMARY KEY (tenant_id, stream_type, stream_id);
  END IF;
END;
$$;

-- snapshots: one per stream, so per (tenant, type, id).
ALTER TABLE snapshots ADD COLUMN IF NOT EXISTS tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE snapshots ALTER COLUMN tenant_id DROP DEFAULT;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint
                  WHERE conrelid = 'snapshots'::regclass AND conname = 'snapshots_pkey'
                    AND pg_get_constraintdef(oid) = 'PRIMARY KEY (tenant_id, stream_type, stream_id)') THEN
    ALTER TABLE snapshots
      DROP CONSTRAINT IF EXISTS snapshots_pkey,
      ADD CONSTRAINT snapshots_pkey PRIMARY KEY (tenant_id, stream_type, stream_id);
  END IF;
END;
$$;

-- outbox: each row carries its event's tenant, and the relay queues per (tenant, stream): the claim finds each
-- stream's head by a skip scan in the order of the unpublished-rows index, now led by the tenant, so a failed row
-- of one tenant's stream never holds back the same stream id of another tenant.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE outbox ALTER COLUMN tenant_id DROP DEFAULT;
DROP INDEX IF EXISTS outbox_unpublished_idx;
CREATE INDEX IF NOT EXISTS outbox_unpublished_tenant_idx ON outbox (tenant_id, stream_type, stream_id, global_position)
  WHERE status <> 'published';

-- checkpoints and dead letters: a subscription runs for one tenant, or for every tenant ('*', the default).
ALTER TABLE checkpoints ADD COLUMN IF NOT EXISTS tenant_id text NOT NULL DEFAULT '*';
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint
                  WHERE conrelid = 'checkpoints'::regclass AND conname = 'checkpoints_pkey'
                    AND pg_get_constraintdef(oid) = 'PRIMARY KEY (subscription_id, tenant_id)') THEN
    ALTER TABLE checkpoints
      DROP CONSTRAINT IF EXISTS checkpoints_pkey,
      ADD CONSTRAINT checkpoints_pkey PRIMARY KEY (subscription_id, tenant_id);
  END IF;
END;
$$;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS tenant_id text NOT NULL DEFAULT '*';
-- The parked event's own tenant (tenant_id is the subscription's scope, '*' for one over every tenant).
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS event_tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE dead_letters ALTER COLUMN event_tenant_id DROP DEFAULT;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint
                  WHERE conrelid = 'dead_letters'::regclass AND conname = 'dead_letters_subscription_event_key'
                    AND pg_get_constraintdef(oid) = 'UNIQUE (subscription_id, tenant_id, event_id)') THEN
    ALTER TABLE dead_letters
      DROP CONSTRAINT IF EXISTS dead_letters_subscription_event_key,
      ADD CONSTRAINT dead_letters_subscription_event_key UNIQUE (subscription_id, tenant_id, event_id);
  END IF;
END;
$$;

-- Tenants whose writes this store refuses: append_events returns status 'blocked' for them. 'moved': the tenant now
-- lives in another store (detail names it); 'moving': a move into this store has not completed yet. Admin data:
-- no row-level security, so an application role sees its tenant's row whatever its scope.
CREATE TABLE IF NOT EXISTS tenant_blocks (
  tenant_id  text PRIMARY KEY,
  reason     text NOT NULL,
  blocked_at timestamptz NOT NULL DEFAULT now(),
  detail     jsonb
);

-- Moves of a tenant into this store (PgTenantMove), one row per tenant, written in the transaction of each copied
-- batch: after_* is the source feed position copied up to, so a rerun resumes exactly after the last committed batch.
-- status: 'copying' (online copy), 'cut-over' (the source refuses the tenant's writes; the rest is being copied),
-- 'verifying' (counts and checksum being compared; a mismatch leaves it here), 'done'.
CREATE TABLE IF NOT EXISTS tenant_moves (
  tenant_id             text PRIMARY KEY,
  source                text NOT NULL,
  after_transaction_id  xid8,
  after_global_position bigint,
  status                text NOT NULL CHECK (status IN ('copying', 'cut-over', 'verifying', 'done')),
  events_copied         bigint NOT NULL DEFAULT 0,
  streams               bigint,
  started_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  checksum              text
);

-- Scopes the current transaction to a tenant: the first call sets eventfold.tenant for the rest of the transaction
-- (transaction-local); a later call for another tenant is refused (SQLSTATE 42501), unless the scope is '*'. Callers
-- pass '*' for cross-tenant admin work; a tenant's scope cannot be widened to '*'. A session-wide setting (SET, or
-- the role's or database's default) is honoured like a transaction's own.
CREATE OR REPLACE FUNCTION enter_tenant(p_tenant text) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  v_scope text := current_setting('eventfold.tenant', true);
BEGIN
  IF p_tenant IS NULL OR p_tenant = '' THEN
    RAISE EXCEPTION 'eventfold: no tenant given' USING ERRCODE = '22023';
  END IF;
  IF v_scope IS NULL OR v_scope = '' THEN
    PERFORM set_config('eventfold.tenant', p_tenant, true);
  ELSIF v_scope <> p_tenant AND v_scope <> '*' THEN
    RAISE EXCEPTION 'eventfold: this transaction is scoped to tenant "%", not "%"', v_scope, p_tenant
      USING ERRCODE = '42501';
  END IF;
END;
$$;

DROP FUNCTION IF EXISTS append_events(text, text, text, integer, boolean, uuid[], text[], integer[], jsonb[], jsonb[],
                                      boolean, boolean);

-- Appends events to one stream of one tenant in one call: checks the expected version on the stream row, inserts
-- every event in one statement, and sends one NOTIFY hint per transaction. Version conflicts, idempotent repeats and
-- duplicates are returned as a status, not raised, so a caller's surrounding transaction stays usable; an event id
-- already used by another stream still raises unique_violation (the client reports DuplicateEvent) when the check
-- below cannot see it (p_check_ids false, or a row of another tenant hidden by row-level security).
--   p_tenant_id:     the stream's tenant; the transaction is scoped to it (enter_tenant). Not '' and not '*'.
--   p_expected_kind: 'any' | 'no_stream' | 'stream_exists' | 'exact'
--   p_check_ids:     the caller supplied event ids, so a retried append must be recognised (idempotency)
-- Returns status 'ok' | 'idempotent' | 'conflict' | 'duplicate' | 'stale' | 'blocked'. 'stale': the expected version
-- holds, but the stream's last append came from a transaction newer than this one (see 0005); nothing was written,
-- and only a new transaction can succeed. 'blocked': the tenant is in tenant_blocks (moved away, or being moved in);
-- nothing was written.
CREATE OR REPLACE FUNCTION append_events(
  p_tenant_id        text,
  p_stream_type      text,
  p_stream_id        text,
  p_expected_kind    text,
  p_expected_version integer,
  p_check_ids        boolean,
  p_event_ids        uuid[],
  p_event_types      text[],
  p_schema_versions  integer[],
  p_payloads         jsonb[],
  p_metadata         jsonb[],
  p_notify           boolean,
  p_outbox           boolean
) RETURNS TABLE (
  status             text,
  stream_version     integer,
  transaction_id     xid8,
  global_position    bigint,
  duplicate_event_id uuid
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  v_count    integer := cardinality(p_event_ids);
  v_version  integer;
  v_existing integer;
  v_matching integer;
  v_last     bigint;
  v_dup      uuid;
  v_xid      xid8;
  v_current  integer;
  v_last_xid xid8;
BEGIN
  IF p_tenant_id IS NULL OR p_tenant_id = '' OR p_tenant_id = '*' THEN
    RAISE EXCEPTION 'append_events: invalid tenant id %', coalesce('"' || p_tenant_id || '"', 'NULL')
      USING ERRCODE = '22023';
  END IF;
  -- Sets no transaction id: the advisory lock below must still come first.
  PERFORM enter_tenant(p_tenant_id);
  IF v_count IS NULL OR v_count = 0 THEN
    RAISE EXCEPTION 'append_events: no events' USING ERRCODE = '22023';
  END IF;

  -- The tenant's cut-over lock, shared by its appends: a move's cut-over takes it exclusively, so it waits for the
  -- appends in flight and holds new ones back until its block is committed; then the check below sees the block (a
  -- statement of a read-committed transaction takes a new snapshot; the move waits out older snapshots). Like the
  -- stream lock below, it is taken before this transaction has an id where it has none yet.
  PERFORM pg_advisory_xact_lock_shared(hashtextextended('tenant/' || p_tenant_id, 7131));
  IF EXISTS (SELECT 1 FROM tenant_blocks b WHERE b.tenant_id = p_tenant_id) THEN
    RETURN QUERY SELECT 'blocked'::text, NULL::integer, NULL::xid8, NULL::bigint, NULL::uuid;
    RETURN;
  END IF;

  -- Serialise appends to this stream, taken before this transaction has an id of its own where it has none yet: the
  -- id it then gets is newer than that of every append to the stream that committed before. Appends that carry ids
  -- also rely on it, so a concurrent retry sees the first one's rows.
  PERFORM pg_advisory_xact_lock(hashtextextended(p_tenant_id || '/' || p_stream_type || '/' || p_stream_id, 7130));
  -- The transaction's id if it already has one (it wrote before); NULL otherwise. No id is taken here: an append that
  -- ends as a conflict or an idempotent repeat writes nothing and must not hold back the feed horizon.
  v_xid := pg_current_xact_id_if_assigned();

  IF p_check_ids THEN
    SELECT count(*)::integer,
           count(*) FILTER (WHERE e.tenant_id = p_tenant_id AND e.stream_type = p_stream_type
                              AND e.stream_id = p_stream_id
                              AND e.event_type = n.event_type AND e.payload = n.payload)::integer
      INTO v_existing, v_matching
      FROM unnest(p_event_ids, p_event_types, p_payloads) AS n(event_id, event_type, payload)
      JOIN events e ON e.event_id = n.event_id;
    IF v_existing > 0 THEN
      IF v_existing = v_count AND v_matching = v_count THEN
        RETURN QUERY
          SELECT 'idempotent'::text, e.version, e.transaction_id, e.global_position, NULL::uuid
            FROM events e WHERE e.event_id = p_event_ids[v_count];
        RETURN;
      END IF;
      -- An id stored in another stream, another tenant's included, or with other content.
      SELECT n.event_id INTO v_dup
        FROM unnest(p_event_ids, p_event_types, p_payloads) WITH ORDINALITY AS n(event_id, event_type, payload, ord)
        JOIN events e ON e.event_id = n.event_id
       WHERE NOT (e.tenant_id = p_tenant_id AND e.stream_type = p_stream_type AND e.stream_id = p_stream_id
                  AND e.event_type = n.event_type AND e.payload = n.payload)
       ORDER BY n.ord LIMIT 1;
      RETURN QUERY SELECT 'duplicate'::text, NULL::integer, NULL::xid8, NULL::bigint,
                          coalesce(v_dup, p_event_ids[1]);
      RETURN;
    END IF;
  END IF;

  IF p_expected_kind = 'any' THEN
    INSERT INTO streams AS s (tenant_id, stream_type, stream_id, version, last_transaction_id)
    VALUES (p_tenant_id, p_stream_type, p_stream_id, v_count, pg_current_xact_id())
    ON CONFLICT (tenant_id, stream_type, stream_id)
      DO UPDATE SET version = s.version + v_count, updated_at = now(), last_transaction_id = pg_current_xact_id()
      WHERE v_xid IS NULL OR s.last_transaction_id IS NULL OR s.last_transaction_id <= v_xid
    RETURNING s.version INTO v_version;
  ELSIF p_expected_kind = 'no_stream' OR (p_expected_kind = 'exact' AND p_expected_version = 0) THEN
    INSERT INTO streams (tenant_id, stream_type, stream_id, version, last_transaction_id)
    VALUES (p_tenant_id, p_stream_type, p_stream_id, v_count, pg_current_xact_id())
    ON CONFLICT (tenant_id, stream_type, stream_id) DO NOTHING
    RETURNING version INTO v_version;
  ELSIF p_expected_kind = 'exact' THEN
    UPDATE streams SET version = version + v_count, updated_at = now(), last_transaction_id = pg_current_xact_id()
     WHERE tenant_id = p_tenant_id AND stream_type = p_stream_type AND stream_id = p_stream_id
       AND version = p_expected_version
       AND (v_xid IS NULL OR last_transaction_id IS NULL OR last_transaction_id <= v_xid)
    RETURNING version INTO v_version;
  ELSIF p_expected_kind = 'stream_exists' THEN
    UPDATE streams SET version = version + v_count, updated_at = now(), last_transaction_id = pg_current_xact_id()
     WHERE tenant_id = p_tenant_id AND stream_type = p_stream_type AND stream_id = p_stream_id
       AND (v_xid IS NULL OR last_transaction_id IS NULL OR last_transaction_id <= v_xid)
    RETURNING version INTO v_version;
  ELSE
    RAISE EXCEPTION 'append_events: unknown expected kind %', p_expected_kind USING ERRCODE = '22023';
  END IF;

  IF v_version IS NULL THEN
    -- A fresh snapshot: the actual version includes whatever a concurrent writer just committed.
    SELECT s.version, s.last_transaction_id INTO v_current, v_last_xid
      FROM streams s WHERE s.tenant_id = p_tenant_id AND s.stream_type = p_stream_type AND s.stream_id = p_stream_id;
    v_current := coalesce(v_current, 0);
    IF v_last_xid > v_xid AND (p_expected_kind = 'any' OR (p_expected_kind = 'stream_exists' AND v_current > 0)
                               OR (p_expected_kind = 'exact' AND v_current = p_expected_version)) THEN
      RETURN QUERY SELECT 'stale'::text, v_current, NULL::xid8, NULL::bigint, NULL::uuid;
    ELSE
      RETURN QUERY SELECT 'conflict'::text, v_current, NULL::xid8, NULL::bigint, NULL::uuid;
    END IF;
    RETURN;
  END IF;

  WITH inserted AS (
    INSERT INTO events (tenant_id, stream_type, stream_id, version, event_id, event_type, schema_version, payload,
                        metadata, actor_id, correlation_id, causation_id)
    SELECT p_tenant_id, p_stream_type, p_stream_id, v_version - v_count + n.ord::integer, n.event_id, n.event_type,
           n.schema_version, n.payload, n.metadata,
           n.metadata ->> 'actorId', n.metadata ->> 'correlationId', n.metadata ->> 'causationId'
      FROM unnest(p_event_ids, p_event_types, p_schema_versions, p_payloads, p_metadata)
           WITH ORDINALITY AS n(event_id, event_type, schema_version, payload, metadata, ord)
     ORDER BY n.ord
    RETURNING events.global_position
  )
  SELECT max(inserted.global_position) INTO v_last FROM inserted;

  IF p_outbox THEN
    -- One outbox row per inserted event, in this transaction: a rolled-back append leaves none. The outbox table
    -- comes from 0003_outbox.sql; PL/pgSQL resolves it only when this branch runs.
    INSERT INTO outbox (tenant_id, event_id, global_position, transaction_id, stream_type, stream_id, version,
                        event_type, schema_version, payload, metadata)
    SELECT e.tenant_id, e.event_id, e.global_position, e.transaction_id, e.stream_type, e.stream_id, e.version,
           e.event_type, e.schema_version, e.payload, e.metadata
      FROM events e
     WHERE e.tenant_id = p_tenant_id AND e.stream_type = p_stream_type AND e.stream_id = p_stream_id
       AND e.version > v_version - v_count
     ORDER BY e.version;
  END IF;

  IF p_notify THEN
    -- Identical notifications in one transaction are folded into one: at most one hint per transaction. The channel
    -- is cut to fit PostgreSQL's 63-byte identifier limit for the longest schema name (a shared prefix only costs
    -- another schema's readers a spurious wake-up).
    PERFORM pg_notify(left(current_schema(), 56) || '_events', '1');
  END IF;

  RETURN QUERY SELECT 'ok'::text, v_version, pg_current_xact_id(), v_last, NULL::uuid;
END;
$$;

-- Reads one stream of one tenant in one round trip, scoping the transaction to the tenant (enter_tenant).
-- Forward: the events with version >= p_from in version order; backward: version <= p_from, newest first; at most
-- p_limit of them (NULL: no limit). stream_version is NULL on those rows. When no event is in the range, it returns
-- one row instead, every event column NULL and stream_version the stream's current version (0: no such stream), so
-- the caller tells a missing stream from an empty range without asking again.
CREATE OR REPLACE FUNCTION read_stream(
  p_tenant_id   text,
  p_stream_type text,
  p_stream_id   text,
  p_from        integer,
  p_limit       integer,
  p_backward    boolean
) RETURNS TABLE (
  global_position bigint,
  transaction_id  xid8,
  event_id        uuid,
  tenant_id       text,
  stream_type     text,
  stream_id       text,
  version         integer,
  event_type      text,
  schema_version  integer,
  payload         jsonb,
  metadata        jsonb,
  recorded_at     timestamptz,
  stream_version  integer
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
BEGIN
  IF p_tenant_id IS NULL OR p_tenant_id = '' OR p_tenant_id = '*' THEN
    RAISE EXCEPTION 'read_stream: invalid tenant id %', coalesce('"' || p_tenant_id || '"', 'NULL')
      USING ERRCODE = '22023';
  END IF;
  PERFORM enter_tenant(p_tenant_id);
  IF p_backward THEN
    RETURN QUERY
      SELECT e.global_position, e.transaction_id, e.event_id, e.tenant_id, e.stream_type, e.stream_id, e.version,
             e.event_type, e.schema_version, e.payload, e.metadata, e.recorded_at, NULL::integer
        FROM events e
       WHERE e.tenant_id = p_tenant_id AND e.stream_type = p_stream_type AND e.stream_id = p_stream_id
         AND e.version <= p_from
       ORDER BY e.version DESC
       LIMIT p_limit;
  ELSE
    RETURN QUERY
      SELECT e.global_position, e.transaction_id, e.event_id, e.tenant_id, e.stream_type, e.stream_id, e.version,
             e.event_type, e.schema_version, e.payload, e.metadata, e.recorded_at, NULL::integer
        FROM events e
       WHERE e.tenant_id = p_tenant_id AND e.stream_type = p_stream_type AND e.stream_id = p_stream_id
         AND e.version >= p_from
       ORDER BY e.version
       LIMIT p_limit;
  END IF;
  IF NOT FOUND THEN
    RETURN QUERY
      SELECT NULL::bigint, NULL::xid8, NULL::uuid, NULL::text, NULL::text, NULL::text, NULL::integer, NULL::text,
             NULL::integer, NULL::jsonb, NULL::jsonb, NULL::timestamptz,
             coalesce((SELECT s.version FROM streams s
                        WHERE s.tenant_id = p_tenant_id AND s.stream_type = p_stream_type
                          AND s.stream_id = p_stream_id), 0);
  END IF;
END;
$$;

-- One page of the feed for a scope (a tenant, or '*' for every tenant) in one round trip: enters the scope (for
-- row-level security) and reads as the plain query of PgEventStore.readAll does, below the feed horizon. Filters are
-- NULL for none. Dynamic SQL, so each combination of filters is planned for what it is. The stores call it when
-- row-level security is on; without, they send the same query directly.
-- A tenant's page names its tenant as a one-element array and first in ORDER BY, so that only events_tenant_feed_idx
-- yields the order and the scan stops after one page. Given `tenant_id = $4`, the planner treats the tenant as a
-- constant, events_feed_idx yields the order too, and it often walks that index and filters out the other tenants'
-- rows: about n_distinct(tenant_id) rows read per row returned, and all of the older feed when the tenant's events
-- come late in it (a tenant moved in).
CREATE OR REPLACE FUNCTION read_all(
  p_scope          text,
  p_after_xid      xid8,
  p_after_position bigint,
  p_limit          integer,
  p_event_types    text[],
  p_stream_types   text[]
) RETURNS TABLE (
  global_position bigint,
  transaction_id  xid8,
  event_id        uuid,
  tenant_id       text,
  stream_type     text,
  stream_id       text,
  version         integer,
  event_type      text,
  schema_version  integer,
  payload         jsonb,
  metadata        jsonb,
  recorded_at     timestamptz
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
  IF p_scope IS NULL OR p_scope = '' THEN
    RAISE EXCEPTION 'read_all: invalid scope %', coalesce('"' || p_scope || '"', 'NULL') USING ERRCODE = '22023';
  END IF;
  PERFORM enter_tenant(p_scope);
  RETURN QUERY EXECUTE format(
    'SELECT e.global_position, e.transaction_id, e.event_id, e.tenant_id, e.stream_type, e.stream_id, e.version, '
    'e.event_type, e.schema_version, e.payload, e.metadata, e.recorded_at FROM events e '
    'WHERE (e.transaction_id, e.global_position) > ($1, $2) '
    'AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())%s%s%s '
    'ORDER BY %se.transaction_id, e.global_position LIMIT $3',
    CASE WHEN p_scope = '*' THEN '' ELSE ' AND e.tenant_id = ANY(ARRAY[$4])' END,
    CASE WHEN p_event_types IS NULL THEN '' ELSE ' AND e.event_type = ANY($5)' END,
    CASE WHEN p_stream_types IS NULL THEN '' ELSE ' AND e.stream_type = ANY($6)' END,
    CASE WHEN p_scope = '*' THEN '' ELSE 'e.tenant_id, ' END)
  USING p_after_xid, p_after_position, p_limit, p_scope, p_event_types, p_stream_types;
END;
$$;

-- A stream's snapshot in one round trip, entering its tenant (for row-level security).
CREATE OR REPLACE FUNCTION load_snapshot(
  p_tenant_id   text,
  p_stream_type text,
  p_stream_id   text
) RETURNS TABLE (
  stream_type    text,
  stream_id      text,
  version        integer,
  schema_version integer,
  state          jsonb,
  created_at     timestamptz
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
BEGIN
  IF p_tenant_id IS NULL OR p_tenant_id = '' OR p_tenant_id = '*' THEN
    RAISE EXCEPTION 'load_snapshot: invalid tenant id %', coalesce('"' || p_tenant_id || '"', 'NULL')
      USING ERRCODE = '22023';
  END IF;
  PERFORM enter_tenant(p_tenant_id);
  RETURN QUERY
    SELECT s.stream_type, s.stream_id, s.version, s.schema_version, s.state, s.created_at
      FROM snapshots s
     WHERE s.tenant_id = p_tenant_id AND s.stream_type = p_stream_type AND s.stream_id = p_stream_id;
END;
$$;

-- The feed's head: the position of the last event the feed can deliver now, over every tenant. Subscriptions of one
-- tenant need it too (to move past the events their filter drops), so under row-level security it runs with its
-- owner's rights (SECURITY DEFINER), which see every row; it returns a position only, never an event. The
-- search_path is fixed, with pg_catalog first, as a definer function's must be.
CREATE OR REPLACE FUNCTION feed_head() RETURNS TABLE (transaction_id xid8, global_position bigint)
LANGUAGE sql
STABLE
SECURITY DEFINER
AS $$
  SELECT e.transaction_id, e.global_position FROM events e
   WHERE e.transaction_id < pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())
   ORDER BY e.transaction_id DESC, e.global_position DESC
   LIMIT 1
$$;
ALTER FUNCTION feed_head() SET search_path = pg_catalog, :"schema";
REVOKE ALL ON FUNCTION feed_head() FROM PUBLIC;
