// Package clickhouse is the history sink: it consumes the vitals, alerts
// and acknowledgements topics with read_committed and writes them to
// ClickHouse in batches, committing each partition's offsets only after
// its batch was inserted.
//
// Rows are effectively once. A batch holds one partition's records from
// offset first to last and is inserted with the deduplication token
// topic-partition-first-last, so ClickHouse drops a batch it already has.
// Before inserting, the sink commits first again with the metadata
// "pending <last>": a sink that dies after the insert and before the
// commit is succeeded by one that cuts exactly the same batch and gets the
// same token, however its polls fall. Rows the tokens do not cover (a
// replay from an earlier offset with other boundaries) are collapsed by
// the tables' ReplacingMergeTree on the row's identity.
package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/once"
	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/schemas"
)

// Inserter writes one batch of rows to a table. A token it has seen (within
// ClickHouse's deduplication window) must be acknowledged without writing
// the rows again. It must not keep rows after returning: the sink reuses
// them.
type Inserter interface {
	Insert(ctx context.Context, table *Table, token string, rows Rows) error
}

// Config is the sink's own settings.
type Config struct {
	Group string
	// MaxRows and FlushInterval cut a partition's batch, whichever comes
	// first: ClickHouse wants inserts of thousands of rows about once a
	// second per table, not a row at a time.
	MaxRows       int
	FlushInterval time.Duration
	// MaxBackoff bounds the wait between retries of a failed insert.
	MaxBackoff time.Duration
}

// DefaultConfig returns the defaults the flag help names.
func DefaultConfig() Config {
	return Config{Group: "history-sink", MaxRows: 50_000, FlushInterval: time.Second, MaxBackoff: 30 * time.Second}
}

// RegisterFlags adds the sink's flags.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Group, "sink-group", c.Group, "consumer group of the history sink")
	fs.IntVar(&c.MaxRows, "sink-max-rows", c.MaxRows, "rows of one partition's batch that make it due (ClickHouse wants 10k-100k rows per insert)")
	fs.DurationVar(&c.FlushInterval, "sink-flush-interval", c.FlushInterval, "age of a batch that makes it due (about one insert per second per table)")
	fs.DurationVar(&c.MaxBackoff, "sink-max-backoff", c.MaxBackoff, "longest wait between retries of a failed insert; consumption pauses meanwhile")
}

// Validate names the first setting that is wrong.
func (c *Config) Validate() error {
	switch {
	case c.Group == "":
		return errors.New("sink-group: must not be empty")
	case c.MaxRows < 1 || c.MaxRows > 1_000_000:
		return fmt.Errorf("sink-max-rows: %d, want 1 to 1000000", c.MaxRows)
	case c.FlushInterval < 10*time.Millisecond || c.FlushInterval > time.Minute:
		return fmt.Errorf("sink-flush-interval: %v, want 10ms to 1m", c.FlushInterval)
	case c.MaxBackoff < 100*time.Millisecond:
		return fmt.Errorf("sink-max-backoff: %v, want at least 100ms", c.MaxBackoff)
	}
	return nil
}

// Token is the insert_deduplication_token of a batch: one partition's
// records from offset first to last. The same batch sent again, by a
// retry, a successor, or a history rebuild cut the same way, carries the
// same token and ClickHouse drops it.
func Token(topic string, partition int32, first, last int64) string {
	return fmt.Sprintf("%s-%d-%d-%d", topic, partition, first, last)
}

// Tables are the sink's destinations, fed by the topics t.
func Tables(t kafka.Topics) []Table {
	return []Table{
		{Name: "vitals", Topic: t.Vitals, NewRows: func() Rows { return &VitalRows{} }, Columns: vitalColumns},
		{Name: "alerts", Topic: t.Alerts, NewRows: func() Rows { return &AlertRows{} }, Columns: alertColumns},
		{Name: "audit", Topic: t.Acks, NewRows: func() Rows { return &AuditRows{} }, Columns: auditColumns},
	}
}

// Sink is the history sink role.
type Sink struct {
	cfg    Config
	kcfg   kafka.Config
	tables map[string]*Table // by topic
	ins    Inserter
	log    *slog.Logger
	opts   []kgo.Opt
	ran    once.Guard

	metrics *sinkMetrics

	cl      *kgo.Client
	batches map[partition]*batch
	// spare holds emptied rows by table, reused by the next batches.
	spare map[string][]Rows

	// cuts are where a predecessor's pending batches end. Like batches,
	// they need no lock: BlockRebalanceOnPoll runs the assigned and
	// revoked callbacks only between AllowRebalance and the next poll,
	// never while the loop touches them.
	cuts map[partition]int64

	mu        sync.Mutex
	lostParts []partition // see lost

	// afterInsert, if set and returning true, makes the sink stop as if
	// killed right after an insert: tests of the crash window.
	afterInsert func() bool
}

