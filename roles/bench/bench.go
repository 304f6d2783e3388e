// Package bench measures the platform in one process on the embedded
// broker, the way `monitorme dev` runs it: ingest throughput (producer and
// HTTP), exactly-once processor throughput, end-to-end throughput, and
// reading-to-alert latency. It prints a table; the numbers go to
// docs/benchmarks.md with the command that produced them.
//
// It sits beside the commands, above the components, and builds them with
// their own constructors (the producer, ingest, the processor by its
// rules), so what it measures is what the roles run.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/clinical"
	"github.com/monitorme/monitorme/internal/broker"
	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/internal/web"
	"github.com/monitorme/monitorme/producers"
	"github.com/monitorme/monitorme/schemas"
)

// Config sizes the runs.
type Config struct {
	Readings    int           // readings per throughput run
	Batch       int           // readings per Produce call / HTTP request
	Concurrency int           // concurrent producers / HTTP clients
	LatencyRate int           // readings per second in the latency run
	LatencyFor  time.Duration // length of the latency run
	Partitions  int32
	DataDir     string // "" keeps the broker in memory
	// RestartPatients and RestartSnapshots size the restart run: that
	// many patients, each with that many snapshots in the state
	// changelog, as a broker holds them before compacting.
	RestartPatients, RestartSnapshots int
	// RealisticRates are the rates of the realistic path (0 skips it),
	// each run for RealisticFor.
	RealisticRates []int
	RealisticFor   time.Duration
	// ProfileDir, if set, receives the CPU profile of each realistic
	// rate (realistic-<rate>.pprof), for go tool pprof.
	ProfileDir string
	// RealisticOnly runs the realistic path alone.
	RealisticOnly bool
	// RealisticCriticalEvery makes every n-th reading of the realistic
	// path a critical SpO2 of a patient of its own (0: none). Each such
	// patient is new, so it also adds a patient a reading: at 1 in 100
	// and 21,000/s, 12,600 a minute, whose state the platform keeps until
	// it expires.
	RealisticCriticalEvery int
}

// DefaultConfig returns the defaults the flag help names.
func DefaultConfig() Config {
	return Config{Readings: 200_000, Batch: 1000, Concurrency: 4, LatencyRate: 500, LatencyFor: 10 * time.Second, Partitions: 12,
		RestartPatients: 1000, RestartSnapshots: 60, RealisticRates: []int{10000, 21000, 30000, 40000, 50000}, RealisticFor: 15 * time.Second,
		RealisticCriticalEvery: 100}
}

// Validate refuses sizes that cannot give a number.
func (c *Config) Validate() error {
	switch {
	case c.Readings < 1000:
		return fmt.Errorf("readings: %d, want at least 1000", c.Readings)
	case c.Batch < 1 || c.Batch > schemas.MaxBatchItems:
		return fmt.Errorf("batch: %d, want 1 to %d", c.Batch, schemas.MaxBatchItems)
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency: %d, want at least 1", c.Concurrency)
	case c.LatencyRate < 1 || c.LatencyFor < time.Second:
		return errors.New("latency-rate must be at least 1 and latency-for at least 1s")
	case c.Partitions < 1:
		return fmt.Errorf("partitions: %d, want at least 1", c.Partitions)
	case c.RealisticCriticalEvery < 0:
		return fmt.Errorf("realistic-critical-every: %d, want 0 (none) or more", c.RealisticCriticalEvery)
	case c.RestartPatients < 1 || c.RestartSnapshots < 1:
		return fmt.Errorf("restart-patients and restart-snapshots: %d and %d, want at least 1", c.RestartPatients, c.RestartSnapshots)
	}
	return nil
}

// Result is one row of the table.
type Result struct {
	Name  string
	Count int
	Took  time.Duration
	Note  string
}

// Rate is the row's readings per second.
func (r Result) Rate() float64 { return float64(r.Count) / r.Took.Seconds() }

type env struct {
	cfg  Config
	kc   kafka.Config
	b    *broker.Broker
	tel  *telemetry.Telemetry
	log  *slog.Logger
	adm  *kadm.Client
	seq  atomic.Uint64
	tick int
	run  string // names this run's topics
	// linger, if set, is the producer's instead of the platform default.
	linger time.Duration
}

