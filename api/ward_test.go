package api

import (
	"bufio"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

// applyAlert applies a as the live view reads it from the alerts topic.
func applyAlert(t *testing.T, l *Live, a schemas.Alert) {
	t.Helper()
	rec, err := schemas.AlertRecord("alerts.v1", &a)
	if err != nil {
		t.Fatal(err)
	}
	rec.Timestamp = a.TS
	l.apply(rec)
}

// Every reader of the API filters by ward: open alarms (where the patient
// is now), alert events (where the patient was), the live stream
// (alarms, readings and placements of the ward) and the alarm summary
// (where an alarm was raised); a transfer moves an open alarm from one
// ward to the other, and an alarm resolved after its move (by an event
// stamped before the move) is not open. Before, GET /v1/alarms?ward=demo
// gave nothing for a ward the rules file did not name, /v1/alerts and
// /v1/stream had no ?ward=, and the summary put such alarms under "".
func TestEveryReaderFiltersByWard(t *testing.T) {
	live, e, _ := newAlarmServer(t, nil)
	placeIn(t, live, "P1", "demo", "1")
	placeIn(t, live, "P2", "icu", "3")
	demo := bufio.NewReader(openStream(t, e, "/v1/stream?ward=demo").Body)
	demo.ReadString('\n')

	t0 := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	a1 := schemas.Alert{AlertID: idA, PatientID: "P1", Condition: "spo2_low", Priority: schemas.Medium, State: schemas.Raised, TS: t0,
		Limit: 90, Message: "m", Reading: reading("P1", schemas.SpO2, 88, t0), Ward: "demo", Bed: "1"}
	a2 := schemas.Alert{AlertID: idB, PatientID: "P2", Condition: "heart_rate_high", Priority: schemas.High, State: schemas.Raised, TS: t0,
		Limit: 120, Message: "m", Reading: reading("P2", schemas.HeartRate, 150, t0), Ward: "icu", Bed: "3"}
	applyAlert(t, live, a2)
	applyAlert(t, live, a1)
	feedReading(t, live, reading("P2", schemas.HeartRate, 151, t0), t0)
	feedReading(t, live, reading("P1", schemas.SpO2, 87, t0), t0)

	got := readEvents(t, demo, 2)
	slices.SortFunc(got, func(a, b sse) int { return strings.Compare(a.typ, b.typ) })
	if got[0].typ != "alert" || !strings.Contains(got[0].data, idA) || got[1].typ != "vital" || !strings.Contains(got[1].data, `"P1"`) {
		t.Fatalf("ward demo's stream: %+v", got)
	}

	open := func(query string) []OpenAlarm {
		t.Helper()
		code, body, _ := get(t, e, "/v1/alarms"+query)
		var out OpenAlarms
		if code != 200 || json.Unmarshal(body, &out) != nil {
			t.Fatalf("%s: %d %s", query, code, body)
		}
		return out.Alarms
	}
	events := func(query string) []schemas.Alert {
		t.Helper()
		code, body, _ := get(t, e, "/v1/alerts"+query)
		var out struct{ Alerts []schemas.Alert }
		if code != 200 || json.Unmarshal(body, &out) != nil {
			t.Fatalf("%s: %d %s", query, code, body)
		}
		return out.Alerts
	}
	if o := open("?ward=demo"); len(o) != 1 || o[0].AlertID != idA || o[0].Ward != "demo" || o[0].Bed != "1" {
		t.Fatalf("ward demo's open alarms: %+v", o)
	}
	if ev := events("?ward=icu"); len(ev) != 1 || ev[0].AlertID != idB {
		t.Fatalf("ward icu's alert events: %+v", ev)
	}

	// P1 moves to the icu, bed 7: the placement, then the processor's move.
	placeIn(t, live, "P1", "icu", "7")
	moved := a1
	moved.TS, moved.Updated, moved.Ward, moved.Bed = t0.Add(30*time.Second), true, "icu", "7"
	applyAlert(t, live, moved)
	if got := readEvents(t, demo, 1); got[0].typ != "placement" || !strings.Contains(got[0].data, `"icu"`) {
		t.Fatalf("ward demo's stream did not see its patient leave: %+v", got)
	}
	if o := open("?ward=demo"); len(o) != 0 {
		t.Fatalf("ward demo still lists the alarm of a patient moved away: %+v", o)
	}
	if o := open("?ward=icu"); len(o) != 2 || o[1].AlertID != idA || o[1].Ward != "icu" || o[1].Bed != "7" {
		t.Fatalf("ward icu's open alarms after the transfer: %+v", o)
	}
	if ev := events("?ward=demo"); len(ev) != 1 || ev[0].AlertID != idA || ev[0].Updated {
		t.Fatalf("ward demo's alert events (the raise made there): %+v", ev)
	}

	// A resolution stamped before the move, made after it.
	resolved := a1
	resolved.State, resolved.TS, resolved.Ward, resolved.Bed = schemas.Resolved, t0.Add(20*time.Second), "icu", "7"
	applyAlert(t, live, resolved)
	if o := open("?patient=P1"); len(o) != 0 {
		t.Fatalf("an alarm resolved after its move is listed open: %+v", o)
	}

	code, body, _ := get(t, e, "/v1/alarms/summary")
	var sum AlarmSummary
	if code != 200 || json.Unmarshal(body, &sum) != nil || sum.ByWard["demo"] != 1 || sum.ByWard["icu"] != 1 || len(sum.ByWard) != 2 {
		t.Fatalf("the summary by ward (where each alarm was raised): %d %s", code, body)
	}
}
