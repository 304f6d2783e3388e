package inspect

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

// Change is one alarm episode that differs between two runs, matched by
// patient and condition: present in both at the same moment (same),
// moved in time (shifted), raised at the same moment but going on
// otherwise (changed: its escalations, resolution, updates or messages
// differ, and Detail says the first difference), only in the second run
// (added), or only in the first (removed). An episode starts with a
// raised event. Before (issue 27), only raised events were compared: a
// replay that resolved or escalated differently was "the same".
type Change struct {
	Kind      string        `json:"kind"`
	Patient   string        `json:"patient_id"`
	Condition string        `json:"condition"`
	Ward      string        `json:"ward,omitempty"`
	Priority  string        `json:"priority"`
	Before    time.Time     `json:"before,omitzero"`
	After     time.Time     `json:"after,omitzero"`
	Shift     time.Duration `json:"shift_ns,omitempty"`
	Detail    string        `json:"detail,omitempty"`
}

// Diff compares two runs' alarms.
type Diff struct {
	Before, After string // what each run is: "recorded alerts.v1", "rules x.yaml"
	Changes       []Change
	Same          int
	// BurdenBefore and BurdenAfter count alarms per ward, and per hour
	// (UTC, "2006-01-02T15").
	BurdenBefore, BurdenAfter map[string]int
	HourBefore, HourAfter     map[string]int
	// TimeToAlarmChange is the median change in time to alarm over the
	// episodes in both runs (the same ones count 0): negative, the second
	// run alarms earlier.
	TimeToAlarmChange time.Duration
	matched           int
}

// Differs says whether the runs differ.
func (d Diff) Differs() bool { return len(d.Changes) > 0 }

// Compare matches before's and after's raised events per patient and
// condition, the nearest within tolerance first.
func Compare(before, after []schemas.Alert, ward func(string) string, tolerance time.Duration) Diff {
	d := Diff{BurdenBefore: map[string]int{}, BurdenAfter: map[string]int{}, HourBefore: map[string]int{}, HourAfter: map[string]int{}}
	type key struct{ patient, condition string }
	group := func(as []schemas.Alert, burden, hours map[string]int) map[key][]schemas.Alert {
		g := map[key][]schemas.Alert{}
		for _, a := range as {
			if a.State != schemas.Raised || a.Updated {
				continue
			}
			k := key{a.PatientID, a.Condition}
			g[k] = append(g[k], a)
			burden[ward(a.PatientID)]++
			hours[a.TS.UTC().Format("2006-01-02T15")]++
		}
		for _, v := range g {
			slices.SortFunc(v, func(x, y schemas.Alert) int { return x.TS.Compare(y.TS) })
		}
		return g
	}
	b := group(before, d.BurdenBefore, d.HourBefore)
	a := group(after, d.BurdenAfter, d.HourAfter)
	// An episode's events after its raise, compared up to the last event
	// time both runs reach (a run that stops earlier has not yet made the
	// other's later events).
	cutoff := lastTS(before)
	if t := lastTS(after); t.Before(cutoff) {
		cutoff = t
	}
	story := func(as []schemas.Alert) map[string][]string {
		m := map[string][]string{}
		for _, x := range as {
			if x.State == schemas.Raised && !x.Updated || x.TS.After(cutoff) {
				continue
			}
			m[x.AlertID] = append(m[x.AlertID], fmt.Sprintf("%s at %s (priority %s, escalation %d%s): %s", x.State, stamp(x.TS), x.Priority, x.EscalationLevel, updatedNote(x), x.Message))
		}
		return m
	}
	storyB, storyA := story(before), story(after)
	var shifts []time.Duration
	keys := map[key]bool{}
	for k := range b {
		keys[k] = true
	}
	for k := range a {
		keys[k] = true
	}
	for _, k := range slices.SortedFunc(maps.Keys(keys), func(x, y key) int {
		return cmp.Or(cmp.Compare(x.patient, y.patient), cmp.Compare(x.condition, y.condition))
	}) {
		used := make([]bool, len(a[k]))
		for _, x := range b[k] {
			best := -1
			for i, y := range a[k] {
				if used[i] || absDur(y.TS.Sub(x.TS)) > tolerance {
					continue
				}
				if best < 0 || absDur(y.TS.Sub(x.TS)) < absDur(a[k][best].TS.Sub(x.TS)) {
					best = i
				}
			}
			c := Change{Patient: k.patient, Condition: k.condition, Ward: ward(k.patient), Priority: string(x.Priority), Before: x.TS}
			if best < 0 {
				c.Kind = "removed"
				d.Changes = append(d.Changes, c)
				continue
			}
			used[best] = true
			y := a[k][best]
			shifts = append(shifts, y.TS.Sub(x.TS))
			if y.TS.Equal(x.TS) && y.Priority == x.Priority {
				if diff := firstDifference(storyB[x.AlertID], storyA[y.AlertID]); diff != "" {
					c.Kind, c.After, c.Detail = "changed", y.TS, diff
					d.Changes = append(d.Changes, c)
					continue
				}
				d.Same++
				continue
			}
			c.Kind, c.After, c.Shift, c.Priority = "shifted", y.TS, y.TS.Sub(x.TS), string(y.Priority)
			d.Changes = append(d.Changes, c)
		}
		for i, y := range a[k] {
			if !used[i] {
				d.Changes = append(d.Changes, Change{Kind: "added", Patient: k.patient, Condition: k.condition, Ward: ward(k.patient), Priority: string(y.Priority), After: y.TS})
			}
		}
	}
	d.TimeToAlarmChange, d.matched = median(shifts), len(shifts)
	return d
}

