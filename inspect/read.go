package inspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/warehouse"
	"github.com/monitorme/monitorme/schemas"
	chschema "github.com/monitorme/monitorme/schemas/clickhouse"
)

// Roles are the topic names tail takes for the configured topics.
var Roles = []string{"vitals", "alerts", "acks", "state", "dlq"}

// TopicOf returns the topic a role name (or a topic name) means; dlq is
// the vitals dead-letter topic, the one most often read.
func TopicOf(t kafka.Topics, name string) string {
	switch name {
	case "vitals":
		return t.Vitals
	case "alerts":
		return t.Alerts
	case "acks":
		return t.Acks
	case "state":
		return t.State
	case "dlq":
		return t.VitalsDLQ
	}
	return name
}

// Filter keeps the events that match every field set.
type Filter struct {
	Patient, Kind, Condition, Priority, State, Device string
}

// ErrUnknownTopic is a topic the cluster does not have.
var ErrUnknownTopic = errors.New("unknown topic")

// Check names a filter that can never match on topic role (vitals,
// alerts, acks, state, dlq, or "" for another topic), or a value no event
// carries: a silent empty answer would look like "nothing happened".
func (f Filter) Check(role string) error {
	var errs []error
	if f.Kind != "" && schemas.Kind(f.Kind).Index() < 0 {
		var kinds []string
		for _, s := range schemas.Specs {
			kinds = append(kinds, string(s.Kind))
		}
		errs = append(errs, fmt.Errorf("kind: %q is not a vital; want one of %s", f.Kind, strings.Join(kinds, ", ")))
	}
	if f.Priority != "" && !slices.Contains([]string{"high", "medium", "low"}, f.Priority) {
		errs = append(errs, fmt.Errorf("priority: %q, want high, medium or low", f.Priority))
	}
	states := []schemas.State{schemas.Raised, schemas.Escalated, schemas.Acknowledged, schemas.Resolved, schemas.ResolvedUnacknowledged}
	if f.State != "" && !slices.Contains(states, schemas.State(f.State)) {
		errs = append(errs, fmt.Errorf("state: %q, want raised, escalated, acknowledged, resolved or resolved-unacknowledged", f.State))
	}
	alertOnly := map[string]string{"condition": f.Condition, "priority": f.Priority, "state": f.State}
	for _, name := range []string{"condition", "priority", "state"} {
		if alertOnly[name] != "" && role != "alerts" && role != "" {
			errs = append(errs, fmt.Errorf("%s: only alert events have one; the %s topic's records never match", name, role))
		}
	}
	if (f.Kind != "" || f.Device != "") && (role == "acks" || role == "state") {
		errs = append(errs, fmt.Errorf("kind and device: the %s topic's records have none; they never match", role))
	}
	return errors.Join(errs...)
}

// Options say what to read.
type Options struct {
	Topic  string
	Range  Range
	Follow bool
	// Uncommitted reads read_uncommitted: aborted transactions' records
	// too, for debugging exactly-once.
	Uncommitted bool
	// Limit stops after that many events (0: no limit).
	Limit  int
	Filter Filter
	// Idle ends a read without Follow when nothing arrives for this
	// long (a partition whose last offsets are aborted records or
	// markers never delivers its end offset).
	Idle time.Duration
}

// Event is one decoded record.
type Event struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp"`
	Key       string    `json:"key"`
	// Type is reading, alert, ack, silence, rules-loaded, dead-letter,
	// state, or raw (a record tail cannot decode).
	Type    string               `json:"type"`
	Reading *schemas.Reading     `json:"reading,omitempty"`
	Alert   *schemas.Alert       `json:"alert,omitempty"`
	Ack     *schemas.Ack         `json:"ack,omitempty"`
	Silence *schemas.Silence     `json:"silence,omitempty"`
	Rules   *schemas.RulesLoaded `json:"rules_loaded,omitempty"`
	// Error and Source are a dead letter's: why, and where from.
	Error  string          `json:"error,omitempty"`
	Source string          `json:"source,omitempty"`
	Value  json.RawMessage `json:"value,omitempty"`
}

// Read emits the events of opts.Topic in the range, partition by
// partition in offset order, until the range's end (or, with Follow,
// until ctx ends). A range that starts before what the topic still holds
// is read from what it holds, and the *ExpiredError is returned at the end.
func Read(ctx context.Context, kc kafka.Config, opts Options, emit func(Event) error) error {
	var patients []string
	if opts.Filter.Patient != "" {
		patients = []string{opts.Filter.Patient}
	}
	emitted := 0
	return readRecords(ctx, kc, opts, patients, func(r *kgo.Record) error {
		if r.Attrs.IsControl() {
			return nil
		}
		ev := decode(kc.Topics, r)
		if !opts.Filter.match(ev) {
			return nil
		}
		if err := emit(ev); err != nil {
			return err
		}
		if emitted++; opts.Limit > 0 && emitted >= opts.Limit {
			return errLimit
		}
		return nil
	})
}

