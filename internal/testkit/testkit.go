// Package testkit is shared test plumbing: an in-process kfake cluster that
// is torn down with the test and hands back the kafka.Config that reaches
// it (as Loki's testkafka.CreateCluster does), clients on it, ReadAll for
// counting what a topic holds, Eventually for polling a condition instead
// of sleeping, and WardInput, the clinical engine's determinism input.
package testkit

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/monitorme/monitorme/internal/kafka"
)

// Cluster starts a one-broker kfake cluster on a free loopback port, with
// short group session timeouts so takeovers happen within a test's time.
func Cluster(tb testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	tb.Helper()
	base := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(0), kfake.GroupMinSessionTimeout(100 * time.Millisecond)}
	c, err := kfake.NewCluster(append(base, opts...)...)
	if err != nil {
		tb.Fatalf("start kfake: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

// CreateCluster starts a cluster as Cluster does and provisions every
// MonitorMe topic on it with partitions partitions. It returns the cluster
// and the kafka.Config of a role that uses it, so tests never assemble
// client settings by hand.
func CreateCluster(tb testing.TB, partitions int32, opts ...kfake.Opt) (*kfake.Cluster, kafka.Config) {
	tb.Helper()
	c := Cluster(tb, opts...)
	kc := kafka.DefaultConfig()
	kc.Brokers, kc.Partitions = c.ListenAddrs(), partitions
	if err := kafka.Provision(Context(tb), Admin(tb, c), &kc, kc.Specs(), slog.New(slog.DiscardHandler)); err != nil {
		tb.Fatalf("provision topics: %v", err)
	}
	return c, kc
}

// Admin returns an admin client of c, closed with the test.
func Admin(tb testing.TB, c *kfake.Cluster) *kadm.Client {
	tb.Helper()
	return kadm.NewClient(Client(tb, c))
}

// Client returns a client seeded at c, closed with the test.
func Client(tb testing.TB, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	return SeedClient(tb, c.ListenAddrs(), opts...)
}

// SeedClient returns a client seeded at seeds, closed with the test.
func SeedClient(tb testing.TB, seeds []string, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
	if err != nil {
		tb.Fatalf("new client: %v", err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

// IsFence reports whether r is a fence record ReadAll appended.
func IsFence(r *kgo.Record) bool { return len(r.Headers) > 0 && r.Headers[0].Key == fenceHeader }

// Eventually polls cond every 20ms until it returns true, failing the test
// with msg if timeout passes first.
func Eventually(tb testing.TB, timeout time.Duration, msg string, cond func() bool) {
	tb.Helper()
	if !Poll(timeout, 20*time.Millisecond, cond) {
		tb.Fatalf("not within %v: %s", timeout, msg)
	}
}

// Poll calls cond every interval until it holds (true) or timeout passed
// (false), for waits outside a test, such as a TestMain's set-up.
func Poll(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
	return true
}

// Context returns a context canceled when the test ends.
func Context(tb testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	return ctx
}

// ReadAll returns every record of topic visible at the given isolation
// level, in partition order, leaving out fence records (its own and
// earlier calls'). It first appends a fence record to each
// partition and then reads until it has seen every fence: under
// read_committed a fence only becomes visible once every transaction before
// it has ended, so nothing committed earlier can be missed and no count is
// guessed. Fence records are left out of the result.
func ReadAll(tb testing.TB, c *kfake.Cluster, topic string, isolation kgo.IsolationLevel) []*kgo.Record {
	tb.Helper()
	return ReadAllFrom(tb, c.ListenAddrs(), topic, isolation)
}

// ReadAllFrom is ReadAll on any brokers; opts are added to its clients
// (TLS and SASL for a secured cluster).
func ReadAllFrom(tb testing.TB, seeds []string, topic string, isolation kgo.IsolationLevel, opts ...kgo.Opt) []*kgo.Record {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	fence := SeedClient(tb, seeds, append([]kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	parts := partitions(ctx, tb, fence, topic)
	// Each call's fences carry their own token: an earlier call's fence
	// proves nothing about what was written after it.
	token := []byte(strconv.FormatInt(time.Now().UnixNano(), 10) + "-" + strconv.FormatInt(fenceSeq.Add(1), 10))
	for p := range parts {
		r := &kgo.Record{Topic: topic, Partition: p, Headers: []kgo.RecordHeader{{Key: fenceHeader, Value: token}}}
		if err := fence.ProduceSync(ctx, r).FirstErr(); err != nil {
			tb.Fatalf("fence %s/%d: %v", topic, p, err)
		}
	}
	cl := SeedClient(tb, seeds, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(isolation),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond)}, opts...)...)
	var out []*kgo.Record
	var fenced int32
	for fenced < parts {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			tb.Fatalf("read %s: fences seen on %d of %d partitions after %d records: %v", topic, fenced, parts, len(out), err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if IsFence(r) {
				if bytes.Equal(r.Headers[0].Value, token) {
					fenced++
				}
				return
			}
			out = append(out, r)
		})
	}
	return out
}

const fenceHeader = "monitorme-test-fence"

var fenceSeq atomic.Int64

func partitions(ctx context.Context, tb testing.TB, cl *kgo.Client, topic string) int32 {
	tb.Helper()
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		tb.Fatalf("metadata of %s: %v %+v", topic, err, resp)
	}
	return int32(len(resp.Topics[0].Partitions))
}

// Golden holds the checked-in file at path to got, what the code says now
// (a generated reference such as docs/cli.md); with MONITORME_WRITE_DOCS
// set (make docs) it writes got there first.
func Golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if os.Getenv("MONITORME_WRITE_DOCS") != "" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(have, got) {
		t.Fatalf("%s is not what the code says (%v): run make docs", path, err)
	}
}