// Run runs every benchmark, writing the table to out as rows complete.
func Run(ctx context.Context, cfg Config, out io.Writer) ([]Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := slog.New(slog.DiscardHandler)
	bc := broker.DefaultConfig()
	bc.DataDir, bc.Addr, bc.Partitions = cfg.DataDir, "127.0.0.1:0", int(cfg.Partitions)
	b, err := broker.Start(bc, log)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	e := &env{cfg: cfg, b: b, tel: telemetry.Nop(), log: log}
	e.kc = kafka.DefaultConfig()
	e.kc.Brokers = b.Addrs()
	e.kc.Partitions = cfg.Partitions
	admCl, err := e.kc.NewClient("bench-admin")
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	e.adm = kadm.NewClient(admCl)

	const row = "%-44s %9v %8v %11v  %s\n"
	fmt.Fprintf(out, row, "benchmark", "readings", "seconds", "readings/s", "note")
	var results []Result
	add := func(r Result) {
		results = append(results, r)
		fmt.Fprintf(out, row, r.Name, r.Count, fmt.Sprintf("%.2f", r.Took.Seconds()), fmt.Sprintf("%.0f", r.Rate()), r.Note)
	}
	if cfg.RealisticOnly {
		return nil, e.realisticTable(ctx, cfg.RealisticRates, cfg.RealisticFor, out)
	}
	steps := []func(context.Context) (Result, error){e.producerDirect, e.httpIngest, e.processor, e.endToEnd}
	for _, step := range steps {
		r, err := step(ctx)
		if err != nil {
			return results, err
		}
		add(r)
	}
	pair, err := e.clinicalVsCopy(ctx)
	for _, r := range pair {
		add(r)
	}
	if err != nil {
		return results, err
	}
	p50, p99, n, err := e.latency(ctx)
	if err != nil {
		return results, err
	}
	fmt.Fprintf(out, "\nreading -> alert latency (ingest produce to alert visible to a read_committed consumer), %d alerts at %d readings/s: p50 %v, p99 %v\n",
		n, cfg.LatencyRate, p50.Round(100*time.Microsecond), p99.Round(100*time.Microsecond))
	if len(cfg.RealisticRates) > 0 {
		if err := e.realisticTable(ctx, cfg.RealisticRates, cfg.RealisticFor, out); err != nil {
			return results, err
		}
		fmt.Fprintln(out)
	}
	for _, compacted := range []bool{false, true} {
		r, err := e.restart(ctx, compacted)
		if err != nil {
			return results, err
		}
		fmt.Fprintln(out, r)
	}
	return results, nil
}

