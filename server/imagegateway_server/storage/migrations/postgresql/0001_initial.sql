-- Initial schema, the PostgreSQL twin of sqlite/0001. Times are BIGINT microseconds since the Unix
-- epoch, UTC, as on SQLite: they sort and compare exactly, analytics buckets are the same integer
-- arithmetic, and page tokens carry the same numbers on both backends. Ids and names sort in
-- byte order (COLLATE "C"), as SQLite's TEXT does, so listings page in the same order.

CREATE TABLE configs (
    id TEXT COLLATE "C" PRIMARY KEY,
    latest_version INTEGER NOT NULL CHECK (latest_version >= 1),
    first_create_time BIGINT NOT NULL
);

CREATE TABLE config_versions (
    config_id TEXT COLLATE "C" NOT NULL REFERENCES configs (id) ON DELETE CASCADE,
    version INTEGER NOT NULL CHECK (version >= 1),
    name TEXT COLLATE "C" NOT NULL,
    document TEXT NOT NULL,
    sealed_secrets BYTEA,
    create_time BIGINT NOT NULL,
    PRIMARY KEY (config_id, version)
);

CREATE TABLE virtual_keys (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    provider TEXT NOT NULL,
    base_url TEXT,
    sealed_secret BYTEA NOT NULL,
    create_time BIGINT NOT NULL,
    rotate_time BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('admin', 'generate')),
    key_hash TEXT NOT NULL UNIQUE,
    display_prefix TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    revoke_time BIGINT
);

CREATE INDEX api_keys_by_create_time ON api_keys (create_time, id);

CREATE TABLE request_logs (
    id TEXT COLLATE "C" PRIMARY KEY,
    trace_id TEXT COLLATE "C" NOT NULL,
    create_time BIGINT NOT NULL,
    status_code INTEGER NOT NULL,
    provider TEXT COLLATE "C" NOT NULL,
    model TEXT COLLATE "C" NOT NULL,
    caller_key_id TEXT COLLATE "C" NOT NULL,
    config_id TEXT COLLATE "C" NOT NULL,
    fallback_used BOOLEAN NOT NULL,
    payload TEXT NOT NULL
);

-- Listings are newest first by (create_time, id); each filter column leads an index that then
-- serves that order, so a filtered page is an index range scan. Retention deletes by the time index.
CREATE INDEX request_logs_by_time ON request_logs (create_time, id);
CREATE INDEX request_logs_by_trace ON request_logs (trace_id, create_time, id);
CREATE INDEX request_logs_by_provider ON request_logs (provider, create_time, id);
CREATE INDEX request_logs_by_caller ON request_logs (caller_key_id, create_time, id);
CREATE INDEX request_logs_by_status ON request_logs (status_code, create_time, id);
