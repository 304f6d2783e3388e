package broker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/testkit"
)

func start(t *testing.T, dir string, mod ...func(*Config)) *Broker {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Addr, cfg.Partitions = dir, "127.0.0.1:0", 4
	for _, m := range mod {
		m(&cfg)
	}
	b, err := Start(cfg, slog.New(slog.DiscardHandler))
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

// readCommitted is the set of values readAllValues returns.
func readCommitted(t *testing.T, b *Broker, topic string) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	for _, v := range readAllValues(t, b, topic) {
		got[v] = true
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
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Addr = dir, "127.0.0.1:0"
	_, err := Start(cfg, slog.New(slog.DiscardHandler))
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

// A data dir restarted more often than any clean interval still plateaus:
// every start deletes what is past retention and compacts the compacted
// topics (kfake alone did neither after loading a data dir). Each round
// writes a round of old readings (past retention) and a transactional
// changelog of 20 keys, as the processor does, then stops.
func TestDataDirPlateausAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	small := func(c *Config) { c.SegmentBytes = 16 << 10; c.CleanInterval = time.Hour }
	const rounds, perRound, keys = 8, 3000, 20
	var sizes []int64
	for round := range rounds {
		b := start(t, dir, small)
		adm := kadm.NewClient(client(t, b))
		if round == 0 {
			if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("60000")}, "vitals"); err != nil {
				t.Fatal(err)
			}
			if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "state"); err != nil {
				t.Fatal(err)
			}
		}
		cl := client(t, b, kgo.ProducerLinger(0))
		old := time.Now().Add(-time.Hour) // past the 1-minute retention
		tx := client(t, b, kgo.TransactionalID(fmt.Sprint("plateau-", round)), kgo.ProducerLinger(0))
		for i := range perRound / 100 {
			var recs []*kgo.Record
			for j := range 100 {
				recs = append(recs, &kgo.Record{Topic: "vitals", Timestamp: old, Value: []byte(fmt.Sprintf("reading %d-%d-%d padding padding padding padding", round, i, j))})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if err := tx.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			for j := range 100 {
				tx.Produce(ctx, &kgo.Record{Topic: "state", Key: []byte(fmt.Sprint("P", j%keys)), Value: []byte(fmt.Sprintf(`{"round":%d,"i":%d,"state":"padding padding padding"}`, round, i))}, nil)
			}
			if err := tx.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatal(err)
			}
		}
		cl.Close()
		tx.Close()
		b.Close()
		sizes = append(sizes, dirSize(t, dir))
	}
	t.Logf("data dir bytes after each round: %v", sizes)
	// Round r wrote about r times the bytes of round 1: without cleaning
	// the last size is about rounds times the first.
	if last, first := sizes[len(sizes)-1], sizes[1]; last > first*3/2 {
		t.Fatalf("the data dir grew from %d to %d bytes over %d restarts: no plateau", first, last, rounds-2)
	}
	b := start(t, dir, small)
	defer b.Close()
	state := readAllValues(t, b, "state")
	if len(state) > keys+100 { // a key each, and the last batch, which compaction keeps whole
		t.Fatalf("state: %d records for %d keys after compaction", len(state), keys)
	}
	starts, err := kadm.NewClient(client(t, b)).ListStartOffsets(ctx, "vitals")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("vitals", 0); o.Offset < int64(perRound*(rounds-1)) {
		t.Fatalf("vitals start at offset %d: readings past retention were kept", o.Offset)
	}
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// readAllValues reads every committed record of topic up to the end
// offsets it had when called. Control records are kept so that a
// partition whose last record is a commit marker counts as read.
func readAllValues(t *testing.T, b *Broker, topic string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Closed at return, not only at the test's end: a test that polls
	// with this would otherwise leave a consumer fetching per call.
	admCl := client(t, b)
	defer admCl.Close()
	ends, err := kadm.NewClient(admCl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	cl := client(t, b, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	defer cl.Close()
	var out []string
	pos := map[int32]int64{}
	done := func() bool {
		ok := true
		ends.Each(func(o kadm.ListedOffset) {
			if pos[o.Partition] < o.Offset {
				ok = false
			}
		})
		return ok
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %d records by the deadline", topic, len(out))
		}
		fs.EachRecord(func(r *kgo.Record) {
			pos[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				out = append(out, string(r.Value))
			}
		})
	}
	return out
}

// A compacted partition that grows by compactDirtyBytes is compacted
// without waiting for the next full clean: a minute of a busy changelog
// made a pass that held every request for 7-17 s. Fails without the size
// trigger (the clean interval here is an hour).
func TestABusyChangelogIsCompactedBetweenCleans(t *testing.T) {
	b := start(t, t.TempDir(), func(c *Config) { c.SegmentBytes = 1 << 20; c.CleanInterval = time.Hour })
	defer b.Close()
	ctx := context.Background()
	if _, err := kadm.NewClient(client(t, b)).CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "state"); err != nil {
		t.Fatal(err)
	}
	cl := client(t, b, kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	const keys = 20
	pad := make([]byte, 1000)
	var recs []*kgo.Record
	for i := range 2 * compactDirtyBytes / len(pad) { // twice the trigger
		recs = append(recs, &kgo.Record{Topic: "state", Key: []byte(fmt.Sprint("P", i%keys)), Value: pad})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "the changelog compacted", func() bool {
		return len(readAllValues(t, b, "state")) < len(recs)/2
	})
}

// Compacting a zstd changelog costs memory in proportion to a batch, not
// to the number of batches: kfake's compaction made a new decompressor,
// and so a new zstd decoder of about 200 KB, for every batch it read
// (twice per partition), and at 40,000 readings/s the realistic benchmark
// grew to 1.8 GB in 15 s, most of it zstd decoders (third_party/kfake,
// the third patch). Here that was 40 KB allocated a batch compacted;
// with one shared decompressor, 2 KB (17 KB under the race detector,
// against its 39).
func TestCompactingAZstdChangelogAllocatesLittle(t *testing.T) {
	b := start(t, t.TempDir(), func(c *Config) { c.CleanInterval = time.Hour })
	defer b.Close()
	ctx := context.Background()
	if _, err := kadm.NewClient(client(t, b)).CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "state"); err != nil {
		t.Fatal(err)
	}
	cl := client(t, b, kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	const batches = 400
	value := []byte(strings.Repeat(`{"latest":{"heart_rate":{"v":80}}}`, 20))
	for i := range batches { // one record a batch: ProduceSync waits for each
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "state", Key: []byte(fmt.Sprint("P", i%10)), Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.c.CompactEach(0, false)
	runtime.ReadMemStats(&after)
	perBatch := (after.TotalAlloc - before.TotalAlloc) / batches
	if perBatch > 28<<10 {
		t.Fatalf("compacting %d zstd batches allocated %d KB a batch", batches, perBatch>>10)
	}
	t.Logf("compacting %d zstd batches allocated %d bytes a batch", batches, perBatch)
	if n := len(readAllValues(t, b, "state")); n >= batches {
		t.Fatalf("%d records left of %d: nothing compacted", n, batches)
	}
}
