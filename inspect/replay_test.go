package inspect

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/clinical"
	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/processors"
	"github.com/monitorme/monitorme/schemas"
)

// ward writes 30 minutes of an 8-bed ward two hours ago, and runs the
// real alert processor over it to the end: alerts.v1 then holds what the
// platform recorded.
func ward(t *testing.T) (kafka.Config, time.Time) { return wardRestarted(t, 0) }

// wardRestarted is ward with the processor stopped after the first
// `restartAt` of the input and a new one started for the rest (0: one
// processor throughout).
func wardRestarted(t *testing.T, restartAt time.Duration) (kafka.Config, time.Time) {
	return wardPlaced(t, restartAt, "", nil)
}

// wardPlaced is wardRestarted with the processor on rulesFile ("" for
// the defaults) and, an hour before the ward's readings, the placements
// of the patients in place (patient to ward).
func wardPlaced(t *testing.T, restartAt time.Duration, rulesFile string, place map[string]string) (kafka.Config, time.Time) {
	c, kc := testkit.CreateCluster(t, 4)
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	recs := testkit.WardInput("W", start, 8)
	for _, r := range recs {
		r.Topic = kc.Topics.Vitals
	}
	cl := testkit.Client(t, c, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	var placements []*kgo.Record
	for patient, ward := range place {
		pl := schemas.Placement{PatientID: patient, Event: schemas.Admit, Ward: ward, Bed: "1", By: "adt", TS: start.Add(-time.Hour)}
		rec, err := schemas.PlacementRecord(kc.Topics.Placements, &pl)
		if err != nil {
			t.Fatal(err)
		}
		rec.Timestamp = pl.TS
		placements = append(placements, rec)
	}
	if err := cl.ProduceSync(testkit.Context(t), placements...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cfg := processors.DefaultConfig()
	cfg.Group = "replay-test"
	cfg.RulesFile = rulesFile
	if err := cfg.LoadRules(); err != nil {
		t.Fatal(err)
	}
	vitalsRead := func() bool {
		lag, err := kafka.GroupLag(context.Background(), testkit.Admin(t, c), "replay-test", kc.Topics.Vitals)
		return err == nil && lag == 0
	}
	process := func(input []*kgo.Record, caughtUp func() bool) {
		if err := cl.ProduceSync(testkit.Context(t), input...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		p, err := processors.New(cfg, kc, slog.New(slog.DiscardHandler), telemetry.Nop())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		testkit.Eventually(t, 60*time.Second, "the processor caught up", caughtUp)
		cancel()
		<-done
	}
	if len(placements) > 0 {
		// The placements first, to the end: the processor reads its
		// three topics in the order its fetches bring them, not by
		// time, so readings fetched first would be applied under the
		// ward the patient was not yet placed in (the replay merges
		// them by time).
		process(nil, func() bool {
			offs, err := testkit.Admin(t, c).FetchOffsets(context.Background(), "replay-test")
			if err != nil {
				return false
			}
			var n int64
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Topic == kc.Topics.Placements {
					n += o.At
				}
			})
			return n == int64(len(placements))
		})
	}
	if restartAt == 0 {
		process(recs, vitalsRead)
		return kc, start
	}
	i := 0
	for i < len(recs) && recs[i].Timestamp.Before(start.Add(restartAt)) {
		i++
	}
	process(recs[:i], vitalsRead)
	process(recs[i:], vitalsRead)
	return kc, start
}

// sameAlarms replays minutes 5 to 25 of the ward with the processor's
// rules and fails unless the diff with the recorded alarms is empty.
func sameAlarms(t *testing.T, kc kafka.Config, start time.Time, what string) (ReplayOptions, clinical.Config, []schemas.Alert, []schemas.Alert) {
	t.Helper()
	return sameAlarmsUnder(t, kc, start, what, clinical.DefaultConfig())
}

func sameAlarmsUnder(t *testing.T, kc kafka.Config, start time.Time, what string, rules clinical.Config) (ReplayOptions, clinical.Config, []schemas.Alert, []schemas.Alert) {
	t.Helper()
	o := ReplayOptions{From: start.Add(5 * time.Minute), To: start.Add(25 * time.Minute), Warmup: 5 * time.Minute}
	replayed, err := Replay(testkit.Context(t), kc, rules, o)
	if err != nil {
		t.Fatal(err)
	}
	recorded, err := Recorded(testkit.Context(t), kc, rules, o)
	if err != nil {
		t.Fatal(err)
	}
	d := Compare(recorded, replayed, rules.Ward, 2*time.Minute)
	if d.Same == 0 || d.Differs() {
		var b strings.Builder
		d.Write(&b, "text")
		t.Fatalf("%s: %d alarms the same, %d changes:\n%s", what, d.Same, len(d.Changes), b.String())
	}
	t.Logf("%s: %d recorded alert events in the window, %d replayed, %d alarm episodes the same", what, len(recorded), len(replayed), d.Same)
	return o, rules, recorded, replayed
}

// A range that crosses a processor restart replays to the same alarms:
// the processor's state and clock come back from its changelog, so a
// restart changes nothing the replay would not.
func TestReplayAcrossAProcessorRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the processor over a ward, twice")
	}
	kc, start := wardRestarted(t, 15*time.Minute)
	_, _, recorded, replayed := sameAlarms(t, kc, start, "across a restart at 15 min")
	if len(recorded) != len(replayed) {
		t.Errorf("across a restart: %d recorded events, %d replayed", len(recorded), len(replayed))
	}
}

