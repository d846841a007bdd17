-- The decision log (docs/operate.md, "Decision log"): one row per decision, written by the
-- service in batches. No fact value is ever stored: `request.facts` keeps only the names of the
-- facts given, each value replaced by "masked".
CREATE TABLE IF NOT EXISTS decision_log (
    decision_id     uuid        PRIMARY KEY,
    decided_at      timestamptz NOT NULL,
    -- The caller's clinic (NULL: the base rule set, open mode) and key name.
    clinic          text,
    key_id          text,
    operation       text        NOT NULL,
    ruleset_id      text        NOT NULL,
    ruleset_version text        NOT NULL,
    ruleset_digest  text        NOT NULL,
    treatment       text        NOT NULL,
    decision        text        NOT NULL,
    request         jsonb       NOT NULL,
    answer          jsonb       NOT NULL
);

-- A clinic's audit trail over a period; the primary key serves lookups by decision id.
CREATE INDEX IF NOT EXISTS decision_log_clinic_time ON decision_log (clinic, decided_at);
-- Retention deletes by time across clinics.
CREATE INDEX IF NOT EXISTS decision_log_time ON decision_log (decided_at);
