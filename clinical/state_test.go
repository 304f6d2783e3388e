package clinical

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

// A snapshot encodes times as Unix nanoseconds; snapshots written before,
// with RFC 3339 times (and before Latest became an array), decode to the
// same state, and the new form is smaller.
func TestSnapshotsOldAndNewDecodeAlike(t *testing.T) {
	at := time.Date(2026, 11, 22, 9, 0, 0, 123456789, time.UTC)
	var v Vitals
	v.Set(schemas.SpO2, Sample{Value: 88.5, TS: at, At: at.Add(time.Second).Truncate(time.Millisecond), Gap: time.Second, Device: "D1", Seq: 7})
	v.Set(schemas.HeartRate, Sample{Value: 130, TS: at, Device: "D1", Seq: 8})
	v.Set(schemas.Consciousness, Sample{Value: 0, TS: at.Add(-time.Minute)})
	old := `{"latest":{"consciousness":{"v":0,"ts":"2026-11-22T08:59:00.123456789Z"},` +
		`"heart_rate":{"v":130,"ts":"2026-11-22T09:00:00.123456789Z","d":"D1","s":8},` +
		`"spo2":{"v":88.5,"ts":"2026-11-22T09:00:00.123456789Z","at":"2026-11-22T09:00:01.123Z","g":1000000000,"d":"D1","s":7}},"news2":{}}`
	var back PatientState
	if err := json.Unmarshal([]byte(old), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Latest, v) {
		t.Fatalf("old snapshot decoded %+v, want %+v", back.Latest, v)
	}
	got, err := json.Marshal(&PatientState{Latest: v})
	if err != nil {
		t.Fatal(err)
	}
	var again PatientState
	if err := json.Unmarshal(got, &again); err != nil || !reflect.DeepEqual(again.Latest, v) {
		t.Fatalf("%s decoded %+v %v", got, again.Latest, err)
	}
	if len(got) >= len(old) {
		t.Fatalf("the new form (%d bytes) is not smaller than the old (%d)", len(got), len(old))
	}
	if _, ok := again.Latest.Get(schemas.Glucose); ok {
		t.Fatal("an absent kind is present")
	}
	if err := json.Unmarshal([]byte(`{"latest":{"pulse":{"v":1,"tn":1}}}`), &back); err == nil {
		t.Error("a sample of an unknown kind decoded")
	}
}

// Whatever a changelog snapshot decodes to encodes back to a snapshot
// that decodes to the same state: a restore never changes a patient's
// state, whatever the record.
func FuzzPatientStateSnapshot(f *testing.F) {
	f.Add(`{"latest":{"spo2":{"v":88.5,"tn":1763802000000000000,"an":1763802001000000000,"g":1000000000,"d":"D1","s":7,"r":[0,88.5,1000000000,97]}},"news2":{},"seen":[["D1","spo2",7,127,1763802000000000000,1763802001000000000]]}`)
	f.Add(`{"latest":{"heart_rate":{"v":130,"ts":"2026-11-22T09:00:00.123456789Z","d":"D1","s":8}},"news2":{"at_least":["2026-11-22T09:00:00Z","0001-01-01T00:00:00Z","0001-01-01T00:00:00Z"]}}`)
	f.Add(`{"latest":{"spo2":{"v":1,"r":[1]}}}`)
	f.Add(`{"latest":{"spo2":{"v":1e-7,"tn":1,"d":"ox<1>&\u2028"}},"conditions":{"spo2_low":{"beyond_since":"2026-11-22T09:00:00+01:00","level":2,"escalated_at":"2026-11-22T09:00:00.5-07:30"},"z\u0001":{}},"news2":{"raised_at":"2026-11-22T09:00:00Z","clock":"2026-11-22T09:00:01Z"},"silenced_until":"9999-12-31T23:59:59Z","silenced_by":"nurse \"7\"","sat":{"sum":-0,"run":1e21,"ts":"0001-01-01T00:00:00Z"},"ward":"4B"}`)
	f.Add(`{"latest":{},"news2":{"open":{"alert_id":"a","patient_id":"P1","condition":"news2","state":"raised"}},"latched":[{"alert_id":"b","patient_id":"P<1>"}],"sat":{"ts":"2026-11-22T09:00:00+14:00"}}`)
	f.Fuzz(func(t *testing.T, snapshot string) {
		var st PatientState
		if json.Unmarshal([]byte(snapshot), &st) != nil {
			return
		}
		b, err := json.Marshal(&st)
		fast, ferr := AppendState(nil, &st)
		if (err == nil) != (ferr == nil) || string(b) != string(fast) {
			t.Fatalf("AppendState wrote %s (%v), json.Marshal %s (%v)", fast, ferr, b, err)
		}
		if err != nil {
			return // a value the engine never writes (NaN); refused, not corrupted
		}
		var again PatientState
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("re-decoding %s: %v", b, err)
		}
		b2, err := json.Marshal(&again)
		if err != nil || string(b) != string(b2) {
			t.Fatalf("not stable:\n%s\n%s\n%v", b, b2, err)
		}
	})
}
