-- eventfold 0002: the latest snapshot of each stream's state, a cache that bounds aggregate load time.
-- Apply with psql:  psql "$DATABASE_URL" -v schema=eventfold -f migrations/0002_snapshots.sql
-- The library applies the same text through PgMigrations, substituting :"schema" (psql's quoted-identifier form).
\if :{?schema}
\else
\set schema eventfold
\endif

CREATE SCHEMA IF NOT EXISTS :"schema";
SET search_path TO :"schema", pg_catalog;

-- One row per stream: only the latest snapshot is kept. Events stay the truth; a row here may be dropped any time.
-- No foreign key to streams: a snapshot is written after its append committed, and the cache must never block it.
CREATE TABLE IF NOT EXISTS snapshots (
  stream_type    text NOT NULL,
  stream_id      text NOT NULL,
  -- The stream version the state covers: the fold of events 1..version.
  version        integer NOT NULL CHECK (version > 0),
  -- The aggregate's state schema version; a load ignores rows whose schema version differs from its own.
  schema_version integer NOT NULL,
  -- The Schema-encoded state.
  state          jsonb NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream_type, stream_id)
);
