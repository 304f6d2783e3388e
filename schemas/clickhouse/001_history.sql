-- MonitorMe history, schema version 1: raw vitals, alert events and
-- acknowledgements as the sink writes them from the topics, and a
-- per-minute rollup of the vitals.
--
-- Every table is a ReplacingMergeTree on the row's identity, so a row
-- inserted twice (a replay of the topics) is one row after a merge, and
-- one row at once for queries with FINAL. Inserts carry an
-- insert_deduplication_token per Kafka partition and offset range; the
-- deduplication window below makes ClickHouse drop a retried batch
-- whole, before the rollup's materialized view sees it twice.
--
-- ${name} placeholders are filled in by `monitorme migrate` (the TTLs are
-- its flags); every statement is idempotent.

CREATE TABLE IF NOT EXISTS vitals
(
    patient_id  String,
    kind        LowCardinality(String),
    ts          DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    device_id   LowCardinality(String),
    seq         UInt64 CODEC(Delta, ZSTD(1)),
    value       Float64 CODEC(Gorilla, ZSTD(1)),
    unit        LowCardinality(String),
    -- When the reading reached the platform (its record's timestamp).
    received_at DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (patient_id, kind, ts, device_id, seq)
TTL toDateTime(ts) + INTERVAL ${vitals_ttl_days} DAY DELETE
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS alerts
(
    patient_id   String,
    condition    LowCardinality(String),
    ts           DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    alert_id     String,
    state        LowCardinality(String),
    priority     LowCardinality(String),
    alert_limit  Float64,
    message      String CODEC(ZSTD(3)),
    score        Nullable(UInt8),
    components   Map(LowCardinality(String), UInt8),
    acked_by     String,
    -- The patient's ward ('' for none): from version 4 the placement's
    -- when the event was made (see 004_alert_bed.sql), before it the
    -- processor's rules file's.
    ward         LowCardinality(String),
    -- The reading that raised, changed or resolved the alert.
    kind         LowCardinality(String),
    value        Float64,
    unit         LowCardinality(String),
    reading_ts   DateTime64(3, 'UTC'),
    device_id    LowCardinality(String),
    seq          UInt64,
    received_at  DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (patient_id, condition, ts, alert_id, state, priority)
TTL toDateTime(ts) + INTERVAL ${alerts_ttl_days} DAY DELETE
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS acknowledgements
(
    patient_id  String,
    alert_id    String,
    ts          DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    acked_by    String,
    received_at DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (patient_id, alert_id, ts, acked_by)
TTL toDateTime(ts) + INTERVAL ${alerts_ttl_days} DAY DELETE
SETTINGS non_replicated_deduplication_window = 10000;

-- Per patient, vital and minute: min, max, average and count. min and max
-- are unaffected by a row counted twice; the average and count are exact
-- for every batch the deduplication token covers (see docs/analysts.md
-- for rebuilding a day after a replay with other batch boundaries).
CREATE TABLE IF NOT EXISTS vitals_1m
(
    patient_id String,
    kind       LowCardinality(String),
    minute     DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    min_value  SimpleAggregateFunction(min, Float64),
    max_value  SimpleAggregateFunction(max, Float64),
    avg_value  AggregateFunction(avg, Float64),
    samples    SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (patient_id, kind, minute)
TTL minute + INTERVAL ${rollup_ttl_days} DAY DELETE
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS vitals_1m_mv TO vitals_1m AS
SELECT
    patient_id,
    kind,
    toStartOfMinute(ts) AS minute,
    min(value) AS min_value,
    max(value) AS max_value,
    avgState(value) AS avg_value,
    count() AS samples
FROM vitals
GROUP BY patient_id, kind, minute;
