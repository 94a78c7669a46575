-- Rollups of the request log for analytics over long ranges (storage/analytics_rollup.py). A cell is
-- one hour, six hours or one day and one combination of every column analytics groups or filters by, with or
-- without the request's metadata object; it holds sums and a latency histogram ({"bin": requests}).
-- A request-log row is marked rolled_up in the transaction that adds it to its cells, so a query
-- reads cells plus the rows not rolled up yet. Rows written before this migration start unmarked:
-- the store's rollup job works through them.

ALTER TABLE request_logs ADD COLUMN rolled_up INTEGER NOT NULL DEFAULT 0 CHECK (rolled_up IN (0, 1));

-- Only the rows still to roll up (seconds' worth once the job has caught up), oldest first.
CREATE INDEX request_logs_not_rolled_up ON request_logs (create_time) WHERE rolled_up = 0;

CREATE TABLE request_log_rollups (
    cell_id TEXT PRIMARY KEY,          -- a digest of the cell key (the columns up to metadata)
    span_seconds INTEGER NOT NULL CHECK (span_seconds IN (3600, 21600, 86400)),
    with_metadata INTEGER NOT NULL CHECK (with_metadata IN (0, 1)),
    bucket_start INTEGER NOT NULL,     -- microseconds since the epoch (UTC), a multiple of the span
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    config_id TEXT NOT NULL,
    caller_key_id TEXT NOT NULL,
    first_target TEXT NOT NULL,
    last_target TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    fallback_used INTEGER NOT NULL,
    error_kind TEXT NOT NULL,
    metadata TEXT NOT NULL,            -- canonical JSON of the metadata object; '' without metadata
    requests INTEGER NOT NULL,
    cache_hits INTEGER NOT NULL,
    images INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    failed_attempts INTEGER NOT NULL,
    retries INTEGER NOT NULL,
    cost_nanos INTEGER NOT NULL,       -- nano-USD, so sums are exact in any order
    latency_bins TEXT NOT NULL         -- {"bin": requests}, storage/latency_histogram.py
);

-- Every analytics read is one span, one half, a range of bucket starts.
CREATE INDEX request_log_rollups_by_time ON request_log_rollups (span_seconds, with_metadata, bucket_start);
