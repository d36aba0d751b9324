-- eventfold 0003: the transactional outbox. append_events writes one row per event when p_outbox is true; relays
-- claim rows with FOR UPDATE SKIP LOCKED under a lease and publish them in stream order.
-- Apply with psql:  psql "$DATABASE_URL" -v schema=eventfold -f migrations/0003_outbox.sql
\if :{?schema}
\else
\set schema eventfold
\endif

CREATE SCHEMA IF NOT EXISTS :"schema";
SET search_path TO :"schema", pg_catalog;

-- Status semantics as in eventsource-py's event_outbox: 'pending' -> 'published', or 'failed' (dead letter, keeping
-- last_error) after the relay's retry schedule is exhausted. A failed row blocks its stream's later rows, so
-- per-stream order holds; retrying it (status back to 'pending') unblocks the stream.
CREATE TABLE IF NOT EXISTS outbox (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id        uuid NOT NULL,
  global_position bigint NOT NULL,
  transaction_id  xid8 NOT NULL,
  stream_type     text NOT NULL,
  stream_id       text NOT NULL,
  version         integer NOT NULL,
  event_type      text NOT NULL,
  schema_version  integer NOT NULL DEFAULT 1,
  payload         jsonb NOT NULL,
  metadata        jsonb NOT NULL DEFAULT '{}',
  status          text NOT NULL DEFAULT 'pending',
  retry_count     integer NOT NULL DEFAULT 0,
  last_error      text,
  -- Backoff survives a crash: the next attempt time is stored on the row, not held in a relay's memory.
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  -- The claim lease: a relay that dies holding rows loses them once claimed_until has passed.
  claimed_by      text,
  claimed_until   timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  published_at    timestamptz,
  CONSTRAINT outbox_status_check CHECK (status IN ('pending', 'published', 'failed')),
  CONSTRAINT outbox_event_id_key UNIQUE (event_id)
);

-- Finding each stream's head (its earliest unpublished row) reads only unpublished rows.
CREATE INDEX IF NOT EXISTS outbox_unpublished_idx ON outbox (stream_type, stream_id, global_position)
  WHERE status <> 'published';
-- Cleanup of published rows past their retention.
CREATE INDEX IF NOT EXISTS outbox_published_idx ON outbox (published_at) WHERE status = 'published';

-- append_events (0001) writes the rows of this table when called with p_outbox = true.
