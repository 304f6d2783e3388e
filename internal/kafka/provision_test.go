package kafka

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/monitorme/monitorme/internal/testkit"
)

func TestProvisionIsIdempotentAndChecksPolicy(t *testing.T) {
	c := testkit.Cluster(t)
	adm := kadm.NewClient(testkit.Client(t, c))
	ctx := context.Background()
	kc := DefaultConfig()
	kc.Brokers = c.ListenAddrs()
	kc.Partitions = 3
	log := slog.New(slog.DiscardHandler)
	for range 2 {
		if err := Provision(ctx, adm, &kc, kc.Specs(), log); err != nil {
			t.Fatal(err)
		}
	}
	td, err := adm.ListTopics(ctx, kc.Topics.Vitals, kc.Topics.Alerts, kc.Topics.VitalsDLQ)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{kc.Topics.Vitals, kc.Topics.Alerts, kc.Topics.VitalsDLQ} {
		if d, ok := td[name]; !ok || len(d.Partitions) != 3 {
			t.Fatalf("topic %s: %+v", name, d)
		}
	}
	rc, err := adm.DescribeTopicConfigs(ctx, kc.Topics.Vitals)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := rc.On(kc.Topics.Vitals, nil)
	var retention string
	for _, c := range r.Configs {
		if c.Key == "retention.ms" && c.Value != nil {
			retention = *c.Value
		}
	}
	if retention != "604800000" {
		t.Fatalf("vitals retention.ms = %q, want 7 days", retention)
	}
	if err := ReadyCheck(adm, kc.Topics.Vitals)(ctx); err != nil {
		t.Fatalf("ready: %v", err)
	}
	if err := ReadyCheck(adm, "nope")(ctx); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("ready with a missing topic: %v", err)
	}

	// A vitals topic someone made compacted would keep one reading per
	// patient: refuse to run on it.
	bad := []TopicSpec{{Name: kc.Topics.Vitals, Compact: true}}
	if err := Provision(ctx, adm, &kc, bad, log); !errors.Is(err, ErrTopicMismatch) {
		t.Fatalf("policy mismatch: got %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"no brokers":   func(c *Config) { c.Brokers = nil },
		"bad broker":   func(c *Config) { c.Brokers = []string{"kafka"} },
		"empty topic":  func(c *Config) { c.Topics.Alerts = "" },
		"0 partitions": func(c *Config) { c.Partitions = 0 },
		"negative rf":  func(c *Config) { c.ReplicationFactor = -1 },
	} {
		c := DefaultConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

// The state changelog and the acknowledgements follow the vitals topic's
// partition count, whatever the flag says, and a mismatch is refused: a
// patient's readings, state and acks must reach the same processor.
func TestProvisionCoPartitions(t *testing.T) {
	c := testkit.Cluster(t)
	adm := kadm.NewClient(testkit.Client(t, c))
	ctx := context.Background()
	kc := DefaultConfig()
	kc.Brokers = c.ListenAddrs()
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, kc.Topics.Vitals); err != nil {
		t.Fatal(err)
	}
	kc.Partitions = 5
	log := slog.New(slog.DiscardHandler)
	if err := Provision(ctx, adm, &kc, kc.Specs(), log); err != nil {
		t.Fatal(err)
	}
	td, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{kc.Topics.State: 2, kc.Topics.Acks: 2, kc.Topics.Alerts: 5} {
		if got := len(td[name].Partitions); got != want {
			t.Errorf("%s: %d partitions, want %d", name, got, want)
		}
	}
	kc.Topics.Acks = "acks-wrong"
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, kc.Topics.Acks); err != nil {
		t.Fatal(err)
	}
	err = Provision(ctx, adm, &kc, kc.Specs(), log)
	if !errors.Is(err, ErrTopicMismatch) || !strings.Contains(err.Error(), "acks-wrong has 3 partitions") {
		t.Fatalf("mismatched acks topic: %v", err)
	}
}
