package clickhouse

import (
	"strconv"
	"time"
)

// The history API's queries. Every value a request carries is bound as a
// {name:Type} query parameter, which the server substitutes after
// parsing: nothing a client sends is ever part of the SQL text. `make
// test-sql` runs these exact strings on the ClickHouse engine with their
// parameters.

// RawVitalsSQL returns readings as they arrived, one row per reading.
// FINAL collapses a reading written twice by a replay.
const RawVitalsSQL = `SELECT kind, ts, value, unit, device_id, seq
FROM vitals FINAL
WHERE patient_id = {patient:String}
  AND ({kind:String} = '' OR kind = {kind:String})
  AND ts >= {from:DateTime64(3, 'UTC')} AND ts < {to:DateTime64(3, 'UTC')}
ORDER BY kind, ts, device_id, seq
LIMIT {limit:UInt32}`

// VitalBucketsSQL returns min, average, max and count per step from the
// per-minute rollup. Buckets start at multiples of the step since the
// Unix epoch; the first is the one holding from.
const VitalBucketsSQL = `SELECT kind, toDateTime(toStartOfInterval(minute, INTERVAL {step:UInt32} SECOND), 'UTC') AS bucket,
  min(min_value) AS min, avgMerge(avg_value) AS avg, max(max_value) AS max, sum(samples) AS samples
FROM vitals_1m
WHERE patient_id = {patient:String}
  AND ({kind:String} = '' OR kind = {kind:String})
  AND minute >= toStartOfInterval({from:DateTime64(3, 'UTC')}, INTERVAL {step:UInt32} SECOND)
  AND minute < {to:DateTime64(3, 'UTC')}
GROUP BY kind, bucket
ORDER BY kind, bucket
LIMIT {limit:UInt32}`

// AlertsSQL returns a patient's alert events, oldest first.
const AlertsSQL = `SELECT alert_id, patient_id, condition, priority, state, ts, alert_limit, message, score, components,
  acked_by, ward, kind, value, unit, reading_ts, device_id, seq, updated, escalation_level, notify, silenced, bed
FROM alerts FINAL
WHERE patient_id = {patient:String}
  AND ts >= {from:DateTime64(3, 'UTC')} AND ts < {to:DateTime64(3, 'UTC')}
ORDER BY ts, alert_id, state
LIMIT {limit:UInt32}`

// RebuildRollupDaySQL refills one day of vitals_1m from the deduplicated
// readings, after `ALTER TABLE vitals_1m DROP PARTITION {day}` emptied
// it: a replay whose batches were cut at other offsets passes the
// deduplication tokens and counts its readings in the rollup a second
// time (docs/analysts.md).
const RebuildRollupDaySQL = `INSERT INTO vitals_1m
SELECT patient_id, kind, toStartOfMinute(ts) AS minute,
  min(value) AS min_value, max(value) AS max_value, avgState(value) AS avg_value, count() AS samples
FROM vitals FINAL
WHERE toDate(ts) = {day:Date}
GROUP BY patient_id, kind, minute`

// VitalsQuery asks for a patient's vitals from From (inclusive) to To
// (exclusive): raw readings when Step is zero, else buckets of Step.
type VitalsQuery struct {
	Patient  string
	Kind     string // empty: every kind
	From, To time.Time
	Step     time.Duration
	// Limit is the most rows the query returns.
	Limit int
}

// SQL is the query's text and its parameters.
func (q VitalsQuery) SQL() (string, map[string]string) {
	p := map[string]string{
		"patient": q.Patient, "kind": q.Kind, "from": DateTime64(q.From), "to": DateTime64(q.To),
		"limit": strconv.Itoa(q.Limit),
	}
	if q.Step == 0 {
		return RawVitalsSQL, p
	}
	p["step"] = strconv.FormatInt(int64(q.Step/time.Second), 10)
	return VitalBucketsSQL, p
}

// AlertsQuery asks for a patient's alert events from From (inclusive) to
// To (exclusive).
type AlertsQuery struct {
	Patient  string
	From, To time.Time
	Limit    int
}

// SQL is the query's text and its parameters.
func (q AlertsQuery) SQL() (string, map[string]string) {
	return AlertsSQL, map[string]string{
		"patient": q.Patient, "from": DateTime64(q.From), "to": DateTime64(q.To), "limit": strconv.Itoa(q.Limit),
	}
}

// DateTime64 formats t as a DateTime64(3, 'UTC') parameter value.
func DateTime64(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") }

// RawVital is a row of RawVitalsSQL.
type RawVital struct {
	Kind     string    `ch:"kind"`
	TS       time.Time `ch:"ts"`
	Value    float64   `ch:"value"`
	Unit     string    `ch:"unit"`
	DeviceID string    `ch:"device_id"`
	Seq      uint64    `ch:"seq"`
}

// VitalBucket is a row of VitalBucketsSQL.
type VitalBucket struct {
	Kind    string    `ch:"kind"`
	TS      time.Time `ch:"bucket"`
	Min     float64   `ch:"min"`
	Avg     float64   `ch:"avg"`
	Max     float64   `ch:"max"`
	Samples uint64    `ch:"samples"`
}

// AlertRow is a row of AlertsSQL.
type AlertRow struct {
	AlertID    string           `ch:"alert_id"`
	PatientID  string           `ch:"patient_id"`
	Condition  string           `ch:"condition"`
	Priority   string           `ch:"priority"`
	State      string           `ch:"state"`
	TS         time.Time        `ch:"ts"`
	Limit      float64          `ch:"alert_limit"`
	Message    string           `ch:"message"`
	Score      *uint8           `ch:"score"`
	Components map[string]uint8 `ch:"components"`
	AckedBy    string           `ch:"acked_by"`
	Ward       string           `ch:"ward"`
	Kind       string           `ch:"kind"`
	Value      float64          `ch:"value"`
	Unit       string           `ch:"unit"`
	ReadingTS  time.Time        `ch:"reading_ts"`
	DeviceID   string           `ch:"device_id"`
	Seq        uint64           `ch:"seq"`
	// Schema version 2.
	Updated         bool   `ch:"updated"`
	EscalationLevel uint8  `ch:"escalation_level"`
	Notify          string `ch:"notify"`
	Silenced        bool   `ch:"silenced"`
	// Schema version 4.
	Bed string `ch:"bed"`
}
