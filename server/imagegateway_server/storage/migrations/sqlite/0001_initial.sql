-- Initial schema. Times are integer microseconds since the Unix epoch, UTC.

CREATE TABLE configs (
    id TEXT PRIMARY KEY,
    latest_version INTEGER NOT NULL CHECK (latest_version >= 1),
    first_create_time INTEGER NOT NULL
);

CREATE TABLE config_versions (
    config_id TEXT NOT NULL REFERENCES configs (id) ON DELETE CASCADE,
    version INTEGER NOT NULL CHECK (version >= 1),
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    sealed_secrets BLOB,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (config_id, version)
);

CREATE TABLE virtual_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    provider TEXT NOT NULL,
    base_url TEXT,
    sealed_secret BLOB NOT NULL,
    create_time INTEGER NOT NULL,
    rotate_time INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('admin', 'generate')),
    key_hash TEXT NOT NULL UNIQUE,
    display_prefix TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    revoke_time INTEGER
);

CREATE INDEX api_keys_by_create_time ON api_keys (create_time, id);

CREATE TABLE request_logs (
    id TEXT PRIMARY KEY,
    trace_id TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    status_code INTEGER NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    caller_key_id TEXT NOT NULL,
    config_id TEXT NOT NULL,
    fallback_used INTEGER NOT NULL CHECK (fallback_used IN (0, 1)),
    payload TEXT NOT NULL
);

-- Listings are newest first by (create_time, id); each filter column leads an index that then
-- serves that order, so a filtered page is an index range scan.
CREATE INDEX request_logs_by_time ON request_logs (create_time, id);
CREATE INDEX request_logs_by_trace ON request_logs (trace_id, create_time, id);
CREATE INDEX request_logs_by_provider ON request_logs (provider, create_time, id);
CREATE INDEX request_logs_by_caller ON request_logs (caller_key_id, create_time, id);
CREATE INDEX request_logs_by_status ON request_logs (status_code, create_time, id);
