package clinical

// A reference model of the documented rules (docs/rules.md), deliberately
// simple and separate from the engine, and the property test that holds
// the engine to it on generated device behaviour (issue 25).
//
// The model keeps every reading a patient's devices sent, forever, and at
// every arrival (and every moment the processor clock passes a wait) sorts
// each kind's readings by event time and walks them from the first: no
// reorder window carried, no runs remembered, no timer queue. What it
// keeps between arrivals is only what the rules say is final: the alarms
// raised and resolved. The engine does the same work incrementally over a
// bounded window with timers; where the two disagree, one is wrong.
//
// Rules the model covers: condition rules with delay, hysteresis
// (resolve_after) and resolution by the next reading in range, critical
// values, the value holding until the next reading of its kind (so waits
// end on a quiet partition), an alarm raised or resolved never withdrawn
// (a reading placed at or before a resolution raises nothing again),
// latching of high alarms, copies, lateness (reorder_window) and old
// readings (max_age), restarts of the processor (through the changelog
// encoding), NEWS2 (charted sets at once, persistence, resolution).

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

type refReading struct {
	ts, at time.Time
	v      float64
	order  int // arrival order, for readings sharing an event time
}

type refCond struct {
	open     bool
	raisedTS time.Time
	closed   time.Time
	priority schemas.Priority
}

type refPatient struct {
	seen     map[string]bool
	highest  map[string]schemas.Reading // by device and kind
	readings map[schemas.Kind][]refReading
	newest   map[schemas.Kind]time.Time
	lastAt   map[schemas.Kind]time.Time
	conds    map[string]*refCond
	news2    refNEWS2
	signal   map[schemas.Kind]*refSignal
	sat      refSat
}

// refSignal is a kind's deliveries as signal lost sees them (arrival
// time): the last arrival, the gap between the last two deliveries, when
// the current run of deliveries began; and whether its alarm is open.
type refSignal struct {
	at, since time.Time
	gap       time.Duration
	open      bool
}

// refSat is the SatSeconds integral: the dips that ended (sum), the one
// going on (run), as of the SpO2 reading at ts.
type refSat struct {
	sum, run float64
	ts       time.Time
	open     bool
}

type refNEWS2 struct {
	open    bool
	rank    int
	atLeast [3]time.Time
	lower   time.Time // since when the score stayed below the open band
	clock   time.Time
	clockAt time.Time
}

// refEvent is what the comparison looks at: which patient, which
// condition, raised or ended, at which event time.
type refEvent struct {
	patient, condition, what string
	ts                       time.Time
}

func (e refEvent) String() string {
	return fmt.Sprintf("%s %s %s at %s", e.patient, e.condition, e.what, e.ts.Format("15:04:05.000"))
}

type refModel struct {
	cfg      Config
	patients map[string]*refPatient
	clock    time.Time
	n        int
	events   []refEvent
}

func newRefModel(cfg Config) *refModel {
	return &refModel{cfg: cfg, patients: map[string]*refPatient{}}
}

func (m *refModel) patient(id string) *refPatient {
	p := m.patients[id]
	if p == nil {
		p = &refPatient{seen: map[string]bool{}, highest: map[string]schemas.Reading{}, readings: map[schemas.Kind][]refReading{}, newest: map[schemas.Kind]time.Time{},
			lastAt: map[schemas.Kind]time.Time{}, conds: map[string]*refCond{}, signal: map[schemas.Kind]*refSignal{}}
		m.patients[id] = p
	}
	return p
}

