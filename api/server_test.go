package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/monitorme/monitorme/internal/auth"
	"github.com/monitorme/monitorme/internal/auth/authtest"
	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/once"
	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/internal/web"
	"github.com/monitorme/monitorme/producers"
	"github.com/monitorme/monitorme/schemas"
)

var t0 = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

func newTestServer(t *testing.T, cfg LiveConfig, opts ...Option) (*Live, *echo.Echo) {
	t.Helper()
	live, err := NewLive(cfg, kafka.DefaultConfig(), slog.New(slog.DiscardHandler), telemetry.Nop())
	if err != nil {
		t.Fatal(err)
	}
	// The tests feed the view by hand: it has read what there is.
	live.caughtUp.Store(true)
	e := web.New(slog.New(slog.DiscardHandler), telemetry.Nop())
	NewServer(live, opts...).Register(e)
	return live, e
}

func reading(patient string, kind schemas.Kind, v float64, at time.Time) schemas.Reading {
	spec, _ := schemas.SpecFor(kind)
	return schemas.Reading{PatientID: patient, DeviceID: patient + "-dev", Kind: kind, Value: v, Unit: spec.Unit, TS: at, Seq: uint64(at.UnixMilli())}
}

func feedReading(t *testing.T, l *Live, r schemas.Reading, recordAt time.Time) {
	t.Helper()
	rec, err := schemas.ReadingRecord("vitals.v1", &r)
	if err != nil {
		t.Fatal(err)
	}
	rec.Timestamp = recordAt
	l.apply(rec)
}

func feedAlert(t *testing.T, l *Live, r schemas.Reading, recordAt time.Time) schemas.Alert {
	t.Helper()
	cond := string(r.Kind) + "_out_of_range"
	a := schemas.Alert{AlertID: schemas.AlertID(cond, &r), PatientID: r.PatientID, Condition: cond, Priority: schemas.High,
		State: schemas.Raised, TS: r.TS, Message: string(r.Kind) + " out of range", Reading: r}
	rec, err := schemas.AlertRecord("alerts.v1", &a)
	if err != nil {
		t.Fatal(err)
	}
	rec.Timestamp = recordAt
	l.apply(rec)
	return a
}

func get(t *testing.T, e *echo.Echo, target string) (int, []byte, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec.Code, rec.Body.Bytes(), rec.Header()
}

func TestLatestVitals(t *testing.T) {
	live, e := newTestServer(t, DefaultLiveConfig())
	feedReading(t, live, reading("P1", schemas.HeartRate, 70, t0), t0)
	feedReading(t, live, reading("P1", schemas.HeartRate, 75, t0.Add(time.Second)), t0)
	// A late, older reading must not replace the newer one.
	feedReading(t, live, reading("P1", schemas.HeartRate, 60, t0.Add(-time.Second)), t0)
	feedReading(t, live, reading("P1", schemas.SpO2, 97, t0), t0)
	feedReading(t, live, reading("P2", schemas.SpO2, 93, t0), t0)

	code, body, _ := get(t, e, "/v1/patients/P1/vitals/latest")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var got LatestVitals
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.PatientID != "P1" || len(got.Vitals) != 2 || got.Vitals[schemas.HeartRate].Value != 75 || got.Vitals[schemas.SpO2].Value != 97 {
		t.Fatalf("got %+v", got)
	}

	code, body, _ = get(t, e, "/v1/patients")
	var ps struct{ Patients []PatientSummary }
	_ = json.Unmarshal(body, &ps)
	if code != http.StatusOK || len(ps.Patients) != 2 || ps.Patients[0].PatientID != "P1" || ps.Patients[0].Vitals != 2 {
		t.Fatalf("patients: %d %s", code, body)
	}
}

