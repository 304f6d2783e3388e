package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/processors"
	"github.com/monitorme/monitorme/producers"
	"github.com/monitorme/monitorme/schemas"
)

// KafkaConfig sizes the real-cluster benchmark (make bench-kafka).
type KafkaConfig struct {
	Brokers []string
	// BrokerPIDs are the brokers' processes on this machine, whose CPU
	// time (/proc/<pid>/stat) each row reports per reading.
	BrokerPIDs []int
	Readings   int   // pre-loaded readings of the throughput rows
	Partitions int32 // of every topic
	Rates      []int // readings per second of the latency rows
	LatencyFor time.Duration
	// CommitIntervals are the processor settings the latency rows compare.
	CommitIntervals []time.Duration
	// WarmUp is how long each latency row runs at its rate before it
	// measures: freshly started brokers spend their first minutes
	// compiling (the JVM's C2 threads took 7 % of a broker's core at
	// 2,000/s), and a row measured at once measured that.
	WarmUp time.Duration
	// Linger is the platform producer's (ingest's --producer-linger).
	Linger time.Duration
}

// DefaultKafkaConfig returns the defaults the flag help names.
func DefaultKafkaConfig() KafkaConfig {
	return KafkaConfig{Readings: 1_000_000, Partitions: 12, Rates: []int{2000, 21000}, LatencyFor: 30 * time.Second,
		CommitIntervals: []time.Duration{0, processors.DefaultCommitInterval}, WarmUp: 20 * time.Second,
		Linger: producers.DefaultProducerConfig().Linger}
}

// cpuTime is the user and system CPU time of this process and of pids.
func cpuTime(pids []int) (self, brokers time.Duration) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command (in parentheses, which may hold
		// spaces): utime and stime are the 14th and 15th of the line.
		rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
		f := strings.Fields(rest)
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		brokers += time.Duration(ut+st) * (time.Second / 100) // USER_HZ
	}
	return self, brokers
}

