package processors

// The transaction loop: consume, hand each record to the handler, produce
// its output, and commit it with the consumed offsets in one transaction.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/monitorme/monitorme/clinical"
	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/once"
	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/schemas"
)

// Processor is the exactly-once consume-transform-produce loop.
type Processor struct {
	cfg    Config
	kcfg   kafka.Config
	h      Handler
	log    *slog.Logger
	tel    *telemetry.Telemetry
	tracer *kotel.Tracer

	metrics *processorMetrics

	// beforeEnd, if set, runs once a transaction's records are on the
	// broker and before it ends, with how many records it consumed:
	// tests use it to crash mid-transaction, to abort it by returning an
	// error, or to count.
	beforeEnd func(consumed int64) error
	// extraOpts are appended to the client options (tests).
	extraOpts []kgo.Opt
	// restoreErr is set when restoring state failed: the session must be
	// restarted before any record of the partition is processed.
	restoreErr atomic.Pointer[error]
	clock      procClock
	ran        once.Guard
	commits    atomic.Int64
	// ready is set once the session joined the group and restored the
	// state of the partitions it was given.
	ready atomic.Bool
	// assigned holds the vitals partitions the processor was given, each
	// with whether it has caught up with its backlog since (a check of the
	// end offsets made after the assignment found it there): only then
	// does a reading posted now raise its alarm now.
	assignedMu sync.Mutex
	assigned   map[int32]*assignment
}

// New validates cfg and returns a processor with the handler cfg.Rules
// names: the clinical engine on cfg.Clinical, or the thresholds. It does
// no I/O: the clients are made by Run.
func New(cfg Config, kcfg kafka.Config, log *slog.Logger, tel *telemetry.Telemetry) (*Processor, error) {
	if err := errors.Join(cfg.Validate(), kcfg.Validate()); err != nil {
		return nil, err
	}
	p := &Processor{cfg: cfg, kcfg: kcfg, log: log.With("group", cfg.Group), tel: tel}
	switch cfg.Rules {
	case "clinical":
		cc := cfg.Clinical
		cc.ExpireIdle, cc.ExpireUnestablished = cfg.PatientExpiry, cfg.PatientExpiryUnestablished
		c := NewClinical(cc, kcfg.Topics, kcfg.ClientOpts("restore")...)
		if err := c.Instrument(tel.MeterProvider); err != nil {
			return nil, err
		}
		p.h = c
	default:
		p.h = &Thresholds{Limits: clinical.DefaultLimits, AlertsTopic: kcfg.Topics.Alerts}
	}
	if tel.Exporting {
		// Spans per record cost a sixth of the processor's CPU even
		// unsampled (measured); without an exporter the trace context
		// is passed on by copying headers instead (inheritTrace).
		p.tracer = tel.KafkaTracer(cfg.Group)
	}
	var err error
	if p.metrics, err = newProcessorMetrics(tel.MeterProvider); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Processor) transactionalID() string {
	if p.cfg.TransactionalID != "" {
		return p.cfg.TransactionalID
	}
	host, _ := os.Hostname()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return p.kcfg.ClientID + "-" + p.cfg.Group + "-" + host + "-" + hex.EncodeToString(b[:])
}

