-- The latest decisions each clinic was answered by one rule set: what a dry run of an
-- activation or rollback re-decides to show its impact on real traffic.
CREATE INDEX IF NOT EXISTS decision_log_ruleset_recent
    ON decision_log (ruleset_id, clinic, decided_at DESC);
