package producers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/spf13/pflag"

	"github.com/monitorme/monitorme/internal/once"
	"github.com/monitorme/monitorme/schemas"
)

// SimConfig configures the device simulator.
type SimConfig struct {
	Patients int
	// Speed multiplies every device's rate: at 10, a heart rate arrives
	// every 50 ms. Event times stay wall-clock times, so the readings never
	// run into the future.
	Speed float64
	Seed  uint64
	// FirstEpisode is when the first patient deteriorates, so a fresh
	// `monitorme dev` shows an alert within seconds; later episodes are
	// random.
	FirstEpisode time.Duration
}

// DefaultSimConfig returns the defaults the flag help names.
func DefaultSimConfig() SimConfig {
	return SimConfig{Patients: 20, Speed: 1, FirstEpisode: 2 * time.Second}
}

// RegisterFlags binds c to flags.
func (c *SimConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.IntVar(&c.Patients, "patients", c.Patients, "simulated patients")
	fs.Float64Var(&c.Speed, "speed", c.Speed, "rate multiplier of every simulated device")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "random seed (0: from the clock)")
}

// Validate refuses settings the simulator cannot honor.
func (c *SimConfig) Validate() error {
	switch {
	case c.Patients < 1 || c.Patients > 100_000:
		return fmt.Errorf("patients: %d, want 1 to 100000", c.Patients)
	case !(c.Speed > 0) || c.Speed > 10_000:
		return fmt.Errorf("speed: %v, want more than 0 and at most 10000", c.Speed)
	}
	return nil
}

// Sender delivers a batch of readings; an error means the batch must be
// sent again (same readings, same sequence numbers).
type Sender interface {
	Send(ctx context.Context, rs []schemas.Reading) error
}

// schedule is how often each vital is measured: the MonitorMe kata's rates.
var schedule = []struct {
	every  time.Duration
	kinds  []schemas.Kind
	device string
}{
	{500 * time.Millisecond, []schemas.Kind{schemas.HeartRate}, "monitor"},
	{time.Second, []schemas.Kind{schemas.RespRate, schemas.ECG}, "monitor"},
	{5 * time.Second, []schemas.Kind{schemas.SpO2}, "oximeter"},
	{2 * time.Minute, []schemas.Kind{schemas.Glucose}, "glucometer"},
	{2 * time.Minute, []schemas.Kind{schemas.Sleep}, "bed"},
	{5 * time.Minute, []schemas.Kind{schemas.Temperature}, "thermometer"},
	// Oxygen and consciousness are charted by the nurse, not a device.
	{5 * time.Minute, []schemas.Kind{schemas.O2Supplement, schemas.Consciousness}, "obs"},
	{time.Hour, []schemas.Kind{schemas.BPSystolic, schemas.BPDiastolic}, "bpcuff"},
}

// Simulator generates readings of a ward of patients.
type Simulator struct {
	cfg      SimConfig
	send     Sender
	log      *slog.Logger
	rng      *rand.Rand
	patients []*patient
	seq      map[string]uint64
	ran      once.Guard
}

// NewSimulator returns a simulator delivering to send.
func NewSimulator(cfg SimConfig, send Sender, log *slog.Logger) (*Simulator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	s := &Simulator{cfg: cfg, send: send, log: log, rng: rand.New(rand.NewPCG(seed, seed>>1)), seq: map[string]uint64{}}
	for i := range cfg.Patients {
		s.patients = append(s.patients, newPatient(fmt.Sprintf("P%03d", i+1), s.rng))
	}
	s.patients[0].nextEpisode = cfg.FirstEpisode
	// Long enough, in wall-clock time whatever the speed, for spo2_low's
	// 15 s of event time (readings carry wall-clock times): at --speed 5
	// a random length ended a third of first episodes before it, so a
	// fresh dev showed no alert (NEWS2 no longer alarms on one parameter).
	s.patients[0].firstFor = max(2*time.Minute, time.Duration(float64(45*time.Second)*cfg.Speed))
	return s, nil
}

