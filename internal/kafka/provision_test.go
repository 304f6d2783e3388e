package kafka_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/testkit"
)

// provisionEnv is a one-broker cluster, its admin client, a config of
// three partitions on it, and a silent logger.
func provisionEnv(t *testing.T) (*kfake.Cluster, *kadm.Client, kafka.Config, *slog.Logger) {
	t.Helper()
	c := testkit.Cluster(t)
	kc := kafka.DefaultConfig()
	kc.Brokers = c.ListenAddrs()
	kc.Partitions = 3
	return c, kadm.NewClient(testkit.Client(t, c)), kc, slog.New(slog.DiscardHandler)
}

func TestProvisionIsIdempotentAndChecksPolicy(t *testing.T) {
	_, adm, kc, log := provisionEnv(t)
	ctx := context.Background()
	for range 2 {
		if err := kafka.Provision(ctx, adm, &kc, kc.Specs(), log); err != nil {
			t.Fatal(err)
		}
	}
	td, err := adm.ListTopics(ctx, kc.Topics.Names()...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range kc.Topics.Names() {
		if d, ok := td[name]; !ok || len(d.Partitions) != 3 {
			t.Fatalf("topic %s: %+v", name, d)
		}
	}
	for _, want := range []struct{ topic, key, value string }{
		{kc.Topics.Vitals, "retention.ms", "604800000"},
		{kc.Topics.Alerts, "retention.ms", "2592000000"},
		{kc.Topics.State, "cleanup.policy", "compact"},
		// The changelog's segments close hourly, so a broker compacts it.
		{kc.Topics.State, "segment.ms", "3600000"},
	} {
		if got := topicConfig(t, adm, want.topic, want.key); got != want.value {
			t.Errorf("%s %s = %q, want %q", want.topic, want.key, got, want.value)
		}
	}
	if err := kafka.ReadyCheck(adm, kc.Topics.Vitals)(ctx); err != nil {
		t.Fatalf("ready: %v", err)
	}
	if err := kafka.ReadyCheck(adm, "nope")(ctx); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("ready with a missing topic: %v", err)
	}

	// A vitals topic someone made compacted would keep one reading per
	// patient: refuse to run on it.
	bad := []kafka.TopicSpec{{Name: kc.Topics.Vitals, Compact: true}}
	if err := kafka.Provision(ctx, adm, &kc, bad, log); !errors.Is(err, kafka.ErrTopicMismatch) {
		t.Fatalf("policy mismatch: got %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, mut := range map[string]func(*kafka.Config){
		"no brokers":   func(c *kafka.Config) { c.Brokers = nil },
		"bad broker":   func(c *kafka.Config) { c.Brokers = []string{"kafka"} },
		"empty topic":  func(c *kafka.Config) { c.Topics.Alerts = "" },
		"empty dlq":    func(c *kafka.Config) { c.Topics.AcksDLQ = "" },
		"shared topic": func(c *kafka.Config) { c.Topics.AlertsDLQ = c.Topics.VitalsDLQ },
		"0 partitions": func(c *kafka.Config) { c.Partitions = 0 },
		"negative rf":  func(c *kafka.Config) { c.ReplicationFactor = -1 },
	} {
		c := kafka.DefaultConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := kafka.DefaultConfig()
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
	kc := kafka.DefaultConfig()
	kc.Brokers = c.ListenAddrs()
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, kc.Topics.Vitals); err != nil {
		t.Fatal(err)
	}
	kc.Partitions = 5
	log := slog.New(slog.DiscardHandler)
	if err := kafka.Provision(ctx, adm, &kc, kc.Specs(), log); err != nil {
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
	err = kafka.Provision(ctx, adm, &kc, kc.Specs(), log)
	if !errors.Is(err, kafka.ErrTopicMismatch) || !strings.Contains(err.Error(), "acks-wrong has 3 partitions") {
		t.Fatalf("mismatched acks topic: %v", err)
	}
}

// Each input topic has its own dead-letter topic, so a dead-letter topic
// holds one kind of message.
func TestDeadLetterTopicPerInput(t *testing.T) {
	tp := kafka.DefaultConfig().Topics
	for in, want := range map[string]string{tp.Vitals: "vitals.v1.dlq", tp.Alerts: "alerts.v1.dlq", tp.Acks: "alerting.acks.v1.dlq"} {
		if got := tp.DeadLetterTopic(in); got != want {
			t.Errorf("%s: dead letters to %s, want %s", in, got, want)
		}
	}
}

func topicConfig(t *testing.T, adm *kadm.Client, topic, key string) string {
	t.Helper()
	rc, err := adm.DescribeTopicConfigs(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := rc.On(topic, nil)
	for _, c := range r.Configs {
		if c.Key == key && c.Value != nil {
			return *c.Value
		}
	}
	return ""
}

// --retention-vitals sets the retention of a vitals topic it creates.
func TestRetentionFlag(t *testing.T) {
	c := testkit.Cluster(t)
	adm := kadm.NewClient(testkit.Client(t, c))
	kc := kafka.DefaultConfig()
	kc.Brokers = c.ListenAddrs()
	kc.Retention.Vitals = 6 * time.Hour
	if err := kafka.Provision(context.Background(), adm, &kc, kc.Specs(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if got := topicConfig(t, adm, kc.Topics.Vitals, "retention.ms"); got != "21600000" {
		t.Fatalf("retention.ms %q, want 6h", got)
	}
	kc.Retention.Alerts = time.Second
	if err := kc.Validate(); err == nil || !strings.Contains(err.Error(), "retention-alerts") {
		t.Fatalf("1s retention: %v", err)
	}
}

// A topic another process created a moment ago may still be unknown to
// the broker that answers (it learns of it from the controller a little
// later): provisioning waits for it instead of failing the role at start
// with UNKNOWN_TOPIC_OR_PARTITION, which it did.
func TestProvisionWaitsForATopicJustCreatedElsewhere(t *testing.T) {
	c, adm, kc, log := provisionEnv(t)
	ctx := context.Background()
	if err := kafka.Provision(ctx, adm, &kc, kc.Specs(), log); err != nil {
		t.Fatal(err)
	}
	// The next metadata answers about the vitals topic say it is unknown.
	unknown := 3
	c.ControlKey(int16(kmsg.Metadata), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		req := kr.(*kmsg.MetadataRequest)
		if unknown == 0 || len(req.Topics) != 1 || req.Topics[0].Topic == nil || *req.Topics[0].Topic != kc.Topics.Vitals {
			return nil, nil, false
		}
		c.KeepControl()
		unknown--
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		st := kmsg.NewMetadataResponseTopic()
		st.Topic, st.ErrorCode = req.Topics[0].Topic, kerr.UnknownTopicOrPartition.Code
		resp.Topics = append(resp.Topics, st)
		return resp, nil, true
	})
	fresh := kadm.NewClient(testkit.Client(t, c))
	if err := kafka.Provision(ctx, fresh, &kc, kc.Specs(), log); err != nil {
		t.Fatalf("a topic not yet known to the answering broker: %v", err)
	}
	if unknown != 0 {
		t.Fatalf("the broker's unknown-topic answers were not all asked: %d left", unknown)
	}
}
