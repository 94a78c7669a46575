-- Limits on gateway keys and virtual keys (0 = unlimited), and what request-log rows need so spend
-- per key can be summed without reading payloads: the cost, and the virtual key it is charged to.

ALTER TABLE api_keys ADD COLUMN limit_requests_per_minute INTEGER NOT NULL DEFAULT 0
    CHECK (limit_requests_per_minute >= 0);
ALTER TABLE api_keys ADD COLUMN limit_usd_per_day DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (limit_usd_per_day >= 0);
ALTER TABLE api_keys ADD COLUMN limit_usd_per_month DOUBLE PRECISION NOT NULL DEFAULT 0
    CHECK (limit_usd_per_month >= 0);

ALTER TABLE virtual_keys ADD COLUMN limit_requests_per_minute INTEGER NOT NULL DEFAULT 0
    CHECK (limit_requests_per_minute >= 0);
ALTER TABLE virtual_keys ADD COLUMN limit_usd_per_day DOUBLE PRECISION NOT NULL DEFAULT 0
    CHECK (limit_usd_per_day >= 0);
ALTER TABLE virtual_keys ADD COLUMN limit_usd_per_month DOUBLE PRECISION NOT NULL DEFAULT 0
    CHECK (limit_usd_per_month >= 0);

ALTER TABLE request_logs ADD COLUMN virtual_key_id TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE request_logs ADD COLUMN cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0;

-- Rows written before this migration carry their cost only in the payload (absent when 0).
UPDATE request_logs SET cost_usd = (payload::jsonb ->> 'cost_usd')::double precision
    WHERE jsonb_typeof(payload::jsonb -> 'cost_usd') = 'number' AND (payload::jsonb ->> 'cost_usd')::double precision > 0;

-- Spend since a period start is a range of create_time; the virtual-key index serves per-key sums.
CREATE INDEX request_logs_by_virtual_key ON request_logs (virtual_key_id, create_time, id);
