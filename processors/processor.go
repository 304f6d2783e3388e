package processors

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/once"
	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/schemas"
)

// Handler turns one consumed record into the records to produce for it.
// An error marks the record as poison: it is written to the dead-letter
// topic, in the same transaction, instead of stopping the partition.
type Handler interface {
	Handle(rec *kgo.Record) ([]*kgo.Record, error)
}

// Stateful is a Handler that keeps per-patient state. The processor calls
// Restore for newly assigned vitals partitions before any of their records
// is fetched, Forget for partitions it loses, and brackets every
// transaction: Begin before the first record, Flush after the last (its
// records, the state changelog, are produced in the same transaction), then
// Committed or Aborted. State changed by an aborted transaction must be
// dropped: its records will be processed again.
type Stateful interface {
	Handler
	Restore(ctx context.Context, partitions []int32) error
	Forget(partitions []int32)
	Begin()
	Flush() ([]*kgo.Record, error)
	Committed()
	Aborted()
}

// Timed is a Stateful handler with timers on the processor clock (silence,
// escalation). Due says whether any would fire by clock; Tick fires them,
// inside a transaction like Handle. clock gives the processor clock of a
// vitals partition: see Processor.
type Timed interface {
	Stateful
	Due(clock func(partition int32) time.Time) bool
	Tick(clock func(partition int32) time.Time) ([]*kgo.Record, error)
}

// Predecoder is a Handler that can decode a transaction's records ahead of
// Handle, on every core: decoding is a pure function of one record, while
// Handle must apply the records in order. Handle is then called with the
// same records, in the same order. Predecode may return before it has
// decoded them all, so that Handle overlaps with it; Handle then waits for
// the record it is given.
type Predecoder interface {
	Predecode(recs []*kgo.Record)
}

// resumer is a Timed handler that is told when monitoring of a partition
// resumed, so that silence before it is not blamed on a device.
type resumer interface {
	Resume(resumedAt func(partition int32) time.Time)
}

// Inputs, when a handler implements it, names the topics it consumes in
// place of the vitals topic alone. They must be co-partitioned with the
// vitals topic (provisioning checks it): the processor assigns them with
// the range balancer, which gives one member partition p of every topic.
type Inputs interface {
	Inputs() []string
}

// Config configures a processor.
type Config struct {
	Group string
	// TransactionalID "" gives every process incarnation its own id. The
	// group generation fences a zombie (KIP-447), so a stable id is not
	// needed for correctness; set one (e.g. a StatefulSet pod name) only
	// to have a restart abort its predecessor's open transaction at once
	// instead of after TransactionTimeout.
	TransactionalID string
	// TransactionTimeout is how long the broker lets a transaction stay
	// open. An abandoned one (a crashed processor) blocks read_committed
	// readers of its partitions until it expires, so keep it short.
	TransactionTimeout time.Duration
	// FetchMaxWait bounds an empty fetch. kgo's 5 s default was measured
	// to stall partition takeovers on kfake for seconds.
	FetchMaxWait   time.Duration
	SessionTimeout time.Duration
	// MaxPollRecords bounds the records of one transaction. A
	// transaction's fixed cost (flush, offset commit, the commit markers,
	// one changelog snapshot per patient it touched) is amortized over
	// them: with 30,000 the clinical benchmark ran at 0.71-0.77x a plain
	// copy, with 10,000 at 0.62-0.69x (docs/benchmarks.md). 30,000 is
	// about 50 ms of work at full speed, well inside the one-second alert
	// budget, and a live processor's polls are far smaller.
	MaxPollRecords int
	// CommitInterval is how long a transaction gathers records after the
	// first arrives, up to MaxPollRecords: a poll returns as soon as
	// anything is fetched, so at a low rate each transaction carried a
	// handful of records, and its fixed cost (AddPartitions, EndTxn, a
	// marker on every partition it wrote, three times over with
	// replication) dominated the brokers' work. 0 commits each poll.
	// A transaction that raised an alert event ends at once, so the
	// interval delays only transactions without one (the commit of state
	// and offsets), and nothing once a poll fills MaxPollRecords
	// (docs/benchmarks.md).
	CommitInterval time.Duration
	// Rules picks the handler: "clinical" (the default) is the stateful
	// engine (persistence delays, hysteresis, sleep-aware limits, NEWS2,
	// signal lost, escalation) whose state lives in the state changelog;
	// "threshold" raises an alert for every reading beyond a limit, with
	// no state (the e2e suite counts alerts against readings with it).
	Rules string
	// TickInterval is how often timers are checked while no record
	// arrives: the delay, beyond their deadline, of a signal-lost or
	// escalation event on a quiet partition.
	TickInterval time.Duration
	// RulesFile is the YAML file of per-ward and per-patient rules of the
	// clinical engine ("" for the built-in defaults).
	RulesFile string
	// Clinical is the clinical engine's configuration: the built-in
	// defaults, or RulesFile once LoadRules read it. It is no flag.
	Clinical ClinicalConfig
	// rulesSum is the SHA-256 of the bytes LoadRules parsed: the audit
	// trail's hash is of the rules in force, read once (before, the file
	// was read again to hash it, and could have changed in between).
	rulesSum [32]byte
	// PatientExpiry and PatientExpiryUnestablished set
	// Clinical.ExpireIdle and Clinical.ExpireUnestablished: the state of
	// every patient is bounded by time, however many ids arrive.
	PatientExpiry, PatientExpiryUnestablished time.Duration
}

