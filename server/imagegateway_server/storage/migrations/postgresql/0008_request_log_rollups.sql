-- Rollups of the request log for analytics over long ranges (storage/analytics_rollup.py), as
-- SQLite's step 7 made them: a cell is one hour, six hours or one day and one combination of every
-- column analytics groups or filters by, with or without the request's metadata object; it holds
-- sums and a latency histogram ({"bin": requests}). A request-log row is marked rolled_up in the
-- transaction that adds it to its cells, so a query reads cells plus the rows not rolled up yet.
-- Rows written before this step start unmarked: the store's rollup job works through them.

-- A constant default: PostgreSQL 11+ adds the column without rewriting the table.
ALTER TABLE request_logs ADD COLUMN rolled_up BOOLEAN NOT NULL DEFAULT false;

-- Only the rows still to roll up (seconds' worth once the job has caught up), oldest first.
CREATE INDEX request_logs_not_rolled_up ON request_logs (create_time) WHERE NOT rolled_up;

CREATE TABLE request_log_rollups (
    cell_id TEXT COLLATE "C" PRIMARY KEY,  -- a digest of the cell key (the columns up to metadata)
    span_seconds INTEGER NOT NULL CHECK (span_seconds IN (3600, 21600, 86400)),
    with_metadata INTEGER NOT NULL CHECK (with_metadata IN (0, 1)),
    bucket_start BIGINT NOT NULL,          -- microseconds since the epoch (UTC), a multiple of the span
    provider TEXT COLLATE "C" NOT NULL,    -- the key columns as request_logs has them, collation included
    model TEXT COLLATE "C" NOT NULL,
    config_id TEXT COLLATE "C" NOT NULL,
    caller_key_id TEXT COLLATE "C" NOT NULL,
    first_target TEXT COLLATE "C" NOT NULL,
    last_target TEXT COLLATE "C" NOT NULL,
    status_code INTEGER NOT NULL,
    fallback_used BOOLEAN NOT NULL,
    error_kind TEXT COLLATE "C" NOT NULL,
    metadata TEXT NOT NULL,                -- canonical JSON of the metadata object; '' without metadata
    requests BIGINT NOT NULL,
    cache_hits BIGINT NOT NULL,
    images BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    failed_attempts BIGINT NOT NULL,
    retries BIGINT NOT NULL,
    cost_nanos BIGINT NOT NULL,            -- nano-USD, so sums are exact in any order
    latency_bins TEXT NOT NULL             -- {"bin": requests}, storage/latency_histogram.py
);

-- Every analytics read is one span, one half, a range of bucket starts.
CREATE INDEX request_log_rollups_by_time ON request_log_rollups (span_seconds, with_metadata, bucket_start);
