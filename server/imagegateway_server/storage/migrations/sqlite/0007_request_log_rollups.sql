-- Hourly rollups of the request log for analytics over long ranges (storage/analytics_rollup.py).
-- A cell is one hour and one combination of every column analytics groups or filters by; it holds
-- sums and a latency histogram ({"bin": requests} JSON). A request-log row is marked rolled_up in
-- the transaction that adds it to its cell, so a query reads cells plus the rows not rolled up yet.
-- Rows written before this migration start unmarked: the rollup job works through them.

ALTER TABLE request_logs ADD COLUMN rolled_up INTEGER NOT NULL DEFAULT 0 CHECK (rolled_up IN (0, 1));

-- Only the rows still to roll up (seconds' worth once the job has caught up), oldest first.
CREATE INDEX request_logs_not_rolled_up ON request_logs (create_time) WHERE rolled_up = 0;

CREATE TABLE request_log_rollups (
    bucket_start INTEGER NOT NULL,     -- the hour, microseconds since the epoch (UTC)
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    config_id TEXT NOT NULL,
    caller_key_id TEXT NOT NULL,
    first_target TEXT NOT NULL,
    last_target TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    fallback_used INTEGER NOT NULL,
    error_kind TEXT NOT NULL,
    metadata TEXT NOT NULL,            -- the request's metadata object, canonical JSON
    requests INTEGER NOT NULL,
    cache_hits INTEGER NOT NULL,
    images INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    failed_attempts INTEGER NOT NULL,
    retries INTEGER NOT NULL,
    cost_nanos INTEGER NOT NULL,       -- nano-USD, so sums are exact in any order
    latency_bins TEXT NOT NULL         -- {"bin": requests}, storage/latency_histogram.py
);

-- The cell key; a query's range condition on bucket_start leads it.
CREATE UNIQUE INDEX request_log_rollups_by_cell ON request_log_rollups (
    bucket_start, provider, model, config_id, caller_key_id, first_target, last_target, status_code,
    fallback_used, error_kind, metadata
);