// DefaultCommitInterval is CommitInterval's default.
const DefaultCommitInterval = 100 * time.Millisecond

// DefaultConfig returns the defaults the flag help names.
func DefaultConfig() Config {
	return Config{
		Group:              "alerting",
		TransactionTimeout: 10 * time.Second,
		FetchMaxWait:       500 * time.Millisecond,
		SessionTimeout:     10 * time.Second,
		MaxPollRecords:     30_000,
		CommitInterval:     DefaultCommitInterval,
		Rules:              "clinical",
		TickInterval:       500 * time.Millisecond,
		Clinical:           DefaultClinicalConfig(),

		PatientExpiry:              24 * time.Hour,
		PatientExpiryUnestablished: 10 * time.Minute,
	}
}

// LoadRules reads RulesFile into Clinical (the built-in defaults when
// there is none). Roles call it with the other settings checks, so a bad
// file stops them before they touch a broker, naming the file's line and
// the reason.
func (c *Config) LoadRules() error {
	if c.RulesFile == "" {
		c.Clinical = DefaultClinicalConfig()
		return nil
	}
	cfg, raw, err := ReadRulesFile(c.RulesFile)
	if err != nil {
		return err
	}
	c.Clinical, c.rulesSum = cfg, sha256.Sum256(raw)
	return nil
}

// RulesLoaded describes the rules LoadRules read, for the audit trail
// (the caller fills in who and where): the file and the SHA-256 of its
// bytes, or "built-in" and the hash of the defaults as JSON.
func (c *Config) RulesLoaded() (schemas.RulesLoaded, error) {
	ev := schemas.RulesLoaded{Source: "built-in", Rules: c.Rules}
	sum := c.rulesSum
	if c.RulesFile != "" {
		ev.Source = c.RulesFile
		if sum == ([32]byte{}) {
			return ev, errors.New("rules-loaded event before LoadRules read " + c.RulesFile)
		}
	} else {
		b, err := json.Marshal(c.Clinical)
		if err != nil {
			return ev, err
		}
		sum = sha256.Sum256(b)
	}
	ev.SHA256 = hex.EncodeToString(sum[:])
	return ev, nil
}

// RegisterFlags binds c to flags.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Group, "group", c.Group, "consumer group of the alert processors")
	fs.StringVar(&c.TransactionalID, "transactional-id", c.TransactionalID, `transactional id ("": unique per process start)`)
	fs.DurationVar(&c.TransactionTimeout, "transaction-timeout", c.TransactionTimeout, "broker-side limit of one transaction; an abandoned one blocks readers this long")
	fs.DurationVar(&c.FetchMaxWait, "fetch-max-wait", c.FetchMaxWait, "longest wait of an empty fetch")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", c.SessionTimeout, "group session timeout: how long a dead member holds its partitions")
	fs.IntVar(&c.MaxPollRecords, "max-poll-records", c.MaxPollRecords, "records per transaction at most")
	fs.DurationVar(&c.CommitInterval, "commit-interval", c.CommitInterval, "how long a transaction gathers records after the first arrives (up to max-poll-records; an alert ends it at once); 0 commits every poll")
	fs.StringVar(&c.Rules, "rules", c.Rules, `alert rules: "clinical" (stateful: persistence, hysteresis, sleep-aware limits, NEWS2, signal lost, escalation) or "threshold" (an alert per reading beyond a limit)`)
	fs.DurationVar(&c.TickInterval, "tick", c.TickInterval, "how often timers (signal lost, escalation) are checked while no record arrives")
	fs.DurationVar(&c.PatientExpiry, "patient-expiry", c.PatientExpiry, "forget a patient who sent nothing this long: open alerts are resolved, the state is deleted (tombstone in the changelog)")
	fs.DurationVar(&c.PatientExpiryUnestablished, "patient-expiry-unestablished", c.PatientExpiryUnestablished, "forget sooner a patient whose devices never kept a cadence for a minute and who has no open alert (invented or mistyped ids)")
	RulesFileFlag(fs, &c.RulesFile, "the rules the engine applies")
}

