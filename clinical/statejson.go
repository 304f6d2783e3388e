package clinical

// A patient's snapshot, encoded by hand: every patient a transaction
// changed is written to the changelog in it, and encoding/json (its
// reflection, and the compaction it runs over every MarshalJSON's output)
// was a fifth of the whole platform's CPU at 30,000 readings/s in the
// realistic benchmark's profile (docs/benchmarks.md).

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

// AppendState appends s as json.Marshal encodes it, byte for byte, so a
// snapshot reads the same whichever wrote it (TestStateEncodingAgrees,
// FuzzPatientStateSnapshot and every clinical engine test compare the
// two). A state with a time or number json.Marshal refuses takes
// json.Marshal itself, errors included.
func AppendState(dst []byte, s *PatientState) ([]byte, error) {
	if b, ok := appendStateFast(dst, s); ok {
		return b, nil
	}
	b, err := json.Marshal(s)
	return append(dst, b...), err
}

func appendStateFast(b []byte, s *PatientState) (_ []byte, ok bool) {
	b = append(b, `{"latest":`...)
	b, err := s.Latest.appendJSON(b)
	if err != nil {
		return b, false
	}
	if len(s.Conditions) > 0 {
		b = append(b, `,"conditions":{`...)
		for i, k := range slices.Sorted(maps.Keys(s.Conditions)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = schemas.AppendString(b, k)
			b = append(b, `:{`...)
			cs := s.Conditions[k]
			if b, ok = appendCondition(b, &cs, false); !ok {
				return b, false
			}
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	b = append(b, `,"news2":{`...)
	start := len(b)
	if b, ok = appendCondition(b, &s.NEWS2.ConditionState, false); !ok {
		return b, false
	}
	n := len(b) > start // a member written: the next needs a comma
	if s.NEWS2.AtLeast != [3]time.Time{} {
		if n {
			b = append(b, ',')
		}
		b = append(b, `"at_least":[`...)
		for i, t := range s.NEWS2.AtLeast {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = schemas.AppendTime(b, t); !ok {
				return b, false
			}
		}
		b = append(b, ']')
		n = true
	}
	if !s.NEWS2.Clock.IsZero() {
		if n {
			b = append(b, ',')
		}
		b = append(b, `"clock":`...)
		if b, ok = schemas.AppendTime(b, s.NEWS2.Clock); !ok {
			return b, false
		}
		n = true
	}
	if !s.NEWS2.ClockAt.IsZero() {
		if n {
			b = append(b, ',')
		}
		b = append(b, `"clock_at":`...)
		if b, ok = schemas.AppendTime(b, s.NEWS2.ClockAt); !ok {
			return b, false
		}
		n = true
	}
	if s.NEWS2.Pending {
		if n {
			b = append(b, ',')
		}
		b = append(b, `"pending":true`...)
	}
	b = append(b, '}')
	if len(s.Seen) > 0 {
		b = append(b, `,"seen":[`...)
		for i := range s.Seen {
			if i > 0 {
				b = append(b, ',')
			}
			b = s.Seen[i].appendJSON(b)
		}
		b = append(b, ']')
	}
	if len(s.Latched) > 0 {
		b = append(b, `,"latched":[`...)
		for i := range s.Latched {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = schemas.AppendAlert(b, &s.Latched[i]); err != nil {
				return b, false
			}
		}
		b = append(b, ']')
	}
	if !s.SilencedUntil.IsZero() {
		b = append(b, `,"silenced_until":`...)
		if b, ok = schemas.AppendTime(b, s.SilencedUntil); !ok {
			return b, false
		}
	}
	if s.SilencedBy != "" {
		b = append(b, `,"silenced_by":`...)
		b = schemas.AppendString(b, s.SilencedBy)
	}
	// omitzero on a struct without IsZero: every field its zero value,
	// bit for bit (a -0 sum is not zero, a time in another location is
	// not either).
	if math.Float64bits(s.Sat.Sum) != 0 || math.Float64bits(s.Sat.Run) != 0 || s.Sat.TS != (time.Time{}) {
		b = append(b, `,"sat":{`...)
		n := false
		for _, f := range [...]struct {
			name string
			v    float64
		}{{`"sum":`, s.Sat.Sum}, {`"run":`, s.Sat.Run}} {
			if f.v == 0 { // omitempty
				continue
			}
			if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
				return b, false
			}
			if n {
				b = append(b, ',')
			}
			b = append(b, f.name...)
			b = schemas.AppendFloat(b, f.v)
			n = true
		}
		if !s.Sat.TS.IsZero() {
			if n {
				b = append(b, ',')
			}
			b = append(b, `"ts":`...)
			if b, ok = schemas.AppendTime(b, s.Sat.TS); !ok {
				return b, false
			}
		}
		b = append(b, '}')
	}
	if s.Ward != "" {
		b = append(b, `,"ward":`...)
		b = schemas.AppendString(b, s.Ward)
	}
	if s.Bed != "" {
		b = append(b, `,"bed":`...)
		b = schemas.AppendString(b, s.Bed)
	}
	return append(b, '}'), true
}

// appendCondition appends c's fields, without braces, as the members of
// an object; comma says whether a member comes before them.
func appendCondition(b []byte, c *ConditionState, comma bool) (_ []byte, ok bool) {
	sep := func() {
		if comma {
			b = append(b, ',')
		}
		comma = true
	}
	// member appends `"key":time` for a time that is set (omitzero).
	member := func(key string, t time.Time) bool {
		if t.IsZero() {
			return true
		}
		sep()
		b = append(b, '"')
		b = append(b, key...)
		b = append(b, `":`...)
		b, ok = schemas.AppendTime(b, t)
		return ok
	}
	if !member("beyond_since", c.BeyondSince) {
		return b, false
	}
	if c.Open != nil {
		sep()
		b = append(b, `"open":`...)
		var err error
		if b, err = schemas.AppendAlert(b, c.Open); err != nil {
			return b, false
		}
	}
	if !member("in_range_since", c.InRangeSince) || !member("raised_at", c.RaisedAt) {
		return b, false
	}
	if c.Level != 0 {
		sep()
		b = append(b, `"level":`...)
		b = strconv.AppendInt(b, int64(c.Level), 10)
	}
	ok = member("escalated_at", c.EscalatedAt) && member("closed", c.Closed) && member("head", c.Head) && member("head_at", c.HeadAt)
	return b, ok
}