func TestProblems(t *testing.T) {
	_, e := newTestServer(t, DefaultLiveConfig())
	tests := []struct {
		target string
		status int
		field  string // in errors[], if any
		detail string
	}{
		{"/v1/patients/P9/vitals/latest", 404, "", "no recent readings"},
		{"/v1/patients/P%209/vitals/latest", 400, "id", ""},
		{"/v1/alerts?limit=0", 400, "limit", ""},
		{"/v1/alerts?limit=1001", 400, "limit", ""},
		{"/v1/alerts?limit=ten", 400, "limit", ""},
		{"/v1/alerts?since=yesterday", 400, "since", ""},
		{"/v1/alerts?patient=a%2Fb", 400, "patient", ""},
		{"/v1/stream?patient=a%2Fb", 400, "patient", ""},
		{"/v1/patients/P1/vitals?kind=heart_rate", 501, "", "ClickHouse"},
		{"/v1/patients/P1/alerts", 501, "", "ClickHouse"},
		{"/v1/patients/P1/vitals?kind=pulse", 400, "kind", "want one of heart_rate"},
		{"/v1/patients/P1/vitals?step=90s", 400, "step", "whole minutes"},
		{"/v1/patients/P1/vitals?step=soon", 400, "step", "whole minutes"},
		{"/v1/patients/P1/vitals?step=48h", 400, "step", "whole minutes"},
		{"/v1/patients/P1/vitals?step=", 400, "step", "whole minutes"},
		{"/v1/alerts?patient=", 400, "patient", ""},
		{"/v1/alerts?ward=", 400, "ward", ""},
		{"/v1/alarms?state=", 400, "state", "want one of raised"},
		{"/v1/alarms?limit=", 400, "limit", "not a number"},
		{"/v1/alarms?cursor=B", 400, "cursor", ""},
		{"/v1/stream?ward=", 400, "ward", ""},
		{"/v1/alarms/summary?window=30s", 400, "window", "whole minutes or hours"},
		{"/v1/patients/P1/vitals?limit=0", 400, "limit", ""},
		{"/v1/patients/P1/vitals?limit=100001", 400, "limit", ""},
		{"/v1/patients/P%209/vitals", 400, "id", ""},
		{"/v1/patients/P1/alerts?from=yesterday", 400, "from", "RFC 3339"},
		{"/v1/schemas/nope.json", 404, "", "no schema"},
		{"/v1/nothing", 404, "", "no such endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			code, body, h := get(t, e, tt.target)
			if code != tt.status {
				t.Fatalf("status %d, want %d: %s", code, tt.status, body)
			}
			if ct := h.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			var p web.Problem
			if err := json.Unmarshal(body, &p); err != nil || p.Status != code || p.Title == "" {
				t.Fatalf("not a problem document: %s", body)
			}
			if tt.field != "" && !slices.ContainsFunc(p.Errors, func(fe schemas.FieldError) bool { return fe.Field == tt.field }) {
				t.Fatalf("problem does not name field %q: %s", tt.field, body)
			}
			if !strings.Contains(p.Detail, tt.detail) {
				t.Fatalf("detail %q does not contain %q", p.Detail, tt.detail)
			}
		})
	}
}

func TestAlertsNewestFirstFilteredAndBounded(t *testing.T) {
	cfg := DefaultLiveConfig()
	cfg.MaxAlerts = 3
	live, e := newTestServer(t, cfg)
	var want []schemas.Alert
	for i := range 5 {
		p := "P1"
		if i%2 == 1 {
			p = "P2"
		}
		want = append(want, feedAlert(t, live, reading(p, schemas.HeartRate, 130, t0.Add(time.Duration(i)*time.Second)), t0))
	}
	decode := func(body []byte) []string {
		var got struct{ Alerts []schemas.Alert }
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, a := range got.Alerts {
			ids = append(ids, a.AlertID)
		}
		return ids
	}
	// Only the 3 newest are kept (ring buffer), newest first.
	_, body, _ := get(t, e, "/v1/alerts")
	if got := decode(body); !slices.Equal(got, []string{want[4].AlertID, want[3].AlertID, want[2].AlertID}) {
		t.Fatalf("all: %v", got)
	}
	_, body, _ = get(t, e, "/v1/alerts?patient=P2")
	if got := decode(body); !slices.Equal(got, []string{want[3].AlertID}) {
		t.Fatalf("P2: %v", got)
	}
	_, body, _ = get(t, e, "/v1/alerts?limit=1&since="+t0.Add(3*time.Second).Format(time.RFC3339))
	if got := decode(body); !slices.Equal(got, []string{want[4].AlertID}) {
		t.Fatalf("limit+since: %v", got)
	}
	_, body, _ = get(t, e, "/v1/alerts?patient=P7")
	if string(body) != `{"alerts":[]}`+"\n" {
		t.Fatalf("empty result must be an empty array: %s", body)
	}
}

