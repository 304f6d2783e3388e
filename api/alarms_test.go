package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/monitorme/monitorme/clinical"
	"github.com/monitorme/monitorme/internal/auth"
	"github.com/monitorme/monitorme/internal/auth/authtest"
	"github.com/monitorme/monitorme/schemas"
)

type fakeAcks struct {
	got        []schemas.Ack
	silences   []schemas.Silence
	placements []schemas.Placement
	fail       bool
}

func (f *fakeAcks) WritePlacement(_ context.Context, p schemas.Placement) error {
	if f.fail {
		return errors.New("brokers down")
	}
	f.placements = append(f.placements, p)
	return nil
}

func (f *fakeAcks) WriteSilence(_ context.Context, s schemas.Silence) error {
	if f.fail {
		return errors.New("brokers down")
	}
	f.silences = append(f.silences, s)
	return nil
}

func (f *fakeAcks) WriteAck(_ context.Context, a schemas.Ack) error {
	if f.fail {
		return errors.New("brokers down")
	}
	f.got = append(f.got, a)
	return nil
}

// testRules are clinical rules from a rules file: P1 in the icu, whose
// heart rate limit is 130 (the defaults' 120).
func testRules(t *testing.T) *clinical.Config {
	t.Helper()
	cfg, err := clinical.LoadRules("r.yaml", strings.NewReader("wards:\n  icu:\n    conditions:\n      heart_rate_high: {limit: 130}\npatients:\n  P1: {ward: icu}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return &cfg
}

func newAlarmServer(t *testing.T, rules *clinical.Config) (*Live, *echo.Echo, *fakeAcks) {
	t.Helper()
	acks := &fakeAcks{}
	opts := []Option{WithAcks(acks)}
	if rules != nil {
		opts = append(opts, WithRules(rules))
	}
	live, e := newTestServer(t, DefaultLiveConfig(), opts...)
	return live, e, acks
}

// event feeds an alert event to the live view as the processor would
// write it.
func event(t *testing.T, l *Live, id, patient, condition string, prio schemas.Priority, state schemas.State, at time.Time) schemas.Alert {
	t.Helper()
	r := reading(patient, schemas.SpO2, 85, at)
	a := schemas.Alert{AlertID: id, PatientID: patient, Condition: condition, Priority: prio, State: state, TS: at, Limit: 90, Message: "m", Reading: r}
	rec, err := schemas.AlertRecord("alerts.v1", &a)
	if err != nil {
		t.Fatal(err)
	}
	rec.Timestamp = at
	l.apply(rec)
	return a
}

func post(t *testing.T, e *echo.Echo, target, contentType, body string) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set(echo.HeaderContentType, contentType)
	}
	e.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

const (
	idA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	idB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	idC = "cccccccccccccccccccccccccccccccc"
)

func TestAckEndpoint(t *testing.T) {
	live, e, acks := newAlarmServer(t, testRules(t))
	now := time.Now().UTC()
	event(t, live, idA, "P1", "spo2_low", schemas.High, schemas.Raised, now)
	event(t, live, idB, "P2", "spo2_low", schemas.High, schemas.Raised, now)
	event(t, live, idB, "P2", "spo2_low", schemas.High, schemas.Resolved, now.Add(time.Second))
	event(t, live, idC, "P3", "spo2_low", schemas.High, schemas.Raised, now)
	event(t, live, idC, "P3", "spo2_low", schemas.High, schemas.Acknowledged, now.Add(time.Second))

	for _, c := range []struct {
		name, id, ct, body string
		code               int
		want               string
	}{
		{"bad id", "nope", "application/json", `{"by":"n1"}`, 400, "id is not allowed"},
		{"not json", idA, "text/plain", `by=n1`, 415, "application/json"},
		{"unknown field", idA, "application/json", `{"who":"n1"}`, 400, "'who' not allowed"},
		{"no by", idA, "application/json", `{}`, 400, "by is required"},
		{"unknown alert", strings.Repeat("d", 32), "application/json", `{"by":"n1"}`, 404, "no alert"},
		{"resolved", idB, "application/json", `{"by":"n1"}`, 409, "is resolved"},
		{"already acknowledged", idC, "application/json", `{"by":"n1"}`, 200, "already acknowledged"},
		{"acknowledged", idA, "application/json; charset=utf-8", `{"by":"nurse-7"}`, 202, `"by":"nurse-7"`},
	} {
		code, body := post(t, e, "/v1/alerts/"+c.id+"/ack", c.ct, c.body)
		if code != c.code || !strings.Contains(string(body), c.want) {
			t.Errorf("%s: %d %s, want %d containing %s", c.name, code, body, c.code, c.want)
		}
	}
	if len(acks.got) != 1 || acks.got[0].AlertID != idA || acks.got[0].PatientID != "P1" || acks.got[0].By != "nurse-7" || acks.got[0].Validate() != nil {
		t.Fatalf("acks written: %+v", acks.got)
	}
	acks.fail = true
	if code, body := post(t, e, "/v1/alerts/"+idA+"/ack", "application/json", `{"by":"nurse-7"}`); code != 503 || !strings.Contains(string(body), "retry") {
		t.Fatalf("brokers down: %d %s", code, body)
	}
}

// The route shows the rules in force: the ward's changes under the
// patient the file names, durations as Go durations, the defaults for a
// patient it does not name, and the engine-wide policies.
func TestPatientRules(t *testing.T) {
	_, e, _ := newAlarmServer(t, testRules(t))
	var got struct {
		PatientID string `json:"patient_id"`
		Source    string `json:"source"`
		Rules     struct {
			Ward string `json:"ward"`
		} `json:"rules"`
	}
	code, body, _ := get(t, e, "/v1/patients/P1/rules")
	if code != 200 || json.Unmarshal(body, &got) != nil || got.PatientID != "P1" || got.Source != "patient" || got.Rules.Ward != "icu" {
		t.Fatalf("%d %s", code, body)
	}
	if code, body, _ := get(t, e, "/v1/patients/P9/rules"); code != 200 || !strings.Contains(string(body), `"source":"defaults"`) || !strings.Contains(string(body), `"limit":120`) {
		t.Fatalf("P9: %d %s", code, body)
	}
	if code, _, _ := get(t, e, "/v1/patients/P%201/rules"); code != 400 {
		t.Fatalf("bad id: %d", code)
	}
	_, none, _ := newAlarmServer(t, nil)
	if code, body, _ := get(t, none, "/v1/patients/P1/rules"); code != 501 {
		t.Fatalf("no rules configured: %d %s", code, body)
	}
}

// The views are of the rules in force: P1's heart rate limit and delay
// from the icu over the defaults, its escalation, the policies; P9's
// defaults.
func TestPatientRulesView(t *testing.T) {
	cfg := testRules(t)
	got := patientRulesView(cfg, "P1")
	if got.Ward != "icu" || !cfg.Named("P1") || cfg.Named("P9") {
		t.Fatalf("P1: %+v", got)
	}
	var hr *ConditionRuleView
	for i := range got.Conditions {
		if got.Conditions[i].Condition == "heart_rate_high" {
			hr = &got.Conditions[i]
		}
	}
	if hr == nil || hr.Limit != 130 || hr.Delay != "10s" || got.Escalation["high"][0].After != "1m0s" || got.Policies.Lateness.ReorderWindow == "" {
		t.Fatalf("P1 rules: %+v", got)
	}
	if d := patientRulesView(cfg, "P9"); d.Ward != "" {
		t.Fatalf("P9: %+v", d)
	}
}

func TestAlarmSummary(t *testing.T) {
	live, e, _ := newAlarmServer(t, nil)
	// P1's alarms were raised in the icu, as the processor says.
	event := func(t *testing.T, l *Live, id, patient, condition string, prio schemas.Priority, state schemas.State, at time.Time) {
		t.Helper()
		a := schemas.Alert{AlertID: id, PatientID: patient, Condition: condition, Priority: prio, State: state, TS: at, Limit: 90, Message: "m",
			Reading: reading(patient, schemas.SpO2, 85, at)}
		if patient == "P1" {
			a.Ward = "icu"
		}
		applyAlert(t, l, a)
	}
	now := time.Now().UTC()
	feedReading(t, live, reading("P3", schemas.HeartRate, 70, now), now) // a patient without alarms
	event(t, live, idA, "P1", "news2", schemas.Medium, schemas.Raised, now.Add(-time.Hour))
	event(t, live, idA, "P1", "news2", schemas.High, schemas.Raised, now.Add(-50*time.Minute)) // upgraded: one alarm, high
	event(t, live, idA, "P1", "news2", schemas.High, schemas.Escalated, now.Add(-49*time.Minute))
	event(t, live, idB, "P1", "spo2_low", schemas.High, schemas.Raised, now.Add(-2*time.Hour))
	event(t, live, idB, "P1", "spo2_low", schemas.High, schemas.Acknowledged, now.Add(-2*time.Hour))
	event(t, live, idC, "P2", "heart_rate_signal_lost", schemas.Medium, schemas.Raised, now.Add(-3*time.Hour))
	event(t, live, idC, "P2", "heart_rate_signal_lost", schemas.Medium, schemas.Resolved, now.Add(-3*time.Hour))
	// Raised before the window: not counted.
	event(t, live, strings.Repeat("e", 32), "P2", "spo2_low", schemas.High, schemas.Raised, now.Add(-30*time.Hour))

	code, body, _ := get(t, e, "/v1/alarms/summary")
	var s AlarmSummary
	if code != 200 || json.Unmarshal(body, &s) != nil {
		t.Fatalf("%d %s", code, body)
	}
	if s.Alarms != 3 || s.Patients != 3 || s.PerPatientPerDay != 1 || s.ByPriority["high"] != 2 || s.ByPriority["medium"] != 1 ||
		s.ByCondition["news2"] != 1 || s.ByWard["icu"] != 2 || s.ByWard[""] != 1 || s.Escalated != 1 || s.Acknowledged != 1 || s.Resolved != 1 {
		t.Fatalf("summary: %s", body)
	}
	if len(s.ByPatient) != 2 || s.ByPatient[0].PatientID != "P1" || s.ByPatient[0].Alarms != 2 || s.ByPatient[0].PerDay != 2 || s.ByPatient[0].Ward != "icu" {
		t.Fatalf("by patient: %s", body)
	}
	code, body, _ = get(t, e, "/v1/alarms/summary?window=90m")
	if json.Unmarshal(body, &s) != nil || code != 200 || s.Alarms != 1 || s.PerPatientPerDay != 5.33 {
		t.Fatalf("90m window: %d %s", code, body)
	}
	if code, body, _ := get(t, e, "/v1/alarms/summary?window=30d"); code != 400 || !strings.Contains(string(body), "window") {
		t.Fatalf("bad window: %d %s", code, body)
	}
	// A window longer than the view's lookback (24 h) is cut to it, and
	// since says so: before, a 400 the document did not foresee.
	code, body, _ = get(t, e, "/v1/alarms/summary?window=720h")
	if json.Unmarshal(body, &s) != nil || code != 200 || s.Until.Sub(s.Since) != 24*time.Hour || s.Alarms != 3 {
		t.Fatalf("720h window: %d %s", code, body)
	}
}

// Lax input found by probing the API (issue 12): each is a named 4xx now.
func TestLaxInputIsRefused(t *testing.T) {
	live, e, acks := newAlarmServer(t, testRules(t))
	now := time.Now().UTC()
	event(t, live, idA, "P1", "spo2_low", schemas.High, schemas.Raised, now)
	for name, c := range map[string]struct {
		body       string
		code       int
		detailPart string
	}{
		"trailing data after the object": {`{"by":"nurse-7"} {"by":"x"}`, 400, "data after the object"},
		"a body over 4 KiB":              {`{"by":"nurse-7"}` + strings.Repeat(" ", 5000), 413, "at most 4 KiB"},
	} {
		code, body := post(t, e, "/v1/alerts/"+idA+"/ack", "application/json", c.body)
		if code != c.code || !strings.Contains(string(body), c.detailPart) {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	if len(acks.got) != 0 {
		t.Fatalf("refused acknowledgements were written: %+v", acks.got)
	}
	if code, body, _ := get(t, e, "/v1/alerts?since="); code != 400 || !strings.Contains(string(body), "since") {
		t.Errorf("empty since: %d %s", code, body)
	}
	// What a browser's encodeURIComponent sends for the id ward3:bed7.
	feedReading(t, live, reading("ward3:bed7", schemas.HeartRate, 70, now), now)
	if code, body, _ := get(t, e, "/v1/patients/ward3%3Abed7/vitals/latest"); code != 200 || !strings.Contains(string(body), `"ward3:bed7"`) {
		t.Errorf("percent-encoded id: %d %s", code, body)
	}
}

// Whatever the body and the Authorization header, POST
// /v1/alerts/{id}/ack answers 202 or a 4xx, through the authentication
// middleware as a server runs it; a 202 comes only with the nurse's token
// and writes one acknowledgement of that alert by the nurse, a 4xx none.
// authz "nurse" stands for the nurse's token (made anew each run). Before
// (issue 27), the handler was fuzzed without the middleware.
func FuzzAckHandler(f *testing.F) {
	f.Add("nurse", "application/json", `{"by":"nurse-7"}`)
	f.Add("nurse", "application/json", ``)
	f.Add("nurse", "application/json", `{"by":"nurse-7@icu"} {}`)
	f.Add("Bearer mm_wrong", "application/json", `{}`)
	f.Add("", "application/json", `{"by":"nurse-7@icu"}`)
	f.Add("nurse", "text/plain", `{"by":"nurse 7"}`)
	f.Fuzz(func(t *testing.T, authz, contentType, body string) {
		live, e, acks := newAlarmServer(t, testRules(t))
		_, a, tokens := authtest.Tokens(t, auth.TokenEntry{Subject: "nurse-7@icu", Roles: []string{"clinician"}})
		e.Use(a.Middleware())
		if authz == "nurse" {
			authz = "Bearer " + tokens[0]
		}
		event(t, live, idA, "P1", "spo2_low", schemas.High, schemas.Raised, time.Now().UTC())
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/v1/alerts/"+idA+"/ack", strings.NewReader(body))
		req.Header.Set(echo.HeaderContentType, contentType)
		if authz != "" {
			req.Header.Set(echo.HeaderAuthorization, authz)
		}
		e.ServeHTTP(rec, req)
		code, out := rec.Code, rec.Body.String()
		switch {
		case code == 202:
			if !strings.Contains(authz, tokens[0]) || len(acks.got) != 1 || acks.got[0].AlertID != idA || acks.got[0].By != "nurse-7@icu" || acks.got[0].Validate() != nil {
				t.Fatalf("202 with %q wrote %+v", authz, acks.got)
			}
		case code >= 400 && code < 500:
			if len(acks.got) != 0 {
				t.Fatalf("%d, yet wrote %+v", code, acks.got)
			}
		default:
			t.Fatalf("answer %d: %s", code, out)
		}
	})
}

// POST /v1/patients/{id}/silence writes an alarm-silence.v1 event; the
// live view reads it back from the acks topic and the patient's latest
// vitals show it while it lasts, with the current NEWS2 from the rules.
func TestSilenceEndpoint(t *testing.T) {
	live, e, acks := newAlarmServer(t, testRules(t))
	for _, c := range []struct {
		name, ct, body string
		code           int
		want           string
	}{
		{"not json", "text/plain", `by=n1`, 415, "application/json"},
		{"unknown field", "application/json", `{"by":"n1","minutes":2}`, 400, "'minutes' not allowed"},
		{"too long", "application/json", `{"by":"n1","seconds":3600}`, 400, "seconds: maximum: got 3,600, want 600"},
		{"no by", "application/json", `{}`, 400, `"field":"by"`},
		{"empty by", "application/json", `{"by":"","seconds":90}`, 400, `"field":"body"`},
		// 367.0 is an integer in JSON Schema, so in the document: it
		// was refused by the decoder.
		{"integral float", "application/json", `{"by":"nurse-7","seconds":367.0}`, 202, `"seconds":367`},
		{"silenced", "application/json", `{"by":"nurse-7","seconds":90}`, 202, `"seconds":90`},
	} {
		code, body := post(t, e, "/v1/patients/P1/silence", c.ct, c.body)
		if code != c.code || !strings.Contains(string(body), c.want) {
			t.Errorf("%s: %d %s, want %d containing %s", c.name, code, body, c.code, c.want)
		}
	}
	if len(acks.silences) != 2 || acks.silences[0].Seconds != 367 || acks.silences[1].PatientID != "P1" || acks.silences[1].By != "nurse-7" || acks.silences[1].Seconds != 90 {
		t.Fatalf("written: %+v", acks.silences)
	}
	acks.silences = acks.silences[1:]
	feedReading(t, live, reading("P1", schemas.HeartRate, 80, time.Now().UTC()), time.Now())
	rec, err := schemas.SilenceRecord("alerting.acks.v1", &acks.silences[0])
	if err != nil {
		t.Fatal(err)
	}
	live.apply(rec)
	var got LatestVitals
	code, body, _ := get(t, e, "/v1/patients/P1/vitals/latest")
	if err := json.Unmarshal(body, &got); code != 200 || err != nil {
		t.Fatalf("latest vitals: %d %s", code, body)
	}
	if got.Silence == nil || got.Silence.By != "nurse-7" {
		t.Fatalf("latest vitals show no silence: %+v", got)
	}
	if got.NEWS2 != nil { // one heart rate is no complete set
		t.Fatalf("latest vitals' news2: %#v", got.NEWS2)
	}
	acks.fail = true
	if code, body := post(t, e, "/v1/patients/P1/silence", "application/json", `{"by":"n1"}`); code != 503 {
		t.Fatalf("brokers down: %d %s", code, body)
	}
}

// Whatever the body, POST /v1/patients/{id}/silence answers 202 or a 4xx;
// a 202 writes one valid silence, a 4xx none.
func FuzzSilenceHandler(f *testing.F) {
	f.Add("application/json", `{"by":"nurse-7","seconds":120}`)
	f.Add("application/json", `{"by":"nurse-7"}`)
	f.Add("application/json", `{"by":"nurse-7","seconds":1e9}`)
	f.Add("text/plain", `{"by":"nurse-7"}`)
	f.Fuzz(func(t *testing.T, contentType, body string) {
		_, e, acks := newAlarmServer(t, testRules(t))
		code, out := post(t, e, "/v1/patients/P1/silence", contentType, body)
		switch {
		case code == 202:
			if len(acks.silences) != 1 || acks.silences[0].Validate() != nil || acks.silences[0].PatientID != "P1" {
				t.Fatalf("202 wrote %+v", acks.silences)
			}
		case code >= 400 && code < 500:
			if len(acks.silences) != 0 {
				t.Fatalf("%d, yet wrote %+v", code, acks.silences)
			}
		default:
			t.Fatalf("answer %d: %s", code, out)
		}
	})
}

// With authentication, who acknowledges or silences is the token's
// subject: a body naming someone else is refused, and the event records
// how the caller was authenticated.
func TestActorIsTheTokensSubject(t *testing.T) {
	live, e, acks := newAlarmServer(t, testRules(t))
	_, a, tokens := authtest.Tokens(t,
		auth.TokenEntry{Subject: "nurse-7@icu", Roles: []string{"clinician"}},
		auth.TokenEntry{Subject: "gw-1", Roles: []string{"device"}})
	nurse, gateway := tokens[0], tokens[1]
	e.Use(a.Middleware())
	now := time.Now().UTC()
	event(t, live, idA, "P1", "spo2_low", schemas.Medium, schemas.Raised, now)
	event(t, live, idB, "P1", "hr_high", schemas.Medium, schemas.Raised, now)

	send := func(target, token, body string) (int, string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
		if body != "" {
			req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		}
		if token != "" {
			req.Header.Set(echo.HeaderAuthorization, "Bearer "+token)
		}
		e.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	for _, c := range []struct {
		name, target, token, body string
		code                      int
		want                      string
	}{
		{"no token", "/v1/alerts/" + idA + "/ack", "", "", 401, "needs a token"},
		{"a device token", "/v1/alerts/" + idA + "/ack", gateway, "", 403, "needs role clinician"},
		{"someone else in the body", "/v1/alerts/" + idA + "/ack", nurse, `{"by":"dr-house"}`, 403, "is not you"},
		{"no body", "/v1/alerts/" + idA + "/ack", nurse, "", 202, `"by":"nurse-7@icu","auth":"token"`},
		{"the same subject in the body", "/v1/alerts/" + idB + "/ack", nurse, `{"by":"nurse-7@icu"}`, 202, `"by":"nurse-7@icu"`},
		{"silence", "/v1/patients/P1/silence", nurse, `{"seconds":60}`, 202, `"by":"nurse-7@icu","auth":"token"`},
	} {
		code, body := send(c.target, c.token, c.body)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want %d containing %s", c.name, code, body, c.code, c.want)
		}
	}
	if len(acks.got) != 2 || acks.got[0].By != "nurse-7@icu" || acks.got[0].Auth != "token" {
		t.Fatalf("acknowledgements written: %+v", acks.got)
	}
	if len(acks.silences) != 1 || acks.silences[0].By != "nurse-7@icu" {
		t.Fatalf("silences written: %+v", acks.silences)
	}
}

// placeIn applies an admission (or, to where the patient is not, a
// transfer) as the live view reads it from the placements topic.
func placeIn(t *testing.T, l *Live, patient, ward, bed string) {
	t.Helper()
	p := schemas.Placement{PatientID: patient, Event: schemas.Admit, Ward: ward, Bed: bed, By: "adt", TS: time.Now().UTC()}
	if _, ok := l.Placement(patient); ok {
		p.Event = schemas.Transfer
	}
	if ward == "" {
		p = schemas.Placement{PatientID: patient, Event: schemas.Discharge, By: "adt", TS: p.TS}
	}
	rec, err := schemas.PlacementRecord("alerting.placements.v1", &p)
	if err != nil {
		t.Fatal(err)
	}
	l.applyPlacement(rec)
}

// GET /v1/alarms lists each open alert once, in its current state, as a
// central station orders them, filtered and paged by cursor.
func TestOpenAlarms(t *testing.T) {
	live, e, _ := newAlarmServer(t, nil)
	for _, p := range [][3]string{{"P1", "icu", "1"}, {"P2", "icu", "2"}, {"P3", "ward-3", "1"}, {"P4", "ward-3", "2"}} {
		placeIn(t, live, p[0], p[1], p[2])
	}
	t0 := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Millisecond)
	idD := "dddddddddddddddddddddddddddddddd"
	event(t, live, idA, "P1", "spo2_low", schemas.Medium, schemas.Raised, t0)
	event(t, live, idA, "P1", "spo2_low", schemas.Medium, schemas.Acknowledged, t0.Add(time.Minute))
	event(t, live, idB, "P2", "heart_rate_high", schemas.High, schemas.Raised, t0.Add(30*time.Second))
	event(t, live, idC, "P3", "resp_rate_high", schemas.Medium, schemas.Raised, t0.Add(-time.Minute))
	event(t, live, idC, "P3", "resp_rate_high", schemas.Medium, schemas.Resolved, t0.Add(2*time.Minute))
	event(t, live, idD, "P4", "temperature_high", schemas.Medium, schemas.Raised, t0.Add(10*time.Second))
	list := func(query string) (int, OpenAlarms) {
		code, body, _ := get(t, e, "/v1/alarms"+query)
		var out OpenAlarms
		_ = json.Unmarshal(body, &out)
		return code, out
	}
	ids := func(o OpenAlarms) []string {
		var s []string
		for _, a := range o.Alarms {
			s = append(s, a.AlertID[:1]+":"+string(a.State))
		}
		return s
	}
	code, all := list("")
	if code != 200 || !slices.Equal(ids(all), []string{"b:raised", "d:raised", "a:acknowledged"}) {
		t.Fatalf("open alarms: %d %v (want the high one, then the unacknowledged medium, then the acknowledged; the resolved one not at all)", code, ids(all))
	}
	if a := all.Alarms[2]; !a.RaisedAt.Equal(t0) || a.Ward != "icu" || a.Bed != "1" {
		t.Errorf("acknowledged alarm: raised_at %v (want %v), ward %q bed %q", a.RaisedAt, t0, a.Ward, a.Bed)
	}
	for q, want := range map[string][]string{
		"?priority=high":      {"b:raised"},
		"?state=acknowledged": {"a:acknowledged"},
		"?ward=ward-3":        {"d:raised"},
		"?patient=P1":         {"a:acknowledged"},
	} {
		if _, got := list(q); !slices.Equal(ids(got), want) {
			t.Errorf("%s: %v, want %v", q, ids(got), want)
		}
	}
	// One a page: three pages, then none.
	var paged []string
	cursor := ""
	for range 4 {
		_, page := list("?limit=1" + cursor)
		paged = append(paged, ids(page)...)
		if page.NextCursor == "" {
			break
		}
		cursor = "&cursor=" + page.NextCursor
	}
	if !slices.Equal(paged, ids(all)) {
		t.Errorf("paged one at a time: %v, want %v", paged, ids(all))
	}
	for _, q := range []string{"?priority=urgent", "?state=resolved", "?limit=0", "?cursor=nope"} {
		if code, _ := list(q); code != 400 {
			t.Errorf("%s: %d, want 400", q, code)
		}
	}
}
