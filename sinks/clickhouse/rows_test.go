package clickhouse

import (
	"testing"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/schemas"
)

var at = time.Date(2026, 11, 22, 9, 0, 0, 123e6, time.UTC)

func TestRowsFromRecords(t *testing.T) {
	rd := schemas.Reading{PatientID: "P1", DeviceID: "D1", Kind: schemas.SpO2, Value: 86, Unit: "%", TS: at, Seq: 7}
	rec, _ := schemas.ReadingRecord("vitals.v1", &rd)
	rec.Timestamp = at.Add(40 * time.Millisecond)
	var v VitalRows
	if err := v.Add(rec); err != nil {
		t.Fatal(err)
	}
	cols := v.Columns()
	if v.Len() != 1 || len(cols) != 8 || v.Value[0] != 86 || v.Kind[0] != "spo2" || !v.ReceivedAt[0].Equal(rec.Timestamp) || v.Seq[0] != 7 {
		t.Fatalf("vital row %+v", v)
	}
	for _, bad := range []*kgo.Record{
		{Key: []byte("P1"), Value: []byte(`{"patient_id":"P1"`)},
		{Key: []byte("P2"), Value: rec.Value}, // keyed to another patient
	} {
		if err := v.Add(bad); err == nil {
			t.Errorf("poison %q accepted", bad.Value)
		}
	}
	if v.Len() != 1 {
		t.Fatalf("a refused record left a row: %d rows", v.Len())
	}

	score := 9
	a := schemas.Alert{AlertID: "a1", PatientID: "P1", Condition: "news2", Priority: schemas.High, State: schemas.Escalated, TS: at,
		Message: "NEWS2 9", Reading: rd, Score: &score, Components: map[string]int{"spo2": 3, "resp_rate": 3},
		Updated: true, EscalationLevel: 2, Notify: "rapid-response-team"}
	arec, err := schemas.AlertRecord("alerts.v1", &a)
	if err != nil {
		t.Fatal(err)
	}
	var ar AlertRows
	if err := ar.Add(arec); err != nil {
		t.Fatal(err)
	}
	if ar.Len() != 1 || len(ar.Columns()) != len(alertColumns) || *ar.Score[0] != 9 || ar.Components[0]["spo2"] != 3 || ar.Priority[0] != "high" || ar.Kind[0] != "spo2" ||
		!ar.Updated[0] || ar.EscalationLevel[0] != 2 || ar.Notify[0] != "rapid-response-team" || ar.Silenced[0] {
		t.Fatalf("alert row %+v", ar)
	}
	a.Score = nil
	arec, _ = schemas.AlertRecord("alerts.v1", &a)
	if err := ar.Add(arec); err != nil || ar.Score[1] != nil {
		t.Fatalf("alert without a score: %v %v", err, ar.Score[1])
	}
	if err := ar.Add(&kgo.Record{Value: []byte(`{"alert_id":""}`)}); err == nil {
		t.Error("an alert without id accepted")
	}
}

// BenchmarkVitalRows measures what the sink does per reading before the
// network: decode the record, build the row, append it to the batch's
// columns.
func BenchmarkVitalRows(b *testing.B) {
	var recs []*kgo.Record
	for i := range 1000 {
		rd := schemas.Reading{PatientID: "P0001", DeviceID: "P0001-monitor", Kind: schemas.HeartRate, Value: float64(60 + i%40), Unit: "/min",
			TS: at.Add(time.Duration(i) * time.Second), Seq: uint64(i)}
		rec, _ := schemas.ReadingRecord("vitals.v1", &rd)
		rec.Timestamp = rd.TS
		recs = append(recs, rec)
	}
	v := &VitalRows{}
	table := Tables(kafka.DefaultConfig().Topics)[0]
	var buf chproto.Buffer
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := v.Add(recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
		if i++; v.Len() == 50_000 {
			// A full batch goes into clickhouse-go's columns and is
			// encoded, as the batch's Send does before the network.
			block, err := nativeBlock(&table, v)
			if err != nil {
				b.Fatal(err)
			}
			if err := block.Encode(&buf, 0); err != nil {
				b.Fatal(err)
			}
			buf.Reset()
			v.Reset()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