// advance moves the processor clock to now and ends every wait due by it.
func (m *refModel) advance(now time.Time) {
	if now.After(m.clock) {
		m.clock = now
	}
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range m.patients {
			if !yield(id) {
				return
			}
		}
	}) {
		p := m.patients[id]
		for _, k := range slices.Sorted(func(yield func(schemas.Kind) bool) {
			for k := range p.readings {
				if !yield(k) {
					return
				}
			}
		}) {
			if !m.liveAt(p.newest[k], p.lastAt[k]) {
				continue
			}
			m.conditions(id, p, k, p.newest[k].Add(m.clock.Sub(p.lastAt[k])), true)
		}
		m.news2Timers(id, p)
		if r := m.cfg.Default.SatSeconds; r != nil && p.sat.open && p.sat.run == 0 && m.liveAt(p.newest[schemas.SpO2], p.lastAt[schemas.SpO2]) {
			// The integral decays while SpO2 is in range: below half the
			// threshold at this event time.
			if v, ts, _ := p.latestValue(schemas.SpO2); v >= r.Limit && ts.Equal(p.sat.ts) {
				e := p.sat.ts.Add(time.Duration(r.Tau.Seconds() * math.Log(2*p.sat.sum/r.Threshold) * float64(time.Second)))
				if !m.clock.Before(p.lastAt[schemas.SpO2].Add(e.Sub(ts))) {
					p.sat.open = false
					m.emit(id, "spo2_satseconds", "ended", e)
				}
			}
		}
		for _, sl := range m.cfg.Default.SignalLost {
			// Lost: an established cadence (the last two deliveries
			// closer than After, the run at least half of After long),
			// then silence for After, in arrival time.
			s := p.signal[sl.Kind]
			if s == nil || s.open || s.gap <= 0 || s.gap >= sl.After || s.at.Sub(s.since) < sl.After/2 {
				continue
			}
			if due := s.at.Add(sl.After); !m.clock.Before(due) {
				s.open = true
				m.emit(id, SignalLostCondition(sl.Kind), "raised", due)
			}
		}
	}
}

func (m *refModel) liveAt(ts, at time.Time) bool {
	return m.cfg.MaxAge <= 0 || at.Sub(ts) <= m.cfg.MaxAge
}

// arrive applies one reading arriving at at.
func (m *refModel) arrive(rd schemas.Reading, at time.Time) {
	m.advance(at)
	p := m.patient(rd.PatientID)
	key := fmt.Sprint(rd.DeviceID, "|", rd.Kind, "|", rd.Seq)
	stream := fmt.Sprint(rd.DeviceID, "|", rd.Kind)
	hi, ok := p.highest[stream]
	if p.seen[key] || ok && rd.Seq+63 < hi.Seq && !rd.TS.After(hi.TS) {
		return // a copy, or so late it counts as one
	}
	p.seen[key] = true
	if !ok || rd.Seq > hi.Seq {
		p.highest[stream] = rd
	}
	m.delivered(rd, p, at)
	newest, had := p.newest[rd.Kind]
	if at.After(p.lastAt[rd.Kind]) {
		p.lastAt[rd.Kind] = at // the signal counts, even late
	}
	if had && rd.TS.Before(newest.Add(-m.cfg.ReorderWindow)) {
		return // late: history only
	}
	charted := !had || rd.TS.Sub(newest) > m.cfg.NEWS2SetWindow
	m.n++
	p.readings[rd.Kind] = append(p.readings[rd.Kind], refReading{ts: rd.TS, at: at, v: rd.Value, order: m.n})
	if !had || rd.TS.After(newest) {
		p.newest[rd.Kind] = rd.TS
	}
	live := m.liveAt(rd.TS, at)
	m.conditions(rd.PatientID, p, rd.Kind, p.newest[rd.Kind], live)
	if !had || !rd.TS.Before(newest) {
		if rd.Kind == schemas.SpO2 {
			m.satSeconds(rd, p, live)
		}
		m.news2(rd.PatientID, p, rd, charted, live, at)
	}
}

// delivered keeps the kind's cadence, and a reading of a kind whose
// signal was lost ends that alarm, however late it is stamped.
func (m *refModel) delivered(rd schemas.Reading, p *refPatient, at time.Time) {
	s := p.signal[rd.Kind]
	switch {
	case s == nil:
		p.signal[rd.Kind] = &refSignal{at: at, since: at}
		return
	case at.Sub(s.at) <= 0: // not a later arrival
	case at.Sub(s.at) < 250*time.Millisecond: // the same delivery
		s.at = at
	case at.Sub(s.at) >= 2*time.Minute: // a new run
		s.gap, s.since, s.at = at.Sub(s.at), at, at
	default:
		s.gap, s.at = at.Sub(s.at), at
	}
	if s.open {
		s.open = false
		m.emit(rd.PatientID, SignalLostCondition(rd.Kind), "ended", rd.TS)
	}
}

