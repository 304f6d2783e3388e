package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/once"
	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/schemas"
)

// LiveConfig bounds the live view.
type LiveConfig struct {
	// VitalsLookback is how far back the view reads vitals at start, so
	// that the latest value of an hourly vital (blood pressure) is known.
	VitalsLookback time.Duration
	// AlertsLookback is how far back it reads alerts at start.
	AlertsLookback time.Duration
	MaxPatients    int
	MaxAlerts      int
	// SubscriberBuffer is how many alert events a slow SSE client may
	// lag before it is disconnected (it reconnects after its
	// Last-Event-ID), and how many readings before readings are skipped
	// (counted, and said on the stream).
	SubscriberBuffer int
	// MaxStreams and MaxStreamsPerCaller bound the concurrent live
	// streams of the server and of one caller (token subject).
	MaxStreams, MaxStreamsPerCaller int
	// ResumeEvents is how many recent events the view keeps for a
	// reconnecting stream's Last-Event-ID.
	ResumeEvents int
}

// DefaultLiveConfig returns the defaults the flag help names.
func DefaultLiveConfig() LiveConfig {
	return LiveConfig{
		VitalsLookback:   70 * time.Minute,
		AlertsLookback:   24 * time.Hour,
		MaxPatients:      10_000,
		MaxAlerts:        10_000,
		SubscriberBuffer: 1024,
		ResumeEvents:     10_000,

		MaxStreams:          DefaultMaxStreams,
		MaxStreamsPerCaller: DefaultMaxStreamsPerSubject,
	}
}

// RegisterFlags binds c to flags.
func (c *LiveConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&c.VitalsLookback, "live-vitals-lookback", c.VitalsLookback, "vitals read at start to know each patient's latest values")
	fs.DurationVar(&c.AlertsLookback, "live-alerts-lookback", c.AlertsLookback, "alerts read at start for GET /v1/alerts")
	fs.IntVar(&c.MaxPatients, "live-max-patients", c.MaxPatients, "patients kept in memory; when full, the tenth with the fewest and oldest updates is dropped")
	fs.IntVar(&c.MaxAlerts, "live-max-alerts", c.MaxAlerts, "most recent alerts kept in memory")
	fs.IntVar(&c.ResumeEvents, "live-resume-events", c.ResumeEvents, "recent events kept so that a reconnecting stream resumes after its Last-Event-ID")
	fs.IntVar(&c.MaxStreams, "live-max-streams", c.MaxStreams, "live streams (GET /v1/stream) served at once; one more is answered 503")
	fs.IntVar(&c.MaxStreamsPerCaller, "live-max-streams-per-caller", c.MaxStreamsPerCaller, "live streams one caller (token subject; client address without authentication) holds at once; one more is answered 429")
}

// Validate refuses settings the view cannot honor.
func (c *LiveConfig) Validate() error {
	switch {
	case c.VitalsLookback <= 0 || c.AlertsLookback <= 0:
		return errors.New("live lookbacks must be positive")
	case c.MaxPatients < 1 || c.MaxAlerts < 1:
		return errors.New("live-max-patients and live-max-alerts must be at least 1")
	case c.ResumeEvents < 0:
		return errors.New("live-resume-events must not be negative")
	case c.MaxStreams < 1 || c.MaxStreamsPerCaller < 1:
		return errors.New("live-max-streams and live-max-streams-per-caller must be at least 1")
	case c.SubscriberBuffer < 1:
		return errors.New("subscriber buffer must be at least 1")
	}
	return nil
}

// Event is one item of the live stream.
type Event struct {
	Type    string // "vital", "alert" or "placement"
	ID      string // topic/partition/offset
	Patient string
	At      time.Time // record timestamp
	Data    []byte    // the record value: a reading or an alert
	// Wards are the wards the event belongs to, for a stream of one
	// ward: an alert event's own ward; a reading's, the patient's ward
	// when it was applied; a transfer's, the ward left and the ward
	// entered, so the screens of both see the bed change.
	Wards []string
}

// Filter selects the events of a stream: one patient's, one ward's, or
// (zero) all.
type Filter struct {
	Patient, Ward string
}

func (f Filter) match(ev *Event) bool {
	return (f.Patient == "" || f.Patient == ev.Patient) && (f.Ward == "" || slices.Contains(ev.Wards, f.Ward))
}

type patientView struct {
	latest  map[schemas.Kind]schemas.Reading
	updated time.Time
	// records counts what the view applied for the patient, up to
	// establishedRecords: eviction takes a patient seen once or twice (an
	// invented id) before one a monitor keeps updating.
	records int
	// silence is the patient's latest alarm silence, if any.
	silence *schemas.Silence
	// alertWard is the ward of the patient's latest alert event: the
	// ward of a patient the placements do not name (the rules file's).
	alertWard string
}

// establishedRecords is how many records make a patient established for
// eviction: beyond it, only the age of the last update counts.
const establishedRecords = 10

