-- What analytics aggregates, copied out of the payload into columns so a range is summed by indexed
-- SQL without parsing JSON per row: the error kind, whether the response cache answered, the latency,
-- the images served, the upstream calls (all, failed, retries; a target skipped by an open circuit
-- breaker made no call), and the first and the last target (the served one, else the last tried;
-- together the fallback pair). append_logs fills them from the
-- payload in the same INSERT, so the payload stays the one source.

ALTER TABLE request_logs ADD COLUMN error_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE request_logs ADD COLUMN cache_hit INTEGER NOT NULL DEFAULT 0 CHECK (cache_hit IN (0, 1));
ALTER TABLE request_logs ADD COLUMN latency_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_logs ADD COLUMN image_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_logs ADD COLUMN attempt_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_logs ADD COLUMN failed_attempt_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_logs ADD COLUMN retry_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_logs ADD COLUMN first_target TEXT NOT NULL DEFAULT '';
ALTER TABLE request_logs ADD COLUMN last_target TEXT NOT NULL DEFAULT '';

UPDATE request_logs SET
    error_kind = coalesce(json_extract(payload, '$.error_kind'), ''),
    cache_hit = coalesce(json_extract(payload, '$.cache_status'), '') = 'CACHE_STATUS_HIT',
    latency_ms = coalesce(CAST(json_extract(payload, '$.latency_ms') AS INTEGER), 0),
    image_count = coalesce(json_array_length(payload, '$.images'), 0),
    attempt_count = (SELECT count(*) FROM json_each(payload, '$.attempts')
        WHERE coalesce(json_extract(value, '$.circuit_open'), 0) = 0),
    failed_attempt_count = (SELECT count(*) FROM json_each(payload, '$.attempts')
        WHERE coalesce(json_extract(value, '$.circuit_open'), 0) = 0
        AND coalesce(json_extract(value, '$.error_kind'), '') != ''),
    retry_count = (SELECT count(*) FROM json_each(payload, '$.attempts')
        WHERE coalesce(json_extract(value, '$.circuit_open'), 0) = 0
        AND coalesce(json_extract(value, '$.retry_index'), 0) > 0),
    first_target = coalesce(json_extract(payload, '$.attempts[0].target'), ''),
    last_target = coalesce(nullif(json_extract(payload, '$.served_target'), ''),
        json_extract(payload, '$.attempts[#-1].target'), '');

-- Every analytics query is a create_time range; the listing index on (create_time, id) serves it.
-- Grouping by served target or gateway key reads those columns from the row, so no index is added.

-- fallback_used means served by a target other than the first; rows written before this migration
-- also set it when every target failed. Those are cleared, in the column and in the payload alike.
UPDATE request_logs SET fallback_used = 0, payload = json_remove(payload, '$.fallback_used')
    WHERE fallback_used = 1 AND NOT (status_code BETWEEN 200 AND 299);
