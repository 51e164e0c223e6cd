-- The embedded scheduler asks for its next due time with every claim: the
-- earliest unclaimed job comes from scheduler_jobs_due, the claimed ones
-- (in flight or released for a retry, always few) from this index, so the
-- question never reads the whole table.
CREATE INDEX scheduler_jobs_claimed ON scheduler_jobs (claimed_until) WHERE claimed_until IS NOT NULL;
