package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/monitorme/monitorme/internal/web"
	"github.com/monitorme/monitorme/schemas"
	chschema "github.com/monitorme/monitorme/schemas/clickhouse"
)

// fakeHistory answers from fixed rows and records the queries asked, so a
// test sees what would be bound as parameters.
type fakeHistory struct {
	raw     []chschema.RawVital
	buckets []chschema.VitalBucket
	alerts  []schemas.Alert
	err     error
	vq      []chschema.VitalsQuery
	aq      []chschema.AlertsQuery
}

func (f *fakeHistory) RawVitals(_ context.Context, q chschema.VitalsQuery) ([]chschema.RawVital, error) {
	f.vq = append(f.vq, q)
	return f.raw, f.err
}

func (f *fakeHistory) VitalBuckets(_ context.Context, q chschema.VitalsQuery) ([]chschema.VitalBucket, error) {
	f.vq = append(f.vq, q)
	return f.buckets, f.err
}

func (f *fakeHistory) Alerts(_ context.Context, q chschema.AlertsQuery) ([]schemas.Alert, error) {
	f.aq = append(f.aq, q)
	return f.alerts, f.err
}

func TestVitalsHistory(t *testing.T) {
	h := &fakeHistory{raw: []chschema.RawVital{
		{Kind: "heart_rate", TS: t0, Value: 70, Unit: "/min", DeviceID: "d1", Seq: 1},
		{Kind: "heart_rate", TS: t0.Add(time.Second), Value: 71, Unit: "/min", DeviceID: "d1", Seq: 2},
		{Kind: "spo2", TS: t0, Value: 97, Unit: "%", DeviceID: "d2", Seq: 1},
	}}
	_, e := newTestServer(t, DefaultLiveConfig(), WithHistory(h))
	from, to := t0.Add(-time.Hour), t0.Add(time.Hour)
	code, body, _ := get(t, e, "/v1/patients/P1/vitals?from="+from.Format(time.RFC3339)+"&to="+to.Format(time.RFC3339))
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var got VitalsHistory
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Series) != 2 || got.Series[0].Kind != schemas.HeartRate || len(got.Series[0].Points) != 2 ||
		got.Series[1].Kind != schemas.SpO2 || got.Series[1].Points[0].Value != 97 || got.Truncated || got.Step != "" {
		t.Fatalf("got %s", body)
	}
	q := h.vq[0]
	if q.Patient != "P1" || q.Kind != "" || !q.From.Equal(from) || !q.To.Equal(to) || q.Step != 0 || q.Limit != DefaultRawLimit+1 {
		t.Fatalf("query %+v", q)
	}

	// A limit the store exceeds cuts the answer and says so.
	code, body, _ = get(t, e, "/v1/patients/P1/vitals?limit=2&kind=heart_rate")
	got = VitalsHistory{}
	_ = json.Unmarshal(body, &got)
	if code != http.StatusOK || !got.Truncated || len(got.Series) != 1 || len(got.Series[0].Points) != 2 {
		t.Fatalf("limit 2: %d %s", code, body)
	}
	if q := h.vq[1]; q.Kind != "heart_rate" || q.Limit != 3 || q.To.Sub(q.From) != 24*time.Hour {
		t.Fatalf("default window and kind: %+v", q)
	}
}

func TestVitalsHistoryBuckets(t *testing.T) {
	h := &fakeHistory{buckets: []chschema.VitalBucket{
		{Kind: "spo2", TS: t0, Min: 91, Avg: 93.5, Max: 96, Samples: 60},
		{Kind: "spo2", TS: t0.Add(15 * time.Minute), Min: 90, Avg: 92, Max: 95, Samples: 58},
	}}
	_, e := newTestServer(t, DefaultLiveConfig(), WithHistory(h))
	code, body, _ := get(t, e, "/v1/patients/P1/vitals?kind=spo2&step=15m")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var got VitalsHistory
	_ = json.Unmarshal(body, &got)
	if got.Step != "15m0s" || len(got.Series) != 1 || got.Series[0].Unit != "%" || len(got.Series[0].Buckets) != 2 ||
		got.Series[0].Buckets[0].Avg != 93.5 || got.Series[0].Buckets[1].Samples != 58 || got.Series[0].Points != nil {
		t.Fatalf("got %s", body)
	}
	if q := h.vq[0]; q.Step != 15*time.Minute || q.Kind != "spo2" {
		t.Fatalf("query %+v", q)
	}
}