func (p *Processor) newSession() (*kgo.GroupTransactSession, error) {
	topics := []string{p.kcfg.Topics.Vitals}
	if in, ok := p.h.(Inputs); ok {
		topics = in.Inputs()
	}
	opts := append(p.kcfg.ClientOpts("processor"),
		kgo.ConsumerGroup(p.cfg.Group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.TransactionalID(p.transactionalID()),
		kgo.TransactionTimeout(p.cfg.TransactionTimeout),
		kgo.FetchMaxWait(p.cfg.FetchMaxWait),
		kgo.FetchMaxBytes(kafka.FetchMaxBytes), kgo.FetchMaxPartitionBytes(kafka.FetchMaxPartitionBytes),
		kgo.SessionTimeout(p.cfg.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, p.cfg.SessionTimeout/3)),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerLinger(0),
		// The state changelog is most of what a processor writes (a
		// snapshot per changed patient per transaction); zstd stores a
		// snapshot in about three quarters of snappy's bytes.
		kgo.ProducerBatchCompression(kgo.ZstdCompression(), kgo.SnappyCompression(), kgo.NoCompression()),
		p.tel.KafkaHooks(p.tracer),
	)
	if len(topics) > 1 {
		// Co-partitioned inputs need partition p of each on one member:
		// the range balancer does that, the cooperative-sticky default
		// does not.
		opts = append(opts, kgo.Balancers(kgo.RangeBalancer()))
	}
	p.ready.Store(false)
	st, stateful := p.h.(Stateful)
	// kgo calls this after every join, even when nothing new is
	// assigned: the end of a join is when the processor is ready.
	opts = append(opts, kgo.OnPartitionsAssigned(func(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
		p.assign(assigned[p.kcfg.Topics.Vitals])
		if stateful {
			if err := st.Restore(ctx, assigned[p.kcfg.Topics.Vitals]); err != nil {
				p.restoreErr.Store(&err)
				return
			}
		}
		p.ready.Store(true)
	}))
	opts = append(opts,
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
			p.unassign(revoked[p.kcfg.Topics.Vitals])
			if stateful {
				st.Forget(revoked[p.kcfg.Topics.Vitals])
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			p.unassign(lost[p.kcfg.Topics.Vitals])
			if stateful {
				st.Forget(lost[p.kcfg.Topics.Vitals])
			}
		}),
	)
	opts = append(opts, p.extraOpts...)
	s, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return nil, fmt.Errorf("new transact session: %w", err)
	}
	return s, nil
}

// Run processes until ctx ends, then aborts nothing it has not begun,
// leaves the group and returns nil. It runs once: a second call returns
// once.ErrRunTwice.
func (p *Processor) Run(ctx context.Context) error {
	if err := p.ran.Start("processor"); err != nil {
		return err
	}
	sess, err := p.newSession()
	if err != nil {
		return err
	}
	defer func() { sess.Close() }()
	// Waits between sessions after a failed transaction: from 100 ms,
	// doubling to 5 s, jittered (cenkalti/backoff), so that processors
	// failing together do not retry in step.
	retry := &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 5 * time.Second}
	retry.Reset()
	timed, _ := p.h.(Timed)
	p.clock.init(p.kcfg.Topics.Vitals)
	if r, ok := p.h.(resumer); ok {
		r.Resume(p.clock.resumedAt)
	}
	for {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if timed != nil {
			// Wake up to check timers even when nothing arrives.
			pctx, cancel = context.WithTimeout(ctx, p.cfg.TickInterval)
		}
		fetches := sess.PollRecords(pctx, p.cfg.MaxPollRecords)
		cancel()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		p.logFetchErrors(fetches)
		due := false
		if timed != nil {
			p.clock.observe(fetches)
			checked := p.clock.checked
			for part, at := range p.clock.refresh(sess.Client(), p.cfg.TickInterval) {
				p.resumed(part, at)
			}
			if p.clock.checked != checked {
				p.caughtUp(p.clock.checked, p.clock.caughtUp)
			}
			// With records, the transaction's Tick scans the timers
			// anyway; only an empty poll needs to ask first.
			due = fetches.NumRecords() == 0 && timed.Due(p.clock.at)
		}
		if fetches.NumRecords() == 0 && !due && p.restoreErr.Load() == nil {
			continue
		}
		if err := p.transact(ctx, sess, fetches); err != nil {
			// A session whose End failed may be in any state; only a
			// new one is known to be clean. It starts from the last
			// commit, and so does the clock.
			p.clock.aborted()
			wait := retry.NextBackOff()
			p.log.Warn("transaction failed; restarting the session", "err", err, "retry_in", wait)
			sess.Close()
			select {
			case <-ctx.Done():
				sess, _ = p.newSession() // for the deferred Close
				return nil
			case <-time.After(wait):
			}
			if sess, err = p.newSession(); err != nil {
				return err
			}
			continue
		}
		retry.Reset()
	}
}

