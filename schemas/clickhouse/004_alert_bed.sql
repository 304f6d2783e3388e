-- MonitorMe history, schema version 4: where the patient was. From this
-- version an alert event's ward is the patient's ward from the latest
-- admission or transfer when the event was made (before, only the rules
-- file's ward, so a ward known from its placements had alarms with ward
-- ''), and its bed is written beside it. A transfer moves each open alarm
-- with an updated event carrying the new ward and bed. Rows written
-- before read with bed ''.
-- Apply with `monitorme migrate` before upgrading the sink.

ALTER TABLE alerts ADD COLUMN IF NOT EXISTS bed LowCardinality(String) DEFAULT '';