func TestAlertsHistory(t *testing.T) {
	score := 7
	h := &fakeHistory{alerts: []schemas.Alert{{AlertID: "a1", PatientID: "P1", Condition: "news2", State: schemas.Raised, TS: t0, Score: &score}}}
	_, e := newTestServer(t, DefaultLiveConfig(), WithHistory(h))
	code, body, _ := get(t, e, "/v1/patients/P1/alerts?from="+t0.Add(-48*time.Hour).Format(time.RFC3339))
	var got AlertsHistory
	_ = json.Unmarshal(body, &got)
	if code != http.StatusOK || len(got.Alerts) != 1 || *got.Alerts[0].Score != 7 || got.Truncated {
		t.Fatalf("%d %s", code, body)
	}
	if q := h.aq[0]; q.Patient != "P1" || q.Limit != DefaultAlertsMax+1 {
		t.Fatalf("query %+v", q)
	}
}

func TestHistoryStoreDownIs503(t *testing.T) {
	h := &fakeHistory{err: errors.New("dial tcp 127.0.0.1:9000: connection refused")}
	_, e := newTestServer(t, DefaultLiveConfig(), WithHistory(h))
	for _, target := range []string{"/v1/patients/P1/vitals", "/v1/patients/P1/vitals?step=1h", "/v1/patients/P1/alerts"} {
		code, body, hdr := get(t, e, target)
		var p web.Problem
		if err := json.Unmarshal(body, &p); err != nil || code != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "5" {
			t.Fatalf("%s: %d %s", target, code, body)
		}
		if strings.Contains(string(body), "refused") {
			t.Fatalf("%s: the store's error reached the client: %s", target, body)
		}
	}
}

// A range longer than one answer covers is a page, not a 400: the answer
// covers the range's start, says truncated, and names the rest (next, and
// a Link header); a range of more buckets than one answer holds likewise;
// from at or after to is the empty range. Before, each was a 400 that a
// client generated from the document could not foresee (issue 26: eight
// schema-valid requests refused, all of them ranges).
func TestLongRangesArePagedNotRefused(t *testing.T) {
	h := &fakeHistory{}
	_, e := newTestServer(t, DefaultLiveConfig(), WithHistory(h))
	var v VitalsHistory
	code, body, hdr := get(t, e, "/v1/patients/P1/vitals?from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z")
	if code != 200 || json.Unmarshal(body, &v) != nil || !v.Truncated || !v.To.Equal(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)) ||
		v.Next != "from=2026-01-02T00%3A00%3A00Z&to=2026-01-03T00%3A00%3A00Z" || !strings.Contains(hdr.Get("Link"), `rel="next"`) {
		t.Fatalf("two days of raw readings: %d %s %q", code, body, hdr.Get("Link"))
	}
	if q := h.vq[len(h.vq)-1]; !q.To.Equal(v.To) {
		t.Fatalf("ClickHouse asked to %v, want the page's end %v", q.To, v.To)
	}
	code, body, _ = get(t, e, "/v1/patients/P1/vitals?step=1m&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z")
	if code != 200 || json.Unmarshal(body, &v) != nil || !v.Truncated || v.To.Sub(v.From) != MaxBuckets*time.Minute || v.Step != "1m0s" {
		t.Fatalf("a month of 1-minute buckets: %d %s", code, body)
	}
	var a AlertsHistory
	code, body, _ = get(t, e, "/v1/patients/P1/alerts?from=2000-01-01T00:00:00Z&limit=1000")
	if code != 200 || json.Unmarshal(body, &a) != nil || !a.Truncated || a.To.Sub(a.From) != MaxStepRange || a.Next == "" {
		t.Fatalf("26 years of alerts: %d %s", code, body)
	}
	asked := len(h.vq)
	code, body, _ = get(t, e, "/v1/patients/P1/vitals?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z")
	if code != 200 || json.Unmarshal(body, &v) != nil || v.Truncated || len(v.Series) != 0 || len(h.vq) != asked {
		t.Fatalf("from after to: %d %s (ClickHouse asked %d times more)", code, body, len(h.vq)-asked)
	}
}