func TestLiveEvictsLeastRecentlyUpdatedPatient(t *testing.T) {
	cfg := DefaultLiveConfig()
	cfg.MaxPatients = 2
	live, _ := newTestServer(t, cfg)
	feedReading(t, live, reading("P1", schemas.HeartRate, 70, t0), t0)
	feedReading(t, live, reading("P2", schemas.HeartRate, 70, t0), t0.Add(time.Second))
	feedReading(t, live, reading("P1", schemas.HeartRate, 70, t0), t0.Add(2*time.Second))
	feedReading(t, live, reading("P3", schemas.HeartRate, 70, t0), t0.Add(3*time.Second))
	var ids []string
	for _, p := range live.Patients() {
		ids = append(ids, p.PatientID)
	}
	if !slices.Equal(ids, []string{"P1", "P3"}) {
		t.Fatalf("patients %v, want P1 P3", ids)
	}
}

// openStream serves e and opens its live stream at path; both end with
// the test.
func openStream(t *testing.T, e http.Handler, path string) *http.Response {
	t.Helper()
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestStream(t *testing.T) {
	live, e := newTestServer(t, DefaultLiveConfig())
	resp := openStream(t, e, "/v1/stream?patient=P1")
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, ":") {
		t.Fatalf("first line %q", line)
	}
	now := time.Now()
	feedReading(t, live, reading("P2", schemas.HeartRate, 71, now), now) // other patient: filtered
	feedReading(t, live, reading("P1", schemas.HeartRate, 72, now), now)
	a := feedAlert(t, live, reading("P1", schemas.SpO2, 85, now), now)

	// An alarm may overtake the reading before it (alarms go first), so
	// the two come in either order.
	events := readEvents(t, br, 2)
	if events[0].typ == "alert" {
		events[0], events[1] = events[1], events[0]
	}
	if events[0].typ != "vital" || !strings.Contains(events[0].data, `"value":72`) {
		t.Fatalf("vital event %+v", events[0])
	}
	if events[1].typ != "alert" || !strings.Contains(events[1].data, a.AlertID) || events[1].id != "alerts.v1/0/0" {
		t.Fatalf("alert event %+v", events[1])
	}
}

// Issue 25, situation 4: an alarm the view applies after a stream began
// is delivered however old its record's timestamp (one stamped more than a
// second before the stream began was dropped without a word); the data of
// an event is encoded by the server, so a newline inside a record's
// string cannot end the data line and forge an event; and a view still
// reading the topics answers 503 instead of a stream with part of the
// truth. Each failed before.
func TestStreamDeliversLateAlarmsSafely(t *testing.T) {
	live, e := newTestServer(t, DefaultLiveConfig())
	br := bufio.NewReader(openStream(t, e, "/v1/stream?patient=P1").Body)
	br.ReadString('\n')
	old := time.Now().Add(-30 * time.Second) // raised for a reading buffered through an outage
	r := reading("P1", schemas.SpO2, 65, old)
	r.DeviceID = "gw\nevent: alert\nid: forged\ndata: {}"
	a := feedAlert(t, live, r, old)
	events := readEvents(t, br, 1)
	if events[0].typ != "alert" || events[0].id != "alerts.v1/0/0" || !strings.Contains(events[0].data, a.AlertID) {
		t.Fatalf("the late alarm: %+v", events[0])
	}
	var got schemas.Alert
	if err := json.Unmarshal([]byte(events[0].data), &got); err != nil || got.Reading.DeviceID != r.DeviceID {
		t.Fatalf("the event's data %q: %v", events[0].data, err)
	}

	cold, e2 := newTestServer(t, DefaultLiveConfig())
	cold.caughtUp.Store(false)
	resp2 := openStream(t, e2, "/v1/stream")
	if resp2.StatusCode != http.StatusServiceUnavailable || resp2.Header.Get("Retry-After") == "" {
		t.Fatalf("a stream from a view still catching up: %d", resp2.StatusCode)
	}
}