// ReadRecords hands each data record of opts.Topic in the range to each,
// undecoded, partition by partition in offset order (the history
// rebuild's input). Transaction markers are skipped.
func ReadRecords(ctx context.Context, kc kafka.Config, opts Options, each func(*kgo.Record) error) error {
	return readRecords(ctx, kc, opts, nil, func(r *kgo.Record) error {
		if r.Attrs.IsControl() {
			return nil
		}
		return each(r)
	})
}

// readRecords hands each record of opts.Topic's partitions (those of
// patients, or all when there are none) in the range to each, control records included (the
// caller skips them), partition by partition in offset order, until the
// range's end or, with Follow, ctx's. each returning errLimit ends the
// read without an error.
func readRecords(ctx context.Context, kc kafka.Config, opts Options, patients []string, each func(*kgo.Record) error) error {
	admCl, err := kc.NewClient("tail")
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	td, err := adm.ListTopics(ctx, opts.Topic)
	if err != nil {
		return kc.Explain(err)
	}
	d, ok := td[opts.Topic]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("%w %s: the cluster has no such topic (MonitorMe's are %s)", ErrUnknownTopic, opts.Topic, strings.Join(kc.Topics.Names(), ", "))
	}
	if d.Err != nil {
		return fmt.Errorf("partitions of %s: %w", opts.Topic, kc.Explain(d.Err))
	}
	// A patient's records are on the partition MonitorMe's producer (and
	// Kafka's default partitioner, murmur2) puts the patient's key on.
	var parts []int32
	for _, patient := range patients {
		n := kgo.StickyKeyPartitioner(nil).ForTopic(opts.Topic).Partition(&kgo.Record{Key: []byte(patient)}, len(d.Partitions))
		if !slices.Contains(parts, int32(n)) {
			parts = append(parts, int32(n))
		}
	}
	offs, rerr := Resolve(ctx, adm, opts.Topic, parts, opts.Range, !opts.Uncommitted, opts.Follow)
	var expired *ExpiredError
	if rerr != nil && !errors.As(rerr, &expired) {
		return rerr
	}
	assign := map[int32]kgo.Offset{}
	pending := map[int32]int64{} // partition → end (exclusive), -1: follow
	for p, o := range offs {
		if o[1] >= 0 && o[0] >= o[1] {
			continue
		}
		assign[p] = kgo.NewOffset().At(o[0])
		pending[p] = o[1]
	}
	if len(assign) == 0 {
		return rerr
	}
	iso := kgo.ReadCommitted()
	if opts.Uncommitted {
		iso = kgo.ReadUncommitted()
	}
	// Control records (transaction markers) are kept so that a partition
	// whose range ends with one is known to be done.
	cl, err := kc.NewClient("tail", kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{opts.Topic: assign}),
		kgo.FetchIsolationLevel(iso), kgo.KeepControlRecords(), kgo.FetchMaxWait(250*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	idle := opts.Idle
	if idle <= 0 {
		idle = 3 * time.Second
	}
	for len(pending) > 0 {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if !opts.Follow {
			pctx, cancel = context.WithTimeout(ctx, idle)
		}
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return rerr
		}
		if pctx.Err() != nil && fs.NumRecords() == 0 {
			return rerr // idle: nothing more in the range
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = err
			}
		})
		if ferr != nil {
			return kc.Explain(ferr)
		}
		var stop error
		fs.EachRecord(func(r *kgo.Record) {
			end, open := pending[r.Partition]
			if stop != nil || !open {
				return
			}
			if end >= 0 && r.Offset >= end {
				delete(pending, r.Partition)
				return
			}
			if end >= 0 && r.Offset == end-1 {
				delete(pending, r.Partition)
			}
			stop = each(r)
		})
		if errors.Is(stop, errLimit) {
			return rerr
		}
		if stop != nil {
			return stop
		}
	}
	return rerr
}

var errLimit = errors.New("limit reached")

