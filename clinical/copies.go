package clinical

// Copies of readings: a gateway that got no answer resends the whole
// batch with the same identities (device_id, kind, seq), seconds or hours
// later. The engine applies each identity once, so a copy changes no state
// and emits nothing, and the memory of what it applied lives in the
// patient's changelogged state, so that holds across a restart too.

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

// seenBits is how many sequence numbers below the highest a window
// remembers, like an IPsec anti-replay window.
const seenBits = 64

// maxSeenWindows bounds a patient's windows (one per device and kind it
// sends): the least recently used goes first.
const maxSeenWindows = 16

// SeenWindow is which sequence numbers of one device's kind the engine
// applied: the highest, Hi, and a bitmap of the 63 below it (bit i is
// Hi−i). HiTS is the event time of the reading with Hi: a smaller
// sequence number with a later event time is a device that restarted its
// count, not a copy. At is the last arrival, for eviction.
type SeenWindow struct {
	Device string
	Kind   schemas.Kind
	Hi     uint64
	Mask   uint64
	HiTS   time.Time
	At     time.Time
}

// MarshalJSON writes the window as an array, compactly: every changed
// patient's state is written in every transaction.
func (w SeenWindow) MarshalJSON() ([]byte, error) { return w.appendJSON(make([]byte, 0, 80)), nil }

func (w *SeenWindow) appendJSON(b []byte) []byte {
	b = append(b, '[')
	b = schemas.AppendString(b, w.Device)
	b = append(b, ',')
	b = schemas.AppendString(b, string(w.Kind))
	for _, n := range [...]uint64{w.Hi, w.Mask, uint64(w.HiTS.UnixNano()), uint64(w.At.UnixNano())} {
		b = append(b, ',')
		b = strconv.AppendUint(b, n, 10)
	}
	return append(b, ']')
}

// UnmarshalJSON reads what MarshalJSON writes.
func (w *SeenWindow) UnmarshalJSON(b []byte) error {
	var a []json.RawMessage
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if len(a) != 6 {
		return fmt.Errorf("seen window: %d fields, want 6", len(a))
	}
	var kind string
	var n [4]uint64
	if err := json.Unmarshal(a[0], &w.Device); err != nil {
		return err
	}
	if err := json.Unmarshal(a[1], &kind); err != nil {
		return err
	}
	for i := range n {
		if err := json.Unmarshal(a[i+2], &n[i]); err != nil {
			return err
		}
	}
	w.Kind, w.Hi, w.Mask = schemas.Kind(kind), n[0], n[1]
	w.HiTS, w.At = time.Unix(0, int64(n[2])).UTC(), time.Unix(0, int64(n[3])).UTC()
	return nil
}

// seen records rd's identity, arrived at at, and reports whether the
// engine had applied it already. A sequence number more than seenBits
// below the highest, not newer in event time, counts as a copy: it is that
// far behind the device's newest, so late that no rule would act on it.
func (s *PatientState) seen(rd *schemas.Reading, at time.Time) bool {
	i := -1
	for j := range s.Seen {
		if s.Seen[j].Device == rd.DeviceID && s.Seen[j].Kind == rd.Kind {
			i = j
			break
		}
	}
	if i < 0 {
		if len(s.Seen) >= maxSeenWindows {
			oldest := 0
			for j := range s.Seen {
				if s.Seen[j].At.Before(s.Seen[oldest].At) {
					oldest = j
				}
			}
			s.Seen = append(s.Seen[:oldest], s.Seen[oldest+1:]...)
		}
		s.Seen = append(s.Seen, SeenWindow{Device: rd.DeviceID, Kind: rd.Kind, Hi: rd.Seq, Mask: 1, HiTS: rd.TS, At: at})
		return false
	}
	w := s.Seen[i]
	defer func() { s.Seen[i] = w }()
	if at.After(w.At) {
		w.At = at
	}
	switch {
	case rd.Seq > w.Hi:
		shift := rd.Seq - w.Hi
		if shift >= seenBits {
			w.Mask = 0
		} else {
			w.Mask <<= shift
		}
		w.Mask |= 1
		w.Hi, w.HiTS = rd.Seq, rd.TS
		return false
	case rd.TS.After(w.HiTS):
		// Counting again from a lower number with a later event time:
		// the device restarted its sequence. A new window.
		w.Hi, w.Mask, w.HiTS = rd.Seq, 1, rd.TS
		return false
	case w.Hi-rd.Seq >= seenBits:
		return true
	}
	bit := uint64(1) << (w.Hi - rd.Seq)
	if w.Mask&bit != 0 {
		return true
	}
	w.Mask |= bit
	return false
}