// A subscriber that lags never blocks the view. Its readings beyond the
// buffer are skipped and counted (the stream says so); its alarms are
// never skipped: a subscriber that lets them fill is disconnected, to
// resume after its Last-Event-ID.
func TestSlowSubscriberSkipsReadingsNeverAlarms(t *testing.T) {
	cfg := DefaultLiveConfig()
	cfg.SubscriberBuffer = 2
	live, _ := newTestServer(t, cfg)
	sub := live.Subscribe("")
	defer sub.Cancel()
	now := time.Now()
	for i := range 5 { // would block forever if broadcast waited
		feedReading(t, live, reading("P1", schemas.HeartRate, float64(70+i), now), now)
	}
	if n := len(sub.Vitals); n != 2 {
		t.Fatalf("%d readings buffered, want 2", n)
	}
	if n := sub.Skipped(); n != 3 {
		t.Fatalf("%d readings counted skipped, want 3", n)
	}
	for i := range 3 {
		event(t, live, fmt.Sprintf("%032x", i), "P1", "spo2_low", schemas.High, schemas.Raised, now)
	}
	n := 0
	for range sub.Events {
		n++
	}
	if n != 2 {
		t.Fatalf("received %d alarms before the disconnect, want 2", n)
	}
}

// At a hospital's rate, an all-patient subscriber busy enough to skip
// readings still gets every alarm, in order: 50,000 readings of 5,000
// patients with 1 % alarms, and a subscriber that takes 2 ms per alarm
// and reads ten readings after each.
func TestEveryAlarmReachesABusySubscriber(t *testing.T) {
	live, _ := newTestServer(t, DefaultLiveConfig())
	sub := live.Subscribe("")
	defer sub.Cancel()
	now := time.Now()
	var want []string
	got := make(chan []string, 1)
	go func() {
		var ids []string
		for ev := range sub.Events {
			ids = append(ids, string(ev.Data))
			time.Sleep(2 * time.Millisecond) // busy: the readings pile up
			for range 10 {
				select {
				case <-sub.Vitals:
				default:
				}
			}
		}
		got <- ids
	}()
	for i := range 50_000 {
		p := fmt.Sprintf("P%04d", i%5000)
		feedReading(t, live, reading(p, schemas.HeartRate, 80, now), now)
		if i%100 == 99 {
			a := event(t, live, fmt.Sprintf("%032x", i), p, "heart_rate_high", schemas.Medium, schemas.Raised, now)
			want = append(want, a.AlertID)
		}
	}
	skipped := sub.Skipped()
	sub.Cancel()
	ids := <-got
	if len(ids) != len(want) {
		t.Fatalf("%d of %d alarms reached the subscriber", len(ids), len(want))
	}
	for i := range want {
		if !strings.Contains(ids[i], want[i]) {
			t.Fatalf("alarm %d is %s, want %s", i, ids[i], want[i])
		}
	}
	if skipped == 0 {
		t.Fatal("no reading was skipped: the subscriber was not busy, the test proves nothing")
	}
	t.Logf("%d alarms delivered in order; %d of 50,000 readings skipped (and said so)", len(ids), skipped)
}

type sse struct{ typ, id, data string }

func readEvents(t *testing.T, br *bufio.Reader, n int) []sse {
	t.Helper()
	done := make(chan []sse, 1)
	go func() {
		var out []sse
		var cur sse
		for len(out) < n {
			line, err := br.ReadString('\n')
			if err == io.EOF || err != nil {
				break
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				cur.typ = line[7:]
			case strings.HasPrefix(line, "id: "):
				cur.id = line[4:]
			case strings.HasPrefix(line, "data: "):
				cur.data = line[6:]
			case line == "" && cur.typ != "":
				out = append(out, cur)
				cur = sse{}
			}
		}
		done <- out
	}()
	select {
	case out := <-done:
		if len(out) != n {
			t.Fatalf("got %d events, want %d: %+v", len(out), n, out)
		}
		return out
	case <-time.After(10 * time.Second):
		t.Fatalf("no %d events within 10s", n)
	}
	return nil
}

