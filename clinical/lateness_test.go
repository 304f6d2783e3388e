package clinical

// Issue 25: no alarm is silently lost when readings are late, shuffled,
// buffered through an outage, or followed by silence. Each test plays a
// situation the issue names, as a ward lives it; each failed on the engine
// before the fix.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

// raisedAt returns the event time, in seconds from t0, at which condition
// was raised among alerts; -1 if it was not.
func raisedAt(alerts []schemas.Alert, condition string) float64 {
	for _, a := range alerts {
		if a.Condition == condition && a.State == schemas.Raised && !a.Updated {
			return a.TS.Sub(t0).Seconds()
		}
	}
	return -1
}

// Situation 1: SpO2 97 % at t (seq 1), 97 % at t+1 s (seq 2), then 65 %
// stamped t−5 s (seq 3), well inside the 30 s reorder window. Before, no
// alarm ever; in event-time order spo2_critical is raised at once, at the
// reading's own time.
func TestACriticalReadingBehindANewerOneAlarms(t *testing.T) {
	for _, second := range []bool{false, true} {
		f := defaultFeed(t)
		ox := newDevice(f, "P01", "ox1")
		var got []schemas.Alert
		got = append(got, ox.send(schemas.SpO2, 97, 100, 100)...)
		got = append(got, ox.send(schemas.SpO2, 97, 101, 101)...)
		late := ox
		if second {
			late = newDevice(f, "P01", "ox2") // a second device of the patient
		}
		got = append(got, late.send(schemas.SpO2, 65, 95, 101.2)...)
		if at := raisedAt(got, "spo2_critical"); at != 95 {
			t.Fatalf("second device %v: spo2_critical raised at %v s, want 95 s; events %v", second, at, conditions(got))
		}
	}
}

// desaturationOrder is the 1 Hz SpO2 of a 21 s desaturation (87 % from 5 s
// to 25 s, 97 % from 0 s to 4 s and 26 s to 40 s), as event times.
func desaturationOrder() []int {
	var out []int
	for s := 0; s <= 40; s++ {
		out = append(out, s)
	}
	return out
}

func desaturationValue(s int) float64 {
	if s >= 5 && s <= 25 {
		return 87
	}
	return 97
}

// playDesaturation posts the readings in the given arrival order, the
// i-th arriving at second i (plus the offset 0.5), and returns the events.
func playDesaturation(t *testing.T, order []int) []schemas.Alert {
	f := defaultFeed(t)
	ox := newDevice(f, "P01", "ox1")
	var got []schemas.Alert
	for i, s := range order {
		got = append(got, ox.sendSeq(schemas.SpO2, desaturationValue(s), float64(s), float64(i)+0.5, uint64(s+1))...)
	}
	return got
}

// Situation 1 continued: the desaturation alarms posted in order, reversed
// in chunks of 3, or with two readings swapped, and before raised nothing
// when shuffled within 10-s chunks. Whatever the order within the window,
// spo2_low is raised once, at 20 s (15 s after 5 s), as in event order.
func TestAShuffledDesaturationAlarmsAtItsEventTime(t *testing.T) {
	orders := map[string][]int{"in order": desaturationOrder()}
	rev := desaturationOrder()
	for i := 0; i+3 <= len(rev); i += 3 {
		rev[i], rev[i+2] = rev[i+2], rev[i]
	}
	orders["reversed in chunks of 3"] = rev
	sw := desaturationOrder()
	sw[12], sw[13] = sw[13], sw[12]
	orders["two swapped"] = sw
	for seed := range uint64(20) {
		o := desaturationOrder()
		r := rand.New(rand.NewPCG(seed, 25))
		for i := 0; i < len(o); i += 10 {
			c := o[i:min(i+10, len(o))]
			r.Shuffle(len(c), func(a, b int) { c[a], c[b] = c[b], c[a] })
		}
		orders["shuffled in 10-s chunks, seed "+string(rune('a'+seed))] = o
	}
	for name, o := range orders {
		got := playDesaturation(t, o)
		n := 0
		for _, a := range got {
			if a.Condition == "spo2_low" && a.State == schemas.Raised {
				n++
			}
		}
		if at := raisedAt(got, "spo2_low"); at != 20 || n != 1 {
			t.Errorf("%s %v: spo2_low raised %d times, first at %v s; want once at 20 s; events %v", name, o, n, at, conditions(got))
		}
	}
}

