-- Step 7 keeps PostgreSQL's migration numbers in step with SQLite's, whose step 7 adds the analytics
-- rollup cells (storage/analytics_rollup.py). PostgreSQL has no rollup cells yet: it answers analytics
-- from the request log itself, through the (create_time, id) index and the columns of step 6, exactly
-- and with exact percentiles, so this step changes nothing in its schema.
SELECT 1;
