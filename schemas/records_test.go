package schemas

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRecordsRoundTrip(t *testing.T) {
	rd := Reading{PatientID: "P1", DeviceID: "D1", Kind: HeartRate, Value: 72, Unit: "/min", TS: now.Add(-time.Second), Seq: 3}
	rec, err := ReadingRecord("vitals.v1", &rd)
	if err != nil || rec.Topic != "vitals.v1" || string(rec.Key) != "P1" || Header(rec, HeaderSchema) != ReadingV1 {
		t.Fatalf("reading record: %+v %v", rec, err)
	}
	back, err := DecodeReading(rec)
	if err != nil || back != rd {
		t.Fatalf("reading: %+v %v", back, err)
	}
	a := Alert{AlertID: AlertID("news2", &rd), PatientID: "P1", Condition: "news2", Priority: High, State: Raised, TS: rd.TS, Reading: rd}
	arec, err := AlertRecord("alerts.v1", &a)
	if err != nil || Header(arec, HeaderSchema) != AlertV1 {
		t.Fatalf("alert record: %v", err)
	}
	if got, err := DecodeAlert(arec); err != nil || got.AlertID != a.AlertID || got.Reading != rd {
		t.Fatalf("alert: %+v %v", got, err)
	}
	ack := Ack{AlertID: a.AlertID, PatientID: "P1", By: "nurse-7", TS: now}
	krec, err := AckRecord("alerting.acks.v1", &ack)
	if err != nil || Header(krec, HeaderSchema) != AckV1 {
		t.Fatalf("ack record: %v", err)
	}
	if got, err := DecodeAck(krec); err != nil || got != ack {
		t.Fatalf("ack: %+v %v", got, err)
	}
}

