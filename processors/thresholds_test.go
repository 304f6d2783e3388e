package processors

import (
	"encoding/json"

	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/clinical"
	"github.com/monitorme/monitorme/schemas"
)

// BenchmarkHandle is the processor's per-record CPU: decode, check,
// evaluate, encode the alert (one reading in ten alerts, as in bench).
func BenchmarkHandle(b *testing.B) {
	h := &Thresholds{Limits: clinical.DefaultLimits, AlertsTopic: "alerts.v1"}
	var recs []*kgo.Record
	for i := range 10 {
		r := schemas.Reading{PatientID: "P0001", DeviceID: "D0001", Kind: schemas.HeartRate, Value: 80, Unit: "/min", TS: time.Now().UTC(), Seq: uint64(i)}
		if i == 0 {
			r.Value = 130
		}
		v, _ := json.Marshal(r)
		recs = append(recs, &kgo.Record{Key: []byte(r.PatientID), Value: v})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := h.Handle(recs[i%10]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