// satSeconds integrates SpO2 below the limit over in-order readings: a
// dip's depth times the time since the previous reading (at most 15 s);
// a dip that ends before spo2_low or spo2_critical alarmed on it joins
// the sum, which decays with tau while in range.
func (m *refModel) satSeconds(rd schemas.Reading, p *refPatient, live bool) {
	r := m.cfg.Default.SatSeconds
	if r == nil {
		return
	}
	st := &p.sat
	var dt float64
	if !st.ts.IsZero() {
		dt = min(15, max(0, rd.TS.Sub(st.ts).Seconds()))
	}
	if rd.Value < r.Limit {
		st.run += (r.Limit - rd.Value) * dt
	} else {
		alarmed := p.conds["spo2_low"] != nil && p.conds["spo2_low"].open || p.conds["spo2_critical"] != nil && p.conds["spo2_critical"].open
		if !alarmed {
			st.sum += st.run
		}
		st.run = 0
		st.sum *= math.Exp(-dt / r.Tau.Seconds())
		if st.sum < 0.01 {
			st.sum = 0
		}
	}
	st.ts = rd.TS
	switch {
	case !live:
	case !st.open && st.sum >= r.Threshold:
		st.open = true
		m.emit(rd.PatientID, "spo2_satseconds", "raised", rd.TS)
	case st.open && st.sum < r.Threshold/2 && rd.Value >= r.Limit:
		st.open = false
		m.emit(rd.PatientID, "spo2_satseconds", "ended", rd.TS)
	}
}

func (m *refModel) emit(patient, cond, what string, ts time.Time) {
	m.events = append(m.events, refEvent{patient, cond, what, ts})
}

// conditions walks the kind's readings in event-time order up to horizon.
func (m *refModel) conditions(id string, p *refPatient, k schemas.Kind, horizon time.Time, live bool) {
	rs := slices.Clone(p.readings[k])
	slices.SortStableFunc(rs, func(a, b refReading) int {
		if c := a.ts.Compare(b.ts); c != 0 {
			return c
		}
		return cmp.Compare(a.order, b.order)
	})
	for _, rule := range m.cfg.Default.Conditions {
		if rule.Kind != k {
			continue
		}
		c := p.conds[rule.Condition]
		if c == nil {
			c = &refCond{priority: rule.Priority}
			p.conds[rule.Condition] = c
		}
		beyond := func(v float64) bool {
			if rule.Below {
				return v < rule.Limit
			}
			return v > rule.Limit
		}
		for i := 0; i < len(rs); {
			b := beyond(rs[i].v)
			j := i
			for j+1 < len(rs) && beyond(rs[j+1].v) == b {
				j++
			}
			from, end, last := rs[i].ts, horizon, j+1 == len(rs)
			if !last {
				end = rs[j+1].ts
			}
			lasted := func(from time.Time, wait time.Duration) bool {
				if last {
					return !end.Before(from.Add(wait))
				}
				return end.Sub(from) > wait
			}
			switch {
			case b && !c.open:
				at := from.Add(rule.Delay)
				if !at.After(c.closed) {
					k := i
					for k <= j && !rs[k].ts.After(c.closed) {
						k++
					}
					if k > j {
						break
					}
					at = rs[k].ts
				}
				if live && lasted(from, rule.Delay) {
					c.open, c.raisedTS = true, at
					m.emit(id, rule.Condition, "raised", at)
				}
			case !b && c.open && end.After(c.raisedTS):
				if from.Before(c.raisedTS) {
					from = c.raisedTS
				}
				if live && lasted(from, rule.ResolveAfter) {
					c.open, c.closed = false, from.Add(rule.ResolveAfter)
					m.emit(id, rule.Condition, "ended", c.closed)
				}
			}
			i = j + 1
		}
	}
}