// restart measures what a nurse waits for after a processor (re)starts:
// RestartPatients patients have RestartSnapshots snapshots each in the
// state changelog; a clinical processor starts, and a critical reading
// (SpO2 70 %, which alarms at once) is produced at the same moment. It
// reports when the processor's first transaction committed and when the
// alert was visible to a read_committed reader. compacted runs the
// broker's cleaner first, as every start of the embedded broker does.
func (e *env) restart(ctx context.Context, compacted bool) (string, error) {
	if err := e.topics(); err != nil {
		return "", err
	}
	base := time.Now().UTC().Add(-time.Hour)
	// Each snapshot differs, as a patient's do from one transaction to
	// the next, so compression does not make the changelog free to read.
	snapshot := func(p, v int) ([]byte, error) {
		var st clinical.PatientState
		at := base.Add(time.Duration(v) * time.Second)
		for i, spec := range schemas.Specs {
			st.Latest.Set(spec.Kind, clinical.Sample{Value: spec.Min + float64((p+v+i)%7), TS: at.Add(time.Duration(p) * time.Microsecond), At: at,
				Gap: time.Second, Device: fmt.Sprintf("R%04d-dev%d", p, i), Seq: uint64(v*len(schemas.Specs) + i + 1)})
		}
		return json.Marshal(&st)
	}
	cl, err := e.kc.NewClient("bench-state", kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err != nil {
		return "", err
	}
	defer cl.Close()
	for v := range e.cfg.RestartSnapshots {
		recs := make([]*kgo.Record, 0, e.cfg.RestartPatients)
		for p := range e.cfg.RestartPatients {
			value, err := snapshot(p, v)
			if err != nil {
				return "", err
			}
			recs = append(recs, &kgo.Record{Topic: e.kc.Topics.State, Key: fmt.Appendf(nil, "R%04d", p), Value: value})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return "", fmt.Errorf("write snapshot %d: %w", v, err)
		}
	}
	clean := time.Duration(0)
	if compacted {
		start := time.Now()
		e.b.Clean()
		clean = time.Since(start)
	}
	cons, err := e.kc.NewClient("bench-alerts", kgo.ConsumeTopics(e.kc.Topics.Alerts),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		return "", err
	}
	defer cons.Close()
	p, err := e.producer()
	if err != nil {
		return "", err
	}
	defer p.Close()
	group := "restart-" + e.kc.Topics.Vitals
	start := time.Now()
	stop, err := e.startRules(ctx, group, "clinical")
	if err != nil {
		return "", err
	}
	defer stop()
	rd := schemas.Reading{PatientID: "R0000", DeviceID: "bench-oximeter", Kind: schemas.SpO2, Value: 70, Unit: "%", TS: time.Now().UTC(), Seq: 1}
	if err := p.Produce(ctx, []schemas.Reading{rd}); err != nil {
		return "", err
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var firstCommit, alert time.Duration
	for alert == 0 {
		if firstCommit == 0 {
			if offs, err := e.adm.FetchOffsets(rctx, group); err == nil && len(offs) > 0 {
				firstCommit = time.Since(start)
			}
		}
		fs := cons.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			return "", fmt.Errorf("restart run: no alert within 5m: %w", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if a, err := schemas.DecodeAlert(r); err == nil && a.PatientID == rd.PatientID && alert == 0 {
				alert = time.Since(start)
			}
		})
	}
	if firstCommit == 0 {
		firstCommit = alert
	}
	what := "uncompacted changelog"
	if compacted {
		what = fmt.Sprintf("changelog compacted by the broker's clean (%.2fs)", clean.Seconds())
	}
	return fmt.Sprintf("restart, %d patients x %d snapshots, %s: first commit %.2fs, alert for a reading sent at start %.2fs after start",
		e.cfg.RestartPatients, e.cfg.RestartSnapshots, what, firstCommit.Seconds(), alert.Seconds()), nil
}

// topics gives each run fresh topics so runs do not see each other's data.
func (e *env) topics() error {
	if e.run == "" {
		// Names of this run's own: a cluster that ran the benchmark
		// before still has the last run's topics, and the records in them
		// would count as this run's.
		e.run = strconv.FormatInt(time.Now().Unix()%1_000_000, 10)
	}
	e.tick++
	e.kc.Topics = kafka.Topics{
		Vitals:    fmt.Sprintf("bench%s-%d.vitals", e.run, e.tick),
		Alerts:    fmt.Sprintf("bench%s-%d.alerts", e.run, e.tick),
		State:     fmt.Sprintf("bench%s-%d.state", e.run, e.tick),
		Acks:      fmt.Sprintf("bench%s-%d.acks", e.run, e.tick),
		VitalsDLQ: fmt.Sprintf("bench%s-%d.vitals.dlq", e.run, e.tick),
		AlertsDLQ: fmt.Sprintf("bench%s-%d.alerts.dlq", e.run, e.tick),
		AcksDLQ:   fmt.Sprintf("bench%s-%d.acks.dlq", e.run, e.tick),

		Placements: fmt.Sprintf("bench%s-%d.placements", e.run, e.tick),
	}
	return kafka.Provision(context.Background(), e.adm, &e.kc, e.kc.Specs(), e.log)
}

// readings returns n readings of 1000 patients, one in ten alert-worthy.
func (e *env) readings(n int, at time.Time) []schemas.Reading {
	rs := make([]schemas.Reading, n)
	for i := range rs {
		seq := e.seq.Add(1)
		v := 80.0
		if seq%10 == 0 {
			v = 130
		}
		rs[i] = schemas.Reading{PatientID: fmt.Sprintf("P%04d", seq%1000), DeviceID: fmt.Sprintf("D%04d", seq%1000), Kind: schemas.HeartRate,
			Value: v, Unit: "/min", TS: at, Seq: seq}
	}
	return rs
}

// producer is the platform's own producer, as ingest runs it.
func (e *env) producer() (*producers.Producer, error) {
	pc := producers.DefaultProducerConfig()
	if e.linger > 0 {
		pc.Linger = e.linger
	}
	return producers.NewProducer(pc, e.kc, e.tel)
}

// fanOut splits rs into batches and runs send on them from Concurrency
// goroutines.
func (e *env) fanOut(ctx context.Context, rs []schemas.Reading, send func(context.Context, []schemas.Reading) error) error {
	batches := make(chan []schemas.Reading)
	errc := make(chan error, e.cfg.Concurrency)
	var wg sync.WaitGroup
	for range e.cfg.Concurrency {
		wg.Go(func() {
			for b := range batches {
				if err := send(ctx, b); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	for i := 0; i < len(rs); i += e.cfg.Batch {
		select {
		case batches <- rs[i:min(i+e.cfg.Batch, len(rs))]:
		case err := <-errc:
			close(batches)
			wg.Wait()
			return err
		}
	}
	close(batches)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func (e *env) producerDirect(ctx context.Context) (Result, error) {
	if err := e.topics(); err != nil {
		return Result{}, err
	}
	p, err := e.producer()
	if err != nil {
		return Result{}, err
	}
	defer p.Close()
	rs := e.readings(e.cfg.Readings, time.Now().UTC())
	start := time.Now()
	err = e.fanOut(ctx, rs, p.Produce)
	return Result{Name: "ingest: producer -> broker (acks=all)", Count: len(rs), Took: time.Since(start), Note: "JSON encode + idempotent produce"}, err
}

// ingestServer runs the real ingest handler on a loopback port.
func (e *env) ingestServer(ctx context.Context) (url string, stop func(), err error) {
	p, err := e.producer()
	if err != nil {
		return "", nil, err
	}
	in, err := producers.NewIngest(producers.DefaultIngestConfig(), p, e.log, e.tel.MeterProvider)
	if err != nil {
		p.Close()
		return "", nil, err
	}
	srv := web.New(e.log, e.tel)
	in.Register(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.Close()
		return "", nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = web.Serve(sctx, srv, ln); close(done) }()
	return "http://" + ln.Addr().String(), func() { cancel(); <-done; p.Close() }, nil
}

// post sends pre-encoded bodies, so the client's JSON encoding is not
// charged to the server.
func (e *env) post(ctx context.Context, url string, rs []schemas.Reading) error {
	var bodies [][]byte
	for i := 0; i < len(rs); i += e.cfg.Batch {
		b, err := json.Marshal(rs[i:min(i+e.cfg.Batch, len(rs))])
		if err != nil {
			return err
		}
		bodies = append(bodies, b)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: e.cfg.Concurrency}}
	next := atomic.Int64{}
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range e.cfg.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(bodies) {
					return
				}
				resp, err := client.Post(url+"/v1/vitals", "application/json", bytes.NewReader(bodies[i]))
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				msg, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					firstErr.CompareAndSwap(nil, fmt.Errorf("ingest answered %s: %s", resp.Status, msg))
					return
				}
			}
		})
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return err
	}
	return nil
}

func (e *env) httpIngest(ctx context.Context) (Result, error) {
	if err := e.topics(); err != nil {
		return Result{}, err
	}
	url, stop, err := e.ingestServer(ctx)
	if err != nil {
		return Result{}, err
	}
	defer stop()
	rs := e.readings(e.cfg.Readings, time.Now().UTC())
	start := time.Now()
	err = e.post(ctx, url, rs)
	return Result{Name: "ingest: HTTP POST /v1/vitals -> broker", Count: len(rs), Took: time.Since(start),
		Note: fmt.Sprintf("batches of %d, %d clients, 202 after acks", e.cfg.Batch, e.cfg.Concurrency)}, err
}
