package inspect

import (
	"strings"
	"testing"
	"time"
)

func TestParseRange(t *testing.T) {
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	t1 := time.Date(2026, 12, 1, 2, 10, 0, 0, time.UTC)
	t2 := time.Date(2026, 12, 1, 2, 40, 0, 0, time.UTC)
	for _, tc := range []struct {
		in       string
		from     Bound
		to       *Bound
		contains string
	}{
		{in: "start", from: Bound{Kind: Start}},
		{in: "end", from: Bound{Kind: End}},
		{in: "47", from: Bound{Kind: Exact, Offset: 47}},
		{in: "-3", from: Bound{Kind: FromEnd, Offset: 3}},
		{in: "@2026-12-01T02:10:00Z", from: Bound{Kind: AtTime, Time: t1}},
		{in: "@2026-12-01T02:10:00Z:2026-12-01T02:40:00Z", from: Bound{Kind: AtTime, Time: t1}, to: &Bound{Kind: AtTime, Time: t2}},
		{in: "@2026-12-01T02:10:00Z:@2026-12-01T02:40:00Z", from: Bound{Kind: AtTime, Time: t1}, to: &Bound{Kind: AtTime, Time: t2}},
		{in: "@2026-12-01T02:10:00Z:end", from: Bound{Kind: AtTime, Time: t1}, to: &Bound{Kind: End}},
		{in: "@-1h", from: Bound{Kind: AtTime, Time: now.Add(-time.Hour)}},
		{in: "@-50m:-20m", from: Bound{Kind: AtTime, Time: t1}, to: &Bound{Kind: AtTime, Time: t2}},
		{in: "@2026-12-01", from: Bound{Kind: AtTime, Time: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}},
		{in: "@1764555000000", from: Bound{Kind: AtTime, Time: time.UnixMilli(1764555000000)}},
		{in: "", contains: "empty"},
		{in: "latest", contains: "want start, end"},
		{in: "@yesterday", contains: "RFC 3339"},
		{in: "@-20m:-50m", contains: "ends before it starts"},
	} {
		r, err := ParseRange(tc.in, now)
		if tc.contains != "" {
			if err == nil || !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("%q: %v, want an error naming %q", tc.in, err, tc.contains)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if r.From.Kind != tc.from.Kind || r.From.Offset != tc.from.Offset || !r.From.Time.Equal(tc.from.Time) {
			t.Errorf("%q: from %+v, want %+v", tc.in, r.From, tc.from)
		}
		if (r.To == nil) != (tc.to == nil) || (r.To != nil && (r.To.Kind != tc.to.Kind || !r.To.Time.Equal(tc.to.Time))) {
			t.Errorf("%q: to %+v, want %+v", tc.in, r.To, tc.to)
		}
	}
}
