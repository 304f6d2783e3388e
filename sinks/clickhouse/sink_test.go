package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/once"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/schemas"
)

// fakeClickHouse models what the sink relies on: an insert whose
// deduplication token was seen before writes nothing, and the tables are
// ReplacingMergeTree on the row's identity (final: what SELECT ... FINAL
// returns). raw is every row written, as a merge has not collapsed them.
type fakeClickHouse struct {
	mu      sync.Mutex
	tokens  map[string]bool
	raw     map[string]int // vitals identity -> rows written
	inserts int
	failing int // the next failing inserts fail, as an unreachable server
}

func newFakeClickHouse() *fakeClickHouse {
	return &fakeClickHouse{tokens: map[string]bool{}, raw: map[string]int{}}
}

func (f *fakeClickHouse) Insert(_ context.Context, table *Table, token string, rows Rows) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing > 0 {
		f.failing--
		return errors.New("dial tcp 127.0.0.1:9000: connection refused")
	}
	f.inserts++
	if f.tokens[token] {
		return nil
	}
	f.tokens[token] = true
	if v, ok := rows.(*VitalRows); ok && table.Name == "vitals" {
		for i := range v.Len() {
			f.raw[fmt.Sprintf("%s|%s|%s|%s|%d", v.PatientID[i], v.Kind[i], v.TS[i].Format(time.RFC3339Nano), v.DeviceID[i], v.Seq[i])]++
		}
	}
	return nil
}

// check returns the distinct readings (what FINAL shows) and the rows
// written more than once (what a merge collapses).
func (f *fakeClickHouse) check() (final, dups int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.raw {
		dups += c - 1
	}
	return len(f.raw), dups
}

type sinkEnv struct {
	c   *kfake.Cluster
	kc  kafka.Config
	adm *kadm.Client
}

func newSinkEnv(t *testing.T) *sinkEnv {
	c, kc := testkit.CreateCluster(t, 4)
	return &sinkEnv{c: c, kc: kc, adm: testkit.Admin(t, c)}
}

