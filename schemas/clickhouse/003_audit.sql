-- MonitorMe history, schema version 3: the audit trail. Every action the
-- acks topic carries, with who did it as they were authenticated:
-- acknowledgements and alarm silences (the API's caller: a token's
-- subject), and the rules each alert processor loaded at start (its Kafka
-- principal). From this version the sink writes the acks topic here, and
-- the acknowledgements table is filled from it by a materialized view, so
-- that table and the queries on it stay as they were. A retried batch is
-- dropped whole by the deduplication window before the view sees it, as
-- for the vitals rollup.
--
-- No TTL: a hospital keeps its audit trail for years, by its own policy;
-- drop whole months with ALTER TABLE audit DROP PARTITION (docs/analysts.md).
-- Apply with `monitorme migrate` before upgrading the sink.

CREATE TABLE IF NOT EXISTS audit
(
    ts          DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    action      LowCardinality(String),
    subject     String,
    auth        LowCardinality(String),
    patient_id  String,
    alert_id    String,
    seconds     UInt16,
    detail      String,
    received_at DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, action, subject, patient_id, alert_id, detail)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS acknowledgements_mv TO acknowledgements AS
SELECT patient_id, alert_id, ts, subject AS acked_by, received_at
FROM audit
WHERE action = 'acknowledge';