// Situation 2: the ward's monitoring stops for 20 s. On restart the
// simulator's fresh readings arrive first; then a gateway delivers the
// SpO2 65 % readings it buffered during the outage (event times 5–15 s
// into it, a device of its own). Before, no existing patient alarmed.
func TestReadingsBufferedThroughAnOutageAlarm(t *testing.T) {
	f := defaultFeed(t)
	for p := range 10 {
		id := "P" + string(rune('A'+p))
		mon := newDevice(f, id, id+"-mon")
		for s := 0; s < 60; s++ {
			mon.send(schemas.SpO2, 97, float64(s), float64(s))
		}
		// Outage from 60 s to 80 s; fresh readings from 80 s on, first.
		var got []schemas.Alert
		for s := 80; s < 84; s++ {
			got = append(got, mon.send(schemas.SpO2, 97, float64(s), float64(s))...)
		}
		gw := newDevice(f, id, id+"-gateway")
		for s := 65; s <= 75; s++ {
			got = append(got, gw.send(schemas.SpO2, 65, float64(s), 84)...)
		}
		if at := raisedAt(got, "spo2_critical"); at != 65 {
			t.Fatalf("patient %s: spo2_critical raised at %v s, want 65 s; events %v", id, at, conditions(got))
		}
	}
}

// observationSet charts a complete NEWS2 set within one second, as one
// POST: RR 26, SpO2 91 on air, SBP 95, HR 135, T 39.5, alert. NEWS2
// 3+3+0+2+3+0+2 = 13 on the RCP chart: emergency response.
func observationSet(d *device, s float64) []schemas.Alert {
	var out []schemas.Alert
	for i, o := range []struct {
		k schemas.Kind
		v float64
	}{{schemas.RespRate, 26}, {schemas.SpO2, 91}, {schemas.O2Supplement, 0}, {schemas.BPSystolic, 95},
		{schemas.HeartRate, 135}, {schemas.Consciousness, 0}, {schemas.Temperature, 39.5}} {
		out = append(out, d.send(o.k, o.v, s+float64(i)*0.1, s+0.8)...)
	}
	return out
}

// Situation 3: one complete observation set on a quiet ward. Before, no
// news2 alarm after 100 s (the persistence delay waited for a reading
// that never came). A charted set is scored and alarmed at once.
func TestAChartedNEWS2SetAlarmsAtOnceOnAQuietWard(t *testing.T) {
	f := defaultFeed(t)
	got := observationSet(newDevice(f, "P01", "obs"), 10)
	var news *schemas.Alert
	for i := range got {
		if got[i].Condition == "news2" {
			news = &got[i]
		}
	}
	if news == nil || news.State != schemas.Raised || news.Priority != schemas.High || news.Score == nil || *news.Score != 13 {
		t.Fatalf("a charted set of NEWS2 13: %+v (events %v)", news, conditions(got))
	}
	for s := 11; s <= 100; s++ {
		for _, a := range f.tick(s) {
			if a.Condition == "news2" && a.State == schemas.Raised && !a.Updated {
				t.Fatalf("raised again at %d s: %+v", s, a)
			}
		}
	}
}

