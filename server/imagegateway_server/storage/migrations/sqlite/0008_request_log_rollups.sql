-- Step 8 keeps SQLite's migration numbers in step with PostgreSQL's, whose step 8 adds the analytics
-- rollup cells SQLite has had since step 7 (storage/analytics_rollup.py). Nothing changes here.
SELECT 1;
