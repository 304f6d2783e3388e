package testkit

import (
	"fmt"
	"maps"
	"slices"
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

// Unruly returns recs as real gateways deliver them: arrival times
// jittered by up to ±400 ms, so that in offset order a record can arrive
// before the one ahead of it (two ingest instances, two requests of one);
// every 40th record sent again a few records later (a retried batch: same
// identity, later arrival); every 60th reading also sent late with a new
// sequence number and an event time 6 hours back (a buffered reading);
// every 25th record delivered after the next few records (out of order
// within the reorder window); and every patient's heart rate missing one
// reading in 100 seconds, so that the next one arrives right at the
// signal-lost deadline, where the jitter decides which side (50 s into
// every 100 s from the first record). The same recs give the same output,
// whatever their base time.
func Unruly(recs []*kgo.Record) []*kgo.Record {
	jitter := func(i int) time.Duration { return time.Duration((i*7919)%801-400) * time.Millisecond }
	var out []*kgo.Record
	var held []*kgo.Record
	var origin time.Time
	copyOf := func(r *kgo.Record) *kgo.Record {
		c := *r
		c.Headers = append([]kgo.RecordHeader(nil), r.Headers...)
		return &c
	}
	for i, r := range recs {
		rd, err := schemas.DecodeReading(&kgo.Record{Key: r.Key, Value: r.Value, Headers: r.Headers})
		if err != nil {
			panic(err)
		}
		if i == 0 {
			origin = rd.TS
		}
		// Relative to the first reading, so that every base time drops
		// the same readings: on the Unix second, four bases in five
		// dropped none, and the input depended on when the test ran.
		if rd.Kind == schemas.HeartRate && int64(rd.TS.Sub(origin)/time.Second)%100 == 50 {
			continue
		}
		c := copyOf(r)
		c.Timestamp = r.Timestamp.Add(jitter(i))
		if i%25 == 24 {
			held = append(held, c)
		} else {
			out = append(out, c)
		}
		if len(held) > 0 && i%25 == 4 {
			// Delivered after the records that came since: later
			// arrival, older event time.
			for _, h := range held {
				h.Timestamp = c.Timestamp.Add(time.Millisecond)
				out = append(out, h)
			}
			held = held[:0]
		}
		if i%40 == 39 && len(out) > 5 {
			dup := copyOf(out[len(out)-5])
			dup.Timestamp = c.Timestamp.Add(2 * time.Millisecond)
			out = append(out, dup)
		}
		if i%60 == 59 {
			old := rd
			old.TS = rd.TS.Add(-6 * time.Hour)
			old.DeviceID += "-buffered" // a gateway's buffer, its own identities
			if old.Kind == schemas.SpO2 {
				old.Value = 75 // would be critical, were it live
			}
			lr, err := schemas.ReadingRecord(r.Topic, &old)
			if err != nil {
				panic(err)
			}
			lr.Timestamp = c.Timestamp.Add(3 * time.Millisecond)
			out = append(out, lr)
		}
	}
	return append(out, held...)
}

// AlertsByPatient groups alert records by patient, in order, as their
// encoded values, for comparing two runs over the same input. An alarm
// left open at the end of the input (inputEnd) keeps escalating, tier
// after tier, by each run's wall clock: the events past inputEnd are
// compared as a set of id, condition and state, after the others; an
// escalation there is left out of the set, for whether a run reaches the
// next tier before it is stopped depends on how long it ran (a run slowed
// by kills escalated an open NEWS2 alarm once more than the reference, in
// a fresh CI run). A record written twice there is not hidden: each value
// is counted, and one seen more than once is listed as such, which no
// correct run has. Before (issue 27), duplicates of the last signal-lost
// and escalation events vanished into the set. Transaction fences
// (IsFence) are skipped.
func AlertsByPatient(recs []*kgo.Record, inputEnd time.Time) map[string][]string {
	out := map[string][]string{}
	after := map[string]map[string]bool{}
	written := map[string]map[string]int{}
	for _, r := range recs {
		if IsFence(r) {
			continue
		}
		if a, err := schemas.DecodeAlert(r); err == nil && a.TS.After(inputEnd) {
			if after[a.PatientID] == nil {
				after[a.PatientID], written[a.PatientID] = map[string]bool{}, map[string]int{}
			}
			if a.State != schemas.Escalated || a.Updated {
				after[a.PatientID][a.AlertID+" "+a.Condition+" "+string(a.State)+" after catching up"] = true
			}
			written[a.PatientID][string(r.Value)]++
			continue
		}
		out[string(r.Key)] = append(out[string(r.Key)], string(r.Value))
	}
	for p, set := range after {
		out[p] = append(out[p], slices.Sorted(maps.Keys(set))...)
		for _, v := range slices.Sorted(maps.Keys(written[p])) {
			if n := written[p][v]; n > 1 {
				out[p] = append(out[p], fmt.Sprintf("written %d times: %s", n, v))
			}
		}
	}
	return out
}
