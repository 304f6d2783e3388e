package bench

// The processing rows: processors started in process on the benchmark's
// broker (clinical, thresholds, a plain copy), caught up, timed, and the
// end-to-end latency from a reading's post to its alert.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/processors"
	"github.com/monitorme/monitorme/schemas"
)

// startProcessor runs the threshold processor, whose alerts follow the
// readings one for one.
func (e *env) startProcessor(ctx context.Context) (stop func(), err error) {
	return e.startRules(ctx, "bench-"+e.kc.Topics.Vitals, "threshold")
}

// startRules runs the platform's processor with rules, in group.
func (e *env) startRules(ctx context.Context, group, rules string) (stop func(), err error) {
	pc := processors.DefaultConfig()
	pc.Group, pc.Rules = group, rules
	_, stop, err = e.runProcessor(ctx, pc)
	return stop, err
}

// runProcessor runs the platform's processor configured by pc until stop.
func (e *env) runProcessor(ctx context.Context, pc processors.Config) (*processors.Processor, func(), error) {
	p, err := processors.New(pc, e.kc, e.log, e.tel)
	if err != nil {
		return nil, nil, err
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = p.Run(pctx); close(done) }()
	return p, func() { cancel(); <-done }, nil
}

// clinicalVsCopy measures, on one pre-loaded topic, a plain at-least-once
// copy (consume, produce the same records, commit after the flush) and then
// the clinical processor (rules, per-patient state, changelog, all in
// transactions): what exactly-once and state cost over moving the bytes.
func (e *env) clinicalVsCopy(ctx context.Context) ([]Result, error) {
	// Five times the other runs: both sides include a group join, which
	// must not dominate the ratio.
	rs, err := e.preload(ctx, 5*e.cfg.Readings)
	if err != nil {
		return nil, err
	}
	copyGroup := "copy-" + e.kc.Topics.Vitals
	start := time.Now()
	stop, err := e.startCopy(ctx, copyGroup, e.kc.Topics.Vitals+".copy")
	if err != nil {
		return nil, err
	}
	err = e.waitCaughtUp(ctx, copyGroup)
	stop()
	cp := Result{Name: "copy: at-least-once consume -> produce", Count: len(rs), Took: time.Since(start),
		Note: "same topic, commit after flush; the baseline"}
	if err != nil {
		return []Result{cp}, err
	}
	group := "clinical-" + e.kc.Topics.Vitals
	start = time.Now()
	stop, err = e.startRules(ctx, group, "clinical")
	if err != nil {
		return []Result{cp}, err
	}
	err = e.waitCaughtUp(ctx, group)
	stop()
	cr := Result{Name: "processor: clinical EOS + state changelog", Count: len(rs), Took: time.Since(start)}
	cr.Note = fmt.Sprintf("%.2fx the copy (target >= 0.7)", cr.Rate()/cp.Rate())
	return []Result{cp, cr}, err
}

// startCopy copies the vitals topic to dst at least once.
func (e *env) startCopy(ctx context.Context, group, dst string) (stop func(), err error) {
	rf := max(e.kc.ReplicationFactor, 1)
	if _, err := e.adm.CreateTopic(ctx, e.cfg.Partitions, rf, nil, dst); err != nil {
		return nil, err
	}
	cl, err := e.kc.NewClient("bench-plain", kgo.ConsumerGroup(group), kgo.ConsumeTopics(e.kc.Topics.Vitals),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(500*time.Millisecond), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		// One join round, like the clinical processor's range balancer:
		// the cooperative default's second round held the first commit
		// back for seconds on kfake.
		kgo.Balancers(kgo.RangeBalancer()))
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			fs := cl.PollRecords(cctx, 10_000)
			if cctx.Err() != nil {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				cl.Produce(cctx, &kgo.Record{Topic: dst, Key: r.Key, Value: r.Value, Headers: r.Headers}, nil)
			})
			if cl.Flush(cctx) != nil || cl.CommitUncommittedOffsets(cctx) != nil {
				return
			}
		}
	}()
	return func() { cancel(); <-done; cl.Close() }, nil
}