// produce writes n readings of 10 patients and poison poison records.
func (e *sinkEnv) produce(t *testing.T, n, poison int) {
	cl := testkit.Client(t, e.c, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	base := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := range n {
		rd := schemas.Reading{PatientID: fmt.Sprintf("P%02d", i%10), DeviceID: fmt.Sprintf("D%02d", i%10), Kind: schemas.HeartRate,
			Value: float64(60 + i%50), Unit: "/min", TS: base.Add(time.Duration(i) * time.Second), Seq: uint64(i)}
		rec, err := schemas.ReadingRecord(e.kc.Topics.Vitals, &rd)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
		if poison > 0 && i%(n/poison) == 0 && i/(n/poison) < poison {
			recs = append(recs, &kgo.Record{Topic: e.kc.Topics.Vitals, Key: []byte("P01"), Value: []byte(`{"patient_id":`)})
		}
	}
	if err := cl.ProduceSync(testkit.Context(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func (e *sinkEnv) sink(t *testing.T, ch Inserter, group string) *Sink {
	cfg := DefaultConfig()
	cfg.Group, cfg.MaxRows, cfg.FlushInterval, cfg.MaxBackoff = group, 700, 50*time.Millisecond, 200*time.Millisecond
	s, err := New(cfg, e.kc, ch, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runUntilCaughtUp runs s until group has committed the whole vitals
// topic, then stops it.
func (e *sinkEnv) runUntilCaughtUp(t *testing.T, s *Sink) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testkit.Eventually(t, 30*time.Second, "the sink committed everything", func() bool {
		lag, err := kafka.GroupLag(context.Background(), e.adm, s.cfg.Group, e.kc.Topics.Vitals)
		return err == nil && lag == 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("sink: %v", err)
	}
}

// A sink that dies between an insert and its commit is succeeded by one
// that writes the same batch with the same token, so ClickHouse keeps one
// copy; an unreachable ClickHouse holds the sink back without losing or
// committing anything; poison goes to the dead-letter topic.
func TestSinkCrashBetweenInsertAndCommit(t *testing.T) {
	e := newSinkEnv(t)
	const n, poison = 5000, 5
	e.produce(t, n, poison)
	ch := newFakeClickHouse()
	ch.failing = 4

	first := e.sink(t, ch, "history-sink")
	inserts := 0
	first.afterInsert = func() bool { inserts++; return inserts == 3 }
	if err := first.Run(context.Background()); !errors.Is(err, errCrashed) {
		t.Fatalf("first sink: %v", err)
	}
	// The crash left a batch inserted and not committed: without its
	// pending mark a successor would cut it anew and insert its rows
	// under another token.
	offs, err := e.adm.FetchOffsets(context.Background(), "history-sink")
	if err != nil {
		t.Fatal(err)
	}
	pending := 0
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == e.kc.Topics.Vitals && len(o.Metadata) > len(pendingMeta) && o.Metadata[:len(pendingMeta)] == pendingMeta {
			pending++
		}
	})
	if pending != 1 {
		t.Fatalf("%d partitions with a pending batch after the crash, want 1", pending)
	}

	e.runUntilCaughtUp(t, e.sink(t, ch, "history-sink"))
	final, dups := ch.check()
	if final != n || dups != 0 {
		t.Fatalf("after the crash: %d of %d readings in ClickHouse, %d rows written twice", final, n, dups)
	}
	// Dead letters are at least once: a batch retried after a crash
	// sends its dead letters again. Each names its source record.
	sources := map[string]bool{}
	for _, r := range testkit.ReadAll(t, e.c, e.kc.Topics.VitalsDLQ, kgo.ReadCommitted()) {
		sources[schemas.Header(r, schemas.HeaderSource)] = true
	}
	if len(sources) != poison {
		t.Fatalf("dead letters of %d source records, want %d: %v", len(sources), poison, sources)
	}

	// A replay from the start (a new group, offsets at the beginning)
	// cuts its batches where its polls fall, not where the first run's
	// did: rows the tokens do not cover are written again, and the
	// ReplacingMergeTree keeps one of each (what FINAL, or a merge,
	// shows). No reading is missing either way.
	before := ch.inserts
	e.runUntilCaughtUp(t, e.sink(t, ch, "history-sink-replay"))
	final, dups = ch.check()
	if final != n {
		t.Fatalf("after the replay: %d of %d readings", final, n)
	}
	if ch.inserts == before {
		t.Fatal("the replay inserted nothing: it was not a replay")
	}
	t.Logf("replay: %d rows written again, one of each kept by the ReplacingMergeTree", dups)
}

// A pending mark whose records are gone (deleted by retention before a
// successor came) must not hold the partition back: the first record
// after it starts an ordinary batch.
func TestPendingMarkPastItsRecords(t *testing.T) {
	s, err := New(DefaultConfig(), kafka.DefaultConfig(), newFakeClickHouse(), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	k := partition{s.kcfg.Topics.Vitals, 3}
	s.cuts[k] = 41
	rd := schemas.Reading{PatientID: "P1", DeviceID: "D1", Kind: schemas.HeartRate, Value: 70, Unit: "/min", TS: time.Now().UTC(), Seq: 1}
	rec, _ := schemas.ReadingRecord(k.topic, &rd)
	rec.Partition, rec.Offset = 3, 57
	if err := s.add(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.cuts[k]; ok {
		t.Fatal("the stale pending mark still holds the partition's batch")
	}
	if b := s.batches[k]; b == nil || b.First != 57 || b.Rows.Len() != 1 {
		t.Fatalf("batch %+v", b)
	}
}

// A record the sink cannot read goes to the dead-letter topic of the topic
// it came from: a bad alert to the alerts' one, not the vitals'.
func TestSinkDeadLettersToTheInputsTopic(t *testing.T) {
	s, err := New(DefaultConfig(), kafka.DefaultConfig(), newFakeClickHouse(), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	tp := s.kcfg.Topics
	for _, in := range []string{tp.Vitals, tp.Alerts, tp.Acks} {
		rec := &kgo.Record{Topic: in, Partition: 1, Offset: 9, Key: []byte("P1"), Value: []byte("{")}
		if err := s.add(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		b := s.batches[partition{in, 1}]
		if b == nil || len(b.dead) != 1 || b.dead[0].Topic != tp.DeadLetterTopic(in) || b.dead[0].Topic == in {
			t.Fatalf("%s: dead letters %+v", in, b)
		}
	}
}

// Settings errors name the flags users type.
func TestSinkConfigErrorsNameTheFlags(t *testing.T) {
	for flag, mut := range map[string]func(*Config){
		"sink-group":          func(c *Config) { c.Group = "" },
		"sink-max-rows":       func(c *Config) { c.MaxRows = 0 },
		"sink-flush-interval": func(c *Config) { c.FlushInterval = 0 },
		"sink-max-backoff":    func(c *Config) { c.MaxBackoff = 0 },
	} {
		c := DefaultConfig()
		mut(&c)
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), flag+":") {
			t.Errorf("%s: %v", flag, err)
		}
	}
}

func TestSinkRunsOnce(t *testing.T) {
	_, kc := testkit.CreateCluster(t, 1)
	s, err := New(DefaultConfig(), kc, newFakeClickHouse(), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.Run(ctx)
	if err := s.Run(context.Background()); !errors.Is(err, once.ErrRunTwice) {
		t.Fatalf("second Run: %v", err)
	}
}
