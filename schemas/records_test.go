package schemas

import (
	"errors"
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
