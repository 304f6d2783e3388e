package producers

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/monitorme/monitorme/internal/once"
	"github.com/monitorme/monitorme/schemas"
)

type collect struct {
	mu    sync.Mutex
	got   []schemas.Reading
	fails int // fail this many sends first
}

func (c *collect) Send(_ context.Context, rs []schemas.Reading) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fails > 0 {
		c.fails--
		return ErrBusy
	}
	c.got = append(c.got, rs...)
	return nil
}

// Every simulated reading is one ingest accepts, every vital is sent at
// start, identities never repeat, and a refused batch is resent whole.
func TestSimulatorReadingsAreValidAndComplete(t *testing.T) {
	sink := &collect{fails: 2}
	cfg := DefaultSimConfig()
	cfg.Patients = 5
	cfg.Seed = 42
	sim, err := NewSimulator(cfg, sink, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	due := make([]time.Duration, len(schedule))
	var all []schemas.Reading
	for step := range 2400 { // 20 simulated minutes at 500 ms steps
		batch := sim.step(now.Add(time.Duration(step)*500*time.Millisecond), time.Duration(step)*500*time.Millisecond, due)
		if err := sim.deliver(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
	}
	if len(sink.got) != len(all) {
		t.Fatalf("delivered %d of %d readings", len(sink.got), len(all))
	}
	kinds := map[schemas.Kind]int{}
	ids := map[string]bool{}
	var alertWorthy int
	for i := range all {
		r := &all[i]
		if errs := r.Check(r.TS); errs != nil {
			t.Fatalf("invalid simulated reading %+v: %v", r, errs)
		}
		id := r.DeviceID + "/" + string(r.Kind) + "/" + itoa(r.Seq)
		if ids[id] {
			t.Fatalf("identity %s repeated", id)
		}
		ids[id] = true
		kinds[r.Kind]++
		if r.Kind == schemas.SpO2 && r.Value < 90 || r.Kind == schemas.HeartRate && (r.Value > 120 || r.Value < 50) {
			alertWorthy++
		}
	}
	// 5 patients: heart rate at 2/s for 1200 s, blood pressure once.
	if kinds[schemas.HeartRate] != 5*2400 || kinds[schemas.BPSystolic] != 5 || kinds[schemas.Glucose] != 5*10 || kinds[schemas.Temperature] != 5*4 {
		t.Fatalf("counts per kind %v", kinds)
	}
	if alertWorthy == 0 {
		t.Fatal("20 simulated minutes with a scheduled deterioration raised nothing alert-worthy")
	}
}

func itoa(u uint64) string { return strconv.FormatUint(u, 10) }

func TestSimulatorRunsOnce(t *testing.T) {
	sim, err := NewSimulator(DefaultSimConfig(), &collect{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = sim.Run(ctx)
	if err := sim.Run(context.Background()); !errors.Is(err, once.ErrRunTwice) {
		t.Fatalf("second Run: %v", err)
	}
}
