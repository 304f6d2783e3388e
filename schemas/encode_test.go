package schemas

import (
	"encoding/json"
	"testing"
	"time"
)

// AppendString writes every string as encoding/json does.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"b\`, "<a&b>", "\x00\b\f\n\r\t\x1f\x7f", "é\u2028\u2029", "\xff\xfe", "ok\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Fatalf("AppendString %s, json.Marshal %s", got, want)
		}
	})
}

// AppendAlert writes every alert as json.Marshal does, or fails as it
// does.
func FuzzAppendAlert(f *testing.F) {
	f.Add("a1", "P1", "spo2_critical", "high", "raised", int64(1763802000123456789), 0, 85.0, "SpO₂ 70 % < 85", "nurse-7", "4B", "", -1, "", 0, false, false)
	f.Add("a2", "P<1>", "news2", "medium", "escalated", int64(-62135596800000000), 3600, 1e-7, "", "", "", "rapid-response-team", 7, "resp_rate", 2, true, true)
	f.Add("a3", "P1", "x", "low", "resolved", int64(253402300800000000), -86400, 1e21, "\u2028", "\xff", "\x00", "n", 0, "", 0, false, false)
	f.Fuzz(func(t *testing.T, id, patient, cond, prio, state string, ns int64, offset int, limit float64, msg, ackedBy, ward, notify string,
		score int, comp string, level int, updated, silenced bool) {
		ts := time.Unix(0, ns).In(time.FixedZone("z", offset))
		a := Alert{AlertID: id, PatientID: patient, Condition: cond, Priority: Priority(prio), State: State(state), TS: ts, Limit: limit, Message: msg,
			Reading: Reading{PatientID: patient, DeviceID: ackedBy, Kind: SpO2, Value: limit, Unit: "%", TS: ts.UTC(), Seq: uint64(level)},
			AckedBy: ackedBy, Ward: ward, Bed: notify, Updated: updated, EscalationLevel: level, Notify: notify, Silenced: silenced}
		if score >= 0 {
			a.Score = &score
		}
		if comp != "" {
			a.Components = map[string]int{comp: score, comp + "<": level}
		}
		want, werr := json.Marshal(&a)
		got, err := AppendAlert(nil, &a)
		if (err == nil) != (werr == nil) || err == nil && string(got) != string(want) {
			t.Fatalf("AppendAlert %s %v, json.Marshal %s %v", got, err, want, werr)
		}
	})
}
