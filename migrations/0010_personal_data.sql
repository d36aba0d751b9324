-- eventfold 0010: personal data (crypto-shredding). Personal fields of events, snapshots and outbox rows are stored
-- encrypted under a key per data subject (PersonalData in @eventfold/core); the keys live here, apart from the data.
-- Forgetting a subject deletes its keys, which makes every copy of its data unreadable without touching an event,
-- and records who forgot it, when and why.
--   subject_keys: every key of a subject, one per generation (1 for the first key, one more per rotation); the
--   highest generation is the current key, found through the primary key. Older keys stay until the subject is
--   forgotten, so data written before a rotation still decrypts. key_id is stored next to each ciphertext.
--   forgotten_subjects: the audit trail, one row per forget (a repeated forget is recorded again). The application
--   role may only read and insert it (grants.sql), never change or delete it; once a subject has a row here, the
--   library never creates a key for it again.
-- Creating, rotating and deleting a subject's keys take a transaction-scoped advisory lock on the subject, so a key
-- can never be created after the subject was forgotten.
-- The subject id is stored in plaintext: it must be a pseudonymous id (a customer UUID), never personal data itself.
-- Apply with psql:  psql "$DATABASE_URL" -v schema=eventfold -f migrations/0010_personal_data.sql
-- The library applies the same text through PgMigrations, substituting :"schema" (psql's quoted-identifier form).
\if :{?schema}
\else
\set schema eventfold
\endif

CREATE SCHEMA IF NOT EXISTS :"schema";
SET search_path TO :"schema", pg_catalog;

CREATE TABLE IF NOT EXISTS subject_keys (
  tenant_id  text NOT NULL,
  subject_id text NOT NULL,
  generation integer NOT NULL CHECK (generation > 0),
  key_id     uuid NOT NULL,
  -- AES-256: 32 random bytes.
  key        bytea NOT NULL CHECK (octet_length(key) = 32),
  created_at timestamptz NOT NULL DEFAULT now(),
  -- The current key is the subject's highest generation: an index-only descent of this key.
  CONSTRAINT subject_keys_pkey PRIMARY KEY (tenant_id, subject_id, generation),
  CONSTRAINT subject_keys_key_id_key UNIQUE (key_id)
);

CREATE TABLE IF NOT EXISTS forgotten_subjects (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id    text NOT NULL,
  subject_id   text NOT NULL,
  forgotten_at timestamptz NOT NULL DEFAULT now(),
  forgotten_by text NOT NULL,
  reason       text,
  -- How many keys this forget deleted (0 when repeated).
  keys_deleted integer NOT NULL DEFAULT 0
);

-- "Is this subject forgotten, and since when": the first row of the subject.
CREATE INDEX IF NOT EXISTS forgotten_subjects_subject_idx ON forgotten_subjects (tenant_id, subject_id, id);