// news2 scores the set as of rd, if complete (every required parameter
// within max_age), raising a band that persisted or that was charted.
func (m *refModel) news2(id string, p *refPatient, rd schemas.Reading, charted, live bool, at time.Time) {
	if !isNEWS2Parameter(rd.Kind) {
		return
	}
	n := &p.news2
	for _, k := range m.cfg.NEWS2Require {
		t, ok := p.newest[k]
		if !ok || rd.TS.Sub(t) > m.cfg.NEWS2MaxAge {
			return
		}
		if rd.TS.Sub(t) > m.cfg.NEWS2SetWindow {
			charted = false
		}
	}
	if rd.TS.After(n.clock) {
		n.clock, n.clockAt = rd.TS, at
	}
	m.news2At(id, p, rd.TS, charted, live)
}

// latestAt is the value of kind's newest reading (the value holds).
func (p *refPatient) latestValue(k schemas.Kind) (float64, time.Time, bool) {
	var best refReading
	ok := false
	for _, r := range p.readings[k] {
		if !ok || r.ts.After(best.ts) || r.ts.Equal(best.ts) && r.order > best.order {
			best, ok = r, true
		}
	}
	return best.v, best.ts, ok
}

func (m *refModel) news2At(id string, p *refPatient, t time.Time, charted, live bool) {
	n := &p.news2
	var vals news2Values
	in := m.cfg.news2Input(p.latestValue, false, t, &vals)
	prio, _ := ScoreNEWS2(in).Priority()
	rank := prio.Rank()
	now := n.clock
	persisted := 0
	for l := 1; l <= 3; l++ {
		switch {
		case rank < l:
			n.atLeast[l-1] = time.Time{}
		case n.atLeast[l-1].IsZero():
			n.atLeast[l-1] = now
		}
		if !n.atLeast[l-1].IsZero() && now.Sub(n.atLeast[l-1]) >= m.cfg.NEWS2Delay {
			persisted = l
		}
	}
	if charted {
		persisted = max(persisted, rank)
	}
	if !live {
		return
	}
	switch {
	case persisted > n.rank:
		if !n.open {
			m.emit(id, "news2", "raised", t)
		} else {
			m.emit(id, "news2", "raised again", t)
		}
		n.open, n.rank, n.lower = true, persisted, time.Time{}
	case !n.open:
	case rank < n.rank:
		if n.lower.IsZero() {
			n.lower = now
		}
		if now.Sub(n.lower) >= m.cfg.NEWS2ResolveAfter {
			n.lower = time.Time{}
			if rank > 0 {
				n.rank = rank
				m.emit(id, "news2", "lowered", t)
			} else {
				n.open, n.rank = false, 0
				m.emit(id, "news2", "ended", t)
			}
		}
	default:
		n.lower = time.Time{}
	}
}

// news2Timers ends the NEWS2 waits due by the clock: the set scored at
// the event time each ends at, the values holding.
func (m *refModel) news2Timers(id string, p *refPatient) {
	n := &p.news2
	for range 8 {
		if n.clockAt.IsZero() || !m.liveAt(n.clock, n.clockAt) {
			return
		}
		var e time.Time
		at := func(t time.Time) {
			if !t.IsZero() && (e.IsZero() || t.Before(e)) {
				e = t
			}
		}
		for l := n.rank + 1; l <= 3; l++ {
			if !n.atLeast[l-1].IsZero() {
				at(n.atLeast[l-1].Add(m.cfg.NEWS2Delay))
			}
		}
		if n.open && !n.lower.IsZero() {
			at(n.lower.Add(m.cfg.NEWS2ResolveAfter))
		}
		if e.IsZero() {
			return
		}
		if e.Before(n.clock) {
			e = n.clock
		}
		due := n.clockAt.Add(e.Sub(n.clock))
		if m.clock.Before(due) {
			return
		}
		n.clock, n.clockAt = e, due
		for _, k := range m.cfg.NEWS2Require {
			if _, ts, ok := p.latestValue(k); !ok || e.Sub(ts) > m.cfg.NEWS2MaxAge {
				n.atLeast, n.lower = [3]time.Time{}, time.Time{}
				return
			}
		}
		m.news2At(id, p, e, false, true)
	}
}