func (p *Processor) logFetchErrors(fetches kgo.Fetches) {
	fetches.EachError(func(topic string, part int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			p.log.Warn("fetch error", "topic", topic, "partition", part, "err", err)
		}
	})
}

type output struct {
	rec  *kgo.Record
	from time.Time // timestamp of the consumed record it was made from
}

// transact runs one transaction over fetches and what it gathers after
// them: it polls on for CommitInterval after the first records, up to
// MaxPollRecords, so a low rate makes a handful of transactions a second
// instead of one per poll. An alert event ends the gathering at once:
// the interval saves the brokers work, and must not be paid for by the
// nurse station. ctx (the run's) only stops the gathering; producing and
// ending deliberately do without it, as a shutdown must finish the
// transaction it began, not fail it halfway.
func (p *Processor) transact(runCtx context.Context, sess *kgo.GroupTransactSession, fetches kgo.Fetches) error {
	if errp := p.restoreErr.Swap(nil); errp != nil {
		return fmt.Errorf("restore state: %w", *errp)
	}
	if err := sess.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	st, stateful := p.h.(Stateful)
	if stateful {
		st.Begin()
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.TransactionTimeout)
	defer cancel()
	var (
		mu         sync.Mutex
		produceErr error
		outs       []output
		dead, n    int64
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			produceErr = errors.Join(produceErr, err)
			mu.Unlock()
		}
	}
	urgent := false
	handle := func(fetches kgo.Fetches) {
		each := fetches.EachRecord
		if pd, ok := p.h.(Predecoder); ok {
			recs := fetches.Records()
			pd.Predecode(recs)
			each = func(fn func(*kgo.Record)) {
				for _, r := range recs {
					fn(r)
				}
			}
		}
		each(func(r *kgo.Record) {
			n++
			rctx, span := context.Background(), trace.Span(nil)
			if p.tracer != nil {
				rctx, span = p.tracer.WithProcessSpan(r)
			}
			out, err := p.h.Handle(r)
			if err != nil {
				dead++
				if span != nil {
					span.RecordError(err)
					span.SetStatus(codes.Error, "dead-lettered")
				}
				// The reason can name a patient: it goes to the dead-letter
				// header, and to the log only at debug.
				p.log.Warn("dead-lettering a record", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset)
				p.log.Debug("dead-letter reason", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
				out = []*kgo.Record{schemas.DeadLetter(p.kcfg.Topics.DeadLetterTopic(r.Topic), r, err)}
			}
			for _, o := range out {
				if span == nil {
					inheritTrace(o, r)
				}
				outs = append(outs, output{rec: o, from: r.Timestamp})
				urgent = urgent || o.Topic == p.kcfg.Topics.Alerts
				sess.Produce(rctx, o, promise)
			}
			if span != nil {
				span.End()
			}
		})
	}
	handle(fetches)
	if p.cfg.CommitInterval > 0 && fetches.NumRecords() > 0 {
		deadline := time.Now().Add(p.cfg.CommitInterval)
		for got := fetches.NumRecords(); !urgent && got < p.cfg.MaxPollRecords; {
			left := time.Until(deadline)
			if left <= 0 || runCtx.Err() != nil {
				break
			}
			gctx, cancel := context.WithTimeout(runCtx, left)
			more := sess.PollRecords(gctx, p.cfg.MaxPollRecords-got)
			cancel()
			if more.IsClientClosed() {
				break
			}
			p.logFetchErrors(more)
			if more.NumRecords() == 0 {
				continue // the deadline, a shutdown, or only errors: checked above
			}
			if _, ok := p.h.(Timed); ok {
				p.clock.observe(more)
			}
			handle(more)
			got += more.NumRecords()
		}
	}
	if timed, ok := p.h.(Timed); ok {
		out, err := timed.Tick(p.clock.at)
		if err != nil {
			mu.Lock()
			produceErr = errors.Join(produceErr, fmt.Errorf("timers: %w", err))
			mu.Unlock()
		}
		for _, o := range out {
			outs = append(outs, output{rec: o, from: time.Now()})
			sess.Produce(ctx, o, promise)
		}
	}
	if stateful {
		out, err := st.Flush()
		if err != nil {
			mu.Lock()
			produceErr = errors.Join(produceErr, fmt.Errorf("state changelog: %w", err))
			mu.Unlock()
		}
		for _, o := range out {
			sess.Produce(ctx, o, promise)
		}
	}
	start := time.Now()
	// Flush so every promise has run before deciding to commit.
	flushErr := sess.Client().Flush(ctx)
	mu.Lock()
	if p.beforeEnd != nil {
		produceErr = errors.Join(produceErr, p.beforeEnd(n))
	}
	ok := produceErr == nil && flushErr == nil
	mu.Unlock()
	committed, err := sess.End(ctx, kgo.TransactionEndTry(ok))
	done := time.Now()
	if committed && err == nil {
		p.commits.Add(1)
		p.clock.committed()
		if stateful {
			st.Committed()
		}
	} else {
		p.clock.aborted()
		if stateful {
			st.Aborted()
		}
	}
	outcome := "committed"
	if !committed {
		outcome = "aborted"
	}
	p.metrics.txnLatency.Record(ctx, done.Sub(start).Seconds(), metric.WithAttributes(attribute.String("outcome", outcome)))
	p.metrics.records.Add(ctx, n-dead, metric.WithAttributes(attribute.String("outcome", outcome)))
	if committed {
		p.metrics.records.Add(ctx, dead, metric.WithAttributes(attribute.String("outcome", "dead_lettered")))
		for _, o := range outs {
			if o.rec.Topic == p.kcfg.Topics.Alerts {
				p.metrics.alertLatency.Record(ctx, done.Sub(o.from).Seconds())
			}
		}
	}
	if err != nil {
		return fmt.Errorf("end transaction: %w", err)
	}
	if !ok {
		return fmt.Errorf("produce in transaction (aborted): %w", errors.Join(produceErr, flushErr))
	}
	if !committed {
		p.log.Debug("transaction aborted by a rebalance; its records will be processed again")
	}
	return nil
}

