package processors

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/clinical"
	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/schemas"
)

func testClinicalConfig() clinical.Config {
	return clinical.Config{Default: clinical.RuleSet{Conditions: []clinical.ConditionRule{timerConfig().Default.Conditions[0]}}, NEWS2MaxAge: time.Hour, NEWS2ResolveAfter: time.Minute}
}

// topics are the default topic names; unit tests feed records by hand.
var topics = kafka.DefaultConfig().Topics

func newClinicalProcessor(brokers []string) *Processor {
	p := newTestProcessor(brokers)
	p.h = NewClinical(testClinicalConfig(), p.kcfg.Topics, kgo.SeedBrokers(brokers...))
	return p
}

// desat returns SpO2 readings of 85 % for patient P01, one a second, for
// seconds [from, to).
func desat(from, to int) []schemas.Reading {
	var rs []schemas.Reading
	for s := from; s < to; s++ {
		rs = append(rs, schemas.Reading{PatientID: "P01", DeviceID: "ox1", Kind: schemas.SpO2, Value: 85, Unit: "%", TS: t0.Add(time.Duration(s) * time.Second), Seq: uint64(s)})
	}
	return rs
}

func produceReadings(t *testing.T, seeds []string, topic string, rs []schemas.Reading) {
	t.Helper()
	cl := testkit.SeedClient(t, seeds, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	for i := range rs {
		rec, _ := schemas.ReadingRecord(topic, &rs[i])
		if err := cl.ProduceSync(testkit.Context(t), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// A desaturation that began before a handover (a clean stop, then a crash
// mid-transaction) raises exactly one alert, at the reading 15 s after the
// first low one: the state before the handover came back from the
// changelog, and the crashed transaction's state did not.
func TestClinicalStateSurvivesRestartAndCrash(t *testing.T) {
	c, kc := testCluster(t)
	seeds := c.ListenAddrs()

	// Processor A sees seconds 0–9 and stops cleanly: no alert yet.
	produceReadings(t, seeds, kc.Topics.Vitals, desat(0, 10))
	stop := runProcessor(t, newClinicalProcessor(seeds))
	waitCaughtUp(t, c, kc, 30*time.Second)
	stop()
	if n := len(testkit.ReadAll(t, c, kc.Topics.Alerts, kgo.ReadCommitted())); n != 0 {
		t.Fatalf("%d alerts after 10 s of desaturation, want 0", n)
	}

	// Processor B, a child process, takes seconds 10–20 into a
	// transaction and is SIGKILLed before committing it.
	produceReadings(t, seeds, kc.Topics.Vitals, desat(10, 21))
	child := startChildInTransaction(t, seeds, "MONITORME_TEST_HANDLER=clinical")
	_ = child.Process.Kill()
	_ = child.Wait()

	// Processor C restores A's state and finishes the job.
	stop = runProcessor(t, newClinicalProcessor(seeds))
	waitCaughtUp(t, c, kc, 60*time.Second)
	stop()
	alerts := testkit.ReadAll(t, c, kc.Topics.Alerts, kgo.ReadCommitted())
	if len(alerts) != 1 {
		t.Fatalf("%d alerts, want exactly 1", len(alerts))
	}
	a, _ := schemas.DecodeAlert(alerts[0])
	at15 := desat(15, 16)[0]
	if a.AlertID != schemas.AlertID("spo2_low", &at15) || a.State != schemas.Raised {
		t.Fatalf("alert %+v, want spo2_low raised at the 15 s reading", a)
	}
	if all := testkit.ReadAll(t, c, kc.Topics.Alerts, kgo.ReadUncommitted()); len(all) < 2 {
		t.Fatalf("read_uncommitted sees %d alerts: the child died before producing its own", len(all))
	}
}

// The same input processed twice, in different batch sizes, yields
// byte-identical alert events, ids included.
func TestClinicalIsDeterministic(t *testing.T) {
	var rs []schemas.Reading
	kinds := []schemas.Kind{schemas.HeartRate, schemas.SpO2, schemas.RespRate, schemas.Temperature, schemas.BPSystolic, schemas.Consciousness, schemas.O2Supplement}
	for s := range 600 {
		k := kinds[s%len(kinds)]
		spec, _ := schemas.SpecFor(k)
		v := map[schemas.Kind]float64{schemas.HeartRate: 70 + float64(s%90), schemas.SpO2: 99 - float64(s%20), schemas.RespRate: 10 + float64(s%20),
			schemas.Temperature: 36 + float64(s%5)*0.8, schemas.BPSystolic: 85 + float64(s%60), schemas.Consciousness: float64(s / 97 % 2), schemas.O2Supplement: float64(s / 131 % 2)}[k]
		rs = append(rs, schemas.Reading{PatientID: "P01", DeviceID: "d", Kind: k, Value: v, Unit: spec.Unit, TS: t0.Add(time.Duration(s) * time.Second), Seq: uint64(s)})
	}
	run := func(batch int) []string {
		h := NewClinical(clinical.DefaultConfig(), topics)
		var out []string
		for i := 0; i < len(rs); i += batch {
			h.Begin()
			for j := i; j < min(i+batch, len(rs)); j++ {
				rec, _ := schemas.ReadingRecord("vitals", &rs[j])
				recs, err := h.Handle(rec)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					out = append(out, string(r.Value))
				}
			}
			if _, err := h.Flush(); err != nil {
				t.Fatal(err)
			}
			h.Committed()
		}
		return out
	}
	a, b := run(1), run(37)
	if len(a) == 0 {
		t.Fatal("the input raised no alert; the test proves nothing")
	}
	if len(a) != len(b) {
		t.Fatalf("%d vs %d alert events", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("event %d differs:\n%s\n%s", i, a[i], b[i])
		}
	}
}

// An aborted transaction's state is dropped: processing its records again
// does not count them twice.
func TestClinicalAbortDropsState(t *testing.T) {
	h := NewClinical(testClinicalConfig(), topics)
	feed := func(rs []schemas.Reading) (n int) {
		h.Begin()
		for i := range rs {
			rec, _ := schemas.ReadingRecord("vitals", &rs[i])
			recs, _ := h.Handle(rec)
			n += len(recs)
		}
		return n
	}
	feed(desat(0, 10))
	h.Committed()
	if n := feed(desat(20, 40)); n != 1 { // would alert: 0..39 is 39 s low
		t.Fatalf("%d alerts", n)
	}
	h.Aborted()
	// The committed state still says "low since 0 s, no alert open", so
	// the redelivered records raise the alert again, once; had the
	// aborted state stuck, the alert would count as open and never reach
	// a reader.
	if n := feed(desat(20, 40)); n != 1 {
		t.Fatalf("after abort: %d alerts, want the alert raised again once", n)
	}
}

func BenchmarkClinicalHandle(b *testing.B) {
	h := NewClinical(clinical.DefaultConfig(), topics)
	var recs []*kgo.Record
	for s := range 100 {
		rd := schemas.Reading{PatientID: "P01", DeviceID: "d", Kind: schemas.HeartRate, Value: 80, Unit: "/min", TS: t0.Add(time.Duration(s) * time.Second), Seq: uint64(s)}
		rec, _ := schemas.ReadingRecord("vitals", &rd)
		recs = append(recs, rec)
	}
	h.Begin()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := h.Handle(recs[i%100]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkClinicalTransaction is the clinical row of monitorme bench
// without the broker: 1000 patients' heart rates (one in ten above the
// limit) in transactions of 30,000 records, each ending with the changelog
// snapshots of the patients it touched.
func BenchmarkClinicalTransaction(b *testing.B) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	const txn = 30000
	recs := make([]*kgo.Record, 0, 4*txn)
	for seq := range uint64(4 * txn) {
		v := 80.0
		if seq%10 == 0 {
			v = 130
		}
		rd := schemas.Reading{PatientID: fmt.Sprintf("P%04d", seq%1000), DeviceID: fmt.Sprintf("D%04d", seq%1000), Kind: schemas.HeartRate,
			Value: v, Unit: "/min", TS: at, Seq: seq + 1}
		rec, _ := schemas.ReadingRecord("vitals.v1", &rd)
		rec.Timestamp = at.Add(time.Duration(seq) * time.Microsecond)
		recs = append(recs, rec)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		h := NewClinical(clinical.DefaultConfig(), topics)
		for i := 0; i < len(recs); i += txn {
			h.Begin()
			for _, r := range recs[i : i+txn] {
				if _, err := h.Handle(r); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := h.Flush(); err != nil {
				b.Fatal(err)
			}
			h.Committed()
		}
		n += len(recs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// A placement moves a patient the rules file does not name to the rules
// of the new ward from that record on (the alerts carry the ward); a
// discharge returns the patient to the defaults; the placement survives
// the changelog.
func TestClinicalFollowsATransfer(t *testing.T) {
	cfg, err := clinical.LoadRules("r.yaml", strings.NewReader("wards:\n  icu:\n    conditions:\n      temperature_high: {limit: 38}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := newOnePatient(t, NewClinical(cfg, topics))
	h, temp, place := p.h, p.temp, p.place
	if got := temp(38.5); len(got) != 0 {
		t.Fatalf("38.5 °C under the defaults (limit 39) raised %v", got)
	}
	place(schemas.Admit, "icu", "3")
	got := temp(38.5)
	if len(got) != 1 || got[0].Condition != "temperature_high" || got[0].Ward != "icu" || got[0].State != schemas.Raised {
		t.Fatalf("38.5 °C in the icu (limit 38): %+v", got)
	}
	recs, err := h.Flush()
	if err != nil || len(recs) != 0 {
		t.Fatalf("flush after commit: %d, %v", len(recs), err)
	}
	var st clinical.PatientState
	if snap := h.store.Peek("P1"); snap == nil || snap.Ward != "icu" {
		t.Fatalf("the state holds no ward: %+v", snap)
	} else if b, err := json.Marshal(snap); err != nil || json.Unmarshal(b, &st) != nil || st.Ward != "icu" {
		t.Fatalf("the snapshot loses the ward: %s", b)
	}
	place(schemas.Discharge, "", "")
	if got := temp(37.0); len(got) != 1 || got[0].State != schemas.Resolved || got[0].Ward != "" {
		t.Fatalf("37 °C after the discharge: %+v", got)
	}
	if got := temp(38.5); len(got) != 0 {
		t.Fatalf("38.5 °C after the discharge (defaults again) raised %v", got)
	}
}

// Alert events say where the patient is from the placements, not only
// from the rules file: a ward the rules file does not name (the
// simulator's, an ADT feed's) is on every event, with the bed; a transfer
// moves each open alarm to the new ward and bed with an "updated" event,
// at once and with no further reading; a discharge moves it to no ward.
// Before, the alarms of a ward the rules file did not name had ward "",
// and a transfer left them where the patient had been.
func TestAlertsSayWhereThePatientIs(t *testing.T) {
	p := newOnePatient(t, NewClinical(clinical.DefaultConfig(), topics))
	temp, place := p.temp, p.place
	if got := place(schemas.Admit, "demo", "1"); len(got) != 0 {
		t.Fatalf("an admission with no alarm open made events: %+v", got)
	}
	raised := temp(39.5)
	if len(raised) != 1 || raised[0].State != schemas.Raised || raised[0].Ward != "demo" || raised[0].Bed != "1" {
		t.Fatalf("39.5 °C in ward demo bed 1: %+v", raised)
	}
	p.at = p.at.Add(10 * time.Second)
	moved := place(schemas.Transfer, "icu", "4")
	if len(moved) != 1 || moved[0].AlertID != raised[0].AlertID || !moved[0].Updated || moved[0].State != schemas.Raised ||
		moved[0].Ward != "icu" || moved[0].Bed != "4" || !moved[0].TS.Equal(p.at) {
		t.Fatalf("the transfer to icu bed 4 did not move the open alarm: %+v", moved)
	}
	if got := place(schemas.Transfer, "icu", "4"); len(got) != 0 {
		t.Fatalf("a placement to where the patient already is moved alarms again: %+v", got)
	}
	if got := temp(40.5); len(got) != 0 {
		t.Fatalf("a reading still beyond the limit made events: %+v", got)
	}
	resolved := temp(37)
	if len(resolved) != 1 || resolved[0].State != schemas.Resolved || resolved[0].Ward != "icu" || resolved[0].Bed != "4" {
		t.Fatalf("the resolution after the transfer: %+v", resolved)
	}
	again := temp(39.5)
	if len(again) != 1 || again[0].Ward != "icu" {
		t.Fatalf("a new alarm in the icu: %+v", again)
	}
	gone := place(schemas.Discharge, "", "")
	if len(gone) != 1 || !gone[0].Updated || gone[0].Ward != "" || gone[0].Bed != "" {
		t.Fatalf("the discharge did not move the open alarm to no ward: %+v", gone)
	}
}

// onePatient drives patient P1 through a Clinical, one committed
// transaction a record: temperature readings a minute apart, and
// placements at the time of the last reading.
type onePatient struct {
	t   *testing.T
	h   *Clinical
	at  time.Time
	seq uint64
}

func newOnePatient(t *testing.T, h *Clinical) *onePatient {
	return &onePatient{t: t, h: h, at: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
}

func (p *onePatient) handle(rec *kgo.Record) []schemas.Alert {
	p.t.Helper()
	rec.Timestamp = p.at
	p.h.Begin()
	recs, err := p.h.Handle(rec)
	if err != nil {
		p.t.Fatal(err)
	}
	p.h.Committed()
	return decodeAlerts(p.t, recs)
}

func (p *onePatient) temp(v float64) []schemas.Alert {
	p.t.Helper()
	p.seq++
	p.at = p.at.Add(time.Minute)
	rd := schemas.Reading{PatientID: "P1", DeviceID: "P1-thermo", Kind: schemas.Temperature, Value: v, Unit: "Cel", TS: p.at, Seq: p.seq}
	rec, _ := schemas.ReadingRecord(topics.Vitals, &rd)
	return p.handle(rec)
}

func (p *onePatient) place(event, ward, bed string) []schemas.Alert {
	p.t.Helper()
	rec, err := schemas.PlacementRecord(topics.Placements, &schemas.Placement{PatientID: "P1", Event: event, Ward: ward, Bed: bed, By: "adt", TS: p.at})
	if err != nil {
		p.t.Fatal(err)
	}
	return p.handle(rec)
}