// Situation 3 continued: the waits that needed a next reading fire on the
// processor clock of a quiet partition. The monitored values move the
// score (persistence applies), then nothing arrives.
func TestNEWS2WaitsFireOnAQuietPartition(t *testing.T) {
	f := defaultFeed(t)
	obs := newDevice(f, "P01", "obs")
	mon := newDevice(f, "P01", "mon")
	observationSet(obs, 0) // 13: raised at once, at 0.6 s
	// The monitor's SpO2 from 1 s to 5 s: 97 % (SpO2 3 → 0 points), 10,
	// still high; then nothing. The open alert must show 10 once
	// update_every (10 s) has passed since it was raised, without a
	// next reading.
	for s := 1; s <= 5; s++ {
		mon.send(schemas.SpO2, 97, float64(s), float64(s))
	}
	if cur := f.ps.Peek("P01").NEWS2.Open; cur == nil || cur.Score == nil || *cur.Score != 13 {
		t.Fatalf("within update_every: open alert %+v", cur)
	}
	var upd []schemas.Alert
	for s := 6; s <= 20; s++ {
		upd = append(upd, f.tick(s)...)
	}
	updated := false
	for _, a := range upd {
		updated = updated || a.Condition == "news2" && a.Updated && *a.Score == 10
	}
	cur := f.ps.Peek("P01").NEWS2.Open
	if cur == nil || cur.Score == nil || *cur.Score != 10 || !updated {
		t.Fatalf("after the monitored SpO2 improved: open alert %+v, events %v", cur, conditions(upd))
	}
	// A complete set of normal values charted: better band, resolved once
	// it stayed lower for resolve_after (5 min), with no further reading.
	normal := newDevice(f, "P01", "obs2")
	for i, o := range []struct {
		k schemas.Kind
		v float64
	}{{schemas.RespRate, 16}, {schemas.SpO2, 97}, {schemas.O2Supplement, 0}, {schemas.BPSystolic, 120},
		{schemas.HeartRate, 70}, {schemas.Consciousness, 0}, {schemas.Temperature, 37}} {
		normal.send(o.k, o.v, 100+float64(i)*0.1, 100.8)
	}
	var res []schemas.Alert
	for s := 101; s <= 500; s++ {
		res = append(res, f.tick(s)...)
	}
	resolved := -1.0
	for _, a := range res {
		if a.Condition == "news2" && (a.State == schemas.Resolved || a.State == schemas.ResolvedUnacknowledged) {
			resolved = a.TS.Sub(t0).Seconds()
		}
	}
	if resolved < 400 || resolved > 401 {
		t.Fatalf("the news2 alarm resolved at %v s, want at 400 s (5 min after 100 s); events %v", resolved, conditions(res))
	}
}

// A continuously monitored score persisting in a worse band raises when
// the delay is over even when no reading comes after: the monitor's last
// readings put the score in the band, then the monitor went quiet.
func TestNEWS2PersistenceFiresWithoutANextReading(t *testing.T) {
	f := defaultFeed(t)
	obs := newDevice(f, "P01", "obs")
	mon := newDevice(f, "P01", "mon")
	// A normal set, charted: 0.
	for i, o := range []struct {
		k schemas.Kind
		v float64
	}{{schemas.RespRate, 16}, {schemas.SpO2, 97}, {schemas.O2Supplement, 0}, {schemas.BPSystolic, 120},
		{schemas.HeartRate, 70}, {schemas.Consciousness, 0}, {schemas.Temperature, 37}} {
		obs.send(o.k, o.v, float64(i)*0.1, 0.8)
	}
	// The monitor's heart rate, established, then 135 (3 points: medium)
	// from 100 s; the last reading at 110 s; then silence on the ward.
	var got []schemas.Alert
	for s := 1; s <= 110; s++ {
		v := 70.0
		if s >= 100 {
			v = 135
		}
		got = append(got, mon.send(schemas.HeartRate, v, float64(s), float64(s))...)
	}
	if at := raisedAt(got, "news2"); at >= 0 {
		t.Fatalf("raised before the delay: %v", conditions(got))
	}
	for s := 111; s <= 170; s++ {
		got = append(got, f.tick(s)...)
	}
	if at := raisedAt(got, "news2"); at != 160 {
		t.Fatalf("news2 raised at %v s, want 160 s (1 min after 100 s) without a next reading; events %v", at, conditions(got))
	}
}