func lastTS(as []schemas.Alert) time.Time {
	var t time.Time
	for _, a := range as {
		if a.TS.After(t) {
			t = a.TS
		}
	}
	return t
}

func updatedNote(a schemas.Alert) string {
	if a.Updated {
		return ", updated"
	}
	return ""
}

// firstDifference words the first event where two episodes' stories part,
// or "" when they are the same.
func firstDifference(before, after []string) string {
	for i := range max(len(before), len(after)) {
		switch {
		case i >= len(before):
			return "only the second run: " + after[i]
		case i >= len(after):
			return "only the first run: " + before[i]
		case before[i] != after[i]:
			return "first run: " + before[i] + "; second run: " + after[i]
		}
	}
	return ""
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func (d Diff) count(kind string) int {
	n := 0
	for _, c := range d.Changes {
		if c.Kind == kind {
			n++
		}
	}
	return n
}

// Write prints the diff as a readable report (text), markdown, or jsonl
// (one change a line, then a summary line).
func (d Diff) Write(w io.Writer, format string) error {
	switch format {
	case "jsonl":
		enc := json.NewEncoder(w)
		for _, c := range d.Changes {
			if err := enc.Encode(c); err != nil {
				return err
			}
		}
		return enc.Encode(map[string]any{"summary": true, "before": d.Before, "after": d.After, "same": d.Same, "added": d.count("added"),
			"removed": d.count("removed"), "shifted": d.count("shifted"), "changed": d.count("changed"), "burden_before": d.BurdenBefore, "burden_after": d.BurdenAfter,
			"by_hour_before": d.HourBefore, "by_hour_after": d.HourAfter,
			"time_to_alarm_change_ms": d.TimeToAlarmChange.Milliseconds(), "episodes_in_both": d.matched})
	case "markdown", "text":
	default:
		return fmt.Errorf("format %q: want text, markdown or jsonl", format)
	}
	md := format == "markdown"
	h := func(s string) {
		if md {
			fmt.Fprintf(w, "\n## %s\n\n", s)
		} else {
			fmt.Fprintf(w, "\n%s\n%s\n", s, strings.Repeat("-", len(s)))
		}
	}
	row := func(cells ...string) {
		if md {
			fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
		} else {
			fmt.Fprintf(w, "  %-22s %-14s %-18s %-8s %-20s %-20s %s\n", toAny(cells)...)
		}
	}
	if md {
		fmt.Fprintf(w, "# Alarm diff: %s → %s\n", d.Before, d.After)
	} else {
		fmt.Fprintf(w, "Alarm diff: %s -> %s\n", d.Before, d.After)
	}
	fmt.Fprintf(w, "\n%d the same, %d added, %d removed, %d shifted, %d changed after the raise; median change in time to alarm %v over the %d episodes in both\n",
		d.Same, d.count("added"), d.count("removed"), d.count("shifted"), d.count("changed"), d.TimeToAlarmChange.Round(time.Millisecond), d.matched)
	if len(d.Changes) > 0 {
		h("Changes")
		row("change", "patient", "condition", "priority", "before", "after", "shift")
		if md {
			fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | ---: |")
		}
		for _, c := range d.Changes {
			row(c.Kind, c.Patient, c.Condition, c.Priority, stamp(c.Before), stamp(c.After), shift(c))
		}
	}
	h("Alarm burden per ward")
	burden(w, md, d.BurdenBefore, d.BurdenAfter)
	h("Alarm burden per hour (UTC)")
	burden(w, md, d.HourBefore, d.HourAfter)
	return nil
}

func burden(w io.Writer, md bool, before, after map[string]int) {
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	if md {
		fmt.Fprintln(w, "| | before | after |\n| --- | ---: | ---: |")
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		name := k
		if name == "" {
			name = "(no ward)"
		}
		if md {
			fmt.Fprintf(w, "| %s | %d | %d |\n", name, before[k], after[k])
		} else {
			fmt.Fprintf(w, "  %-22s %6d -> %d\n", name, before[k], after[k])
		}
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func shift(c Change) string {
	switch c.Kind {
	case "shifted":
		return fmt.Sprintf("%+v", c.Shift)
	case "changed":
		return c.Detail
	}
	return ""
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}
