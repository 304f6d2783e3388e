package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/monitorme/monitorme/processors"
	"github.com/monitorme/monitorme/schemas"
)

type fakeAcks struct {
	got  []schemas.Ack
	fail bool
}

func (f *fakeAcks) WriteAck(_ context.Context, a schemas.Ack) error {
	if f.fail {
		return errors.New("brokers down")
	}
	f.got = append(f.got, a)
	return nil
}

func newAlarmServer(t *testing.T, rules processors.ClinicalConfig) (*Live, *echo.Echo, *fakeAcks) {
	t.Helper()
	acks := &fakeAcks{}
	live, e := newTestServer(t, DefaultLiveConfig(), WithAcks(acks), WithRules(rules))
	return live, e, acks
}

// event feeds an alert event to the live view as the processor would
// write it.
func event(t *testing.T, l *Live, id, patient, condition string, prio schemas.Priority, state schemas.State, at time.Time) schemas.Alert {
	t.Helper()
	r := reading(patient, schemas.SpO2, 85, at)
	a := schemas.Alert{AlertID: id, PatientID: patient, Condition: condition, Priority: prio, State: state, TS: at, Limit: 90, Message: "m", Reading: r}
	rec, err := processors.AlertRecord("alerts.v1", &a)
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
	live, e, acks := newAlarmServer(t, processors.DefaultClinicalConfig())
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
		{"bad id", "nope", "application/json", `{"by":"n1"}`, 400, "id is not an alert id"},
		{"not json", idA, "text/plain", `by=n1`, 415, "application/json"},
		{"unknown field", idA, "application/json", `{"who":"n1"}`, 400, `unknown field \"who\"`},
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

func TestPatientRules(t *testing.T) {
	cfg, err := processors.LoadRules("r.yaml", strings.NewReader("wards:\n  icu:\n    conditions:\n      heart_rate_high: {limit: 130}\npatients:\n  P1: {ward: icu}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, e, _ := newAlarmServer(t, cfg)
	var got PatientRules
	code, body, _ := get(t, e, "/v1/patients/P1/rules")
	if code != 200 || json.Unmarshal(body, &got) != nil || got.Source != "patient" || got.Rules.Ward != "icu" {
		t.Fatalf("%d %s", code, body)
	}
	var hr *processors.ConditionRuleView
	for i := range got.Rules.Conditions {
		if got.Rules.Conditions[i].Condition == "heart_rate_high" {
			hr = &got.Rules.Conditions[i]
		}
	}
	if hr == nil || hr.Limit != 130 || hr.Delay != "10s" || got.Rules.Escalation["high"] != "1m0s" {
		t.Fatalf("rules: %s", body)
	}
	if code, body, _ := get(t, e, "/v1/patients/P9/rules"); code != 200 || !strings.Contains(string(body), `"source":"defaults"`) || !strings.Contains(string(body), `"limit":120`) {
		t.Fatalf("P9: %d %s", code, body)
	}
	if code, _, _ := get(t, e, "/v1/patients/P%201/rules"); code != 400 {
		t.Fatalf("bad id: %d", code)
	}
}

func TestAlarmSummary(t *testing.T) {
	cfg, err := processors.LoadRules("r.yaml", strings.NewReader("wards:\n  icu: {}\npatients:\n  P1: {ward: icu}\n"))
	if err != nil {
		t.Fatal(err)
	}
	live, e, _ := newAlarmServer(t, cfg)
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
}
