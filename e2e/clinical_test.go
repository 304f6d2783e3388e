package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/schemas"
)

// f. The clinical engine (per-patient state in the changelog, persistence
// delays, hysteresis, NEWS2, signal lost, escalation) under SIGKILLs: three
// processors, one killed at each tenth of the input and restarted, write
// the same alert
// events, per patient and in the same order, as one processor that was
// never killed, reading the same vitals topic. A transaction aborted by a
// kill or a rebalance is consumed again; this case found the processor
// clock running ahead of the re-applied readings after such an abort.
//
// The input is two hours in the past and on the topic before either run
// starts: while a partition has a backlog the timers run on the records'
// arrival times, so both runs see the same clock, and once caught up the
// wall clock fires every patient's last timers (their final signal lost,
// and its escalation) with their deadlines, not the moment they fired.
func TestClinicalExactlyOnceUnderProcessorKills(t *testing.T) {
	need(t)
	plaintextOnly(t)
	start := time.Now()
	const patients = 96
	killed, flags := topicFlags("e2e-f")
	ref, _ := topicFlags("e2e-f-ref")
	ref.Vitals = killed.Vitals
	refFlags := flagsFor(ref)

	kc := kafka.DefaultConfig()
	kc.Brokers, kc.ReplicationFactor = brokers, 3
	adm := kadm.NewClient(testkit.SeedClient(t, brokers, with()...))
	for _, tp := range []kafka.Topics{killed, ref} {
		kc.Topics = tp
		if err := kafka.Provision(context.Background(), adm, &kc, kc.Specs(), slog.New(slog.DiscardHandler)); err != nil {
			t.Fatalf("provision %s: %v", tp.Alerts, err)
		}
	}
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	// As gateways deliver it: arrival times out of order, retried
	// batches, buffered readings hours late, readings out of order.
	input := testkit.Unruly(testkit.WardInput("f-P", base, patients))
	for _, r := range input {
		r.Topic = killed.Vitals
	}
	prod := testkit.SeedClient(t, brokers, with(kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err := prod.ProduceSync(context.Background(), input...).FirstErr(); err != nil {
		t.Fatalf("producing the input: %v", err)
	}

	// The reference run takes 500 records a transaction, the killed run
	// 50: the events may not depend on the batching either.
	args := func(group, maxPoll string, flags []string) []string {
		return append([]string{"process", "--brokers", strings.Join(brokers, ","), "--http-addr", freeAddr(t), "--group", group,
			"--session-timeout", "6s", "--transaction-timeout", "5s", "--max-poll-records", maxPoll, "--tick", "200ms"}, flags...)
	}
	// finals counts, once the group consumed everything, the patients'
	// final heart-rate and SpO2 outages raised, at the end of the input:
	// the last timers. (They fire after the limit from when the processor
	// caught up, so the SpO2 ones 5 s after the heart rate's; their ts is
	// the data's: last arrival plus the limit. A device whose last two
	// deliveries came further apart than the limit, as the unruly input
	// makes a few, has no cadence to lose and raises none.) -1: lag.
	finals := func(group, alerts string) int {
		if lag, err := kafka.GroupLag(context.Background(), adm, group, killed.Vitals); err != nil || lag != 0 {
			return -1
		}
		final := map[string]bool{}
		for _, a := range readAlerts(t, brokers, alerts) {
			if strings.HasSuffix(a.Condition, "_signal_lost") && a.State == schemas.Raised && a.TS.After(base.Add(1800*time.Second)) {
				final[a.PatientID+" "+a.Condition] = true
			}
		}
		return len(final)
	}
	// dataEvents counts the events up to the input's end (what the
	// comparison holds in order); -1: lag. Waits still open at the end of
	// the data (a value back in range, a NEWS2 band) end on the processor
	// clock after the processor caught up (rules.md, "Timers"), some tens
	// of seconds later: a run is finished once these stop coming.
	inputEnd := base.Add(1800*time.Second + time.Minute)
	dataEvents := func(group, alerts string) int {
		if lag, err := kafka.GroupLag(context.Background(), adm, group, killed.Vitals); err != nil || lag != 0 {
			return -1
		}
		n := 0
		for _, a := range readAlerts(t, brokers, alerts) {
			if !a.TS.After(inputEnd) {
				n++
			}
		}
		return n
	}
	// settled is true once count gave the same positive number three polls
	// running (30 s at the 10 s polls below).
	settled := func(count func() int) func() bool {
		last, stable := -1, 0
		return func() bool {
			n := count()
			if n <= 0 || n != last {
				last, stable = n, 0
				return false
			}
			stable++
			return stable >= 3
		}
	}
	// The reference run is finished once its final outages stop coming
	// (the same count over 30 s, twice the longest limit after catching
	// up), and so have its events up to the end of the input.
	var wantFinals int
	finalsSettled := settled(func() int { wantFinals = finals("e2e-f-ref", ref.Alerts); return wantFinals })
	refSettled := settled(func() int { return dataEvents("e2e-f-ref", ref.Alerts) })
	finishedRef := func() bool { return finalsSettled() && refSettled() }

	p := startRole(t, "process", args("e2e-f-ref", "500", refFlags)...)
	if !testkit.Poll(5*time.Minute, 10*time.Second, finishedRef) {
		t.Fatalf("not within 5m: the reference run finished (%d final outages, changing)", wantFinals)
	}
	// Every patient's heart rate misses a reading each 100 s (Unruly), so
	// a part of the monitors have no cadence left to lose at the end: 135
	// to 175 of the 192 have been measured.
	if wantFinals < patients {
		t.Errorf("the reference run raised %d final outages of %d patients' heart rate and SpO2: the input's devices lost their cadence", wantFinals, patients)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("reference processor exited %d on SIGTERM", code)
	}

	procs := make([]*proc, 3)
	for i := range procs {
		procs[i] = startRole(t, "process", args("e2e-f", "50", flags)...)
	}
	// A kill at each tenth of the input consumed, so kills land while
	// transactions are open (50 records each), including restores of
	// state another member wrote.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	kills := 0
	for k := 1; k < 10; k++ {
		testkit.Eventually(t, 5*time.Minute, fmt.Sprintf("%d/10 of the input consumed", k), func() bool {
			lag, err := kafka.GroupLag(context.Background(), adm, "e2e-f", killed.Vitals)
			return err == nil && lag <= int64(len(input)*(10-k)/10)
		})
		i := rng.IntN(len(procs))
		procs[i].kill()
		kills++
		t.Logf("SIGKILLed processor %d (kill %d)", i, kills)
		procs[i] = startRole(t, "process", args("e2e-f", "50", flags)...)
	}
	killedSettled := settled(func() int { return dataEvents("e2e-f", killed.Alerts) })
	if !testkit.Poll(5*time.Minute, 10*time.Second, func() bool { return finals("e2e-f", killed.Alerts) >= wantFinals && killedSettled() }) {
		t.Fatal("not within 5m: the killed run finished (its final outages, and its events up to the input's end settled)")
	}
	for _, p := range procs {
		if code := p.stop(t); code != 0 {
			t.Errorf("processor exited %d on SIGTERM", code)
		}
	}

	refRecs := testkit.ReadAllFrom(t, brokers, ref.Alerts, kgo.ReadCommitted(), with()...)
	killedRecs := testkit.ReadAllFrom(t, brokers, killed.Alerts, kgo.ReadCommitted(), with()...)
	want, got := testkit.AlertsByPatient(refRecs, inputEnd), testkit.AlertsByPatient(killedRecs, inputEnd)
	defer func() {
		if t.Failed() {
			// Where each event came from (partition, offset, producer),
			// for the next look at a difference.
			dumpRecords(t, "f-reference.jsonl", refRecs)
			dumpRecords(t, "f-killed.jsonl", killedRecs)
		}
	}()
	events, found, dups := 0, 0, 0
	for _, p := range slices.Sorted(maps.Keys(want)) {
		events += len(want[p])
		if !slices.Equal(want[p], got[p]) {
			i := 0
			for i < min(len(want[p]), len(got[p])) && want[p][i] == got[p][i] {
				i++
			}
			at := func(evs []string) string {
				if i < len(evs) {
					return evs[i]
				}
				return "(none)"
			}
			t.Errorf("patient %s: %d events under kills, %d in the reference run; event %d differs\nkilled:    %s\nreference: %s",
				p, len(got[p]), len(want[p]), i, at(got[p]), at(want[p]))
		}
	}
	for p, evs := range got {
		seen := map[string]bool{}
		for _, v := range evs {
			if seen[v] {
				dups++
			}
			seen[v] = true
			if slices.Contains(want[p], v) {
				found++
			}
		}
	}
	kinds := map[string]bool{}
	for _, a := range readAlerts(t, brokers, ref.Alerts) {
		kinds[a.Condition+" "+string(a.State)] = true
	}
	for _, k := range []string{"spo2_low raised", "spo2_low resolved-unacknowledged", "spo2_low escalated", "spo2_critical raised", "news2 raised",
		"heart_rate_signal_lost raised", "heart_rate_signal_lost resolved"} {
		if !kinds[k] {
			t.Errorf("the reference run has no %q event: the comparison proves little (%v)", k, slices.Sorted(maps.Keys(kinds)))
		}
	}
	if dlq := testkit.ReadAllFrom(t, brokers, killed.VitalsDLQ, kgo.ReadCommitted(), with()...); len(dlq) != 0 {
		t.Errorf("%d dead letters from valid input", len(dlq))
	}
	record(row{name: fmt.Sprintf("f. clinical engine: same events as an unkilled run, %d patients, processors SIGKILLed", patients),
		sent: len(input), acked: len(input), found: len(input), alertsWant: events, alertsFound: found, dups: dups,
		kills: fmt.Sprintf("%d processor", kills), elapsed: time.Since(start), result: result(t)})
}

// dumpRecords writes recs to .out/name as JSON lines with where each was
// written: the evidence a failed comparison leaves behind.
func dumpRecords(t *testing.T, name string, recs []*kgo.Record) {
	var b strings.Builder
	for _, r := range recs {
		line, _ := json.Marshal(map[string]any{"partition": r.Partition, "offset": r.Offset, "producer_id": r.ProducerID,
			"timestamp": r.Timestamp, "key": string(r.Key), "value": json.RawMessage(r.Value)})
		b.Write(line)
		b.WriteByte('\n')
	}
	path := filepath.Join(".out", name)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Logf("write %s: %v", path, err)
		return
	}
	t.Logf("the records are in e2e/%s", path)
}
