-- Masking of named facts (PROTOCOL_DECISION_LOG_MASK): the facts of each request that were
-- dropped or hashed before it was stored, `{"pregnant": "drop", "date_of_birth": "hash"}`, so a
-- replay names what it cannot replay. Rows written before masking was configurable stored every
-- fact value as "masked": they are marked as such, every fact dropped.
ALTER TABLE decision_log ADD COLUMN IF NOT EXISTS masked_facts jsonb NOT NULL DEFAULT '{}';
UPDATE decision_log
   SET masked_facts = (SELECT coalesce(jsonb_object_agg(k, 'drop'), '{}')
                         FROM jsonb_object_keys(request->'facts') AS k),
       request = request - 'facts' || jsonb_build_object('facts', '{}'::jsonb)
 WHERE jsonb_typeof(request->'facts') = 'object'
   AND EXISTS (SELECT 1 FROM jsonb_each(request->'facts') AS f WHERE f.value = '"masked"');