// Conditions' waits on a quiet partition: an alarm whose value came back
// in range resolves after resolve_after though nothing arrives after; a
// value beyond the limit held since its run began raises at the delay.
func TestConditionWaitsFireOnAQuietPartition(t *testing.T) {
	f := defaultFeed(t)
	ox := newDevice(f, "P01", "ox1")
	var got []schemas.Alert
	for s := 0; s <= 20; s++ {
		got = append(got, ox.send(schemas.SpO2, 85, float64(s), float64(s))...)
	}
	a := raisedAt(got, "spo2_low")
	if a != 15 {
		t.Fatalf("spo2_low raised at %v", a)
	}
	got = append(got, ox.send(schemas.SpO2, 97, 21, 21)...)
	for s := 22; s <= 60; s++ {
		got = append(got, f.tick(s)...)
	}
	resolved := -1.0
	for _, e := range got {
		if e.Condition == "spo2_low" && (e.State == schemas.Resolved || e.State == schemas.ResolvedUnacknowledged) {
			resolved = e.TS.Sub(t0).Seconds()
		}
	}
	if resolved != 51 {
		t.Fatalf("spo2_low resolved at %v s, want 51 s (30 s after 21 s) with no reading after; events %v", resolved, conditions(got))
	}
	// Respiration charted once at 30/min (resp_rate_high > 25 for 30 s):
	// the value holds until the next reading of its kind.
	g := defaultFeed(t)
	rr := newDevice(g, "P02", "obs")
	got = rr.send(schemas.RespRate, 30, 0, 0.2)
	for s := 1; s <= 40; s++ {
		got = append(got, g.tick(s)...)
	}
	if at := raisedAt(got, "resp_rate_high"); at != 30 {
		t.Fatalf("resp_rate_high raised at %v s, want 30 s; events %v", at, conditions(got))
	}
	_ = time.Second
}

// SatSeconds on a quiet partition: hovering SpO2 raised the alarm, the
// oximeter read 97 % once and went quiet. The integral decays while SpO2
// is in range, and the alarm resolves when it falls below half the
// threshold, at that event time, with no reading after. Before, it stayed
// open until the next reading.
func TestSatSecondsResolvesOnAQuietPartition(t *testing.T) {
	f := defaultFeed(t)
	ox := newDevice(f, "P01", "ox1")
	got := hover(ox, 120)
	if raisedAt(got, "spo2_satseconds") < 0 {
		t.Fatalf("hovering raised nothing: %v", conditions(got))
	}
	got = ox.send(schemas.SpO2, 97, 120, 120)
	sat := f.ps.Peek("P01").Sat
	rs := DefaultConfig().Default.SatSeconds
	want := t0.Add(120 * time.Second).Add(time.Duration(rs.Tau.Seconds() * math.Log(2*sat.Sum/rs.Threshold) * float64(time.Second)))
	for s := 121; s <= 600; s++ {
		got = append(got, f.tick(s)...)
	}
	var resolved time.Time
	for _, a := range got {
		if a.Condition == "spo2_satseconds" && a.State == schemas.Resolved {
			resolved = a.TS
		}
	}
	if !resolved.Equal(want) {
		t.Fatalf("spo2_satseconds resolved at %v, want %v (the integral %.1f %%·s below half the threshold); events %v", resolved, want, sat.Sum, conditions(got))
	}
}

// A patient's timers fire in the order of their deadlines, however late
// they are noticed: a held resolution due 5 s after the last heart rate
// and the heart rate's signal lost due 10 s after it, seen one by one by
// a processor that follows the wall clock, and both at once by one given
// the partition later (a rebalance). Before, the second fired them in the
// order of their kinds (signal lost first), and e2e case f's killed run
// differed from the reference.
func TestTimersFireInTheOrderOfTheirDeadlines(t *testing.T) {
	play := func(ticks []int) []string {
		f := defaultFeed(t)
		mon := newDevice(f, "P01", "mon")
		for s := 0; s < 60; s++ {
			v := 130.0
			if s >= 35 {
				v = 75 // back in range at 35 s: resolves at 65 s, with no reading after 59 s
			}
			mon.send(schemas.HeartRate, v, float64(s), float64(s))
		}
		var got []string
		for _, s := range ticks {
			for _, a := range f.tick(s) {
				got = append(got, fmt.Sprintf("%s %s %s", a.Condition, a.State, a.TS.Sub(t0)))
			}
		}
		return got
	}
	var oneByOne []int
	for s := 60; s <= 80; s++ {
		oneByOne = append(oneByOne, s)
	}
	a, b := play(oneByOne), play([]int{80})
	if !slices.Equal(a, b) || len(a) < 2 {
		t.Fatalf("noticed one by one: %v\nnoticed at once: %v", a, b)
	}
}