// RunKafka runs the real-cluster rows: first reading-to-alert latency at
// each rate for each commit interval, on brokers that have done nothing
// else yet (after the throughput rows they were still busy for minutes
// with what those wrote); then the at-least-once copy, the threshold and
// the clinical processor over the same pre-loaded readings (first
// consumed to last committed, outputs checked read_committed), with CPU
// per reading of this process (the processor) and of the brokers.
func RunKafka(ctx context.Context, cfg KafkaConfig, out io.Writer) error {
	if len(cfg.Brokers) == 0 || cfg.Readings < 1000 || len(cfg.Rates) == 0 {
		return errors.New("bench-kafka needs brokers, at least 1000 readings and a rate")
	}
	log := slog.New(slog.DiscardHandler)
	e := &env{cfg: DefaultConfig(), tel: telemetry.Nop(), log: log}
	e.cfg.Partitions = cfg.Partitions
	e.cfg.Batch, e.cfg.Concurrency = 1000, 4
	e.kc = kafka.DefaultConfig()
	e.kc.Brokers, e.kc.Partitions, e.kc.ReplicationFactor = cfg.Brokers, cfg.Partitions, 3
	e.linger = cfg.Linger
	admCl, err := e.kc.NewClient("bench-admin")
	if err != nil {
		return err
	}
	defer admCl.Close()
	e.adm = kadm.NewClient(admCl)

	fmt.Fprintf(out, "%d brokers (pids %v), RF 3, min.insync.replicas 2, %d partitions; %d pre-loaded readings (1 in 10 alerts under threshold rules)\n\n",
		len(cfg.Brokers), cfg.BrokerPIDs, cfg.Partitions, cfg.Readings)
	const row = "%-40s %10s %8s %11s %13s %13s  %s\n"
	fmt.Fprintf(out, "reading -> alert latency, clinical processor (an SpO2 of 70 %% raises spo2_critical at once), alert seen by a read_committed consumer;\n%v per row after %v of warm-up at its rate; producer linger %v; \"this\" is this process: processor, producer and consumer:\n\n",
		cfg.LatencyFor, cfg.WarmUp, cfg.Linger)
	const lrow = "%-22s %8s %8s %7s %8s %8s %8s %8s %8s %13s %13s\n"
	fmt.Fprintf(out, lrow, "commit-interval", "rate/s", "sent/s", "alerts", "p50", "p95", "p99", "max", "txn/s", "this µs/rdg", "brokers µs/rdg")
	for _, rate := range cfg.Rates {
		for _, ci := range cfg.CommitIntervals {
			r, err := e.latencyAt(ctx, cfg, rate, ci)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, lrow, ci.String(), strconv.Itoa(rate), fmt.Sprintf("%.0f", r.sentRate), strconv.Itoa(r.n), r.p[0].String(), r.p[1].String(), r.p[2].String(), r.p[3].String(),
				fmt.Sprintf("%.0f", r.txnRate), fmt.Sprintf("%.2f", r.procUS), fmt.Sprintf("%.2f", r.brokerUS))
		}
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, row, "run", "readings", "seconds", "readings/s", "proc µs/rdg", "brokers µs/rdg", "check")
	t0 := time.Now()
	if err := e.topics(); err != nil {
		return err
	}
	// A monitor's pace: each of the 1,000 patients' readings a second
	// apart in event time, ending now, so the clinical engine's
	// persistence delays and timers run as they do live.
	rs := e.readings(cfg.Readings, time.Now().UTC())
	base := time.Now().UTC().Add(-time.Duration(len(rs)/1000) * time.Second)
	for i := range rs {
		rs[i].TS = base.Add(time.Duration(i/1000) * time.Second)
	}
	prod, err := e.producer()
	if err != nil {
		return err
	}
	err = e.fanOut(ctx, rs, prod.Produce)
	prod.Close()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "(pre-load: %d readings in %.1f s)\n", len(rs), time.Since(t0).Seconds())
	vitals := e.kc.Topics.Vitals
	measure := func(name string, run func() (string, error)) (float64, error) {
		s0, b0 := cpuTime(cfg.BrokerPIDs)
		start := time.Now()
		check, err := run()
		took := time.Since(start)
		s1, b1 := cpuTime(cfg.BrokerPIDs)
		n := float64(len(rs))
		rate := n / took.Seconds()
		fmt.Fprintf(out, row, name, strconv.Itoa(len(rs)), fmt.Sprintf("%.2f", took.Seconds()), fmt.Sprintf("%.0f", rate),
			fmt.Sprintf("%.2f", float64((s1-s0).Microseconds())/n), fmt.Sprintf("%.2f", float64((b1-b0).Microseconds())/n), check)
		return rate, err
	}
	copyRate, err := measure("copy: at-least-once consume -> produce", func() (string, error) {
		group, dst := "copy-"+vitals, vitals+".copy"
		n, err := e.runToEnd(ctx, group, dst, func() (func(), error) { return e.startCopy(ctx, group, dst) })
		if err != nil {
			return "", err
		}
		if n < len(rs) {
			return "", fmt.Errorf("the copy has %d of %d readings", n, len(rs))
		}
		return fmt.Sprintf("%d records copied (at least once)", n), nil
	})
	if err != nil {
		return err
	}
	for _, rules := range []string{"threshold", "clinical"} {
		// Outputs of their own, over the same vitals.
		e.kc.Topics.Alerts, e.kc.Topics.State = vitals+"."+rules+".alerts", vitals+"."+rules+".state"
		if err := kafka.Provision(ctx, e.adm, &e.kc, e.kc.Specs(), log); err != nil {
			return err
		}
		rate, err := measure("processor: "+rules+" (EOS)", func() (string, error) {
			group := rules + "-" + vitals
			n, err := e.runToEnd(ctx, group, e.kc.Topics.Alerts, func() (func(), error) { return e.startRules(ctx, group, rules) })
			if err != nil {
				return "", err
			}
			if rules == "threshold" && n != len(rs)/10 {
				return "", fmt.Errorf("%d alerts read_committed, want exactly %d", n, len(rs)/10)
			}
			return fmt.Sprintf("%d alerts read_committed", n), nil
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%40s %.2fx the copy\n", "", rate/copyRate)
	}

	return nil
}

// runToEnd starts a consumer of the vitals (start), stops it once group
// has committed the whole topic, and counts what it wrote to out.
func (e *env) runToEnd(ctx context.Context, group, out string, start func() (stop func(), err error)) (int, error) {
	stop, err := start()
	if err != nil {
		return 0, err
	}
	err = e.waitCaughtUp(ctx, group)
	stop()
	if err != nil {
		return 0, err
	}
	return countRecords(ctx, &e.kc, out)
}

// countRecords counts topic's records read_committed, to its end.
func countRecords(ctx context.Context, kc *kafka.Config, topic string) (int, error) {
	adm, err := kc.NewClient("bench-count")
	if err != nil {
		return 0, err
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListCommittedOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return 0, nil
	}
	cl, err := kc.NewClient("bench-count", kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.KeepControlRecords(), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	n := 0
	at := map[int32]int64{}
	for {
		done := true
		for p, end := range want {
			if at[p] < end {
				done = false
			}
		}
		if done {
			return n, nil
		}
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return n, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			at[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				n++
			}
		})
	}
}