// engineEvents keeps the engine's events the model speaks of: raises
// (not in-place updates) and ends of clinical alarms; for NEWS2 also the
// band raised again or lowered (its escalations and acknowledgements keep
// the band and are left out).
func engineEvents(alerts []schemas.Alert) []refEvent {
	var out []refEvent
	news2Rank := map[string]int{}
	for _, a := range alerts {
		if a.Updated {
			continue
		}
		ended := a.State == schemas.Resolved || a.State == schemas.ResolvedUnacknowledged
		if ended && strings.HasPrefix(a.Message, "acknowledged after") {
			continue
		}
		what := ""
		if a.Condition == "news2" {
			cur := news2Rank[a.PatientID]
			switch r := a.Priority.Rank(); {
			case ended:
				what, news2Rank[a.PatientID] = "ended", 0
			case r > cur && a.State == schemas.Raised && cur == 0:
				what, news2Rank[a.PatientID] = "raised", r
			case r > cur && a.State == schemas.Raised:
				what, news2Rank[a.PatientID] = "raised again", r
			case r < cur:
				what, news2Rank[a.PatientID] = "lowered", r
			}
		} else {
			switch {
			case a.State == schemas.Raised:
				what = "raised"
			case ended:
				what = "ended"
			}
		}
		if what != "" {
			out = append(out, refEvent{a.PatientID, a.Condition, what, a.TS})
		}
	}
	return out
}

// scenario is generated device behaviour: readings with the arrival time
// a gateway delivers each at, in arrival order, and where the processor
// restarts.
type scenario struct {
	name     string
	arrivals []arrival
	restarts map[int]bool
	end      time.Time
}

type arrival struct {
	rd schemas.Reading
	at time.Time
}

