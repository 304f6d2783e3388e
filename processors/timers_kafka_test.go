package processors

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/clinical"
	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/schemas"
)

// clinicalProcessor runs the clinical handler with cfg on kc's topics,
// in group.
func clinicalProcessor(t *testing.T, c *kfake.Cluster, kc kafka.Config, group string, cfg clinical.Config, maxPoll int) *Processor {
	t.Helper()
	adm := kadm.NewClient(testkit.Client(t, c))
	if err := kafka.Provision(testkit.Context(t), adm, &kc, kc.Specs(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	p := newTestProcessor(c.ListenAddrs())
	p.kcfg = kc
	p.cfg.Group = group
	p.cfg.TickInterval = 100 * time.Millisecond
	p.cfg.MaxPollRecords = maxPoll
	p.h = NewClinical(cfg, kc.Topics, kgo.SeedBrokers(c.ListenAddrs()...))
	return p
}

func alertEvents(t *testing.T, c *kfake.Cluster, topic string) []schemas.Alert {
	t.Helper()
	return decodeAlerts(t, testkit.ReadAll(t, c, topic, kgo.ReadCommitted()))
}

// On a live, quiet partition the wall clock drives the timers: a heart
// rate that stops arriving raises signal lost, an alert nobody
// acknowledges escalates, and one acknowledged through the acks topic
// does not.
func TestProcessorTimersOnTheWallClock(t *testing.T) {
	c, kc := testCluster(t)
	cfg := timerConfig()
	cfg.Default.SignalLost[0].After = 2 * time.Second
	cfg.Default.Escalation[schemas.High] = []clinical.EscalationTier{{After: 4 * time.Second}}
	p := clinicalProcessor(t, c, kc, "alerting", cfg, 500)
	runProcessor(t, p)

	now := time.Now().UTC()
	var rs []schemas.Reading
	for i := range 3 {
		rs = append(rs, schemas.Reading{PatientID: "P01", DeviceID: "mon1", Kind: schemas.HeartRate, Value: 80, Unit: "/min", TS: now.Add(time.Duration(i-3) * time.Second), Seq: uint64(i)})
	}
	rs = append(rs,
		schemas.Reading{PatientID: "P02", DeviceID: "ox2", Kind: schemas.SpO2, Value: 75, Unit: "%", TS: now, Seq: 1},
		schemas.Reading{PatientID: "P03", DeviceID: "ox3", Kind: schemas.SpO2, Value: 72, Unit: "%", TS: now, Seq: 1})
	cl := testkit.Client(t, c, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	for i := range rs {
		rec, _ := schemas.ReadingRecord(kc.Topics.Vitals, &rs[i])
		rec.Timestamp = rs[i].TS // P01's heart rate arrived once a second
		if err := cl.ProduceSync(testkit.Context(t), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	var p03 schemas.Alert
	testkit.Eventually(t, 30*time.Second, "P03's critical alert", func() bool {
		for _, a := range alertEvents(t, c, kc.Topics.Alerts) {
			if a.PatientID == "P03" {
				p03 = a
				return true
			}
		}
		return false
	})
	ack, err := schemas.AckRecord(kc.Topics.Acks, &schemas.Ack{AlertID: p03.AlertID, PatientID: "P03", By: "nurse-7", TS: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	if err := testkit.Client(t, c, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil))).ProduceSync(testkit.Context(t), ack).FirstErr(); err != nil {
		t.Fatal(err)
	}
	seen := func(patient, condition string, state schemas.State) bool {
		for _, a := range alertEvents(t, c, kc.Topics.Alerts) {
			if a.PatientID == patient && a.Condition == condition && a.State == state {
				return true
			}
		}
		return false
	}
	testkit.Eventually(t, 30*time.Second, "P01 heart rate signal lost, P02 escalated, P03 acknowledged", func() bool {
		return seen("P01", "heart_rate_signal_lost", schemas.Raised) && seen("P02", "spo2_critical", schemas.Escalated) &&
			seen("P03", "spo2_critical", schemas.Acknowledged)
	})
	if seen("P03", "spo2_critical", schemas.Escalated) {
		t.Fatal("P03's alert escalated although it was acknowledged within the timeout")
	}
}

// The processor run twice over the same vitals topic, in two groups with
// different transaction sizes, writes identical alert events, ids
// included, per patient: timers fire by stream time while a partition
// has a backlog, and carry their deadline, not the moment they fired.
func TestClinicalDeterministicOnATopic(t *testing.T) {
	c, kc := testCluster(t)
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	recs := testkit.Unruly(testkit.WardInput("P", base, 8))
	cl := testkit.Client(t, c, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	for _, r := range recs {
		r.Topic = kc.Topics.Vitals
	}
	if err := cl.ProduceSync(testkit.Context(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	run := func(name string, maxPoll int, abortEvery int) map[string][]string {
		k := kc
		k.Topics.Alerts, k.Topics.State = "alerts-"+name, "state-"+name
		p := clinicalProcessor(t, c, k, "group-"+name, clinical.DefaultConfig(), maxPoll)
		if abortEvery > 0 {
			// Aborted transactions are consumed again, perhaps in other
			// batches: neither their state nor their records' time may
			// outlive the abort.
			n := 0
			p.beforeEnd = func(int64) error {
				if n++; n%abortEvery == 0 {
					return errors.New("aborted by the test")
				}
				return nil
			}
		}
		stop := runProcessor(t, p)
		// Once caught up the wall clock, two hours ahead, fires every
		// patient's last outage, in one transaction with every other
		// timer then due. Those events are the data's (their ts is the
		// last arrival plus the limit) and compare byte for byte; but an
		// alarm left open at the end of the data keeps escalating, tier
		// after tier, by the wall clock of each run, so events whose ts
		// is past the data are compared as a set of id, condition and
		// state.
		testkit.Eventually(t, 3*time.Minute, name+": every patient's final signals lost", func() bool {
			final := map[string]bool{}
			for _, a := range alertEvents(t, c, k.Topics.Alerts) {
				if strings.HasSuffix(a.Condition, "_signal_lost") && a.State == schemas.Raised && a.TS.After(base.Add(1800*time.Second)) {
					final[a.PatientID+" "+a.Condition] = true
				}
			}
			return len(final) == 16 // heart rate and SpO2 of each
		})
		stop()
		return testkit.AlertsByPatient(testkit.ReadAll(t, c, k.Topics.Alerts, kgo.ReadCommitted()), base.Add(1800*time.Second+time.Minute))
	}
	a := run("a", 500, 0)
	for _, other := range []struct {
		name                string
		maxPoll, abortEvery int
	}{{"b", 37, 0}, {"c", 23, 10}} {
		b := run(other.name, other.maxPoll, other.abortEvery)
		if !maps.EqualFunc(a, b, slices.Equal) {
			for _, p := range slices.Sorted(maps.Keys(a)) {
				if !slices.Equal(a[p], b[p]) {
					i := 0
					for i < min(len(a[p]), len(b[p])) && a[p][i] == b[p][i] {
						i++
					}
					at := func(evs []string) string {
						if i < len(evs) {
							return strings.Join(evs[i:min(i+3, len(evs))], "\n    ")
						}
						return "(none)"
					}
					t.Errorf("patient %s: %d vs %d events; event %d differs\nrun a:\n    %s\nrun %s:\n    %s", p, len(a[p]), len(b[p]), i, at(a[p]), other.name, at(b[p]))
				}
			}
			t.FailNow()
		}
	}
	// The input must exercise every kind of event, or equality proves
	// little.
	kinds := map[string]int{}
	for _, evs := range a {
		for _, v := range evs {
			if strings.HasSuffix(v, " after catching up") {
				kinds["after catching up"]++
				continue
			}
			var al schemas.Alert
			if err := json.Unmarshal([]byte(v), &al); err != nil {
				t.Fatal(err)
			}
			kinds[al.Condition+" "+string(al.State)]++
			if al.Condition == "heart_rate_signal_lost" && al.State == schemas.Raised && al.TS.Before(base.Add(700*time.Second)) {
				kinds["mid-stream signal lost"]++
			}
		}
	}
	for _, want := range []string{"spo2_low raised", "spo2_low resolved-unacknowledged", "spo2_critical raised", "spo2_critical escalated", "spo2_low escalated",
		"heart_rate_signal_lost resolved", "mid-stream signal lost", "news2 raised"} {
		if kinds[want] == 0 {
			t.Errorf("no %q event; events: %v", want, kinds)
		}
	}
	t.Logf("%d patients, identical events: %v", len(a), kinds)
}

// Platform downtime is not a device failure: after a restart whose last
// readings are older than the signal-lost limit, a device that is heard
// again within the limit of the restart raises nothing (every patient got
// a heart_rate_signal_lost at a restart before), and one that stays quiet
// is reported the limit after the restart, not before. The event itself
// is the data's (ts: the last arrival plus the limit), so replaying the
// topic at any later time gives the same one.
func TestRestartDoesNotBlameDevices(t *testing.T) {
	c, kc := testCluster(t)
	cfg := timerConfig()
	cfg.Default.SignalLost[0].After = 5 * time.Second
	// Two patients whose monitors sent once a second until 20 s ago,
	// when the platform stopped.
	stopped := time.Now().UTC().Add(-20 * time.Second)
	cl := testkit.Client(t, c, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	produce := func(patient string, seq int, at time.Time) {
		t.Helper()
		rd := schemas.Reading{PatientID: patient, DeviceID: patient + "-mon", Kind: schemas.HeartRate, Value: 80, Unit: "/min", TS: at, Seq: uint64(seq)}
		rec, _ := schemas.ReadingRecord(kc.Topics.Vitals, &rd)
		rec.Timestamp = at
		if err := cl.ProduceSync(testkit.Context(t), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		for _, patient := range []string{"P01", "P02"} {
			produce(patient, i, stopped.Add(time.Duration(i-10)*time.Second))
		}
	}
	p := clinicalProcessor(t, c, kc, "alerting", cfg, 500)
	started := time.Now()
	runProcessor(t, p)
	adm := testkit.Admin(t, c)
	testkit.Eventually(t, 30*time.Second, "the restarted processor caught up", func() bool {
		lag, err := kafka.GroupLag(context.Background(), adm, "alerting", kc.Topics.Vitals)
		return err == nil && lag == 0
	})
	// P01's monitor is heard again at once; P02's stays quiet.
	for i := range 3 {
		produce("P01", 100+i, time.Now().UTC())
	}
	testkit.Eventually(t, 30*time.Second, "P02's signal lost, after the limit from the restart", func() bool {
		for _, r := range testkit.ReadAll(t, c, kc.Topics.Alerts, kgo.ReadCommitted()) {
			a, err := schemas.DecodeAlert(r)
			if err == nil && a.PatientID == "P02" && a.Condition == "heart_rate_signal_lost" {
				if want := stopped.Add(4 * time.Second).Truncate(time.Millisecond); !a.TS.Equal(want) || strings.Contains(a.Message, "resumed") {
					t.Fatalf("P02's alarm is not the data's (ts %v): %+v", want, a)
				}
				if r.Timestamp.Before(started.Add(5 * time.Second)) {
					t.Fatalf("P02's alarm came %v after the restart, before the limit: %+v", r.Timestamp.Sub(started), a)
				}
				return true
			}
		}
		return false
	})
	// (P01's monitor, quiet again after its three readings, may by now
	// be reported lost for that: a silence after the restart.)
	for _, a := range alertEvents(t, c, kc.Topics.Alerts) {
		if a.PatientID == "P01" && a.Reading.Seq < 100 {
			t.Fatalf("P01's monitor was blamed for the platform's downtime: %+v", a)
		}
	}
}
