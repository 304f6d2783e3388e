package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/api"
	"github.com/monitorme/monitorme/internal/web"
	"github.com/monitorme/monitorme/producers"
	"github.com/monitorme/monitorme/schemas"
)

// The realistic path: how a hospital's gateways and stations use the
// platform, not the best case. Gateways post 50 readings each and wait
// for the 202; every patient sends 4.2 readings a second (the kata's
// rate); 1 in 100 readings is a critical SpO2 (70 %) of a patient of its
// own, which the clinical rules raise at once; one station reads every
// patient's events from the live stream, and an alert's latency is from
// its reading's event time (when it was posted) to its arrival there.
const (
	realisticBatch     = 50
	realisticPerPatSec = 4.2
)

// RealisticRow is one rate of the realistic run.
type RealisticRow struct {
	Rate, Sent, Alerts int
	Post, Alert        [3]time.Duration // p50, p99, max
	CPUPerReading      time.Duration
	Cores              float64
	// PlatformPerReading is CPUPerReading without the load: the
	// gateways' and the station's share of the CPU profile's samples
	// (labelled bench=load) taken out.
	PlatformPerReading time.Duration
	// RSS is the process's resident memory at the start and the end of
	// the run, and its peak, sampled every second (MB).
	RSS [3]int
	// RSSByMinute is the resident memory at the end of each minute.
	RSSByMinute []int
	// Shed is how many POSTs ingest refused with 503 to shed load (the
	// gateway posted the batch again after Retry-After).
	Shed int
}

// rssMB is this process's resident memory, from /proc/self/statm.
func rssMB() int {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.Atoi(f[1])
	return pages * os.Getpagesize() >> 20
}

// load labels the goroutines that play the hospital (the gateways, the
// station's reader and what they start), so the CPU profile of a run
// tells their CPU from the platform's: all of it runs in this process.
var load = pprof.Labels("bench", "load")