type partition struct {
	topic string
	n     int32
}

// batch is a Batch (batch.go) as the sink keeps it: when it was opened,
// for the flush interval, and the dead letters of its unreadable records.
type batch struct {
	*Batch
	opened time.Time
	dead   []*kgo.Record
}

// New validates cfg and returns a sink writing the topics of kcfg through
// ins; it does no I/O (Run makes the client). tel may be nil
// (telemetry.Nop()).
func New(cfg Config, kcfg kafka.Config, ins Inserter, log *slog.Logger, tel *telemetry.Telemetry) (*Sink, error) {
	if err := errors.Join(cfg.Validate(), kcfg.Validate()); err != nil {
		return nil, err
	}
	if tel == nil {
		tel = telemetry.Nop()
	}
	s := &Sink{cfg: cfg, kcfg: kcfg, ins: ins, log: log, opts: []kgo.Opt{tel.KafkaHooks(nil)},
		tables: map[string]*Table{}, batches: map[partition]*batch{}, spare: map[string][]Rows{}, cuts: map[partition]int64{}}
	for _, t := range Tables(kcfg.Topics) {
		s.tables[t.Topic] = &t
	}
	var err error
	s.metrics, err = newSinkMetrics(tel.MeterProvider)
	return s, err
}

// sinkMetrics are the sink's instruments, each by table.
type sinkMetrics struct {
	rowsWritten metric.Int64Counter
	failures    metric.Int64Counter
	insertTime  metric.Float64Histogram
	deadLetters metric.Int64Counter
}

func newSinkMetrics(mp metric.MeterProvider) (*sinkMetrics, error) {
	m := mp.Meter("monitorme/sinks/clickhouse")
	var sm sinkMetrics
	var errs [4]error
	sm.rowsWritten, errs[0] = m.Int64Counter("monitorme.sink.rows", metric.WithDescription("Rows inserted into ClickHouse, by table (a batch ClickHouse deduplicated counts too)"))
	sm.failures, errs[1] = m.Int64Counter("monitorme.sink.insert.failures", metric.WithDescription("Failed inserts, by table; each is retried"))
	sm.insertTime, errs[2] = m.Float64Histogram("monitorme.sink.insert.duration", metric.WithUnit("s"), metric.WithDescription("Time of one batch insert, by table"))
	sm.deadLetters, errs[3] = m.Int64Counter("monitorme.sink.dead_letters", metric.WithDescription("Records the sink could not read, sent to the DLQ, by table"))
	return &sm, errors.Join(errs[:]...)
}

var errCrashed = errors.New("sink stopped as if killed (test)")

const pendingMeta = "monitorme-sink/v1 pending "

