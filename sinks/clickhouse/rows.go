package clickhouse

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/schemas"
)

// Rows is one table's batch, held by column: the clickhouse-go batch
// takes a column at a time, and appending a row is then a handful of
// slice appends, no interface boxing per value.
type Rows interface {
	// Add decodes r and appends its row; an error means r is poison.
	Add(r *kgo.Record) error
	Len() int
	// Columns are the batch's columns in the table's column order.
	Columns() []any
	// Reset empties the rows for the partition's next batch. Vitals keep
	// their columns' capacity: growing eight columns from nothing for
	// every batch halved the rows built per second.
	Reset()
}

// Table is a destination: the topic that feeds it, its rows, and its
// columns as schemas/clickhouse declares them, in the order of
// Rows.Columns. `make test-sql` checks the declaration against the table
// the DDL creates, so a column added to one and not the other fails there,
// not in production.
type Table struct {
	Name    string
	Topic   string
	NewRows func() Rows
	Columns []Column
}

// Column is a column's name and ClickHouse type.
type Column struct{ Name, Type string }

// ColumnNames is the column list of the table's INSERT.
func (t *Table) ColumnNames() string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

const (
	dt64     = "DateTime64(3, 'UTC')"
	lowCard  = "LowCardinality(String)"
	str      = "String"
	float    = "Float64"
	unsigned = "UInt64"
)

var (
	vitalColumns = []Column{{"patient_id", str}, {"kind", lowCard}, {"ts", dt64}, {"device_id", lowCard}, {"seq", unsigned},
		{"value", float}, {"unit", lowCard}, {"received_at", dt64}}
	alertColumns = []Column{{"patient_id", str}, {"condition", lowCard}, {"ts", dt64}, {"alert_id", str}, {"state", lowCard},
		{"priority", lowCard}, {"alert_limit", float}, {"message", str}, {"score", "Nullable(UInt8)"},
		{"components", "Map(LowCardinality(String), UInt8)"}, {"acked_by", str}, {"ward", lowCard}, {"kind", lowCard}, {"value", float},
		{"unit", lowCard}, {"reading_ts", dt64}, {"device_id", lowCard}, {"seq", unsigned}, {"received_at", dt64},
		{"updated", "Bool"}, {"escalation_level", "UInt8"}, {"notify", lowCard}, {"silenced", "Bool"}, {"bed", lowCard}}
	auditColumns = []Column{{"ts", dt64}, {"action", lowCard}, {"subject", str}, {"auth", lowCard}, {"patient_id", str}, {"alert_id", str},
		{"seconds", "UInt16"}, {"detail", str}, {"received_at", dt64}}
)

// VitalRows are rows of the vitals table.
type VitalRows struct {
	PatientID, Kind []string
	TS              []time.Time
	DeviceID        []string
	Seq             []uint64
	Value           []float64
	Unit            []string
	ReceivedAt      []time.Time
}

func (v *VitalRows) Add(r *kgo.Record) error {
	rd, err := schemas.DecodeReading(r)
	if err != nil {
		return err
	}
	v.AddReading(&rd, r.Timestamp)
	return nil
}

// AddReading appends a decoded reading that arrived at received.
func (v *VitalRows) AddReading(rd *schemas.Reading, received time.Time) {
	v.PatientID = append(v.PatientID, rd.PatientID)
	v.Kind = append(v.Kind, string(rd.Kind))
	v.TS = append(v.TS, rd.TS)
	v.DeviceID = append(v.DeviceID, rd.DeviceID)
	v.Seq = append(v.Seq, rd.Seq)
	v.Value = append(v.Value, rd.Value)
	v.Unit = append(v.Unit, rd.Unit)
	v.ReceivedAt = append(v.ReceivedAt, received.UTC())
}

func (v *VitalRows) Len() int { return len(v.PatientID) }

func (v *VitalRows) Columns() []any {
	return []any{v.PatientID, v.Kind, v.TS, v.DeviceID, v.Seq, v.Value, v.Unit, v.ReceivedAt}
}

func (v *VitalRows) Reset() {
	*v = VitalRows{PatientID: v.PatientID[:0], Kind: v.Kind[:0], TS: v.TS[:0], DeviceID: v.DeviceID[:0],
		Seq: v.Seq[:0], Value: v.Value[:0], Unit: v.Unit[:0], ReceivedAt: v.ReceivedAt[:0]}
}

// AlertRows are rows of the alerts table.
type AlertRows struct {
	PatientID, Condition []string
	TS                   []time.Time
	AlertID, State       []string
	Priority             []string
	Limit                []float64
	Message              []string
	Score                []*uint8
	Components           []map[string]uint8
	AckedBy              []string
	Ward                 []string
	Kind                 []string
	Value                []float64
	Unit                 []string
	ReadingTS            []time.Time
	DeviceID             []string
	Seq                  []uint64
	ReceivedAt           []time.Time
	Updated              []bool
	EscalationLevel      []uint8
	Notify               []string
	Silenced             []bool
	Bed                  []string // schema version 4
}

