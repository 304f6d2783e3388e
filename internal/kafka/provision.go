package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TopicSpec is a topic as MonitorMe needs it.
type TopicSpec struct {
	Name    string
	Compact bool
	// Retention is how long records are kept; 0 keeps them forever.
	Retention time.Duration
	// CoPartitioned topics must have as many partitions as the vitals
	// topic: the processor owning vitals partition p reads partition p of
	// these too (its state changelog, the acknowledgements).
	CoPartitioned bool
	// Configs are further topic configs set at creation.
	Configs map[string]string
}

// Specs returns the topics of c with their retention (DESIGN.md's
// defaults, changed by the --retention-* flags).
func (c *Config) Specs() []TopicSpec {
	r := c.Retention
	return []TopicSpec{
		{Name: c.Topics.Vitals, Retention: r.Vitals},
		{Name: c.Topics.Alerts, Retention: r.Alerts},
		// A broker compacts closed segments only, and Kafka and Redpanda
		// close one after segment.ms (7 days by default): the changelog
		// a processor restores from would hold a week of snapshots per
		// patient. An hour keeps it to about an hour's.
		{Name: c.Topics.State, Compact: true, CoPartitioned: true, Configs: map[string]string{"segment.ms": "3600000"}},
		{Name: c.Topics.Acks, Retention: r.Acks, CoPartitioned: true},
		{Name: c.Topics.VitalsDLQ, Retention: r.DeadLetters},
		{Name: c.Topics.AlertsDLQ, Retention: r.DeadLetters},
		{Name: c.Topics.AcksDLQ, Retention: r.DeadLetters},
		// Each patient's latest placement, kept for as long as the
		// patient is in the hospital and after: compacted, not expired.
		{Name: c.Topics.Placements, Compact: true, CoPartitioned: true, Configs: map[string]string{"segment.ms": "3600000"}},
	}
}

// LiveBrokers asks a broker how many brokers the cluster has now. Plain
// BrokerMetadata answers from the client's cache, which a request naming no
// topic never refreshes, so a broker that registered after the first call
// stayed invisible (measured in the e2e suite); asking for authorized
// operations makes kadm send a request of its own.
func LiveBrokers(ctx context.Context, adm *kadm.Client) (int, error) {
	meta, err := adm.BrokerMetadata(kadm.WithAuthorizedOps(ctx))
	if err != nil {
		return 0, err
	}
	return len(meta.Brokers), nil
}

// ErrTopicMismatch is returned when an existing topic's settings would
// break a delivery promise (for example a compacted vitals topic, which
// would keep only the last reading per patient).
var ErrTopicMismatch = errors.New("existing topic has incompatible settings")

// Provision creates the topics that are missing and checks those that
// exist. It is idempotent: running it again, or from several processes at
// once, changes nothing.
func Provision(ctx context.Context, adm *kadm.Client, c *Config, specs []TopicSpec, log *slog.Logger) error {
	rf := c.ReplicationFactor
	if rf == 0 {
		n, err := LiveBrokers(ctx, adm)
		if err != nil {
			return fmt.Errorf("provision topics: list brokers: %w", err)
		}
		rf = 1
		if n >= 3 {
			rf = 3
		}
	}
	// The vitals topic may predate this process with another partition
	// count; co-partitioned topics follow it, not the flag. It is asked
	// for once it exists (it comes first in specs): asking about a topic
	// before creating it leaves "unknown topic" in the client's metadata
	// cache, which failed offset lookups on it for 5 s.
	coParts := int32(0)
	for _, s := range specs {
		parts := c.Partitions
		if s.CoPartitioned {
			if coParts == 0 {
				n, err := partitionCount(ctx, adm, c.Topics.Vitals)
				if err != nil {
					return fmt.Errorf("provision topics: %w", err)
				}
				coParts = n
				if n == 0 {
					coParts = c.Partitions
				}
			}
			parts = coParts
		}
		configs := map[string]*string{"cleanup.policy": kadm.StringPtr(s.cleanupPolicy())}
		if s.Retention > 0 {
			configs["retention.ms"] = kadm.StringPtr(strconv.FormatInt(s.Retention.Milliseconds(), 10))
		} else {
			configs["retention.ms"] = kadm.StringPtr("-1")
		}
		for k, v := range s.Configs {
			configs[k] = kadm.StringPtr(v)
		}
		if rf >= 3 {
			// acks=all is only as strong as the in-sync set it waits for.
			configs["min.insync.replicas"] = kadm.StringPtr("2")
		}
		resp, err := adm.CreateTopic(ctx, parts, rf, configs, s.Name)
		switch {
		case err == nil && resp.Err == nil:
			log.Info("created topic", "topic", s.Name, "partitions", parts, "replication_factor", rf)
			continue
		case err != nil && !errors.Is(err, kerr.TopicAlreadyExists):
			return fmt.Errorf("provision topic %s: %w", s.Name, err)
		case resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists):
			return fmt.Errorf("provision topic %s: %w", s.Name, resp.Err)
		}
		want := int32(0)
		if s.CoPartitioned {
			want = coParts
		}
		if err := check(ctx, adm, s, rf, want, log); err != nil {
			return err
		}
	}
	return nil
}

// settle bounds the wait for brokers to learn of a topic another process
// just created.
const settle = 10 * time.Second

func (s TopicSpec) cleanupPolicy() string {
	if s.Compact {
		return "compact"
	}
	return "delete"
}