type latencyResult struct {
	n                         int
	p                         [4]time.Duration
	txnRate, procUS, brokerUS float64
	// sentRate is the rate achieved: below the one asked for when this
	// process had no CPU to keep up (the ticker drops ticks).
	sentRate float64
}

// latencyAt produces rate readings a second for LatencyFor through the
// platform's producer (acks=all), one in a hundred an SpO2 of 70 % of a
// patient of its own (so each raises spo2_critical at once), and measures
// each alert's arrival at a read_committed consumer from its reading's
// event time (its send time).
func (e *env) latencyAt(ctx context.Context, cfg KafkaConfig, rate int, commitInterval time.Duration) (latencyResult, error) {
	var res latencyResult
	if err := e.topics(); err != nil {
		return res, err
	}
	pc := processors.DefaultConfig()
	pc.Group, pc.Rules, pc.CommitInterval = "latency-"+e.kc.Topics.Vitals, "clinical", commitInterval
	p, stopP, err := e.runProcessor(ctx, pc)
	if err != nil {
		return res, err
	}
	defer stopP()
	cons, err := e.kc.NewClient("bench-alerts", kgo.ConsumeTopics(e.kc.Topics.Alerts),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		return res, err
	}
	defer cons.Close()
	prod, err := e.producer()
	if err != nil {
		return res, err
	}
	defer prod.Close()
	// Warm up: the processor joins the group before the clock starts.
	if err := prod.Produce(ctx, e.readings(10, time.Now().UTC())); err != nil {
		return res, err
	}
	if err := e.waitCaughtUp(ctx, pc.Group); err != nil {
		return res, err
	}
	var (
		lat []time.Duration
		mu  sync.Mutex
		// from is when the measured part begins: alerts of readings
		// sent during the warm-up are not counted.
		from atomic.Int64
	)
	from.Store(math.MaxInt64)
	cctx, stopCons := context.WithCancel(ctx)
	consDone := make(chan struct{})
	go func() {
		defer close(consDone)
		for {
			fs := cons.PollFetches(cctx)
			if cctx.Err() != nil {
				return
			}
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				a, err := schemas.DecodeAlert(r)
				if err == nil && a.Condition == "spo2_critical" && a.State == schemas.Raised && a.Reading.TS.UnixNano() >= from.Load() {
					mu.Lock()
					lat = append(lat, now.Sub(a.Reading.TS))
					mu.Unlock()
				}
			})
		}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	per := max(rate/100, 1)
	var wg sync.WaitGroup
	send := func(d time.Duration) (sent int) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			<-tick.C
			now := time.Now().UTC()
			batch := e.readings(per, now)
			for i := range batch {
				if (sent+i)%100 == 0 {
					batch[i] = schemas.Reading{PatientID: fmt.Sprintf("L%d", e.seq.Add(1)), DeviceID: "L-ox", Kind: schemas.SpO2, Value: 70, Unit: "%", TS: now, Seq: e.seq.Add(1)}
				}
			}
			sent += len(batch)
			wg.Go(func() { _ = prod.Produce(ctx, batch) })
		}
		return sent
	}
	send(cfg.WarmUp)
	s0, b0 := cpuTime(cfg.BrokerPIDs)
	c0, start := p.Commits(), time.Now()
	from.Store(start.UnixNano())
	sent := send(cfg.LatencyFor)
	res.sentRate = float64(sent) / time.Since(start).Seconds()
	wg.Wait()
	want := (sent + 99) / 100
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= want {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	s1, b1 := cpuTime(cfg.BrokerPIDs)
	res.txnRate = float64(p.Commits()-c0) / time.Since(start).Seconds()
	stopCons()
	<-consDone
	mu.Lock()
	defer mu.Unlock()
	res.n = len(lat)
	if res.n < want {
		return res, fmt.Errorf("%d of %d alerts arrived", res.n, want)
	}
	slices.Sort(lat)
	q := func(f float64) time.Duration {
		return lat[min(len(lat)-1, int(f*float64(len(lat))))].Round(time.Millisecond)
	}
	res.p = [4]time.Duration{q(0.50), q(0.95), q(0.99), lat[len(lat)-1].Round(time.Millisecond)}
	res.procUS = float64((s1 - s0).Microseconds()) / float64(sent)
	res.brokerUS = float64((b1 - b0).Microseconds()) / float64(sent)
	return res, nil
}