// Live is a read_committed, bounded, in-memory view of the topics.
type Live struct {
	cfg  LiveConfig
	kcfg kafka.Config
	log  *slog.Logger
	tel  *telemetry.Telemetry

	mu       sync.RWMutex
	patients map[string]*patientView
	alerts   []schemas.Alert // ring buffer, oldest at head
	head     int
	subs     map[*subscriber]struct{}
	// placements is each admitted patient's latest placement.
	placements map[string]schemas.Placement
	// recent are the last ResumeEvents events, a ring oldest at
	// recentHead once full: what a reconnecting stream missed.
	recent     []*Event
	recentHead int

	ran once.Guard
	// caughtUp is set once the view read up to the end offsets of its
	// start; /readyz waits for it.
	caughtUp atomic.Bool
}

type subscriber struct {
	filter Filter
	// ch carries the alert and placement events: never dropped one by
	// one, so a subscriber that lets it fill is disconnected (and resumes
	// after its Last-Event-ID). vitals carries the readings: when it is
	// full a reading is skipped and counted, and the stream says so; the
	// subscriber stays. Alarms so never queue behind vitals, and a busy
	// all-patient screen loses none. Both carry pointers: one event is
	// shared by every subscriber.
	ch, vitals chan *Event
	skipped    atomic.Int64
	closed     bool
}

// NewLive returns a view; it does no I/O.
func NewLive(cfg LiveConfig, kcfg kafka.Config, log *slog.Logger, tel *telemetry.Telemetry) (*Live, error) {
	if err := errors.Join(cfg.Validate(), kcfg.Validate()); err != nil {
		return nil, err
	}
	return &Live{cfg: cfg, kcfg: kcfg, log: log, tel: tel, patients: map[string]*patientView{}, subs: map[*subscriber]struct{}{},
		placements: map[string]schemas.Placement{}}, nil
}

// Run consumes the topics until ctx ends. It runs once: a second call
// returns once.ErrRunTwice.
func (l *Live) Run(ctx context.Context) error {
	if err := l.ran.Start("live view"); err != nil {
		return err
	}
	now := time.Now()
	opts := append(l.kcfg.ClientOpts("live"),
		// The acks topic for alarm silences, which the patient view shows.
		kgo.ConsumeTopics(l.kcfg.Topics.Vitals, l.kcfg.Topics.Alerts, l.kcfg.Topics.Acks),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.FetchMaxBytes(kafka.FetchMaxBytes), kgo.FetchMaxPartitionBytes(kafka.FetchMaxPartitionBytes),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(now.Add(-l.cfg.AlertsLookback).UnixMilli())),
		// Commit and abort markers come through, so the position passes
		// them: a partition whose last record is a marker is caught up.
		kgo.KeepControlRecords(),
		l.tel.KafkaHooks(nil),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("live view client: %w", err)
	}
	defer cl.Close()
	// The placements reader ends with this function, whatever ends it.
	pctx, stopPlacements := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopPlacements()
	wg.Go(func() { l.runPlacements(pctx) })
	vitalsFrom := now.Add(-l.cfg.VitalsLookback)
	from := now.Add(-l.cfg.AlertsLookback)
	var behind map[string]map[int32]int64 // nil until the targets are known
	for {
		if behind == nil && !l.caughtUp.Load() {
			// Asked once the client can: the brokers may not answer yet.
			behind = l.targets(ctx, cl, from)
			// Nothing to read (empty or idle topics): ready now, since
			// the poll below waits until a record comes.
			l.checkCaughtUp(behind)
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			l.closeAll()
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			l.log.Warn("live view fetch error", "topic", t, "partition", p, "err", err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			if behind != nil {
				if end, ok := behind[r.Topic][r.Partition]; ok && r.Offset+1 >= end {
					delete(behind[r.Topic], r.Partition)
				}
			}
			if r.Attrs.IsControl() || r.Topic == l.kcfg.Topics.Vitals && r.Timestamp.Before(vitalsFrom) {
				return
			}
			l.apply(r)
		})
		l.checkCaughtUp(behind)
	}
}

// checkCaughtUp marks the view caught up once no partition is behind.
func (l *Live) checkCaughtUp(behind map[string]map[int32]int64) {
	if behind != nil && !l.caughtUp.Load() && len(behind[l.kcfg.Topics.Vitals])+len(behind[l.kcfg.Topics.Alerts]) == 0 {
		l.caughtUp.Store(true)
		l.log.Debug("live view caught up")
	}
}