func (a *AlertRows) Add(r *kgo.Record) error {
	al, err := schemas.DecodeAlert(r)
	if err != nil {
		return err
	}
	if al.AlertID == "" || al.PatientID == "" || al.TS.IsZero() {
		return fmt.Errorf("alert event without alert_id, patient_id or ts")
	}
	var score *uint8
	if al.Score != nil {
		if *al.Score < 0 || *al.Score > 255 {
			return fmt.Errorf("alert score %d out of range", *al.Score)
		}
		s := uint8(*al.Score)
		score = &s
	}
	comps := make(map[string]uint8, len(al.Components))
	for k, v := range al.Components {
		if v < 0 || v > 255 {
			return fmt.Errorf("alert component %s: %d out of range", k, v)
		}
		comps[k] = uint8(v)
	}
	a.PatientID = append(a.PatientID, al.PatientID)
	a.Condition = append(a.Condition, al.Condition)
	a.TS = append(a.TS, al.TS.UTC())
	a.AlertID = append(a.AlertID, al.AlertID)
	a.State = append(a.State, string(al.State))
	a.Priority = append(a.Priority, string(al.Priority))
	a.Limit = append(a.Limit, al.Limit)
	a.Message = append(a.Message, al.Message)
	a.Score = append(a.Score, score)
	a.Components = append(a.Components, comps)
	a.AckedBy = append(a.AckedBy, al.AckedBy)
	a.Ward = append(a.Ward, al.Ward)
	a.Kind = append(a.Kind, string(al.Reading.Kind))
	a.Value = append(a.Value, al.Reading.Value)
	a.Unit = append(a.Unit, al.Reading.Unit)
	a.ReadingTS = append(a.ReadingTS, al.Reading.TS.UTC())
	a.DeviceID = append(a.DeviceID, al.Reading.DeviceID)
	a.Seq = append(a.Seq, al.Reading.Seq)
	a.ReceivedAt = append(a.ReceivedAt, r.Timestamp.UTC())
	a.Updated = append(a.Updated, al.Updated)
	a.EscalationLevel = append(a.EscalationLevel, uint8(min(max(al.EscalationLevel, 0), 255)))
	a.Notify = append(a.Notify, al.Notify)
	a.Silenced = append(a.Silenced, al.Silenced)
	a.Bed = append(a.Bed, al.Bed)
	return nil
}

func (a *AlertRows) Len() int { return len(a.PatientID) }

func (a *AlertRows) Columns() []any {
	return []any{a.PatientID, a.Condition, a.TS, a.AlertID, a.State, a.Priority, a.Limit, a.Message, a.Score, a.Components,
		a.AckedBy, a.Ward, a.Kind, a.Value, a.Unit, a.ReadingTS, a.DeviceID, a.Seq, a.ReceivedAt,
		a.Updated, a.EscalationLevel, a.Notify, a.Silenced, a.Bed}
}

func (a *AlertRows) Reset() { *a = AlertRows{} }

// Audit actions, the audit table's action column.
const (
	ActionAcknowledge = "acknowledge"
	ActionSilence     = "silence"
	ActionRules       = "rules-loaded"
)

// AuditRows are rows of the audit table: every record of the acks topic,
// each an action and who did it. Acknowledgements reach the
// acknowledgements table from it (a materialized view).
type AuditRows struct {
	TS                 []time.Time
	Action, Subject    []string
	Auth               []string
	PatientID, AlertID []string
	Seconds            []uint16
	Detail             []string
	ReceivedAt         []time.Time
}

func (k *AuditRows) Add(r *kgo.Record) error {
	var (
		ts                                            time.Time
		action, subject, auth, patient, alert, detail string
		seconds                                       uint16
	)
	rec, err := schemas.DecodeAcksRecord(r)
	if err != nil {
		return err
	}
	switch {
	case rec.Silence != nil:
		sil := rec.Silence
		ts, action, subject, auth, patient, seconds = sil.TS, ActionSilence, sil.By, sil.Auth, sil.PatientID, uint16(sil.Seconds)
	case rec.Rules != nil:
		rl := rec.Rules
		b, _ := json.Marshal(map[string]string{"source": rl.Source, "sha256": rl.SHA256, "rules": rl.Rules, "host": rl.Host})
		ts, action, subject, auth, detail = rl.TS, ActionRules, rl.By, rl.Auth, string(b)
	default:
		ack := rec.Ack
		ts, action, subject, auth, patient, alert = ack.TS, ActionAcknowledge, ack.By, ack.Auth, ack.PatientID, ack.AlertID
	}
	if auth == "" {
		auth = "unknown" // written before the API authenticated
	}
	k.TS = append(k.TS, ts.UTC())
	k.Action = append(k.Action, action)
	k.Subject = append(k.Subject, subject)
	k.Auth = append(k.Auth, auth)
	k.PatientID = append(k.PatientID, patient)
	k.AlertID = append(k.AlertID, alert)
	k.Seconds = append(k.Seconds, seconds)
	k.Detail = append(k.Detail, detail)
	k.ReceivedAt = append(k.ReceivedAt, r.Timestamp.UTC())
	return nil
}

func (k *AuditRows) Len() int { return len(k.TS) }

func (k *AuditRows) Columns() []any {
	return []any{k.TS, k.Action, k.Subject, k.Auth, k.PatientID, k.AlertID, k.Seconds, k.Detail, k.ReceivedAt}
}

func (k *AuditRows) Reset() { *k = AuditRows{} }
