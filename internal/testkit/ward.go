package testkit

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/schemas"
)

// WardInput is 30 minutes of a ward of n patients from base: heart rate
// and SpO2 every 5 s with desaturations, critical values and heart-rate
// outages, and NEWS2 observations every 5 minutes. It is the input of the
// clinical engine's determinism tests, which need every kind of alert
// event (raised, resolved, escalated, signal lost mid-stream) from an
// input that is a function of its arguments alone. Records carry their
// arrival time (a little after the event time) as their timestamp, as
// ingest gives them, and no topic. Patients are prefix00, prefix01, …;
// patient p behaves as patient p%8 of an 8-bed ward.
func WardInput(prefix string, base time.Time, n int) []*kgo.Record {
	var recs []*kgo.Record
	seqs := make([]uint64, n)
	add := func(p int, k schemas.Kind, v float64, s int) {
		spec, _ := schemas.SpecFor(k)
		seqs[p]++
		rd := schemas.Reading{PatientID: fmt.Sprintf("%s%02d", prefix, p), DeviceID: fmt.Sprintf("%s-mon%02d", prefix, p), Kind: k, Value: v,
			Unit: spec.Unit, TS: base.Add(time.Duration(s) * time.Second), Seq: seqs[p]}
		rec, err := schemas.ReadingRecord("", &rd)
		if err != nil {
			panic(err) // a bug in this generator, not in what it tests
		}
		rec.Timestamp = rd.TS.Add(time.Duration(50+p%8*7) * time.Millisecond)
		recs = append(recs, rec)
	}
	for s := 0; s < 1800; s += 5 {
		for p := range n {
			q := p % 8
			outage := q%3 == 0 && s >= 600 && s < 660
			if !outage {
				add(p, schemas.HeartRate, 70+float64((s/5+q)%60), s)
			}
			spo2 := 97.0
			switch {
			case q%2 == 1 && s%400 >= 100 && s%400 < 140:
				spo2 = 86 // a 40 s desaturation
			case q%2 == 1 && s >= 1200 && s < 1300:
				spo2 = 87 // a 100 s one: escalates
			case q == 4 && s >= 900 && s < 970:
				spo2 = 75 // critical for 70 s
			}
			add(p, schemas.SpO2, spo2, s)
			if s%300 == 0 {
				add(p, schemas.RespRate, 14+float64(q*2), s)
				add(p, schemas.BPSystolic, 125-float64(q*5), s)
				add(p, schemas.Temperature, 37+float64(q%3)*0.8, s)
				add(p, schemas.Consciousness, float64(q/6), s)
				add(p, schemas.O2Supplement, float64(q%2), s)
			}
		}
	}
	return recs
}
