package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func start(t *testing.T, dir string) *Broker {
	t.Helper()
	b, err := Start(Config{DataDir: dir, Addr: "127.0.0.1:0", Partitions: 4}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func client(t *testing.T, b *Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// readCommitted reads every committed record of topic, using the end
// offsets as the stop condition (fine here: no transaction is open).
func readCommitted(t *testing.T, b *Broker, topic string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(client(t, b)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	cl := client(t, b, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	got := map[string]bool{}
	pos := map[int32]int64{}
	done := func() bool {
		ok := true
		ends.Each(func(o kadm.ListedOffset) {
			// the last offset may be a commit marker, never returned
			if pos[o.Partition] < o.Offset-1 {
				ok = false
			}
		})
		return ok
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: got %d records by the deadline", topic, len(got))
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[string(r.Value)] = true
			pos[r.Partition] = r.Offset + 1
		})
	}
	return got
}

// Everything acknowledged before a clean stop is there after a restart on
// the same data dir: plain records and transactional ones.
func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b := start(t, dir)
	adm := kadm.NewClient(client(t, b))
	if _, err := adm.CreateTopics(ctx, 4, 1, nil, "plain", "txn"); err != nil {
		t.Fatal(err)
	}
	cl := client(t, b)
	var recs []*kgo.Record
	for i := range 1000 {
		recs = append(recs, &kgo.Record{Topic: "plain", Key: []byte(fmt.Sprint(i % 13)), Value: []byte(fmt.Sprint("p", i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	tx := client(t, b, kgo.TransactionalID("restart-test"))
	for round := range 3 {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			tx.Produce(ctx, &kgo.Record{Topic: "txn", Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprint("t", round, "-", i))}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("transactional produce: %v", err)
				}
			})
		}
		if err := tx.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	if got := readCommitted(t, b, "txn"); len(got) != 300 {
		t.Fatalf("txn: %d of 300 committed records before restart", len(got))
	}
	cl.Close()
	tx.Close()
	b.Close()

	b2 := start(t, dir)
	defer b2.Close()
	if got := readCommitted(t, b2, "plain"); len(got) != 1000 {
		t.Fatalf("plain: %d of 1000 records after restart", len(got))
	}
	if got := readCommitted(t, b2, "txn"); len(got) != 300 {
		t.Fatalf("txn: %d of 300 committed records after restart", len(got))
	}
}

func TestDataDirIsExclusive(t *testing.T) {
	dir := t.TempDir()
	b := start(t, dir)
	defer b.Close()
	_, err := Start(Config{DataDir: dir, Addr: "127.0.0.1:0", Partitions: 1}, slog.New(slog.DiscardHandler))
	if !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("second broker on one data dir: got %v, want ErrDataDirInUse", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:9092", "127.0.0.1", "127.0.0.1:99999"} {
		c := DefaultConfig()
		c.Addr = addr
		if c.Validate() == nil {
			t.Errorf("addr %q accepted", addr)
		}
	}
}