// Run emits readings until ctx ends. Every vital is sent once at start, so
// the latest vitals of every patient are known at once.
// It runs once: a second call returns once.ErrRunTwice.
func (s *Simulator) Run(ctx context.Context) error {
	if err := s.ran.Start("simulator"); err != nil {
		return err
	}
	tick := time.Duration(float64(500*time.Millisecond) / s.cfg.Speed)
	t := time.NewTicker(max(tick, time.Millisecond))
	defer t.Stop()
	start := time.Now()
	var sim time.Duration // simulated time since start
	due := make([]time.Duration, len(schedule))
	for {
		now := time.Now()
		batch := s.step(now, sim, due)
		if err := s.deliver(ctx, batch); err != nil {
			return nil // ctx ended
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		sim = time.Duration(float64(time.Since(start)) * s.cfg.Speed)
	}
}

// PatientIDs are the simulated patients' ids, in bed order.
func (s *Simulator) PatientIDs() []string {
	ids := make([]string, len(s.patients))
	for i, p := range s.patients {
		ids[i] = p.id
	}
	return ids
}

// step advances every patient to simulated time sim and returns the
// readings due.
func (s *Simulator) step(now time.Time, sim time.Duration, due []time.Duration) []schemas.Reading {
	var batch []schemas.Reading
	for _, p := range s.patients {
		p.advance(sim, s.rng)
	}
	for i, sch := range schedule {
		if sim < due[i] {
			continue
		}
		due[i] = sim + sch.every
		for _, p := range s.patients {
			dev := p.id + "-" + sch.device
			for _, k := range sch.kinds {
				s.seq[dev]++
				batch = append(batch, p.reading(k, dev, s.seqBase()+s.seq[dev], now, s.rng))
			}
		}
	}
	return batch
}

// seqBase makes sequence numbers unique across simulator restarts, as a
// real device's persisted counter would: a restarted device must not reuse
// the identity of a reading it sent before.
func (s *Simulator) seqBase() uint64 {
	if s.seq[""] == 0 {
		s.seq[""] = uint64(time.Now().UnixMicro())
	}
	return s.seq[""]
}

// deliver retries a batch until it is accepted or ctx ends; a retried batch
// carries the same sequence numbers, so nothing is counted twice.
func (s *Simulator) deliver(ctx context.Context, batch []schemas.Reading) error {
	if len(batch) == 0 {
		return nil
	}
	backoff := 100 * time.Millisecond
	for {
		err := s.send.Send(ctx, batch)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrRejected):
			// Our own readings refused as invalid is a bug here or there;
			// resending would loop forever, so say so loudly and move on.
			s.log.Error("simulator batch rejected as invalid; dropped", "readings", len(batch), "err", err)
			return nil
		}
		s.log.Warn("simulator batch not accepted; retrying", "readings", len(batch), "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// patient is one simulated patient: a mean-reverting random walk per vital
// around the patient's baseline, shifted by sleep and by episodes of
// deterioration.
type patient struct {
	id          string
	base, cur   map[schemas.Kind]float64
	asleep      bool
	episode     *episode
	nextEpisode time.Duration
	last        time.Duration
	// firstFor is how long the first, scheduled episode lasts (sim time).
	firstFor time.Duration
}

type episode struct {
	name  string
	shift map[schemas.Kind]float64
	until time.Duration
}

// episodes are the deteriorations a simulated patient goes through; each
// crosses at least one alert limit.
var episodes = []struct {
	name  string
	shift map[schemas.Kind]float64
}{
	{"tachycardia", map[schemas.Kind]float64{schemas.HeartRate: 60}},
	{"desaturation", map[schemas.Kind]float64{schemas.SpO2: -11, schemas.HeartRate: 20, schemas.RespRate: 8}},
	{"respiratory distress", map[schemas.Kind]float64{schemas.RespRate: 14, schemas.SpO2: -5}},
	{"fever", map[schemas.Kind]float64{schemas.Temperature: 3, schemas.HeartRate: 25}},
	{"hypotension", map[schemas.Kind]float64{schemas.BPSystolic: -40, schemas.BPDiastolic: -25, schemas.HeartRate: 30}},
	{"hypoglycemia", map[schemas.Kind]float64{schemas.Glucose: -50, schemas.HeartRate: 15}},
	{"bradycardia", map[schemas.Kind]float64{schemas.HeartRate: -35}},
}

func newPatient(id string, rng *rand.Rand) *patient {
	base := map[schemas.Kind]float64{
		schemas.HeartRate:   65 + rng.Float64()*25,
		schemas.RespRate:    13 + rng.Float64()*5,
		schemas.ECG:         0,
		schemas.SpO2:        95 + rng.Float64()*3,
		schemas.Glucose:     90 + rng.Float64()*40,
		schemas.Temperature: 36.4 + rng.Float64()*0.8,
		schemas.BPSystolic:  110 + rng.Float64()*25,
		schemas.BPDiastolic: 65 + rng.Float64()*15,
	}
	cur := map[schemas.Kind]float64{}
	for k, v := range base {
		cur[k] = v
	}
	return &patient{id: id, base: base, cur: cur, nextEpisode: expDuration(rng, 20*time.Minute)}
}

func expDuration(rng *rand.Rand, mean time.Duration) time.Duration {
	return time.Duration(rng.ExpFloat64() * float64(mean))
}

// noise is each vital's variability (standard deviation at equilibrium).
var noise = map[schemas.Kind]float64{
	schemas.HeartRate: 3, schemas.RespRate: 1, schemas.ECG: 0.03, schemas.SpO2: 0.7,
	schemas.Glucose: 6, schemas.Temperature: 0.1, schemas.BPSystolic: 5, schemas.BPDiastolic: 3,
}

func (p *patient) advance(sim time.Duration, rng *rand.Rand) {
	dt := (sim - p.last).Seconds()
	p.last = sim
	if p.episode != nil && sim >= p.episode.until {
		p.episode = nil
		p.nextEpisode = sim + expDuration(rng, 20*time.Minute)
	}
	if p.episode == nil && sim >= p.nextEpisode {
		e := episodes[rng.IntN(len(episodes))]
		until := sim + 45*time.Second + expDuration(rng, 90*time.Second)
		if p.nextEpisode > 0 && p.nextEpisode < time.Minute {
			e = episodes[1] // the first, scheduled episode: a desaturation shows at once
			until = sim + max(p.firstFor, 45*time.Second)
		}
		p.episode = &episode{name: e.name, shift: e.shift, until: until}
	}
	if rng.Float64() < dt/1800 { // sleep changes about every half hour
		p.asleep = !p.asleep
	}
	// Ornstein–Uhlenbeck step towards the target with an 8 s time constant.
	const theta = 1.0 / 8
	for k, v := range p.cur {
		target := p.base[k]
		if p.asleep {
			target += sleepShift[k]
		}
		if p.episode != nil {
			target += p.episode.shift[k]
		}
		sd := noise[k]
		a := math.Exp(-theta * dt)
		p.cur[k] = target + (v-target)*a + sd*math.Sqrt(1-a*a)*rng.NormFloat64()
	}
}

// sleepShift lowers heart rate, respiration and blood pressure in sleep.
var sleepShift = map[schemas.Kind]float64{schemas.HeartRate: -10, schemas.RespRate: -2, schemas.BPSystolic: -10, schemas.BPDiastolic: -6}

func (p *patient) reading(k schemas.Kind, device string, seq uint64, now time.Time, rng *rand.Rand) schemas.Reading {
	spec, _ := schemas.SpecFor(k)
	var v float64
	switch k {
	case schemas.Sleep:
		if p.asleep {
			v = 1
		}
	case schemas.O2Supplement:
		// A desaturating patient is put on oxygen.
		if p.episode != nil && p.episode.shift[schemas.SpO2] < 0 {
			v = 1
		}
	case schemas.Consciousness:
		// Hypoglycaemia brings new confusion.
		if p.episode != nil && p.episode.shift[schemas.Glucose] < 0 {
			v = 1
		}
	case schemas.ECG:
		v = math.Round(p.cur[k]*100) / 100
	case schemas.Temperature:
		v = math.Round(p.cur[k]*10) / 10
	default:
		v = math.Round(p.cur[k])
	}
	v = min(max(v, spec.Min), spec.Max)
	return schemas.Reading{PatientID: p.id, DeviceID: device, Kind: k, Value: v, Unit: spec.Unit, TS: now.UTC(), Seq: seq}
}