// targets returns, per partition, the end (last stable) offset the view
// must read up to before it shows what the topics held at start: the
// partitions whose records since from end before that offset. nil if the
// brokers did not answer.
func (l *Live) targets(ctx context.Context, cl *kgo.Client, from time.Time) map[string]map[int32]int64 {
	adm := kadm.NewClient(cl)
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	topics := []string{l.kcfg.Topics.Vitals, l.kcfg.Topics.Alerts}
	ends, err := adm.ListCommittedOffsets(lctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	starts, serr := adm.ListOffsetsAfterMilli(lctx, from.UnixMilli(), topics...)
	if err = errors.Join(err, serr); err == nil {
		err = starts.Error()
	}
	if err != nil {
		l.log.Debug("live view: end offsets not known yet", "err", err)
		return nil
	}
	behind := map[string]map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if behind[o.Topic] == nil {
			behind[o.Topic] = map[int32]int64{}
		}
		if s, ok := starts.Lookup(o.Topic, o.Partition); !ok || s.Offset < o.Offset {
			behind[o.Topic][o.Partition] = o.Offset
		}
	})
	return behind
}

// Ready reports, for /readyz, whether the view has read what the topics
// held when it started: before that, GET /v1/alerts and the patient views
// would answer with part of the truth.
func (l *Live) Ready(context.Context) error {
	if !l.caughtUp.Load() {
		return errors.New("live view: still reading the topics up to their end at start")
	}
	return nil
}

func (l *Live) apply(r *kgo.Record) {
	// The event's data is encoded again from what was decoded, never the
	// record's bytes: a record is the producers' JSON, and a newline in
	// it would end the SSE data line and forge fields after it (an id,
	// an event). The encoders write compact JSON on one line.
	ev := &Event{ID: fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset), Patient: string(r.Key), At: r.Timestamp}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch r.Topic {
	case l.kcfg.Topics.Vitals:
		reading, err := schemas.DecodeReading(r)
		if err != nil {
			return // the processor dead-letters it; the view just skips it
		}
		if ev.Data, err = schemas.AppendReading(nil, &reading); err != nil {
			return
		}
		ev.Type = "vital"
		ev.Wards = []string{l.wardOf(reading.PatientID)}
		pv := l.patient(reading.PatientID)
		if cur, ok := pv.latest[reading.Kind]; !ok || !reading.TS.Before(cur.TS) {
			pv.latest[reading.Kind] = reading
		}
		pv.updated = r.Timestamp
		pv.records = min(pv.records+1, establishedRecords)
	case l.kcfg.Topics.Alerts:
		a, err := schemas.DecodeAlert(r)
		if err != nil {
			l.log.Warn("live view: undecodable alert", "partition", r.Partition, "offset", r.Offset, "err", err)
			return
		}
		if ev.Data, err = schemas.AppendAlert(nil, &a); err != nil {
			l.log.Warn("live view: alert not encodable", "partition", r.Partition, "offset", r.Offset, "err", err)
			return
		}
		ev.Type = "alert"
		ev.Wards = []string{a.Ward}
		if len(l.alerts) < l.cfg.MaxAlerts {
			l.alerts = append(l.alerts, a)
		} else {
			l.alerts[l.head] = a
			l.head = (l.head + 1) % len(l.alerts)
		}
		l.patient(a.PatientID).alertWard = a.Ward
	case l.kcfg.Topics.Acks:
		rec, err := schemas.DecodeAcksRecord(r)
		if err != nil || rec.Silence == nil {
			// Acknowledgements show as the alert events they cause; a
			// bad record the processor dead-letters.
			return
		}
		l.patient(rec.Silence.PatientID).silence = rec.Silence
		return
	default:
		return
	}
	l.broadcast(ev)
}

// wardOf is the patient's ward now: the latest placement's, else the
// ward of the patient's latest alert event. Called with mu held.
func (l *Live) wardOf(patient string) string {
	if pl, ok := l.placements[patient]; ok {
		return pl.Ward
	}
	if pv := l.patients[patient]; pv != nil {
		return pv.alertWard
	}
	return ""
}

// patient returns the view of id, evicting the least recently updated
// patient when the view is full. Called with mu held.
func (l *Live) patient(id string) *patientView {
	if pv, ok := l.patients[id]; ok {
		return pv
	}
	if len(l.patients) >= l.cfg.MaxPatients {
		l.evict()
	}
	pv := &patientView{latest: map[schemas.Kind]schemas.Reading{}}
	l.patients[id] = pv
	return pv
}

// evict drops a tenth of the full view at once, so that a flood of new
// ids costs a sort per tenth of the bound, not a scan of the whole view
// per id (230,000 invented ids made a restart spend 38 s scanning). A
// request of 12,000 invented ids once pushed real patients out (their last
// update was older than all of them): the fewest records go first, then
// the least recently updated. Called with mu held.
func (l *Live) evict() {
	type entry struct {
		id string
		pv *patientView
	}
	all := make([]entry, 0, len(l.patients))
	for id, pv := range l.patients {
		all = append(all, entry{id, pv})
	}
	slices.SortFunc(all, func(a, b entry) int {
		if c := cmp.Compare(a.pv.records, b.pv.records); c != 0 {
			return c
		}
		return a.pv.updated.Compare(b.pv.updated)
	})
	for _, e := range all[:max(1, len(all)/10)] {
		delete(l.patients, e.id)
	}
}