func decode(t kafka.Topics, r *kgo.Record) Event {
	ev := Event{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Key: string(r.Key), Type: "raw"}
	origin := r.Topic
	if e := schemas.Header(r, schemas.HeaderError); e != "" || r.Topic == t.VitalsDLQ || r.Topic == t.AlertsDLQ || r.Topic == t.AcksDLQ {
		ev.Type, ev.Error, ev.Source = "dead-letter", e, schemas.Header(r, schemas.HeaderSource)
		ev.Value = rawJSON(r.Value)
		switch r.Topic {
		case t.VitalsDLQ:
			if rd, err := schemas.DecodeReading(r); err == nil {
				ev.Reading = &rd
			}
		case t.AlertsDLQ:
			if a, err := schemas.DecodeAlert(r); err == nil {
				ev.Alert = &a
			}
		}
		return ev
	}
	switch origin {
	case t.Vitals:
		if rd, err := schemas.DecodeReading(r); err == nil {
			ev.Type, ev.Reading = "reading", &rd
			return ev
		}
	case t.Alerts:
		if a, err := schemas.DecodeAlert(r); err == nil {
			ev.Type, ev.Alert = "alert", &a
			return ev
		}
	case t.Acks:
		if rec, err := schemas.DecodeAcksRecord(r); err == nil {
			switch {
			case rec.Silence != nil:
				ev.Type, ev.Silence = "silence", rec.Silence
			case rec.Rules != nil:
				ev.Type, ev.Rules = "rules-loaded", rec.Rules
			default:
				ev.Type, ev.Ack = "ack", rec.Ack
			}
			return ev
		}
	case t.State:
		ev.Type = "state"
	}
	ev.Value = rawJSON(r.Value)
	return ev
}

// rawJSON keeps a value that is JSON as it is, and quotes one that is not.
func rawJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	if json.Valid(b) {
		return b
	}
	q, _ := json.Marshal(string(b))
	return q
}

func (f Filter) match(ev Event) bool {
	patient, kind, device, condition, priority, state := ev.Key, "", "", "", "", ""
	if r := ev.Reading; r != nil {
		patient, kind, device = r.PatientID, string(r.Kind), r.DeviceID
	}
	if a := ev.Alert; a != nil {
		patient, condition, priority, state = a.PatientID, a.Condition, string(a.Priority), string(a.State)
		kind, device = string(a.Reading.Kind), a.Reading.DeviceID
	}
	for _, c := range [][2]string{{f.Patient, patient}, {f.Kind, kind}, {f.Device, device}, {f.Condition, condition}, {f.Priority, priority}, {f.State, state}} {
		if c[0] != "" && c[0] != c[1] {
			return false
		}
	}
	return true
}

// ReadHistory emits the events of the history tables instead of a topic:
// what the history sink stored of patient's vitals (topic "vitals") or
// alert events ("alerts") in [from, to). It is where a range older than
// the topics' retention is still held.
func ReadHistory(ctx context.Context, h warehouse.History, role, patient string, from, to time.Time, f Filter, limit int, emit func(Event) error) error {
	if limit <= 0 || limit > 100_000 {
		limit = 100_000
	}
	n := 0
	send := func(ev Event) error {
		if !f.match(ev) {
			return nil
		}
		n++
		if err := emit(ev); err != nil {
			return err
		}
		if n >= limit {
			return errLimit
		}
		return nil
	}
	switch role {
	case "vitals":
		rows, err := h.RawVitals(ctx, chschema.VitalsQuery{Patient: patient, Kind: f.Kind, From: from, To: to, Limit: limit})
		if err != nil {
			return err
		}
		for _, r := range rows {
			rd := schemas.Reading{PatientID: patient, DeviceID: r.DeviceID, Kind: schemas.Kind(r.Kind), Value: r.Value, Unit: r.Unit, TS: r.TS, Seq: r.Seq}
			if err := send(Event{Topic: "clickhouse:vitals", Partition: -1, Offset: -1, Timestamp: r.TS, Key: patient, Type: "reading", Reading: &rd}); err != nil {
				return ignoreLimit(err)
			}
		}
	case "alerts":
		rows, err := h.Alerts(ctx, chschema.AlertsQuery{Patient: patient, From: from, To: to, Limit: limit})
		if err != nil {
			return err
		}
		for i := range rows {
			if err := send(Event{Topic: "clickhouse:alerts", Partition: -1, Offset: -1, Timestamp: rows[i].TS, Key: patient, Type: "alert", Alert: &rows[i]}); err != nil {
				return ignoreLimit(err)
			}
		}
	default:
		return fmt.Errorf("history holds vitals and alerts, not %s", role)
	}
	return nil
}

func ignoreLimit(err error) error {
	if errors.Is(err, errLimit) {
		return nil
	}
	return err
}