// Commits is how many transactions the processor committed: the
// real-cluster benchmark reports them per second.
func (p *Processor) Commits() int64 { return p.commits.Load() }

// resumed reports that monitoring of partition part resumed at at: the
// gap since the partition's last reading is the platform's, and silence
// timers of its patients count from at (timers.go). It is logged, so the
// platform team sees it, and measured in monitorme.processor.resume.gap.
func (p *Processor) resumed(part int32, at time.Time) {
	lr, ok := p.h.(interface {
		LastArrival(partition int32) time.Time
	})
	if !ok {
		return
	}
	last := lr.LastArrival(part)
	if last.IsZero() {
		return // no patient on it yet
	}
	gap := at.Sub(last)
	p.metrics.resumeGap.Record(context.Background(), gap.Seconds(), metric.WithAttributes(attribute.Int("partition", int(part))))
	if gap > 5*time.Second {
		p.log.Warn("monitoring resumed after a gap: silence before now is not blamed on devices",
			"partition", part, "gap", gap.Round(time.Second), "last_reading_arrived", last.UTC().Format(time.RFC3339))
	}
}

// inheritTrace copies the W3C trace context of the consumed record to a
// record made from it, so an alert stays in its reading's trace when no
// span is made here.
func inheritTrace(out, in *kgo.Record) {
	for _, h := range in.Headers {
		if h.Key == "traceparent" || h.Key == "tracestate" {
			if schemas.Header(out, h.Key) == "" {
				out.Headers = append(out.Headers, h)
			}
		}
	}
}