// genScenario makes one patient-ward's worth of device behaviour: values
// that drift into and out of ranges (runs beyond limits of every length,
// single-reading artefacts), monitors at 1 Hz and slower, a cuff and a
// thermometer and a nurse's charted NEWS2 sets, delivered in batches with
// latency, retried batches (copies), batches held back within the reorder
// window, outages a gateway buffers and delivers at once, readings older
// than max_age, devices that fall quiet, and processor restarts.
func genScenario(seed uint64) scenario {
	r := rand.New(rand.NewPCG(seed, 0x25))
	base := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	sec := func(s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }
	var out []arrival
	patients := 1 + r.IntN(2)
	dur := 240 + r.IntN(360)
	type kindSpec struct {
		kind         schemas.Kind
		normal, mild float64
		crit         float64
		period       float64
		extreme      float64 // a second critical level, the other side (0: none)
	}
	specs := []kindSpec{
		{schemas.SpO2, 97, 87, 70, 1, 0},
		{schemas.HeartRate, 75, 130, 25, 1, 160},
		{schemas.RespRate, 16, 28, 5, 3, 0},
	}
	for p := range patients {
		id := fmt.Sprintf("G%d", p+1)
		seq := map[string]uint64{}
		next := func(dev string) uint64 { seq[dev]++; return seq[dev] }
		for _, ks := range specs {
			dev := id + "-mon-" + string(ks.kind)
			period := ks.period * float64(1+r.IntN(2))
			// The value: segments of normal, mild, critical, artefacts.
			level := ks.normal
			hover := false // SpO2 alternating 88 and 91 % every 5 s
			segEnd := 0.0
			quietUntil := -1.0
			var batch []schemas.Reading
			batchMax := 1 + r.IntN(8)
			flush := func(now float64) {
				if len(batch) == 0 {
					return
				}
				at := now + 0.05 + r.Float64()*1.5
				switch x := r.Float64(); {
				case x < 0.08: // held back within the window
					at += 3 + r.Float64()*15
				case x < 0.11: // older than max_age: never alarms
					at += 330 + r.Float64()*60
				}
				b := slices.Clone(batch)
				if r.Float64() < 0.15 {
					r.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
				}
				for _, rd := range b {
					out = append(out, arrival{rd, sec(at)})
				}
				if r.Float64() < 0.1 { // retried: copies
					for _, rd := range b {
						out = append(out, arrival{rd, sec(at + 0.5 + r.Float64()*40)})
					}
				}
				batch = batch[:0]
				batchMax = 1 + r.IntN(8)
			}
			for s := r.Float64() * period; s < float64(dur); s += period {
				if s >= segEnd {
					segEnd = s + 3 + r.Float64()*60
					hover = false
					switch x := r.Float64(); {
					case x < 0.12 && ks.kind == schemas.SpO2:
						hover, segEnd = true, s+60+r.Float64()*120
					case x < 0.45:
						level = ks.normal
					case x < 0.75:
						level = ks.mild
					case x < 0.85:
						level = ks.crit
						if ks.extreme != 0 && r.Float64() < 0.5 {
							level = ks.extreme
						}
					case x < 0.95: // quiet: the device sends nothing
						flush(s)
						quietUntil = s + 10 + r.Float64()*90
						level = ks.normal
					default: // an outage the gateway buffers
						flush(s)
						hold := 10 + r.Float64()*40
						var held []schemas.Reading
						for t := s; t < s+hold && t < float64(dur); t += period {
							v := ks.mild
							if r.Float64() < 0.3 {
								v = ks.crit
							}
							held = append(held, schemas.Reading{PatientID: id, DeviceID: dev + "-gw", Kind: ks.kind, Value: v, TS: sec(t), Seq: next(dev + "-gw")})
						}
						for _, rd := range held {
							out = append(out, arrival{rd, sec(s + hold + 0.3)})
						}
						s += hold
						continue
					}
				}
				if s < quietUntil {
					continue
				}
				v := level + (r.Float64()-0.5)*2
				if hover {
					v = []float64{88, 91}[int(s/5)%2]
				}
				if r.Float64() < 0.03 { // an artefact
					v = ks.crit
				}
				batch = append(batch, schemas.Reading{PatientID: id, DeviceID: dev, Kind: ks.kind, Value: v, TS: sec(s), Seq: next(dev)})
				if len(batch) >= batchMax {
					flush(s)
				}
			}
			flush(float64(dur))
		}
		// Spot checks: a cuff, a thermometer; a nurse's full sets.
		for s := 30 + r.Float64()*60; s < float64(dur); s += 60 + r.Float64()*200 {
			sys := []float64{120, 85, 190}[r.IntN(3)]
			temp := []float64{37, 39.6, 34.5}[r.IntN(3)]
			at := s + 0.2 + r.Float64()
			for _, o := range []struct {
				k schemas.Kind
				v float64
			}{{schemas.BPSystolic, sys}, {schemas.Temperature, temp}, {schemas.O2Supplement, float64(r.IntN(2))}, {schemas.Consciousness, float64(r.IntN(4) / 3)}} {
				dev := id + "-obs"
				out = append(out, arrival{schemas.Reading{PatientID: id, DeviceID: dev, Kind: o.k, Value: o.v, TS: sec(s), Seq: next(dev)}, sec(at)})
			}
		}
	}
	for i := range out {
		spec, _ := schemas.SpecFor(out[i].rd.Kind)
		out[i].rd.Unit = spec.Unit
	}
	slices.SortStableFunc(out, func(a, b arrival) int { return a.at.Compare(b.at) })
	restarts := map[int]bool{}
	for range r.IntN(4) {
		restarts[r.IntN(len(out)+1)] = true
	}
	return scenario{name: fmt.Sprintf("seed %d", seed), arrivals: out, restarts: restarts, end: sec(float64(dur) + 900)}
}

// modelConfig is the default adult rules without patient expiry (the
// model does not speak of it); escalation is left on (the comparison
// ignores it, but it must not disturb the rest).
func modelConfig() Config {
	cfg := DefaultConfig()
	cfg.ExpireIdle, cfg.ExpireUnestablished = 0, 0
	return cfg
}

// runEngine feeds the scenario to the engine as the processor does (a
// record at a time, timers by stream time before each, the wall clock at
// the end), restarting it from its changelog encoding where the scenario
// says, and returns its events.
func runEngine(t testing.TB, sc scenario) []refEvent {
	cfg := modelConfig()
	f := newFeed(t, cfg)
	var alerts []schemas.Alert
	for i, a := range sc.arrivals {
		if sc.restarts[i] {
			f = f.restarted()
		}
		alerts = append(alerts, f.apply(Input{Arrival: a.at, Reading: &a.rd})...)
	}
	if sc.restarts[len(sc.arrivals)] {
		f = f.restarted()
	}
	// Caught up: the wall clock, long after the last reading, ends every
	// wait still open (each event carries its own deadline, whenever it
	// is noticed).
	alerts = append(alerts, f.s.Tick(func(int32) time.Time { return sc.end })...)
	f.s.Commit()
	return engineEvents(alerts)
}

