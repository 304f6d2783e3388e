// Package inspect reads MonitorMe's topics back as decoded events for
// developers: which records a range of offsets or of time holds, per
// partition, read_committed by default, filtered by patient (only that
// patient's partition is read), vital, condition and the like. It is what
// `monitorme tail` prints; it produces nothing and commits nothing.
package inspect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Bound is one end of a range, as rpk's -o takes it: the start or the end
// of the partition, an offset, N before the end, or a time.
type Bound struct {
	Kind   BoundKind
	Offset int64     // Exact: the offset; FromEnd: how many before the end
	Time   time.Time // AtTime
}

// BoundKind says which kind of Bound.
type BoundKind int

// The kinds of bounds.
const (
	Start BoundKind = iota
	End
	Exact
	FromEnd
	AtTime
)

// Range is where to start reading and where to stop; a zero To reads to
// the end as it is when reading starts (or on, with Follow).
type Range struct {
	From Bound
	To   *Bound
}

// ParseRange reads rpk's -o forms:
//
//	start | end | 47 | -3 | @<time> | @<time>:<time> | @<time>:end
//
// where a time is RFC 3339, a date (2026-12-01, UTC), unix milliseconds,
// or a duration before now (-1h, -30m).
func ParseRange(s string, now time.Time) (Range, error) {
	if s == "" {
		return Range{}, errors.New("offset: empty; want start, end, an offset, -N, or @<time>[:<time>]")
	}
	if strings.HasPrefix(s, "@") {
		from, to, hasTo := splitTimes(s[1:], now)
		f, err := parseTime(from, now)
		if err != nil {
			return Range{}, err
		}
		r := Range{From: Bound{Kind: AtTime, Time: f}}
		if hasTo {
			b := Bound{Kind: End}
			if to != "end" {
				t, _ := parseTime(to, now)
				if !t.After(f) {
					return Range{}, fmt.Errorf("offset %q: the range ends before it starts", s)
				}
				b = Bound{Kind: AtTime, Time: t}
			}
			r.To = &b
		}
		return r, nil
	}
	switch s {
	case "start", "oldest", "beginning":
		return Range{From: Bound{Kind: Start}}, nil
	case "end", "newest":
		return Range{From: Bound{Kind: End}}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return Range{}, fmt.Errorf("offset %q: want start, end, an offset, -N (N before the end), or @<time>[:<time>]", s)
	}
	if n < 0 {
		return Range{From: Bound{Kind: FromEnd, Offset: -n}}, nil
	}
	return Range{From: Bound{Kind: Exact, Offset: n}}, nil
}

// splitTimes splits "a:b" into two times (b may be "end" or start with
// '@'); an RFC 3339 time has colons of its own, so the cut is the colon
// with a whole time on each side. No such colon: s is one time.
func splitTimes(s string, now time.Time) (from, to string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] != ':' {
			continue
		}
		rest := strings.TrimPrefix(s[i+1:], "@")
		if _, err := parseTime(s[:i], now); err != nil {
			continue
		}
		if _, err := parseTime(rest, now); err == nil || rest == "end" {
			return s[:i], rest, true
		}
	}
	return s, "", false
}

// ParseTime reads a time as ParseRange does: RFC 3339, a date, unix
// milliseconds, or a duration before now (-1h).
func ParseTime(s string, now time.Time) (time.Time, error) { return parseTime(s, now) }

func parseTime(s string, now time.Time) (time.Time, error) {
	if strings.HasPrefix(s, "-") {
		d, err := time.ParseDuration(s[1:])
		if err == nil && d > 0 {
			return now.Add(-d), nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms > 0 {
		return time.UnixMilli(ms), nil
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2026-12-01T02:10:00Z), a date (2026-12-01), unix milliseconds, or a duration before now (-1h)", s)
}

// Offsets are where each partition's reading starts and ends (exclusive);
// an end of -1 means none (follow).
type Offsets map[int32][2]int64

// Resolve turns r into offsets for topic's partitions (all when parts is
// nil). committed says read_committed: the end is the last stable offset.
// It says so when the range starts before what the topic still holds.
func Resolve(ctx context.Context, adm *kadm.Client, topic string, parts []int32, r Range, committed, follow bool) (Offsets, error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("start offsets of %s: %w", topic, err)
	}
	endList := adm.ListEndOffsets
	if committed {
		endList = adm.ListCommittedOffsets
	}
	ends, err := endList(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	at := func(b Bound) (kadm.ListedOffsets, error) {
		// A record's timestamp is never before the Unix epoch, and a
		// negative one asks the broker another question (-1 the end,
		// -2 the start; others are an error): a time before 1970 is
		// the epoch. Before, an export to the year 1322 failed as
		// "the history store did not answer".
		l, err := adm.ListOffsetsAfterMilli(ctx, max(b.Time.UnixMilli(), 0), topic)
		if err == nil {
			err = l.Error()
		}
		return l, err
	}
	var fromT, toT kadm.ListedOffsets
	if r.From.Kind == AtTime {
		if fromT, err = at(r.From); err != nil {
			return nil, fmt.Errorf("offsets of %s at %s: %w", topic, r.From.Time.Format(time.RFC3339), err)
		}
	}
	if r.To != nil && r.To.Kind == AtTime {
		if toT, err = at(*r.To); err != nil {
			return nil, fmt.Errorf("offsets of %s at %s: %w", topic, r.To.Time.Format(time.RFC3339), err)
		}
	}
	out := Offsets{}
	var expired []int32
	starts.Each(func(lo kadm.ListedOffset) {
		p := lo.Partition
		if parts != nil && !slices.Contains(parts, p) {
			return
		}
		first, end := lo.Offset, ends[topic][p].Offset
		var from int64
		switch r.From.Kind {
		case Start:
			from = first
		case End:
			from = end
		case Exact:
			from = r.From.Offset
			if from < first {
				expired = append(expired, p)
				from = first
			}
		case FromEnd:
			from = max(first, end-r.From.Offset)
		case AtTime:
			from = fromT[topic][p].Offset
			if from < 0 { // no record at or after the time
				from = end
			}
		}
		to := end
		switch {
		case r.To != nil && r.To.Kind == AtTime:
			if o := toT[topic][p].Offset; o >= 0 {
				to = min(o, end)
			}
		case r.To == nil && follow:
			to = -1
		}
		if r.From.Kind == AtTime && first > 0 && from == first {
			// The first record the topic holds is at or after the
			// time asked: older ones may have been deleted.
			expired = append(expired, p)
		}
		out[p] = [2]int64{from, to}
	})
	if len(expired) > 0 {
		return out, &ExpiredError{Topic: topic, Partitions: expired}
	}
	return out, nil
}

// ExpiredError says that a range starts before what the topic still
// holds: retention deleted the older records.
type ExpiredError struct {
	Topic      string
	Partitions []int32
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("%s: partitions %v no longer hold the start of the range (retention deleted older records)", e.Topic, e.Partitions)
}
