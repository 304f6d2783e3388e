package kafka

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topics names the topics MonitorMe uses.
type Topics struct {
	Vitals string
	Alerts string
	// State is the compacted changelog of the alert processors'
	// per-patient state, co-partitioned with Vitals.
	State string
	// Acks carries alert acknowledgements, co-partitioned with Vitals:
	// the processor that owns a patient reads both.
	Acks string
	// VitalsDLQ, AlertsDLQ and AcksDLQ are the dead-letter topics of
	// Vitals, Alerts and Acks: a record that a processor or the sink
	// cannot read goes to the one of the topic it came from, so a
	// dead-letter topic holds one kind of message.
	VitalsDLQ string
	AlertsDLQ string
	AcksDLQ   string
	// Placements is the compacted topic of patients' placements (admit,
	// transfer, discharge), co-partitioned with Vitals: the station
	// groups patients by ward and bed from it, and the processor that
	// owns a patient follows a transfer to the new ward's rules.
	Placements string
}

// DeadLetterTopic returns the dead-letter topic of input, one of the
// topics that processors or the sink consume.
func (t *Topics) DeadLetterTopic(input string) string {
	switch input {
	case t.Alerts:
		return t.AlertsDLQ
	case t.Acks:
		return t.AcksDLQ
	}
	return t.VitalsDLQ
}

// Config is how a role reaches the brokers and which topics it uses.
type Config struct {
	Brokers  []string
	ClientID string
	Topics   Topics
	// Partitions is used when a topic is created; existing topics keep
	// theirs.
	Partitions int32
	// ReplicationFactor 0 means: 3 when the cluster has three or more
	// brokers, else 1.
	ReplicationFactor int16
	// DialTimeout bounds connecting to a broker, so an unreachable broker
	// fails a request in seconds, not minutes.
	DialTimeout time.Duration
	// Retention is how long the delete-policy topics keep records. It is
	// set when this process creates a topic; an existing topic keeps its
	// own (change it with rpk topic alter-config or kafka-configs).
	Retention Retention
	// Security is TLS and SASL (security.go).
	Security Security
}

// Retention is each delete-policy topic's retention.ms.
type Retention struct {
	Vitals, Alerts, Acks, DeadLetters time.Duration
}

const day = 24 * time.Hour

// DefaultConfig returns the defaults every flag help text names.
func DefaultConfig() Config {
	return Config{
		Brokers:  []string{"127.0.0.1:9092"},
		ClientID: "monitorme",
		Topics: Topics{
			Vitals:    "vitals.v1",
			Alerts:    "alerts.v1",
			State:     "alerting.state.v1",
			Acks:      "alerting.acks.v1",
			VitalsDLQ: "vitals.v1.dlq",
			AlertsDLQ: "alerts.v1.dlq",
			AcksDLQ:   "alerting.acks.v1.dlq",

			Placements: "alerting.placements.v1",
		},
		Partitions:  12,
		DialTimeout: 5 * time.Second,
		Retention:   Retention{Vitals: 7 * day, Alerts: 30 * day, Acks: 30 * day, DeadLetters: 30 * day},
	}
}

// RegisterFlags binds c's fields to flags, keeping c's current values as
// defaults.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&c.Brokers, "brokers", c.Brokers, "Kafka-protocol seed brokers, host:port, comma separated")
	fs.StringVar(&c.ClientID, "client-id", c.ClientID, "Kafka client id prefix")
	fs.StringVar(&c.Topics.Vitals, "topic-vitals", c.Topics.Vitals, "topic of vital readings")
	fs.StringVar(&c.Topics.Alerts, "topic-alerts", c.Topics.Alerts, "topic of alert events")
	fs.StringVar(&c.Topics.State, "topic-state", c.Topics.State, "compacted changelog of the alert processors' per-patient state")
	fs.StringVar(&c.Topics.Acks, "topic-acks", c.Topics.Acks, "topic of alert acknowledgements, co-partitioned with the vitals topic")
	fs.StringVar(&c.Topics.Placements, "topic-placements", c.Topics.Placements, "compacted topic of patients' placements (admit, transfer, discharge), co-partitioned with the vitals topic")
	fs.StringVar(&c.Topics.VitalsDLQ, "topic-vitals-dlq", c.Topics.VitalsDLQ, "dead-letter topic of vitals records the processor or the sink cannot read")
	fs.StringVar(&c.Topics.AlertsDLQ, "topic-alerts-dlq", c.Topics.AlertsDLQ, "dead-letter topic of alert records the sink cannot read")
	fs.StringVar(&c.Topics.AcksDLQ, "topic-acks-dlq", c.Topics.AcksDLQ, "dead-letter topic of acknowledgement records the processor or the sink cannot read")
	fs.Int32Var(&c.Partitions, "partitions", c.Partitions, "partitions of topics this process creates")
	fs.DurationVar(&c.Retention.Vitals, "retention-vitals", c.Retention.Vitals, "retention of a vitals topic this process creates (168h: 7 days)")
	fs.DurationVar(&c.Retention.Alerts, "retention-alerts", c.Retention.Alerts, "retention of an alerts topic this process creates (720h: 30 days)")
	fs.DurationVar(&c.Retention.Acks, "retention-acks", c.Retention.Acks, "retention of an acknowledgements topic this process creates")
	fs.DurationVar(&c.Retention.DeadLetters, "retention-dlq", c.Retention.DeadLetters, "retention of the dead-letter topics this process creates")
	fs.Int16Var(&c.ReplicationFactor, "replication-factor", c.ReplicationFactor, "replication factor of topics this process creates (0: 3 if the cluster has 3+ brokers, else 1)")
	c.Security.RegisterFlags(fs)
}

