-- Limits on gateway keys and virtual keys (0 = unlimited), and what request-log rows need so spend
-- per key can be summed without reading payloads: the cost, and the virtual key it is charged to.

ALTER TABLE api_keys ADD COLUMN limit_requests_per_minute INTEGER NOT NULL DEFAULT 0
    CHECK (limit_requests_per_minute >= 0);
ALTER TABLE api_keys ADD COLUMN limit_usd_per_day REAL NOT NULL DEFAULT 0 CHECK (limit_usd_per_day >= 0);
ALTER TABLE api_keys ADD COLUMN limit_usd_per_month REAL NOT NULL DEFAULT 0 CHECK (limit_usd_per_month >= 0);

ALTER TABLE virtual_keys ADD COLUMN limit_requests_per_minute INTEGER NOT NULL DEFAULT 0
    CHECK (limit_requests_per_minute >= 0);
ALTER TABLE virtual_keys ADD COLUMN limit_usd_per_day REAL NOT NULL DEFAULT 0 CHECK (limit_usd_per_day >= 0);
ALTER TABLE virtual_keys ADD COLUMN limit_usd_per_month REAL NOT NULL DEFAULT 0 CHECK (limit_usd_per_month >= 0);

ALTER TABLE request_logs ADD COLUMN virtual_key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE request_logs ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0;

-- Rows written before this migration carry their cost only in the payload (absent when 0); their
-- virtual key was not recorded, so virtual-key spend starts counting from here.
UPDATE request_logs SET cost_usd = json_extract(payload, '$.cost_usd')
    WHERE json_extract(payload, '$.cost_usd') > 0;

-- Spend since a period start is a range of create_time; the virtual-key index serves per-key sums.
CREATE INDEX request_logs_by_virtual_key ON request_logs (virtual_key_id, create_time, id);