// A reading that moves the newest on by more than the reorder window
// closes the run whose points it pushes out of the window: respiration at
// 28/min stamped 0 s, then in range stamped 36 s, in one delivery (the
// readings between still in transit). The value held beyond the limit for 36 s:
// resp_rate_high (over 25 for 30 s) is raised at 30 s. Before, the 0 s
// point left the window before the rules saw the run closed, and nothing
// was raised (found by the reference model, seed 662).
func TestAJumpPastTheWindowClosesTheRun(t *testing.T) {
	f := defaultFeed(t)
	rr := newDevice(f, "P01", "mon")
	got := rr.send(schemas.RespRate, 16, -6, -6)
	// One delivery: the gateway's batch, shuffled.
	got = append(got, rr.send(schemas.RespRate, 28, 0, 36.5)...)
	got = append(got, rr.send(schemas.RespRate, 16, 36, 36.5)...)
	if at := raisedAt(got, "resp_rate_high"); at != 30 {
		t.Fatalf("resp_rate_high raised at %v s, want 30 s; events %v", at, conditions(got))
	}
}

// A closed run whose first readings left the window is evaluated from its
// real start. Respiration 4/min from 0 s to 12 s raises resp_rate_low
// (under 8 for 15 s) at 15 s; back in range at 18 s, it resolves at 48 s
// with nothing after (the value holds). Then a held-back batch arrives:
// 5/min from 24 s to 42 s, in range from 56 s. That run's delay ends at
// 39 s, inside the episode that ended at 48 s, so it raises nothing. Before,
// once 24 s and 30 s had left the window the run was taken to start at
// 36 s, its delay to end at 51 s, after the resolution, and an alarm was
// raised (found by the reference model, seed 1946).
func TestARunIsEvaluatedFromItsRealStart(t *testing.T) {
	f := defaultFeed(t)
	rr := newDevice(f, "P01", "mon")
	var got []schemas.Alert
	for _, s := range []float64{0, 6, 12} {
		got = append(got, rr.send(schemas.RespRate, 4, s, s)...)
	}
	got = append(got, rr.send(schemas.RespRate, 28, 18, 18.5)...)
	got = append(got, f.tick(49)...)
	for _, s := range []float64{24, 30, 36, 42} {
		got = append(got, rr.send(schemas.RespRate, 5, s, 70)...)
	}
	for _, s := range []float64{56, 62, 68} {
		got = append(got, rr.send(schemas.RespRate, 16, s, 70)...)
	}
	var evs []string
	for _, a := range got {
		if a.Condition == "resp_rate_low" {
			evs = append(evs, fmt.Sprintf("%s %v", a.State, a.TS.Sub(t0)))
		}
	}
	if want := []string{"raised 15s", "resolved-unacknowledged 48s"}; !slices.Equal(evs, want) {
		t.Fatalf("resp_rate_low: %v, want %v", evs, want)
	}
}

// Escalation counts for no one while monitoring was down: an alarm raised
// at 0 s (high: escalates every minute, then two) on a partition whose
// monitoring resumed at 300 s escalates first at 360 s, a tier after the
// resume, not three times at once when the clock reaches 300 s. Before, a
// replay reaching the live end fired every tier since the data's end ahead
// of the held waits, and how many depended on the wall clock.
func TestEscalationCountsFromTheResume(t *testing.T) {
	cfg := timerConfig()
	cfg.Default.Conditions = cfg.Default.Conditions[1:] // the critical rule alone
	f := newFeed(t, cfg)
	resumed := t0.Add(300 * time.Second)
	f.s.Resume(func(int32) time.Time { return resumed })
	one(t, "critical value", f.reading("P01", schemas.SpO2, 75, 0), "spo2_critical", schemas.Raised)
	if got := f.tick(300); len(got) != 0 {
		t.Fatalf("at the resume: %+v", got)
	}
	esc := one(t, "a tier after the resume", f.tick(360), "spo2_critical", schemas.Escalated)
	if esc.EscalationLevel != 1 || !esc.TS.Equal(t0.Add(360*time.Second)) {
		t.Fatalf("escalation: %+v", esc)
	}
}
