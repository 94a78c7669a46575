-- What analytics aggregates, copied out of the payload into columns so a range is summed by indexed
-- SQL without parsing JSON per row (the twin of sqlite/0006). New rows get them from the log writer
-- (storage/log_columns.py, the same definitions); the backfill below fills rows written before.

ALTER TABLE request_logs ADD COLUMN error_kind TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE request_logs ADD COLUMN cache_hit BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE request_logs ADD COLUMN latency_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE request_logs ADD COLUMN image_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_logs ADD COLUMN attempt_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_logs ADD COLUMN failed_attempt_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_logs ADD COLUMN retry_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_logs ADD COLUMN first_target TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE request_logs ADD COLUMN last_target TEXT COLLATE "C" NOT NULL DEFAULT '';

UPDATE request_logs AS r SET
    error_kind = coalesce(j.p ->> 'error_kind', ''),
    cache_hit = coalesce(j.p ->> 'cache_status', '') = 'CACHE_STATUS_HIT',
    latency_ms = CASE WHEN j.p ->> 'latency_ms' ~ '^[0-9]+(\.[0-9]*)?$'
        THEN trunc((j.p ->> 'latency_ms')::numeric)::bigint ELSE 0 END,
    image_count = CASE jsonb_typeof(j.p -> 'images') WHEN 'array' THEN jsonb_array_length(j.p -> 'images') ELSE 0 END,
    attempt_count = (SELECT count(*) FROM jsonb_array_elements(
            CASE jsonb_typeof(j.p -> 'attempts') WHEN 'array' THEN j.p -> 'attempts' ELSE '[]' END) AS a(v)
        WHERE coalesce(a.v -> 'circuit_open', 'false') IN ('false', '0', 'null')),
    failed_attempt_count = (SELECT count(*) FROM jsonb_array_elements(
            CASE jsonb_typeof(j.p -> 'attempts') WHEN 'array' THEN j.p -> 'attempts' ELSE '[]' END) AS a(v)
        WHERE coalesce(a.v -> 'circuit_open', 'false') IN ('false', '0', 'null')
        AND coalesce(a.v ->> 'error_kind', '') != ''),
    retry_count = (SELECT count(*) FROM jsonb_array_elements(
            CASE jsonb_typeof(j.p -> 'attempts') WHEN 'array' THEN j.p -> 'attempts' ELSE '[]' END) AS a(v)
        WHERE coalesce(a.v -> 'circuit_open', 'false') IN ('false', '0', 'null')
        AND jsonb_typeof(a.v -> 'retry_index') = 'number' AND (a.v ->> 'retry_index')::numeric > 0),
    first_target = coalesce(j.p -> 'attempts' -> 0 ->> 'target', ''),
    last_target = coalesce(nullif(j.p ->> 'served_target', ''), j.p -> 'attempts' -> -1 ->> 'target', '')
FROM (SELECT id, payload::jsonb AS p FROM request_logs) AS j
WHERE j.id = r.id;

-- fallback_used means served by a target other than the first; rows written before this migration
-- also set it when every target failed. Those are cleared, in the column and in the payload alike.
UPDATE request_logs SET fallback_used = false, payload = (payload::jsonb - 'fallback_used')::text
    WHERE fallback_used AND NOT (status_code BETWEEN 200 AND 299);
