package api

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/monitorme/monitorme/schemas"
)

// Placements posted through the API are written as patient-placement.v1;
// the live view groups the latest of each patient by ward and bed (beds
// in ward order), forgets a discharged patient, lists patients with
// readings and no placement, and refuses an admission elsewhere of a
// patient already admitted.
func TestPlacementsAndWards(t *testing.T) {
	live, e, acks := newAlarmServer(t, nil)
	for _, c := range []struct {
		body string
		code int
	}{
		{`{"event":"admit","ward":"icu","bed":"10","name":"A. B.","by":"adt"}`, http.StatusAccepted},
		{`{"event":"admit","ward":"icu"}`, http.StatusBadRequest},
		{`{"event":"discharge","ward":"icu","by":"adt"}`, http.StatusBadRequest},
		{`{"event":"move","ward":"icu","bed":"1","by":"adt"}`, http.StatusBadRequest},
		{`{"event":"admit","ward":"icu","bed":"10","extra":1,"by":"adt"}`, http.StatusBadRequest},
	} {
		if code, body := post(t, e, "/v1/patients/P1/placement", "application/json", c.body); code != c.code {
			t.Errorf("%s: %d %s, want %d", c.body, code, body, c.code)
		}
	}
	if len(acks.placements) != 1 || acks.placements[0].Ward != "icu" || acks.placements[0].By != "adt" || acks.placements[0].Auth != "none" {
		t.Fatalf("written %+v", acks.placements)
	}
	apply := func(p schemas.Placement, offset int64) {
		rec, err := schemas.PlacementRecord("alerting.placements.v1", &p)
		if err != nil {
			t.Fatal(err)
		}
		rec.Offset = offset
		live.applyPlacement(rec)
	}
	apply(acks.placements[0], 0)
	apply(schemas.Placement{PatientID: "P2", Event: schemas.Admit, Ward: "icu", Bed: "2", By: "adt", TS: t0}, 1)
	apply(schemas.Placement{PatientID: "P3", Event: schemas.Admit, Ward: "cardio", Bed: "1", By: "adt", TS: t0}, 2)
	apply(schemas.Placement{PatientID: "P3", Event: schemas.Discharge, By: "adt", TS: t0}, 3)
	feedReading(t, live, reading("P9", schemas.HeartRate, 70, t0), t0)
	if code, body := post(t, e, "/v1/patients/P1/placement", "application/json", `{"event":"admit","ward":"cardio","bed":"1","by":"adt"}`); code != http.StatusConflict {
		t.Errorf("admitting an admitted patient elsewhere: %d %s", code, body)
	}
	code, body, _ := get(t, e, "/v1/wards")
	if code != http.StatusOK {
		t.Fatalf("wards: %d %s", code, body)
	}
	var w Wards
	if err := json.Unmarshal(body, &w); err != nil {
		t.Fatal(err)
	}
	if len(w.Wards) != 1 || w.Wards[0].Ward != "icu" || len(w.Wards[0].Beds) != 2 || w.Wards[0].Beds[0].Bed != "2" || w.Wards[0].Beds[1].PatientID != "P1" ||
		w.Wards[0].Beds[1].Name != "A. B." || len(w.Unplaced) != 1 || w.Unplaced[0] != "P9" {
		t.Errorf("wards %s", body)
	}
}