// Run consumes until ctx ends, then inserts and commits what it holds. It
// runs once: a second call returns once.ErrRunTwice.
func (s *Sink) Run(ctx context.Context) error {
	if err := s.ran.Start("sink"); err != nil {
		return err
	}
	topics := make([]string, 0, len(s.tables))
	for t := range s.tables {
		topics = append(topics, t)
	}
	cl, err := kgo.NewClient(append(append(s.kcfg.ClientOpts("sink"), s.opts...),
		kgo.ConsumerGroup(s.cfg.Group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(kafka.FetchMaxBytes), kgo.FetchMaxPartitionBytes(kafka.FetchMaxPartitionBytes),
		kgo.DisableAutoCommit(),
		// Batches are touched only between polls; revocation flushes
		// them, so it must not run in the middle.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
	)...)
	if err != nil {
		return fmt.Errorf("sink client: %w", err)
	}
	s.cl = cl
	defer func() {
		// Leaving the group is a rebalance, which a blocked poll holds.
		cl.AllowRebalance()
		cl.Close()
	}()
	wait := s.cfg.FlushInterval
	for {
		pctx, cancel := context.WithTimeout(ctx, wait)
		fs := cl.PollRecords(pctx, s.cfg.MaxRows)
		cancel()
		if fs.IsClientClosed() {
			return nil
		}
		s.dropLost()
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				s.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		var ferr error
		fs.EachRecord(func(r *kgo.Record) {
			if ferr == nil {
				ferr = s.add(ctx, r)
			}
		})
		if ferr == nil {
			ferr = s.flushDue(ctx, ctx.Err() != nil)
		}
		if errors.Is(ferr, errCrashed) {
			clear(s.batches) // a killed sink writes nothing more
			return ferr
		}
		if ctx.Err() != nil {
			// Finish the open batches on the way out, within bounds.
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := s.flushDue(fctx, true)
			cancel()
			return err
		}
		if ferr != nil {
			return ferr
		}
		// Computed before rebalances may run again: a revocation
		// flushes batches.
		wait = s.untilDue()
		cl.AllowRebalance()
	}
}

// untilDue is how long the next poll may wait: until the oldest batch is
// due, at most a flush interval.
func (s *Sink) untilDue() time.Duration {
	wait := s.cfg.FlushInterval
	for _, b := range s.batches {
		if d := time.Until(b.opened.Add(s.cfg.FlushInterval)); d < wait {
			wait = max(d, time.Millisecond)
		}
	}
	return wait
}

func (s *Sink) add(ctx context.Context, r *kgo.Record) error {
	t := s.tables[r.Topic]
	if t == nil {
		return nil
	}
	k := partition{r.Topic, r.Partition}
	cut, hasCut := s.cuts[k]
	b := s.batches[k]
	if hasCut && r.Offset > cut {
		// The predecessor's batch ended before this record (records up
		// to its end may have been deleted since): close it as it was,
		// and cut by size and time again. A cut left behind would hold
		// the partition's batch back for ever.
		if b != nil {
			if err := s.flush(ctx, k, b); err != nil {
				return err
			}
			b = nil
		}
		delete(s.cuts, k)
		hasCut = false
	}
	if b == nil {
		b = &batch{Batch: NewBatch(t, r.Partition, s.rowsFor(t)), opened: time.Now()}
		s.batches[k] = b
	}
	if err := b.Add(r); err != nil {
		b.dead = append(b.dead, schemas.DeadLetter(s.kcfg.Topics.DeadLetterTopic(r.Topic), r, fmt.Errorf("history sink, table %s: %w", t.Name, err)))
	}
	if hasCut && r.Offset == cut {
		return s.flush(ctx, k, b)
	}
	return nil
}

func (s *Sink) rowsFor(t *Table) Rows {
	spare := s.spare[t.Name]
	if len(spare) == 0 {
		return t.NewRows()
	}
	rows := spare[len(spare)-1]
	s.spare[t.Name] = spare[:len(spare)-1]
	return rows
}

// flushDue flushes the batches that are full or old (all with force),
// except one still short of a predecessor's pending end.
func (s *Sink) flushDue(ctx context.Context, force bool) error {
	for k, b := range s.batches {
		_, waiting := s.cuts[k]
		if waiting && !force {
			continue
		}
		if force || b.Records() >= s.cfg.MaxRows || time.Since(b.opened) >= s.cfg.FlushInterval {
			if err := s.flush(ctx, k, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush writes one partition's batch: dead letters, the pending mark,
// the insert (retried until it succeeds or ctx ends), the commit.
func (s *Sink) flush(ctx context.Context, k partition, b *batch) error {
	delete(s.batches, k)
	defer func() {
		b.Reset()
		s.spare[b.Table.Name] = append(s.spare[b.Table.Name], b.Rows)
	}()
	delete(s.cuts, k)
	if len(b.dead) > 0 {
		if err := s.retry(ctx, "dead-letter", k, func() error { return s.cl.ProduceSync(ctx, b.dead...).FirstErr() }); err != nil {
			return err
		}
		s.log.Warn("dead-lettered records the history sink cannot read", "topic", k.topic, "partition", k.n, "count", len(b.dead))
		s.metrics.deadLetters.Add(ctx, int64(len(b.dead)), metric.WithAttributes(attribute.String("table", b.Table.Name)))
	}
	if b.Rows.Len() > 0 {
		if err := s.commit(ctx, k, b.First, b.Epoch, pendingMeta+strconv.FormatInt(b.Last, 10)); err != nil {
			return s.commitFailed(k, err)
		}
		token := b.Token()
		table := metric.WithAttributes(attribute.String("table", b.Table.Name))
		err := s.retry(ctx, "insert into "+b.Table.Name, k, func() error {
			start := time.Now()
			err := s.ins.Insert(ctx, b.Table, token, b.Rows)
			if err != nil {
				s.metrics.failures.Add(ctx, 1, table)
				return err
			}
			s.metrics.insertTime.Record(ctx, time.Since(start).Seconds(), table)
			return nil
		})
		if err != nil {
			return err
		}
		s.metrics.rowsWritten.Add(ctx, int64(b.Rows.Len()), table)
		if s.afterInsert != nil && s.afterInsert() {
			return errCrashed
		}
	}
	if err := s.commit(ctx, k, b.Last+1, b.Epoch, ""); err != nil {
		return s.commitFailed(k, err)
	}
	return nil
}

func (s *Sink) commitFailed(k partition, err error) error {
	if notOurs(err) {
		s.log.Info("history sink: partition moved to another member; it writes the batch again, with the same token", "topic", k.topic, "partition", k.n, "err", err)
		return nil
	}
	return err
}

// retry runs fn until it succeeds, backing off; meanwhile nothing is
// polled, so an unreachable ClickHouse pauses consumption and loses
// nothing.
// The waits grow from 100 ms to MaxBackoff with jitter
// (cenkalti/backoff), so that sinks retrying one ClickHouse do not retry
// in step.
func (s *Sink) retry(ctx context.Context, what string, k partition, fn func() error) error {
	b := retryBackOff(s.cfg.MaxBackoff)
	for {
		err := fn()
		if err == nil {
			return nil
		}
		wait := b.NextBackOff()
		s.log.Warn("history sink: "+what+" failed; retrying", "topic", k.topic, "partition", k.n, "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, err)
		case <-time.After(wait):
		}
	}
}

// retryBackOff is the waits between retries: from 100 ms, doubling, up
// to limit, each jittered by ±50 %; it never gives up (the caller's
// context does).
func retryBackOff(limit time.Duration) *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: limit}
	b.Reset()
	return b
}

// commit commits offset for k with meta, as this group member.
func (s *Sink) commit(ctx context.Context, k partition, offset int64, epoch int32, meta string) error {
	cctx := kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			for j := range req.Topics[i].Partitions {
				m := meta
				req.Topics[i].Partitions[j].Metadata = &m
			}
		}
		return nil
	})
	var cerr error
	s.cl.CommitOffsetsSync(cctx, map[string]map[int32]kgo.EpochOffset{k.topic: {k.n: {Epoch: epoch, Offset: offset}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				cerr = err
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
						cerr = e
					}
				}
			}
		})
	if cerr != nil {
		return fmt.Errorf("commit %s/%d at %d: %w", k.topic, k.n, offset, cerr)
	}
	return nil
}

