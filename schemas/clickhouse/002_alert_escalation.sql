-- MonitorMe history, schema version 2: what an alert event says beyond its
-- state since the clinical engine latches, escalates in tiers and honours
-- alarm silences (docs/rules.md). Columns added with defaults, so rows
-- written before read as not updated, never escalated, not silenced.
-- Apply with `monitorme migrate` before upgrading the sink: a sink of this
-- version writes these columns.

ALTER TABLE alerts ADD COLUMN IF NOT EXISTS updated Bool DEFAULT false;

ALTER TABLE alerts ADD COLUMN IF NOT EXISTS escalation_level UInt8 DEFAULT 0;

ALTER TABLE alerts ADD COLUMN IF NOT EXISTS notify LowCardinality(String) DEFAULT '';

ALTER TABLE alerts ADD COLUMN IF NOT EXISTS silenced Bool DEFAULT false;