// Validate refuses settings the processor cannot honor.
func (c *Config) Validate() error {
	switch {
	case c.Group == "":
		return errors.New("group: must not be empty")
	case c.TransactionTimeout < time.Second:
		return fmt.Errorf("transaction-timeout: %v, want at least 1s", c.TransactionTimeout)
	case c.FetchMaxWait <= 0 || c.FetchMaxWait >= c.TransactionTimeout:
		return fmt.Errorf("fetch-max-wait: %v, want more than 0 and less than transaction-timeout", c.FetchMaxWait)
	case c.SessionTimeout < 100*time.Millisecond:
		return fmt.Errorf("session-timeout: %v, want at least 100ms", c.SessionTimeout)
	case c.MaxPollRecords < 1:
		return fmt.Errorf("max-poll-records: %d, want at least 1", c.MaxPollRecords)
	case c.CommitInterval < 0 || c.CommitInterval > time.Second || c.CommitInterval >= c.TransactionTimeout/2:
		return fmt.Errorf("commit-interval: %v, want 0 to 1s and under half the transaction-timeout", c.CommitInterval)
	case c.Rules != "threshold" && c.Rules != "clinical":
		return fmt.Errorf("rules: %q, want clinical or threshold", c.Rules)
	case c.TickInterval < 10*time.Millisecond || c.TickInterval > 10*time.Second:
		return fmt.Errorf("tick: %v, want 10ms to 10s", c.TickInterval)
	case c.PatientExpiry < time.Hour:
		return fmt.Errorf("patient-expiry: %v, want at least 1h", c.PatientExpiry)
	case c.PatientExpiryUnestablished < time.Minute || c.PatientExpiryUnestablished > c.PatientExpiry:
		return fmt.Errorf("patient-expiry-unestablished: %v, want 1m up to patient-expiry", c.PatientExpiryUnestablished)
	case c.RulesFile != "" && c.Rules != "clinical":
		return fmt.Errorf("rules-file: only the clinical rules read it (rules is %q)", c.Rules)
	}
	return nil
}

// Processor is the exactly-once consume-transform-produce loop.
type Processor struct {
	cfg    Config
	kcfg   kafka.Config
	h      Handler
	log    *slog.Logger
	tel    *telemetry.Telemetry
	tracer *kotel.Tracer

	txnLatency   metric.Float64Histogram
	alertLatency metric.Float64Histogram
	resumeGap    metric.Float64Histogram
	records      metric.Int64Counter

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
	m := tel.MeterProvider.Meter("monitorme/processors")
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
		p.h = &Thresholds{Limits: DefaultLimits, AlertsTopic: kcfg.Topics.Alerts}
	}
	if tel.Exporting {
		// Spans per record cost a sixth of the processor's CPU even
		// unsampled (measured); without an exporter the trace context
		// is passed on by copying headers instead (inheritTrace).
		p.tracer = tel.KafkaTracer(cfg.Group)
	}
	var err error
	p.txnLatency, err = m.Float64Histogram("monitorme.processor.transaction.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to end (commit or abort) one transaction"))
	if err != nil {
		return nil, err
	}
	p.alertLatency, err = m.Float64Histogram("monitorme.processor.alert.latency", metric.WithUnit("s"),
		metric.WithDescription("From a reading's record timestamp to its alert's commit"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	if err != nil {
		return nil, err
	}
	p.resumeGap, err = m.Float64Histogram("monitorme.processor.resume.gap", metric.WithUnit("s"),
		metric.WithDescription("When the processor caught up with a partition after a start or rebalance: how long before it the partition's last record arrived (the platform's gap in monitoring)"),
		metric.WithExplicitBucketBoundaries(1, 10, 60, 300, 1800, 3600, 6*3600, 86400))
	if err != nil {
		return nil, err
	}
	p.records, err = m.Int64Counter("monitorme.processor.records",
		metric.WithDescription("Records consumed, by outcome: committed, aborted, dead_lettered"))
	if err != nil {
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
	p.txnLatency.Record(ctx, done.Sub(start).Seconds(), metric.WithAttributes(attribute.String("outcome", outcome)))
	p.records.Add(ctx, n-dead, metric.WithAttributes(attribute.String("outcome", outcome)))
	if committed {
		p.records.Add(ctx, dead, metric.WithAttributes(attribute.String("outcome", "dead_lettered")))
		for _, o := range outs {
			if o.rec.Topic == p.kcfg.Topics.Alerts {
				p.alertLatency.Record(ctx, done.Sub(o.from).Seconds())
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
	p.resumeGap.Record(context.Background(), gap.Seconds(), metric.WithAttributes(attribute.Int("partition", int(part))))
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
