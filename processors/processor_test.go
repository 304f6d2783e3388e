package processors

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/once"
	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/schemas"
)

// The processor builds the handler its Config names: callers choose rules,
// not handlers.
func TestNewPicksTheHandlerFromTheRules(t *testing.T) {
	kc := kafka.DefaultConfig()
	for rules, want := range map[string]string{"clinical": "*processors.Clinical", "threshold": "*processors.Thresholds"} {
		cfg := DefaultConfig()
		cfg.Rules = rules
		p, err := New(cfg, kc, slog.New(slog.DiscardHandler), telemetry.Nop())
		if err != nil {
			t.Fatal(err)
		}
		switch p.h.(type) {
		case *Clinical:
			if want != "*processors.Clinical" {
				t.Errorf("%s: got the clinical engine", rules)
			}
		case *Thresholds:
			if want != "*processors.Thresholds" {
				t.Errorf("%s: got the thresholds", rules)
			}
		default:
			t.Errorf("%s: handler %T", rules, p.h)
		}
	}
	cfg := DefaultConfig()
	cfg.Rules = "magic"
	if _, err := New(cfg, kc, slog.New(slog.DiscardHandler), telemetry.Nop()); err == nil || !strings.HasPrefix(err.Error(), "rules:") {
		t.Fatalf("rules magic: %v", err)
	}
}

// LoadRules reads the rules file into the Config the clinical engine is
// built from; without one, the built-in defaults.
func TestConfigLoadRules(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RulesFile = "../config/rules.example.yaml"
	if err := cfg.LoadRules(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Clinical.Patients) == 0 {
		t.Fatal("the example rules file named no patient")
	}
	cfg.RulesFile = ""
	if err := cfg.LoadRules(); err != nil || len(cfg.Clinical.Patients) != 0 || !cfg.Clinical.Default.NEWS2 {
		t.Fatalf("defaults: %v %+v", err, cfg.Clinical)
	}
	cfg.RulesFile = "no-such-file.yaml"
	if err := cfg.LoadRules(); err == nil {
		t.Fatal("a missing rules file loaded")
	}
}

func TestProcessorRunsOnce(t *testing.T) {
	_, kc := testkit.CreateCluster(t, 1)
	p := newTestProcessor(kc.Brokers)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = p.Run(ctx)
	if err := p.Run(context.Background()); !errors.Is(err, once.ErrRunTwice) {
		t.Fatalf("second Run: %v", err)
	}
}

// A record the clinical engine cannot read goes to the dead-letter topic
// of the topic it came from: a bad acknowledgement to the acks' one.
func TestClinicalDeadLettersAcksToTheAcksTopic(t *testing.T) {
	c, kc := testCluster(t)
	p := newClinicalProcessor(c.ListenAddrs())
	p.cfg.Group = "dlq-test"
	bad := &kgo.Record{Topic: kc.Topics.Acks, Key: []byte("P01"), Value: []byte(`{"alert_id":"x"}`),
		Headers: []kgo.RecordHeader{{Key: schemas.HeaderSchema, Value: []byte(schemas.AckV1)}}}
	if err := testkit.Client(t, c, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil))).ProduceSync(testkit.Context(t), bad).FirstErr(); err != nil {
		t.Fatal(err)
	}
	stop := runProcessor(t, p)
	testkit.Eventually(t, 30*time.Second, "the bad acknowledgement dead-lettered", func() bool {
		return len(testkit.ReadAll(t, c, kc.Topics.AcksDLQ, kgo.ReadCommitted())) == 1
	})
	stop()
	if n := len(testkit.ReadAll(t, c, kc.Topics.VitalsDLQ, kgo.ReadCommitted())); n != 0 {
		t.Fatalf("%d dead letters on the vitals' dead-letter topic", n)
	}
}

// The processor is ready once it joined and restored its partitions.
func TestProcessorReadyAfterRestore(t *testing.T) {
	c, kc := testCluster(t)
	p := newClinicalProcessor(c.ListenAddrs())
	p.kcfg = kc
	if p.Ready(context.Background()) == nil {
		t.Fatal("ready before it ran")
	}
	runProcessor(t, p)
	testkit.Eventually(t, 30*time.Second, "the processor ready", func() bool { return p.Ready(context.Background()) == nil })
}

// Issue 25: ready means acting on readings as they come. A processor whose
// partition still has a backlog (a restart after downtime, a partition
// moved to it) is not ready, though its state is restored: an alarm posted
// then waits behind the backlog. Before, it said ready once restored.
func TestProcessorNotReadyWithABacklog(t *testing.T) {
	c, kc := testCluster(t)
	p := newClinicalProcessor(c.ListenAddrs())
	p.kcfg = kc
	p.cfg.Group = "ready-backlog"
	p.cfg.MaxPollRecords = 10 // the held transaction leaves most of it behind
	produceReadings(t, c.ListenAddrs(), kc.Topics.Vitals, desat(0, 300))
	release := make(chan struct{})
	var once sync.Once
	p.beforeEnd = func(int64) error {
		<-release // the first transaction holds: the backlog stays
		return nil
	}
	runProcessor(t, p)
	defer once.Do(func() { close(release) })
	testkit.Eventually(t, 30*time.Second, "restored (joined, state loaded)", func() bool { return p.ready.Load() })
	// The end offsets are checked every tick: two ticks give the loop
	// time to find the partition behind, and Ready must not turn true.
	if testkit.Poll(2*p.cfg.TickInterval, 20*time.Millisecond, func() bool { return p.Ready(context.Background()) == nil }) {
		t.Fatal("ready while its partition has a backlog of readings")
	}
	if err := p.Ready(context.Background()); !strings.Contains(err.Error(), "backlog") {
		t.Fatalf("not ready, but says: %v", err)
	}
	once.Do(func() { close(release) })
	testkit.Eventually(t, 30*time.Second, "ready once caught up", func() bool { return p.Ready(context.Background()) == nil })
}