// assigned reads the pending marks of the partitions this member now
// owns, so it cuts the batches its predecessor may have inserted.
func (s *Sink) assigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, s.cfg.Group)
	if err != nil {
		s.log.Warn("history sink: reading committed offsets failed; pending batches may be cut anew", "err", err)
		return
	}
	for topic, ps := range assigned {
		for _, p := range ps {
			o, ok := offs.Lookup(topic, p)
			if !ok || !strings.HasPrefix(o.Metadata, pendingMeta) {
				continue
			}
			if last, err := strconv.ParseInt(strings.TrimPrefix(o.Metadata, pendingMeta), 10, 64); err == nil && last >= o.At {
				s.cuts[partition{topic, p}] = last
			}
		}
	}
}

// revoked inserts and commits the batches of partitions leaving this
// member, so their next owner starts after them.
func (s *Sink) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	for topic, ps := range revoked {
		for _, p := range ps {
			k := partition{topic, p}
			if b := s.batches[k]; b != nil {
				if err := s.flush(ctx, k, b); err != nil {
					s.log.Warn("history sink: batch of a revoked partition not written; its next owner reads it again", "topic", topic, "partition", p, "err", err)
				}
			}
		}
	}
}

// lost notes partitions taken away without a revoke (the session
// expired): their batches can no longer be committed, and their next owner
// reads them again. It may run at any time, so the poll loop drops them.
func (s *Sink) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, ps := range lost {
		for _, p := range ps {
			s.lostParts = append(s.lostParts, partition{topic, p})
		}
	}
}

func (s *Sink) dropLost() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.lostParts {
		delete(s.batches, k)
		delete(s.cuts, k)
	}
	s.lostParts = s.lostParts[:0]
}

// notOurs says whether a commit failed because the partition moved to
// another member: its batch is then theirs to write.
func notOurs(err error) bool {
	return errors.Is(err, kerr.IllegalGeneration) || errors.Is(err, kerr.UnknownMemberID) ||
		errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.FencedInstanceID)
}