// waitCaughtUp returns when group has committed up to the end of the
// vitals topic.
func (e *env) waitCaughtUp(ctx context.Context, group string) error {
	for {
		if lag, err := kafka.GroupLag(ctx, e.adm, group, e.kc.Topics.Vitals); err == nil && lag == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// preload gives the run fresh topics and writes n readings to the vitals
// topic before anything consumes it.
func (e *env) preload(ctx context.Context, n int) ([]schemas.Reading, error) {
	if err := e.topics(); err != nil {
		return nil, err
	}
	p, err := e.producer()
	if err != nil {
		return nil, err
	}
	defer p.Close()
	rs := e.readings(n, time.Now().UTC())
	return rs, e.fanOut(ctx, rs, p.Produce)
}

func (e *env) processor(ctx context.Context) (Result, error) {
	rs, err := e.preload(ctx, e.cfg.Readings)
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	stop, err := e.startProcessor(ctx)
	if err != nil {
		return Result{}, err
	}
	defer stop()
	err = e.waitCaughtUp(ctx, "bench-"+e.kc.Topics.Vitals)
	return Result{Name: "processor: EOS consume -> alerts -> commit", Count: len(rs), Took: time.Since(start),
		Note: "pre-loaded topic, 1 in 10 readings alerts, includes group join"}, err
}

func (e *env) endToEnd(ctx context.Context) (Result, error) {
	if err := e.topics(); err != nil {
		return Result{}, err
	}
	stopProc, err := e.startProcessor(ctx)
	if err != nil {
		return Result{}, err
	}
	defer stopProc()
	url, stop, err := e.ingestServer(ctx)
	if err != nil {
		return Result{}, err
	}
	defer stop()
	rs := e.readings(e.cfg.Readings, time.Now().UTC())
	start := time.Now()
	if err := e.post(ctx, url, rs); err != nil {
		return Result{}, err
	}
	err = e.waitCaughtUp(ctx, "bench-"+e.kc.Topics.Vitals)
	return Result{Name: "end to end: HTTP -> broker -> EOS processor", Count: len(rs), Took: time.Since(start),
		Note: "until every reading is processed and committed"}, err
}

// latency produces alert-worthy readings at a steady rate with event time
// = send time, and measures when each alert becomes visible to a
// read_committed consumer.
func (e *env) latency(ctx context.Context) (p50, p99 time.Duration, n int, err error) {
	if err := e.topics(); err != nil {
		return 0, 0, 0, err
	}
	stopProc, err := e.startProcessor(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	defer stopProc()
	cons, err := e.kc.NewClient("bench-alerts", kgo.ConsumeTopics(e.kc.Topics.Alerts),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		return 0, 0, 0, err
	}
	defer cons.Close()
	p, err := e.producer()
	if err != nil {
		return 0, 0, 0, err
	}
	defer p.Close()
	// Warm up: let the processor join the group before timing.
	if err := p.Produce(ctx, e.readings(10, time.Now().UTC())); err != nil {
		return 0, 0, 0, err
	}
	if err := e.waitCaughtUp(ctx, "bench-"+e.kc.Topics.Vitals); err != nil {
		return 0, 0, 0, err
	}
	firstSeq := e.seq.Load()
	lctx, cancel := context.WithTimeout(ctx, e.cfg.LatencyFor+30*time.Second)
	defer cancel()
	go func() {
		t := time.NewTicker(time.Second / time.Duration(e.cfg.LatencyRate))
		defer t.Stop()
		end := time.Now().Add(e.cfg.LatencyFor)
		for time.Now().Before(end) {
			<-t.C
			rs := e.readings(1, time.Now().UTC())
			rs[0].Value = 130
			// Not waited for: the next reading is due before this one's
			// acknowledgement, as from many devices at once.
			go func() { _ = p.Produce(lctx, rs) }()
		}
	}()
	want := e.cfg.LatencyRate * int(e.cfg.LatencyFor/time.Second)
	var lats []time.Duration
	for len(lats) < want*95/100 {
		fs := cons.PollFetches(lctx)
		if lctx.Err() != nil {
			break
		}
		now := time.Now()
		fs.EachRecord(func(r *kgo.Record) {
			if a, err := schemas.DecodeAlert(r); err == nil && a.Reading.Seq > firstSeq {
				lats = append(lats, now.Sub(a.Reading.TS))
			}
		})
	}
	if len(lats) == 0 {
		return 0, 0, 0, errors.New("latency run: no alert arrived")
	}
	slices.Sort(lats)
	return lats[len(lats)/2], lats[len(lats)*99/100], len(lats), nil
}