// Every route the binary serves is in the OpenAPI document, and every
// path in the document is served: the document cannot drift from the code.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	_, e := newTestServer(t, DefaultLiveConfig())
	in, err := producers.NewIngest(producers.DefaultIngestConfig(), nil, slog.New(slog.DiscardHandler), telemetry.Nop().MeterProvider)
	if err != nil {
		t.Fatal(err)
	}
	in.Register(e)
	ac := auth.DefaultConfig()
	ac.Insecure = true
	au, err := auth.New(context.Background(), ac, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	au.Register(e)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, r := range e.Routes() {
		if r.Method == "echo_route_not_found" {
			continue
		}
		path := r.Path
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, ":") {
				path = strings.Replace(path, seg, "{"+seg[1:]+"}", 1)
			}
		}
		served[r.Method+" "+path] = true
	}
	for k := range served {
		if !documented[k] {
			t.Errorf("served but not in openapi.json: %s", k)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("in openapi.json but not served: %s", k)
		}
	}
	// Who may call each route: the policy decides, the document says the
	// same, and no served route is missing from the policy.
	for _, r := range e.Routes() {
		if r.Method == "echo_route_not_found" {
			continue
		}
		if _, ok := auth.Lookup(r.Method, r.Path); !ok {
			t.Errorf("served but not in auth.Policy (so admin only): %s %s", r.Method, r.Path)
		}
	}
	for _, rule := range auth.Policy {
		path := rule.Path
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, ":") {
				path = strings.Replace(path, seg, "{"+seg[1:]+"}", 1)
			}
		}
		var op struct {
			Roles  []string `json:"x-roles"`
			Public bool     `json:"x-public"`
		}
		raw, ok := doc.Paths[path][strings.ToLower(rule.Method)]
		if !ok {
			t.Errorf("auth.Policy has %s %s, openapi.json does not", rule.Method, path)
			continue
		}
		_ = json.Unmarshal(raw, &op)
		want := make([]string, len(rule.Roles))
		for i, r := range rule.Roles {
			want[i] = string(r)
		}
		if op.Public != rule.Public || !slices.Equal(op.Roles, want) {
			t.Errorf("%s %s: openapi.json says roles %v public %v, auth.Policy %v %v", rule.Method, path, op.Roles, op.Public, want, rule.Public)
		}
	}
	code, body, _ := get(t, e, "/v1/openapi.json")
	if code != 200 || !strings.Contains(string(body), `"openapi": "3.1.0"`) {
		t.Fatalf("openapi.json: %d", code)
	}
}