func runModel(sc scenario) []refEvent {
	m := newRefModel(modelConfig())
	for _, a := range sc.arrivals {
		m.arrive(a.rd, a.at)
	}
	m.advance(sc.end)
	return m.events
}

// sortEvents orders events by patient, condition and time: the engine
// and the model may interleave different patients' and conditions'
// events differently (timers fire per patient), never one condition's.
func sortEvents(evs []refEvent) []refEvent {
	out := slices.Clone(evs)
	slices.SortStableFunc(out, func(a, b refEvent) int {
		return cmp.Or(cmp.Compare(a.patient, b.patient), cmp.Compare(a.condition, b.condition), a.ts.Compare(b.ts))
	})
	return out
}

// compareWithModel fails t unless the engine's events are the model's,
// which it returns.
func compareWithModel(t testing.TB, sc scenario) []refEvent {
	got, want := sortEvents(runEngine(t, sc)), sortEvents(runModel(sc))
	if slices.Equal(got, want) {
		return want
	}
	var diff []string
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i].String()
		}
		if i < len(want) {
			w = want[i].String()
		}
		mark := "  "
		if g != w {
			mark = "≠ "
		}
		diff = append(diff, fmt.Sprintf("%s%-52s %s", mark, g, w))
	}
	t.Fatalf("%s: the engine (left) and the model (right) disagree:\n%s", sc.name, strings.Join(diff, "\n"))
	return nil
}

// The engine against the model on 200 generated wards in make test, and
// on MONITORME_MODEL_SCENARIOS of them (10,000) in make fuzz, sharded over
// the cores.
func TestEngineAgreesWithTheModel(t *testing.T) {
	n := 200
	if v, err := strconv.Atoi(os.Getenv("MONITORME_MODEL_SCENARIOS")); err == nil && v > 0 {
		n = v
	}
	if testing.Short() {
		n = 20
	}
	var mu sync.Mutex
	raised := 0
	by := map[string]int{}
	shards := runtime.GOMAXPROCS(0)
	t.Run("scenarios", func(t *testing.T) {
		for i := range shards {
			t.Run(fmt.Sprint("shard", i), func(t *testing.T) {
				t.Parallel()
				for seed := uint64(i); seed < uint64(n); seed += uint64(shards) {
					if seed > 0 && seed%1000 < uint64(shards) && n > 1000 {
						t.Logf("seed %d: the engine agrees with the model so far", seed)
					}
					evs := compareWithModel(t, genScenario(seed))
					mu.Lock()
					for _, e := range evs {
						if e.what == "raised" {
							raised++
							by[e.condition]++
						}
					}
					mu.Unlock()
				}
			})
		}
	})
	if t.Failed() {
		return
	}
	// Not a vacuous agreement: every rule the model covers raised alarms.
	cfg := modelConfig()
	want := []string{"news2", "spo2_satseconds"}
	for _, c := range cfg.Default.Conditions {
		if c.Kind == schemas.SpO2 || c.Kind == schemas.HeartRate || c.Kind == schemas.RespRate || c.Kind == schemas.BPSystolic || c.Kind == schemas.Temperature {
			want = append(want, c.Condition)
		}
	}
	for _, sl := range cfg.Default.SignalLost {
		want = append(want, SignalLostCondition(sl.Kind))
	}
	for _, c := range want {
		if by[c] == 0 && !testing.Short() {
			t.Errorf("no %s raised over %d scenarios: the generator does not reach it", c, n)
		}
	}
	t.Logf("%d scenarios, %d alarms raised, engine and model agree", n, raised)
}

func FuzzEngineAgainstModel(f *testing.F) {
	for seed := range uint64(8) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		compareWithModel(t, genScenario(seed))
	})
}