// Validate reports the first invalid setting.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one seed broker is required"))
	}
	for _, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			errs = append(errs, fmt.Errorf("brokers: %q is not host:port", b))
		}
	}
	seen := map[string]string{}
	for _, f := range c.topicFlags() {
		switch {
		case *f.topic == "":
			errs = append(errs, fmt.Errorf("%s: must not be empty", f.flag))
		case seen[*f.topic] != "":
			errs = append(errs, fmt.Errorf("%s: %q is already the topic of %s", f.flag, *f.topic, seen[*f.topic]))
		default:
			seen[*f.topic] = f.flag
		}
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("partitions: %d, want at least 1", c.Partitions))
	}
	for flag, d := range map[string]time.Duration{"retention-vitals": c.Retention.Vitals, "retention-alerts": c.Retention.Alerts, "retention-acks": c.Retention.Acks, "retention-dlq": c.Retention.DeadLetters} {
		if d < time.Minute {
			errs = append(errs, fmt.Errorf("%s: %v, want at least 1m", flag, d))
		}
	}
	if c.ReplicationFactor < 0 {
		errs = append(errs, fmt.Errorf("replication-factor: %d, want 0 (auto) or more", c.ReplicationFactor))
	}
	if err := c.Security.load(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

type topicFlag struct {
	flag  string
	topic *string
}

// topicFlags pairs every topic with its flag, in the order of the help.
func (c *Config) topicFlags() []topicFlag { return c.Topics.flags() }

func (t *Topics) flags() []topicFlag {
	return []topicFlag{{"topic-vitals", &t.Vitals}, {"topic-alerts", &t.Alerts}, {"topic-state", &t.State}, {"topic-acks", &t.Acks},
		{"topic-vitals-dlq", &t.VitalsDLQ}, {"topic-alerts-dlq", &t.AlertsDLQ}, {"topic-acks-dlq", &t.AcksDLQ}, {"topic-placements", &t.Placements}}
}

// Args returns the command-line flags that name t's topics, e.g.
// ["--topic-vitals", "vitals.v1", ...]: what a test or a chart passes to
// a role to give it these topics.
func (t Topics) Args() []string {
	var args []string
	for _, f := range t.flags() {
		args = append(args, "--"+f.flag, *f.topic)
	}
	return args
}

// Names returns every topic's name, in the order of the help.
func (t Topics) Names() []string {
	return []string{t.Vitals, t.Alerts, t.State, t.Acks, t.VitalsDLQ, t.AlertsDLQ, t.AcksDLQ, t.Placements}
}

// ClientOpts returns the options every client of this process shares:
// seeds, client id, dial timeout, and TLS and SASL as Validate loaded
// them. name distinguishes the process's clients in broker logs and
// metrics.
func (c *Config) ClientOpts(name string) []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID + "-" + name),
		kgo.DialTimeout(c.DialTimeout),
	}, c.Security.opts()...)
}

// FetchMaxBytes and FetchMaxPartitionBytes bound what a consumer that
// reads every partition at full rate (the processor, the live view, the
// history sink) holds
// of fetched records: at most FetchMaxBytes compressed a fetch, and
// FetchMaxPartitionBytes of a partition. kgo's defaults (50 MiB and
// 1 MiB) let a consumer that lags buffer a fetch of every partition's
// full 1 MiB, which zstd-compressed readings decompress to about ten
// times (at 40,000 readings/s in the realistic benchmark: 391 MB resident
// with these bounds, 441 MB without).
const (
	FetchMaxBytes          = 4 << 20
	FetchMaxPartitionBytes = 256 << 10
)

// NewClient returns a client with ClientOpts(name) and opts: every
// component and command gets its clients here, so none reaches a broker
// without the TLS and SASL the others use.
func (c *Config) NewClient(name string, opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append(c.ClientOpts(name), opts...)...)
}