func TestLiveRunsOnce(t *testing.T) {
	_, kc := testkit.CreateCluster(t, 1)
	live, err := NewLive(DefaultLiveConfig(), kc, slog.New(slog.DiscardHandler), telemetry.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = live.Run(ctx)
	if err := live.Run(context.Background()); !errors.Is(err, once.ErrRunTwice) {
		t.Fatalf("second Run: %v", err)
	}
}

// Ready means the view read what the topics held when it started: until
// then it says so, and once it does, every alert is there. An aborted
// transaction at a partition's end (nothing for read_committed to return
// but its marker) does not hold it back.
func TestLiveReadyOnlyWhenCaughtUp(t *testing.T) {
	c, kc := testkit.CreateCluster(t, 3)
	ctx := context.Background()
	const n = 20_000
	cl := testkit.Client(t, c, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	now := time.Now().UTC()
	var recs []*kgo.Record
	for i := range n {
		r := reading(fmt.Sprintf("P%03d", i%50), schemas.HeartRate, 150, now.Add(-time.Duration(i)*time.Millisecond))
		r.Seq = uint64(i)
		a := schemas.Alert{AlertID: schemas.AlertID("hr", &r), PatientID: r.PatientID, Condition: "hr", Priority: schemas.High, State: schemas.Raised, TS: r.TS, Reading: r}
		rec, err := schemas.AlertRecord(kc.Topics.Alerts, &a)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	tx := testkit.Client(t, c, kgo.TransactionalID("live-ready-test"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := tx.ProduceSync(ctx, &kgo.Record{Topic: kc.Topics.Alerts, Partition: 1, Value: []byte("aborted")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := tx.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	// Slow the view's fetches down so that "not yet" can be seen.
	c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		time.Sleep(50 * time.Millisecond)
		return nil, nil, false
	})
	cfg := DefaultLiveConfig()
	cfg.MaxAlerts = n
	live, err := NewLive(cfg, kc, slog.New(slog.DiscardHandler), telemetry.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if live.Ready(ctx) == nil {
		t.Fatal("ready before it ran")
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- live.Run(rctx) }()
	defer func() { cancel(); <-done }()
	testkit.Eventually(t, 30*time.Second, "the live view ready", func() bool {
		if live.Ready(ctx) != nil {
			return false
		}
		if got := len(live.Alerts(Filter{}, time.Time{}, n)); got != n {
			t.Fatalf("ready with %d of %d alerts", got, n)
		}
		return true
	})
}

// Ids a request invents push each other out of a full view, not a patient
// a monitor keeps updating (12,000 of them once made a real patient 404).
func TestInventedPatientsDoNotEvictRealOnes(t *testing.T) {
	cfg := DefaultLiveConfig()
	cfg.MaxPatients = 100
	live, e := newTestServer(t, cfg)
	now := time.Now().UTC()
	for i := range 20 {
		at := now.Add(time.Duration(i-30) * time.Second)
		feedReading(t, live, reading("P001", schemas.HeartRate, 70, at), at)
	}
	for i := range 500 {
		feedReading(t, live, reading(fmt.Sprintf("X%04d", i), schemas.HeartRate, 70, now), now)
	}
	if code, body, _ := get(t, e, "/v1/patients/P001/vitals/latest"); code != 200 {
		t.Fatalf("the real patient was evicted: %d %s", code, body)
	}
	if n := len(live.Patients()); n > 100 || n < 90 {
		t.Fatalf("%d patients held, want at most the bound 100 (a tenth is dropped at once)", n)
	}
}

// On empty topics there is nothing to read: the view is ready at once (it
// waited for a record that never came, and /readyz stayed 503).
func TestLiveReadyOnEmptyTopics(t *testing.T) {
	_, kc := testkit.CreateCluster(t, 3)
	live, err := NewLive(DefaultLiveConfig(), kc, slog.New(slog.DiscardHandler), telemetry.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- live.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testkit.Eventually(t, 10*time.Second, "ready on empty topics", func() bool { return live.Ready(ctx) == nil })
}

// Live streams are capped per server: one beyond the limit is answered 503
// with Retry-After, and a stream that ends frees its place.
func TestStreamsAreCapped(t *testing.T) {
	_, e := newTestServer(t, DefaultLiveConfig(), WithMaxStreams(2))
	srv := httptest.NewServer(e)
	defer srv.Close()
	open := func() *http.Response {
		t.Helper()
		resp, err := http.Get(srv.URL + "/v1/stream")
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	a, b := open(), open()
	if a.StatusCode != 200 || b.StatusCode != 200 {
		t.Fatalf("the first two streams: %d %d", a.StatusCode, b.StatusCode)
	}
	c := open()
	body, _ := io.ReadAll(c.Body)
	c.Body.Close()
	if c.StatusCode != http.StatusServiceUnavailable || c.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "2 live streams") {
		t.Fatalf("a third stream: %d %s", c.StatusCode, body)
	}
	a.Body.Close()
	testkit.Eventually(t, 5*time.Second, "the closed stream's place freed", func() bool {
		d := open()
		defer d.Body.Close()
		return d.StatusCode == 200
	})
	b.Body.Close()
}

// Each caller holds at most its share of the streams: one beyond is 429,
// another caller is still served, and a closed stream frees its place.
func TestStreamsAreCappedPerSubject(t *testing.T) {
	_, e := newTestServer(t, DefaultLiveConfig(), WithMaxStreams(10), WithMaxStreamsPerSubject(2))
	_, au, tokens := authtest.Tokens(t,
		auth.TokenEntry{Subject: "station-1", Roles: []string{"clinician"}},
		auth.TokenEntry{Subject: "station-2", Roles: []string{"clinician"}})
	a, b := tokens[0], tokens[1]
	e.Use(au.Middleware())
	srv := httptest.NewServer(e)
	defer srv.Close()
	open := func(token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/stream", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	a1, a2 := open(a), open(a)
	if a1.StatusCode != 200 || a2.StatusCode != 200 {
		t.Fatalf("station-1's first two streams: %d %d", a1.StatusCode, a2.StatusCode)
	}
	a3 := open(a)
	body, _ := io.ReadAll(a3.Body)
	a3.Body.Close()
	if a3.StatusCode != http.StatusTooManyRequests || a3.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "2 live streams, the limit of one caller") {
		t.Fatalf("station-1's third stream: %d %s", a3.StatusCode, body)
	}
	b1 := open(b)
	if b1.StatusCode != 200 {
		t.Fatalf("station-2 refused because station-1 is at its limit: %d", b1.StatusCode)
	}
	b1.Body.Close()
	a1.Body.Close()
	testkit.Eventually(t, 5*time.Second, "station-1's closed stream freed", func() bool {
		d := open(a)
		defer d.Body.Close()
		return d.StatusCode == 200
	})
	a2.Body.Close()
}

// A stream that ends gives back what it held: its subscription, its
// goroutines and its memory (2,000 streams once held 297 MB that stayed
// after they left).
func TestStreamsGiveBackTheirMemory(t *testing.T) {
	live, e := newTestServer(t, DefaultLiveConfig(), WithMaxStreams(1000), WithMaxStreamsPerSubject(1000))
	srv := httptest.NewServer(e)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: -1, DisableKeepAlives: true}
	client := &http.Client{Transport: tr}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC() // and the pools' victim caches

		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before, goroutines := heap(), runtime.NumGoroutine()
	const n = 400
	var open []*http.Response
	for range n {
		resp, err := client.Get(srv.URL + "/v1/stream")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("stream %d: %d", len(open), resp.StatusCode)
		}
		open = append(open, resp)
	}
	held := heap()
	for _, r := range open {
		r.Body.Close()
	}
	open = nil
	tr.CloseIdleConnections()
	testkit.Eventually(t, 10*time.Second, "every subscription dropped", func() bool {
		live.mu.RLock()
		defer live.mu.RUnlock()
		return len(live.subs) == 0
	})
	testkit.Eventually(t, 10*time.Second, "the streams' goroutines ended", func() bool { return runtime.NumGoroutine() <= goroutines+5 })
	after := heap()
	t.Logf("heap: %d KB before, %d KB with %d streams (%d KB each), %d KB after", before>>10, held>>10, n, (held-before)/n>>10, after>>10)
	if held < before {
		held = before
	}
	if after > before+(held-before)/10+1<<20 {
		t.Errorf("the heap after the streams left is %d KB, before %d KB, with them %d KB: they did not give back their memory", after>>10, before>>10, held>>10)
	}
}

// A reconnecting stream resumes after its Last-Event-ID: what it missed
// first, in order, then the live events, nothing lost or doubled; an id
// the view no longer keeps gets a reset event.
func TestStreamResumesAfterLastEventID(t *testing.T) {
	live, e := newTestServer(t, DefaultLiveConfig())
	srv := httptest.NewServer(e)
	defer srv.Close()
	open := func(lastID string) (*bufio.Reader, func()) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/stream?patient=P1", nil)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, ":") {
			t.Fatalf("first line %q", line)
		}
		return br, func() { resp.Body.Close() }
	}
	offset := int64(0)
	feed := func(patient string, v float64, at time.Time) {
		r := reading(patient, schemas.HeartRate, v, at)
		rec, err := schemas.ReadingRecord("vitals.v1", &r)
		if err != nil {
			t.Fatal(err)
		}
		rec.Timestamp, rec.Offset = at, offset
		offset++
		live.apply(rec)
	}
	br, closeFirst := open("")
	now := time.Now()
	for i := range 3 {
		feed("P1", float64(70+i), now)
	}
	first := readEvents(t, br, 3)
	closeFirst()
	// While disconnected: two more of P1's, one of P2's.
	feed("P1", 73, now)
	feed("P2", 99, now)
	feed("P1", 74, now)

	br, closeSecond := open(first[1].id)
	defer closeSecond()
	feed("P1", 75, now)
	got := readEvents(t, br, 4)
	var values []string
	for _, ev := range got {
		var r schemas.Reading
		if err := json.Unmarshal([]byte(ev.data), &r); err != nil {
			t.Fatal(err)
		}
		values = append(values, fmt.Sprint(r.Value))
	}
	if !slices.Equal(values, []string{"72", "73", "74", "75"}) {
		t.Fatalf("resumed after the 2nd event: %v, want 72 73 74 75", values)
	}

	br, closeThird := open("vitals.v1/9/999999")
	defer closeThird()
	if ev := readEvents(t, br, 1); ev[0].typ != "reset" {
		t.Fatalf("an unknown Last-Event-ID: %+v, want a reset event", ev[0])
	}
}

// Who may call a route, as the document's security says it: a public
// route (x-public) has security [] (a client sends no token), any other
// names the bearer token. Before, GET / and /station/* were public yet
// documented as needing a token.
func TestOpenAPISecurityMatchesThePolicy(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			Public   bool                   `json:"x-public"`
			Security *[]map[string][]string `json:"security"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			switch {
			case op.Public && (op.Security == nil || len(*op.Security) != 0):
				t.Errorf("%s %s is public; its security must be []", method, path)
			case !op.Public && op.Security != nil && !slices.ContainsFunc(*op.Security, func(s map[string][]string) bool { _, ok := s["bearer"]; return ok }):
				t.Errorf("%s %s needs a token; its security must name bearer", method, path)
			}
		}
	}
}
