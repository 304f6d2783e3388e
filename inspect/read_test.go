package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/schemas"
)

var base = time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)

// fixture writes what a ward's topics hold: 30 readings of 6 patients a
// second apart, two committed alert events and one aborted, an
// acknowledgement, a silence, the rules loaded, and a dead letter.
func fixture(t *testing.T) (*kfake.Cluster, kafka.Config) {
	c, kc := testkit.CreateCluster(t, 4)
	cl := testkit.Client(t, c, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	ctx := testkit.Context(t)
	var recs []*kgo.Record
	for i := range 30 {
		r := schemas.Reading{PatientID: fmt.Sprintf("P%d", i%6+1), DeviceID: fmt.Sprintf("mon-%d", i%6+1), Kind: schemas.SpO2,
			Value: float64(90 + i%8), Unit: "%", TS: base.Add(time.Duration(i) * time.Second), Seq: uint64(i)}
		if i%2 == 1 {
			r.Kind, r.Unit, r.Value = schemas.HeartRate, "/min", float64(70+i)
		}
		rec, err := schemas.ReadingRecord(kc.Topics.Vitals, &r)
		if err != nil {
			t.Fatal(err)
		}
		rec.Timestamp = r.TS
		recs = append(recs, rec)
	}
	reading := schemas.Reading{PatientID: "P1", DeviceID: "mon-1", Kind: schemas.SpO2, Value: 84, Unit: "%", TS: base, Seq: 1}
	alert := func(state schemas.State, prio schemas.Priority) *kgo.Record {
		a := schemas.Alert{AlertID: strings.Repeat("a", 32), PatientID: "P1", Condition: "spo2_low", Priority: prio, State: state, TS: base, Limit: 90, Message: "SpO2 84 %", Reading: reading}
		rec, err := schemas.AlertRecord(kc.Topics.Alerts, &a)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	ack := schemas.Ack{AlertID: strings.Repeat("a", 32), PatientID: "P1", By: "nurse-7", Auth: "token", TS: base.Add(time.Minute)}
	ackRec, _ := schemas.AckRecord(kc.Topics.Acks, &ack)
	sil := schemas.Silence{PatientID: "P2", By: "nurse-7", Auth: "oidc", Seconds: 120, TS: base.Add(time.Minute)}
	silRec, _ := schemas.SilenceRecord(kc.Topics.Acks, &sil)
	rl := schemas.RulesLoaded{By: "process", Auth: "sasl", Source: "built-in", SHA256: strings.Repeat("b", 64), Host: "process-0", TS: base}
	rlRec, _ := schemas.RulesLoadedRecord(kc.Topics.Acks, &rl)
	dead := schemas.DeadLetter(kc.Topics.VitalsDLQ, &kgo.Record{Topic: kc.Topics.Vitals, Partition: 2, Offset: 9, Key: []byte("P9"), Value: []byte(`{"patient_id":"P9","kind":"pulse"}`)},
		errors.New("kind: \"pulse\" is not a vital"))
	recs = append(recs, ackRec, silRec, rlRec, dead)
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Alert events in transactions: two committed, one aborted.
	tx := testkit.Client(t, c, kgo.TransactionalID("inspect-test"), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	for i, commit := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort, kgo.TryCommit} {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		state := []schemas.State{schemas.Raised, schemas.Escalated, schemas.Acknowledged}[i]
		if err := tx.ProduceSync(ctx, alert(state, schemas.High)).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := tx.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	return c, kc
}

func read(t *testing.T, kc kafka.Config, topic, offset string, mod ...func(*Options)) ([]Event, error) {
	t.Helper()
	r, err := ParseRange(offset, base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Topic: TopicOf(kc.Topics, topic), Range: r, Idle: 500 * time.Millisecond}
	for _, m := range mod {
		m(&o)
	}
	var evs []Event
	err = Read(testkit.Context(t), kc, o, func(ev Event) error { evs = append(evs, ev); return nil })
	return evs, err
}

func TestTailRangesAndFilters(t *testing.T) {
	_, kc := fixture(t)
	must := func(evs []Event, err error) []Event {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	all := must(read(t, kc, "vitals", "start"))
	if len(all) != 30 || all[0].Type != "reading" || all[0].Reading == nil {
		t.Fatalf("vitals from the start: %d events, first %+v", len(all), all[0])
	}
	if evs := must(read(t, kc, "vitals", "end")); len(evs) != 0 {
		t.Errorf("from the end without -f: %d events", len(evs))
	}
	perPart := map[int32]int{}
	for _, ev := range all {
		perPart[ev.Partition]++
	}
	if evs := must(read(t, kc, "vitals", "-2")); len(evs) != 2*len(perPart) {
		t.Errorf("-2: %d events, want 2 from each of %d partitions", len(evs), len(perPart))
	}
	p3 := must(read(t, kc, "vitals", "start", func(o *Options) { o.Filter.Patient = "P3" }))
	for _, ev := range p3 {
		if ev.Reading.PatientID != "P3" || ev.Partition != p3[0].Partition {
			t.Fatalf("--patient P3 gave %+v", ev)
		}
	}
	if len(p3) != 5 {
		t.Errorf("--patient P3: %d readings, want 5", len(p3))
	}
	// Seconds 10 to 19 of the data, by record timestamp.
	window := must(read(t, kc, "vitals", "@2026-12-01T02:00:10Z:2026-12-01T02:00:20Z"))
	if len(window) != 10 {
		t.Errorf("a 10 s window: %d readings, want 10", len(window))
	}
	for _, ev := range window {
		if ev.Timestamp.Before(base.Add(10*time.Second)) || !ev.Timestamp.Before(base.Add(20*time.Second)) {
			t.Errorf("outside the window: %v", ev.Timestamp)
		}
	}
	if evs := must(read(t, kc, "vitals", "start", func(o *Options) { o.Filter.Kind = "heart_rate" })); len(evs) != 15 {
		t.Errorf("--kind heart_rate: %d, want 15", len(evs))
	}
	if evs := must(read(t, kc, "vitals", "start", func(o *Options) { o.Limit = 7 })); len(evs) != 7 {
		t.Errorf("-n 7: %d", len(evs))
	}
	// read_committed hides the aborted alert event; read_uncommitted shows it.
	committed := must(read(t, kc, "alerts", "start"))
	uncommitted := must(read(t, kc, "alerts", "start", func(o *Options) { o.Uncommitted = true }))
	if len(committed) != 2 || len(uncommitted) != 3 {
		t.Errorf("alerts: %d read_committed (want 2), %d read_uncommitted (want 3)", len(committed), len(uncommitted))
	}
	if evs := must(read(t, kc, "alerts", "start", func(o *Options) { o.Filter.State = "acknowledged" })); len(evs) != 1 {
		t.Errorf("--state acknowledged: %d", len(evs))
	}
	acks := must(read(t, kc, "acks", "start"))
	types := map[string]int{}
	for _, ev := range acks {
		types[ev.Type]++
	}
	if types["ack"] != 1 || types["silence"] != 1 || types["rules-loaded"] != 1 {
		t.Errorf("acks topic: %v", types)
	}
	dlq := must(read(t, kc, "dlq", "start"))
	if len(dlq) != 1 || dlq[0].Type != "dead-letter" || !strings.Contains(dlq[0].Error, "pulse") || dlq[0].Source != kc.Topics.Vitals+"/2/9" {
		t.Errorf("dead letters: %+v", dlq)
	}
}

// A range older than the topic holds is read from what it holds, and
// said so.
func TestTailSaysWhenRetentionDeletedTheStart(t *testing.T) {
	c, kc := fixture(t)
	adm := kadm.NewClient(testkit.Client(t, c))
	ends, err := adm.ListEndOffsets(testkit.Context(t), kc.Topics.Vitals)
	if err != nil {
		t.Fatal(err)
	}
	del := kadm.Offsets{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 1 {
			del.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: 1})
		}
	})
	if _, err := adm.DeleteRecords(testkit.Context(t), del); err != nil {
		t.Fatal(err)
	}
	evs, err := read(t, kc, "vitals", "0")
	var expired *ExpiredError
	if !errors.As(err, &expired) || len(evs) == 0 || len(evs) >= 30 {
		t.Fatalf("offset 0 after deleting the first record of each partition: %d events, %v", len(evs), err)
	}
}

// -f keeps reading: a record produced after the start arrives.
func TestTailFollows(t *testing.T) {
	c, kc := fixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan Event, 1)
	done := make(chan error, 1)
	// From a time, not "end": the reader's start does not race the
	// produce below (every fixture record is older).
	from := time.Now().UTC()
	go func() {
		done <- Read(ctx, kc, Options{Topic: kc.Topics.Vitals, Range: Range{From: Bound{Kind: AtTime, Time: from}}, Follow: true}, func(ev Event) error {
			got <- ev
			return errors.New("seen")
		})
	}()
	r := schemas.Reading{PatientID: "P42", DeviceID: "mon-42", Kind: schemas.SpO2, Value: 80, Unit: "%", TS: from, Seq: 1}
	rec, _ := schemas.ReadingRecord(kc.Topics.Vitals, &r)
	rec.Timestamp = from.Add(time.Millisecond)
	if err := testkit.Client(t, c).ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if ev.Reading == nil || ev.Reading.PatientID != "P42" {
			t.Fatalf("followed: %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("the new record never arrived")
	}
	<-done
}

func TestPrinterFormats(t *testing.T) {
	ev := Event{Topic: "alerts.v1", Partition: 3, Offset: 17, Timestamp: base, Key: "P1", Type: "alert",
		Alert: &schemas.Alert{AlertID: "id1", PatientID: "P1", Condition: "spo2_critical", Priority: schemas.High, State: schemas.Raised, Message: "SpO2 84 %"}}
	for _, tc := range []struct {
		format string
		color  bool
		want   []string
	}{
		{"table", false, []string{"P/OFFSET", "3/17", "alert", "spo2_critical raised high id=id1"}},
		{"table", true, []string{"\x1b[1;31m"}},
		{"jsonl", false, []string{`"offset":17`, `"condition":"spo2_critical"`}},
		{"{{.Partition}}/{{.Offset}} {{.Alert.Condition}}", false, []string{"3/17 spo2_critical"}},
	} {
		var b bytes.Buffer
		p, err := NewPrinter(&b, tc.format, tc.color)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Print(ev); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: %q lacks %q", tc.format, b.String(), w)
			}
		}
		if tc.format == "jsonl" && !json.Valid(bytes.TrimSpace(b.Bytes())) {
			t.Errorf("jsonl is not JSON: %s", b.String())
		}
	}
	if _, err := NewPrinter(&bytes.Buffer{}, "yaml", false); err == nil {
		t.Error("format yaml accepted")
	}
}

// A topic the cluster does not have is named, not read as empty.
func TestTailUnknownTopic(t *testing.T) {
	_, kc := testkit.CreateCluster(t, 2)
	_, err := read(t, kc, "vitalz", "start")
	if !errors.Is(err, ErrUnknownTopic) || !strings.Contains(err.Error(), "vitalz") {
		t.Fatalf("an unknown topic: %v", err)
	}
}