// Patients placed in a ward with rules of its own (from an ADT feed,
// before the range) are replayed under those rules, as the processor
// applied them: the replay reads the placements topic from its start.
// Before, it read only the vitals and acks, and replayed the two patients
// placed in a ward that alarms only below 80 % under the defaults: their
// desaturations came back as spo2_low alarms the processor never raised
// (12 changes in the diff).
func TestReplayFollowsThePlacements(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the processor over a ward")
	}
	file := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(file, []byte("wards:\n  quiet:\n    conditions:\n      spo2_low: {limit: 80}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rules, err := processors.LoadRulesFile(file)
	if err != nil {
		t.Fatal(err)
	}
	kc, start := wardPlaced(t, 0, file, map[string]string{"W01": "quiet", "W03": "quiet"})
	_, _, recorded, replayed := sameAlarmsUnder(t, kc, start, "patients placed in a ward of their own", rules)
	for _, a := range recorded {
		if (a.PatientID == "W01" || a.PatientID == "W03") && a.Condition == "spo2_low" {
			t.Fatalf("the processor raised %s for %s under the quiet ward's rules", a.Condition, a.PatientID)
		}
	}
	if len(recorded) != len(replayed) {
		t.Errorf("%d recorded events, %d replayed", len(recorded), len(replayed))
	}
}

// Replayed with the rules the processor ran, the engine raises exactly
// the alarms the processor recorded: the replay is the engine, on event
// time. Other rules move them, and the diff says which.
func TestReplayMatchesTheRecordedAlarms(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the processor over a ward")
	}
	kc, start := ward(t)
	o, rules, recorded, replayed := sameAlarms(t, kc, start, "the same rules")
	if len(recorded) != len(replayed) {
		t.Errorf("one processor throughout: %d recorded events, %d replayed", len(recorded), len(replayed))
	}

	// Candidate rules: SpO2 alarms only below 80 %. The desaturations to
	// 86 and 87 % no longer alarm.
	file := filepath.Join(t.TempDir(), "candidate.yaml")
	if err := os.WriteFile(file, []byte("defaults:\n  conditions:\n    spo2_low: {limit: 80}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	candidate, err := processors.LoadRulesFile(file)
	if err != nil {
		t.Fatal(err)
	}
	after, err := Replay(testkit.Context(t), kc, candidate, o)
	if err != nil {
		t.Fatal(err)
	}
	d := Compare(recorded, after, candidate.Ward, 2*time.Minute)
	removed := 0
	for _, c := range d.Changes {
		if c.Kind == "removed" && c.Condition == "spo2_low" {
			removed++
		}
		if c.Kind == "added" && c.Condition == "spo2_low" {
			t.Errorf("a lower limit added an SpO2 alarm: %+v", c)
		}
	}
	if removed == 0 {
		t.Fatalf("a lower SpO2 limit removed no spo2_low alarm: %+v", d.Changes)
	}
	var md strings.Builder
	if err := d.Write(&md, "markdown"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Alarm diff", "| removed |", "## Alarm burden per ward", "## Alarm burden per hour"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown report lacks %q:\n%s", want, md.String())
		}
	}

	// One patient: only its partition is read, only its alarms come back.
	one, err := Replay(testkit.Context(t), kc, rules, ReplayOptions{From: o.From, To: o.To, Warmup: o.Warmup, Patients: []string{"W02"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range one {
		if a.PatientID != "W02" {
			t.Fatalf("--patient W02 replayed %s", a.PatientID)
		}
	}
	var want []schemas.Alert
	for _, a := range replayed {
		if a.PatientID == "W02" {
			want = append(want, a)
		}
	}
	if len(one) != len(want) {
		t.Errorf("W02 alone: %d events, %d in the whole ward's replay", len(one), len(want))
	}
}

func TestCompareMatchesEpisodes(t *testing.T) {
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	raise := func(p, c string, m int) schemas.Alert {
		return schemas.Alert{PatientID: p, Condition: c, State: schemas.Raised, Priority: schemas.Medium, TS: at(m), Reading: schemas.Reading{TS: at(m).Add(-30 * time.Second)}}
	}
	before := []schemas.Alert{raise("P1", "spo2_low", 0), raise("P1", "spo2_low", 30), raise("P2", "hr_high", 10)}
	after := []schemas.Alert{raise("P1", "spo2_low", 1), raise("P2", "hr_high", 10), raise("P3", "rr_high", 5)}
	d := Compare(before, after, func(string) string { return "icu" }, 2*time.Minute)
	kinds := map[string]int{}
	for _, c := range d.Changes {
		kinds[c.Kind]++
	}
	if d.Same != 1 || kinds["shifted"] != 1 || kinds["removed"] != 1 || kinds["added"] != 1 {
		t.Fatalf("same %d, changes %v", d.Same, kinds)
	}
	// Matched: P1 spo2_low 0 -> 1 min (+1m), P2 hr_high 10 -> 10 (0): median +1m of [0, 1m].
	if d.BurdenBefore["icu"] != 3 || d.BurdenAfter["icu"] != 3 || d.TimeToAlarmChange != time.Minute {
		t.Errorf("burden %v -> %v, time to alarm change %v", d.BurdenBefore, d.BurdenAfter, d.TimeToAlarmChange)
	}

	// The same raise, resolved at another time, escalated otherwise or
	// with another message, is changed, not the same (before, only the
	// raise was compared); resolved alike it is the same.
	raised := raise("P4", "temperature_high", 0)
	raised.AlertID = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	then := func(s schemas.State, m int, msg string) schemas.Alert {
		x := raised
		x.State, x.TS, x.Message = s, at(m), msg
		return x
	}
	for name, c := range map[string]struct {
		after  []schemas.Alert
		change string
	}{
		"resolved alike":      {[]schemas.Alert{raised, then(schemas.Resolved, 20, "ok"), then(schemas.Raised, 40, "end")}, ""},
		"resolved later":      {[]schemas.Alert{raised, then(schemas.Resolved, 25, "ok"), then(schemas.Raised, 40, "end")}, "changed"},
		"never resolved":      {[]schemas.Alert{raised, then(schemas.Escalated, 15, "ok"), then(schemas.Raised, 40, "end")}, "changed"},
		"another message":     {[]schemas.Alert{raised, then(schemas.Resolved, 20, "other"), then(schemas.Raised, 40, "end")}, "changed"},
		"an extra escalation": {[]schemas.Alert{raised, then(schemas.Escalated, 5, "esc"), then(schemas.Resolved, 20, "ok"), then(schemas.Raised, 40, "end")}, "changed"},
	} {
		before := []schemas.Alert{raised, then(schemas.Resolved, 20, "ok"), then(schemas.Raised, 40, "end")}
		d := Compare(before, c.after, func(string) string { return "icu" }, 2*time.Minute)
		got := ""
		for _, ch := range d.Changes {
			if ch.Condition == "temperature_high" && ch.Kind == "changed" {
				got = ch.Kind
				if ch.Detail == "" {
					t.Errorf("%s: a changed episode without detail", name)
				}
			}
		}
		if got != c.change {
			t.Errorf("%s: change %q, want %q (%+v)", name, got, c.change, d.Changes)
		}
	}
}

// BenchmarkReplay measures the replay rate: the records of a 96-bed
// ward's 30 minutes (vitals, read from kfake), through the clinical
// engine, per second.
//
//	go test -run '^$' -bench BenchmarkReplay -benchtime 5x ./inspect/
func BenchmarkReplay(b *testing.B) {
	c, kc := testkit.CreateCluster(b, 12)
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	recs := testkit.WardInput("B", start, 96)
	for _, r := range recs {
		r.Topic = kc.Topics.Vitals
	}
	if err := testkit.Client(b, c, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil))).ProduceSync(testkit.Context(b), recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	o := ReplayOptions{From: start, To: start.Add(31 * time.Minute)}
	rules := clinical.DefaultConfig()
	b.ResetTimer()
	var alerts int
	for range b.N {
		as, err := Replay(context.Background(), kc, rules, o)
		if err != nil {
			b.Fatal(err)
		}
		alerts = len(as)
	}
	b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "readings/s")
	b.ReportMetric(float64(alerts), "alert-events")
}

// --ward and --patient narrow a replay by the rules file's wards.
func TestReplayScope(t *testing.T) {
	rules, err := processors.LoadRulesFile("../config/rules.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		o       ReplayOptions
		patient string
		want    bool
	}{
		{ReplayOptions{}, "P001", true},
		{ReplayOptions{Ward: "icu"}, "P001", true},
		{ReplayOptions{Ward: "icu"}, "P002", false},
		{ReplayOptions{Ward: "icu"}, "P999", false},
		{ReplayOptions{Patients: []string{"P002"}}, "P002", true},
		{ReplayOptions{Patients: []string{"P002"}}, "P001", false},
		{ReplayOptions{Patients: []string{"P001", "P002"}, Ward: "respiratory"}, "P001", false},
	} {
		if got := tc.o.Scope(&rules, tc.patient); got != tc.want {
			t.Errorf("%+v, %s: %v, want %v", tc.o, tc.patient, got, tc.want)
		}
	}
}