// check refuses an existing topic whose settings break a promise: a
// compacted vitals topic keeps one reading per patient, and on a cluster
// that can replicate, fewer than rf replicas or min.insync.replicas below 2
// make acks=all a single-disk promise.
//
// It is called when creating the topic answered that it exists. Another
// process may have created it a moment earlier, and a broker learns of a
// new topic from the controller a little later: until then it answers
// UNKNOWN_TOPIC_OR_PARTITION ("monitorme process exited at start with
// check topic …: UNKNOWN_TOPIC_OR_PARTITION"), so that answer is asked
// again for up to settle.
func check(ctx context.Context, adm *kadm.Client, s TopicSpec, rf int16, partitions int32, log *slog.Logger) error {
	var d kadm.TopicDetail
	deadline := time.Now().Add(settle)
	for {
		// Uncached, as partitionCount asks: the client would answer a
		// cached "unknown" again.
		td, err := adm.ListTopics(kadm.WithAuthorizedOps(ctx), s.Name)
		if err != nil {
			return fmt.Errorf("check topic %s: %w", s.Name, err)
		}
		var ok bool
		d, ok = td[s.Name]
		if ok && d.Err == nil {
			break
		}
		if ok && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) || time.Now().After(deadline) {
			return fmt.Errorf("check topic %s: %v", s.Name, d.Err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("check topic %s: %w", s.Name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	if partitions > 0 && int32(len(d.Partitions)) != partitions {
		return fmt.Errorf("%w: topic %s has %d partitions, the vitals topic %d: they must match, so that one processor owns a patient's readings, state and acknowledgements", ErrTopicMismatch, s.Name, len(d.Partitions), partitions)
	}
	for _, p := range d.Partitions {
		if len(p.Replicas) < int(rf) {
			return fmt.Errorf("%w: topic %s partition %d has %d replicas, want %d", ErrTopicMismatch, s.Name, p.Partition, len(p.Replicas), rf)
		}
	}
	// The broker that answers for the configs may not know the topic yet
	// either: another role created it a moment ago, and the listing
	// above came from a broker that did (e2e case h).
	var rc kadm.ResourceConfig
	for {
		rcs, err := adm.DescribeTopicConfigs(ctx, s.Name)
		if err == nil {
			rc, err = rcs.On(s.Name, nil)
		}
		if err == nil {
			err = rc.Err
		}
		if err == nil {
			break
		}
		if !errors.Is(err, kerr.UnknownTopicOrPartition) || time.Now().After(deadline) {
			return fmt.Errorf("check topic %s: %w", s.Name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("check topic %s: %w", s.Name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	for _, c := range rc.Configs {
		if c.Value == nil {
			continue
		}
		switch c.Key {
		case "cleanup.policy":
			if *c.Value != s.cleanupPolicy() {
				return fmt.Errorf("%w: topic %s has cleanup.policy=%s, want %s", ErrTopicMismatch, s.Name, *c.Value, s.cleanupPolicy())
			}
		case "min.insync.replicas":
			if n, err := strconv.Atoi(*c.Value); err == nil && rf >= 3 && n < 2 {
				return fmt.Errorf("%w: topic %s has min.insync.replicas=%d: acks=all would wait for one replica; set it to 2", ErrTopicMismatch, s.Name, n)
			}
		}
	}
	log.Debug("topic exists", "topic", s.Name)
	return nil
}

// partitionCount returns how many partitions topic has, 0 if it does not
// exist.
func partitionCount(ctx context.Context, adm *kadm.Client, topic string) (int32, error) {
	// Uncached (see LiveBrokers): a cached "unknown topic" would outlive
	// the topic's creation a moment later and fail the check after it.
	td, err := adm.ListTopics(kadm.WithAuthorizedOps(ctx), topic)
	if err != nil {
		return 0, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	d, ok := td[topic]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return 0, nil
	}
	if d.Err != nil {
		return 0, fmt.Errorf("describe topic %s: %w", topic, d.Err)
	}
	return int32(len(d.Partitions)), nil
}

// ReadyCheck returns a readiness check: the brokers answer and every topic
// exists.
func ReadyCheck(adm *kadm.Client, topics ...string) func(context.Context) error {
	return func(ctx context.Context) error {
		td, err := adm.ListTopics(ctx, topics...)
		if err != nil {
			return fmt.Errorf("brokers unreachable: %w", err)
		}
		for _, t := range topics {
			d, ok := td[t]
			if !ok || d.Err != nil {
				return fmt.Errorf("topic %s missing", t)
			}
		}
		return nil
	}
}

// GroupLag returns how many records of topic group has not committed yet,
// summed over partitions (a partition without a commit counts whole).
func GroupLag(ctx context.Context, adm *kadm.Client, group, topic string) (int64, error) {
	lag, _, err := GroupBacklog(ctx, adm, group, topic)
	return lag, err
}

// GroupBacklog is GroupLag, and whether group has committed an offset on
// topic at all: a group that never did is no consumer at work (ingest's
// load shedding takes its backlog as unknown).
func GroupBacklog(ctx context.Context, adm *kadm.Client, group, topic string) (lag int64, committed bool, err error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, false, fmt.Errorf("lag of %s on %s: %w", group, topic, err)
	}
	if err := ends.Error(); err != nil {
		return 0, false, fmt.Errorf("lag of %s on %s: %w", group, topic, err)
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, false, fmt.Errorf("lag of %s on %s: %w", group, topic, err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		c, ok := offs.Lookup(o.Topic, o.Partition)
		if ok && c.Err == nil && c.At >= 0 {
			committed = true
		}
		lag += o.Offset - max(c.At, 0)
	})
	return lag, committed, nil
}