func TestDecodeRefusesWhatDoesNotBelong(t *testing.T) {
	plain := &kgo.Record{Key: []byte("P1"), Value: []byte(okItem)}
	if r, err := DecodeReading(plain); err != nil || r.PatientID != "P1" || r.Value != 72 {
		t.Fatalf("a reading without the schema header (kcat) is v1: %+v %v", r, err)
	}
	cases := map[string]struct {
		rec    *kgo.Record
		decode func(*kgo.Record) error
		want   string
	}{
		"reading v2": {&kgo.Record{Key: []byte("P1"), Value: []byte(okItem), Headers: []kgo.RecordHeader{{Key: HeaderSchema, Value: []byte("vital-reading.v2")}}},
			func(r *kgo.Record) error { _, err := DecodeReading(r); return err }, "unsupported"},
		"reading invalid": {&kgo.Record{Key: []byte("P1"), Value: []byte(`{"kind":"x"}`)},
			func(r *kgo.Record) error { _, err := DecodeReading(r); return err }, "problems"},
		"reading on another key": {&kgo.Record{Key: []byte("P2"), Value: []byte(okItem)},
			func(r *kgo.Record) error { _, err := DecodeReading(r); return err }, "is not the reading's patient_id"},
		"alert v2": {&kgo.Record{Value: []byte(`{}`), Headers: []kgo.RecordHeader{{Key: HeaderSchema, Value: []byte("alert-event.v2")}}},
			func(r *kgo.Record) error { _, err := DecodeAlert(r); return err }, "unsupported"},
		"ack without header": {&kgo.Record{Key: []byte("P1"), Value: []byte(`{}`)},
			func(r *kgo.Record) error { _, err := DecodeAck(r); return err }, "unsupported"},
		"ack on another key": {&kgo.Record{Key: []byte("P2"), Headers: []kgo.RecordHeader{{Key: HeaderSchema, Value: []byte(AckV1)}},
			Value: []byte(`{"alert_id":"0123456789abcdef0123456789abcdef","patient_id":"P1","by":"n","ts":"2026-11-22T09:00:00Z"}`)},
			func(r *kgo.Record) error { _, err := DecodeAck(r); return err }, "is not the acknowledgement's patient_id"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if err := c.decode(c.rec); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
	if _, err := DecodeReading(cases["reading v2"].rec); !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("v2: %v is not ErrUnsupportedVersion", err)
	}
}

func TestDeadLetterKeepsTheRecordAndSaysWhy(t *testing.T) {
	r := &kgo.Record{Topic: "vitals.v1", Partition: 3, Offset: 41, Key: []byte("P1"), Value: []byte("{"),
		Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-x")}}}
	d := DeadLetter("vitals.v1.dlq", r, errors.New("decode reading: unexpected end"))
	if d.Topic != "vitals.v1.dlq" || string(d.Key) != "P1" || string(d.Value) != "{" {
		t.Fatalf("dead letter: %+v", d)
	}
	if Header(d, HeaderError) != "decode reading: unexpected end" || Header(d, HeaderSource) != "vitals.v1/3/41" || Header(d, "traceparent") != "00-x" {
		t.Fatalf("headers: %+v", d.Headers)
	}
}

// Whatever DecodeAck accepts is a valid acknowledgement of the record's
// key, and encodes back to the same acknowledgement.
func FuzzDecodeAck(f *testing.F) {
	f.Add("P1", `{"alert_id":"0123456789abcdef0123456789abcdef","patient_id":"P1","by":"nurse-7","ts":"2026-11-22T09:00:00Z"}`)
	f.Add("P1", `{"alert_id":"0123456789abcdef0123456789abcdef","patient_id":"P1","by":"nurse-7","ts":"2026-11-22T09:00:00Z"} x`)
	f.Add("P2", `{"alert_id":"x","patient_id":"P2","by":"","ts":"0001-01-01T00:00:00Z"}`)
	f.Fuzz(func(t *testing.T, key, value string) {
		rec := &kgo.Record{Key: []byte(key), Value: []byte(value), Headers: []kgo.RecordHeader{{Key: HeaderSchema, Value: []byte(AckV1)}}}
		a, err := DecodeAck(rec)
		if err != nil {
			return
		}
		if a.Validate() != nil || a.PatientID != key {
			t.Fatalf("accepted %+v from key %q", a, key)
		}
		back, err := AckRecord("acks", &a)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeAck(back)
		if err != nil || again != a {
			t.Fatalf("round trip: %+v %v", again, err)
		}
	})
}

// Whatever DecodeAlert accepts encodes back to the same alert event.
func FuzzDecodeAlert(f *testing.F) {
	rd := Reading{PatientID: "P1", DeviceID: "D1", Kind: SpO2, Value: 85, Unit: "%", TS: now, Seq: 9}
	score := 7
	a := Alert{AlertID: AlertID("news2", &rd), PatientID: "P1", Condition: "news2", Priority: High, State: Raised, TS: now, Reading: rd, Score: &score, Components: map[string]int{"spo2": 3}}
	seed, _ := AlertRecord("alerts", &a)
	f.Add(string(seed.Value))
	f.Add(`{"alert_id":1}`)
	f.Fuzz(func(t *testing.T, value string) {
		got, err := DecodeAlert(&kgo.Record{Value: []byte(value)})
		if err != nil {
			return
		}
		back, err := AlertRecord("alerts", &got)
		if err != nil {
			return // a value encoding/json cannot write back (NaN) was never written by MonitorMe
		}
		again, err := DecodeAlert(back)
		if err != nil || !reflect.DeepEqual(normalize(again), normalize(got)) {
			t.Fatalf("round trip of %s:\n%+v\n%+v %v", value, got, again, err)
		}
	})
}

// normalize drops what JSON cannot tell apart: time zones and monotonic
// clocks, and an empty map from a missing one.
func normalize(a Alert) Alert {
	a.TS, a.Reading.TS = a.TS.UTC(), a.Reading.TS.UTC()
	if len(a.Components) == 0 {
		a.Components = nil
	}
	return a
}

// Whatever DecodeSilence accepts is a valid silence of the record's key,
// and encodes back to the same silence.
func FuzzDecodeSilence(f *testing.F) {
	f.Add("P1", `{"patient_id":"P1","by":"nurse-7","seconds":120,"ts":"2026-11-22T09:00:00Z"}`)
	f.Add("P1", `{"patient_id":"P1","by":"nurse-7","seconds":601,"ts":"2026-11-22T09:00:00Z"}`)
	f.Add("P2", `{"patient_id":"P2","by":"","seconds":-1}`)
	f.Fuzz(func(t *testing.T, key, value string) {
		rec := &kgo.Record{Key: []byte(key), Value: []byte(value), Headers: []kgo.RecordHeader{{Key: HeaderSchema, Value: []byte(SilenceV1)}}}
		s, err := DecodeSilence(rec)
		if err != nil {
			return
		}
		if s.Validate() != nil || s.PatientID != key || s.Seconds < 0 || s.Seconds > MaxSilenceSeconds {
			t.Fatalf("accepted %+v from key %q", s, key)
		}
		back, err := SilenceRecord("acks", &s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeSilence(back)
		if err != nil || again != s {
			t.Fatalf("round trip: %+v %v", again, err)
		}
	})
}