// realistic runs the whole platform in this process (ingest, the clinical
// processor, the live view and its stream) on the embedded broker, at
// rate readings a second for d.
func (e *env) realistic(ctx context.Context, rate int, d time.Duration) (RealisticRow, error) {
	row := RealisticRow{Rate: rate}
	if err := e.topics(); err != nil {
		return row, err
	}
	stopProc, err := e.startRules(ctx, "realistic-"+e.kc.Topics.Vitals, "clinical")
	if err != nil {
		return row, err
	}
	defer stopProc()
	p, err := e.producer()
	if err != nil {
		return row, err
	}
	defer p.Close()
	in, err := producers.NewIngest(producers.DefaultIngestConfig(), p, e.log, e.tel.MeterProvider)
	if err != nil {
		return row, err
	}
	// Load shedding as the roles wire it: on the processor's backlog.
	backlog := producers.NewBacklog(e.adm, "realistic-"+e.kc.Topics.Vitals, e.kc.Topics.Vitals)
	in.ShedWith(backlog)
	live, err := api.NewLive(api.DefaultLiveConfig(), e.kc, e.log, e.tel)
	if err != nil {
		return row, err
	}
	srv := web.New(e.log, e.tel)
	in.Register(srv)
	api.NewServer(live).Register(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return row, err
	}
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { _ = live.Run(sctx) })
	wg.Go(func() { _ = backlog.Run(sctx) })
	wg.Go(func() { _ = web.Serve(sctx, srv, ln) })
	base := "http://" + ln.Addr().String()
	for live.Ready(ctx) != nil {
		select {
		case <-ctx.Done():
			return row, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}

	// From here on this goroutine is the hospital, and so is every
	// goroutine it starts (the HTTP clients' too); the platform's were
	// started above, or are started by them.
	pprof.SetGoroutineLabels(pprof.WithLabels(ctx, load))
	defer pprof.SetGoroutineLabels(ctx)

	// The station: every patient's events.
	var mu sync.Mutex
	var alertLat []time.Duration
	// Which critical patients were sent, and which reached the station:
	// a shortfall names them, and where their alert is.
	critical, seen := map[string]bool{}, map[string]bool{}
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, base+"/v1/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return row, err
	}
	wg.Go(func() {
		defer resp.Body.Close()
		br := bufio.NewReaderSize(resp.Body, 1<<16)
		alert := false
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			switch {
			case bytes.HasPrefix(line, []byte("event: ")):
				alert = string(bytes.TrimSpace(line[7:])) == "alert"
			case alert && bytes.HasPrefix(line, []byte("data: ")):
				var a schemas.Alert
				if json.Unmarshal(line[6:], &a) == nil && a.Condition == "spo2_critical" && a.State == schemas.Raised {
					mu.Lock()
					alertLat = append(alertLat, time.Since(a.Reading.TS))
					seen[a.PatientID] = true
					mu.Unlock()
				}
			}
		}
	})

	patients := max(int(float64(rate)/realisticPerPatSec), 1)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	bodies := make(chan []byte, 1024)
	var postLat []time.Duration
	var firstErr error
	var gw sync.WaitGroup
	for range 64 { // gateways: each posts and waits for its 202
		gw.Go(func() {
			for b := range bodies {
				t := time.Now()
				var err error
				for {
					var r *http.Response
					r, err = client.Post(base+"/v1/vitals", "application/json", bytes.NewReader(b))
					if err != nil {
						break
					}
					_, _ = io.Copy(io.Discard, r.Body)
					r.Body.Close()
					if r.StatusCode == http.StatusServiceUnavailable && r.Header.Get("Retry-After") != "" {
						// Shed: the gateway keeps the batch and posts it
						// again when told.
						wait, _ := strconv.Atoi(r.Header.Get("Retry-After"))
						mu.Lock()
						row.Shed++
						mu.Unlock()
						time.Sleep(time.Duration(max(wait, 1)) * time.Second)
						continue
					}
					if r.StatusCode != http.StatusAccepted {
						err = fmt.Errorf("ingest answered %s", r.Status)
					}
					break
				}
				mu.Lock()
				postLat = append(postLat, time.Since(t))
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	var prof bytes.Buffer
	profiling := pprof.StartCPUProfile(&prof) == nil
	s0, _ := cpuTime(nil)
	start := time.Now()
	row.RSS[0] = rssMB()
	rssDone := make(chan struct{})
	var rssWG sync.WaitGroup
	rssWG.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for i := 1; ; i++ {
			select {
			case <-rssDone:
				return
			case <-t.C:
			}
			m := rssMB()
			mu.Lock()
			row.RSS[2] = max(row.RSS[2], m)
			if i%60 == 0 {
				row.RSSByMinute = append(row.RSSByMinute, m)
			}
			mu.Unlock()
		}
	})
	tick := time.NewTicker(10 * time.Millisecond)
	per := max(rate/100, 1)
	var pending []schemas.Reading
	for time.Since(start) < d {
		<-tick.C
		now := time.Now().UTC()
		for range per {
			seq := e.seq.Add(1)
			rd := schemas.Reading{PatientID: fmt.Sprintf("R%05d", seq%uint64(patients)), DeviceID: fmt.Sprintf("R%05d-mon", seq%uint64(patients)),
				Kind: schemas.HeartRate, Value: 60 + float64(seq%30), Unit: "/min", TS: now, Seq: seq}
			if every := e.cfg.RealisticCriticalEvery; every > 0 && seq%uint64(every) == 0 {
				rd = schemas.Reading{PatientID: fmt.Sprintf("C%d", seq), DeviceID: "C-ox", Kind: schemas.SpO2, Value: 70, Unit: "%", TS: now, Seq: seq}
			}
			pending = append(pending, rd)
			if len(pending) == realisticBatch {
				for _, r := range pending {
					if r.Kind == schemas.SpO2 {
						mu.Lock()
						critical[r.PatientID] = true
						mu.Unlock()
					}
				}
				b, _ := json.Marshal(pending)
				pending = pending[:0]
				row.Sent += realisticBatch
				bodies <- b // with every gateway busy, this waits, as a gateway's queue would
			}
		}
	}
	tick.Stop()
	close(bodies)
	gw.Wait()
	took := time.Since(start)
	s1, _ := cpuTime(nil)
	close(rssDone)
	rssWG.Wait()
	row.RSS[1] = rssMB()
	if profiling {
		pprof.StopCPUProfile()
		if share, err := loadShare(prof.Bytes()); err == nil {
			row.PlatformPerReading = time.Duration(float64(s1-s0) * (1 - share) / float64(max(row.Sent, 1)))
		}
		if e.cfg.ProfileDir != "" {
			_ = os.WriteFile(filepath.Join(e.cfg.ProfileDir, fmt.Sprintf("realistic-%d.pprof", rate)), prof.Bytes(), 0o644)
			if f, err := os.Create(filepath.Join(e.cfg.ProfileDir, fmt.Sprintf("realistic-%d.heap.pprof", rate))); err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
	}
	want := 0
	if e.cfg.RealisticCriticalEvery > 0 {
		want = row.Sent / e.cfg.RealisticCriticalEvery
	}
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		n := len(alertLat)
		mu.Unlock()
		if n >= want {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return row, firstErr
	}
	row.Alerts = len(alertLat)
	q := func(ds []time.Duration) [3]time.Duration {
		if len(ds) == 0 {
			return [3]time.Duration{}
		}
		slices.Sort(ds)
		at := func(f float64) time.Duration {
			return ds[min(len(ds)-1, int(f*float64(len(ds))))].Round(time.Millisecond)
		}
		return [3]time.Duration{at(0.5), at(0.99), ds[len(ds)-1].Round(time.Millisecond)}
	}
	row.Post, row.Alert = q(postLat), q(alertLat)
	// The whole platform's CPU, and the client's: the senders' JSON and
	// the station's parsing run in this process too.
	row.CPUPerReading = (s1 - s0) / time.Duration(max(row.Sent, 1))
	row.Cores = float64(s1-s0) / float64(took)
	if row.Alerts < want {
		var missing []string
		for id := range critical {
			if !seen[id] {
				missing = append(missing, id)
			}
		}
		slices.Sort(missing)
		// A few name the case; a stall leaves hundreds late.
		missing = missing[:min(len(missing), 5)]
		onTopic := e.alertsOf(ctx, missing)
		return row, fmt.Errorf("%d of %d alerts reached the station within 15 s of the end at %d readings/s; the first missing: %v; on the alerts topic: %v", row.Alerts, want, rate, missing, onTopic)
	}
	return row, nil
}

// loadShare is the share of a CPU profile's samples taken in goroutines
// labelled load.
func loadShare(b []byte) (float64, error) {
	p, err := profile.ParseData(b)
	if err != nil {
		return 0, err
	}
	var all, ld int64
	for _, s := range p.Sample {
		v := s.Value[len(s.Value)-1] // cpu nanoseconds
		all += v
		if slices.Contains(s.Label["bench"], "load") {
			ld += v
		}
	}
	if all == 0 {
		return 0, errors.New("an empty profile")
	}
	return float64(ld) / float64(all), nil
}

// realisticTable runs the realistic path at each rate and prints it with
// the highest rate that kept the alert p99 within 250 ms and within 1 s.
func (e *env) realisticTable(ctx context.Context, rates []int, d time.Duration, out io.Writer) error {
	critical := "no critical readings"
	if n := e.cfg.RealisticCriticalEvery; n > 0 {
		critical = fmt.Sprintf("1 reading in %d a critical SpO2 of a new patient", n)
	}
	fmt.Fprintf(out, "\nrealistic path: gateways post %d readings and wait for the 202, clinical rules, %.1f readings/s per patient, %s, alerts read from the all-patient live stream (%v per rate):\n\n",
		realisticBatch, realisticPerPatSec, critical, d)
	const row = "%9s %9s %9s %7s %23s %23s %10s %6s %15s %20s %6s\n"
	fmt.Fprintf(out, row, "rate/s", "patients", "sent", "alerts", "POST p50/p99/max", "alert p50/p99/max", "µs CPU/rdg", "cores", "platform µs/rdg", "RSS MB start/end/max", "503s")
	best250, best1s := 0, 0
	for _, rate := range rates {
		r, err := e.realistic(ctx, rate, d)
		trip := func(x [3]time.Duration) string {
			if x == ([3]time.Duration{}) {
				return "-"
			}
			return fmt.Sprintf("%v/%v/%v", x[0], x[1], x[2])
		}
		note := ""
		if err != nil {
			note = "  " + err.Error()
		}
		fmt.Fprintf(out, strings.TrimSuffix(row, "\n")+"%s\n", fmt.Sprint(rate), fmt.Sprint(int(float64(rate)/realisticPerPatSec)), fmt.Sprint(r.Sent), fmt.Sprint(r.Alerts),
			trip(r.Post), trip(r.Alert), fmt.Sprintf("%.1f", float64(r.CPUPerReading.Nanoseconds())/1000), fmt.Sprintf("%.2f", r.Cores),
			fmt.Sprintf("%.1f", float64(r.PlatformPerReading.Nanoseconds())/1000), fmt.Sprintf("%d/%d/%d", r.RSS[0], r.RSS[1], r.RSS[2]), fmt.Sprint(r.Shed), note)
		if len(r.RSSByMinute) > 1 {
			fmt.Fprintf(out, "%9s RSS MB at the end of each minute: %v\n", "", r.RSSByMinute)
		}
		if r.Alerts == 0 {
			continue // nothing timed
		}
		if err == nil && r.Alert[1] <= 250*time.Millisecond {
			best250 = rate
		}
		if err == nil && r.Alert[1] <= time.Second {
			best1s = rate
		}
	}
	fmt.Fprintf(out, "\nhighest rate tried with alert p99 <= 250 ms: %d/s; <= 1 s: %d/s\n", best250, best1s)
	return nil
}

// alertsOf returns the alert events of patients on the alerts topic
// (read_committed), as condition/state at time: where a missing alert is.
func (e *env) alertsOf(ctx context.Context, patients []string) map[string][]string {
	out := map[string][]string{}
	want := map[string]bool{}
	for _, p := range patients {
		want[p] = true
	}
	cl, err := e.kc.NewClient("bench-alerts", kgo.ConsumeTopics(e.kc.Topics.Alerts), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return out
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for rctx.Err() == nil {
		cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
			if a, err := schemas.DecodeAlert(r); err == nil && want[a.PatientID] {
				out[a.PatientID] = append(out[a.PatientID], fmt.Sprintf("%s/%s ts %s record %s", a.Condition, a.State, a.TS.Format("15:04:05.000"), r.Timestamp.Format("15:04:05.000")))
			}
		})
	}
	return out
}
