package schemas

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// FieldError is one problem with one item of a batch. Index is the item's
// position in the request (0-based); Line, in an NDJSON body, is the
// item's line (1-based; blank lines count); Field is its JSON name, or ""
// when the item as a whole is unreadable.
type FieldError struct {
	Index  int    `json:"index"`
	Line   int    `json:"line,omitempty"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

func (e FieldError) Error() string {
	var b strings.Builder
	b.WriteString("item ")
	b.WriteString(strconv.Itoa(e.Index))
	if e.Line > 0 {
		b.WriteString(" (line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(")")
	}
	if e.Field != "" {
		b.WriteString(" field ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// MaxListedProblems bounds the problems a BatchError lists: a small body
// of many bad items must not buy a large answer (10,000 empty objects, 30
// KB, once got 3.77 MB of problems back).
const MaxListedProblems = 100

// BatchError lists the problems of a rejected batch, so a client can fix
// them in one round trip: the first MaxListedProblems of them, and how
// many more there are.
type BatchError struct {
	Items []FieldError
	// More counts the problems found beyond Items.
	More int
}

func (e *BatchError) add(fe FieldError) {
	if len(e.Items) < MaxListedProblems {
		e.Items = append(e.Items, fe)
		return
	}
	e.More++
}

// Total is the number of problems found.
func (e *BatchError) Total() int { return len(e.Items) + e.More }

func (e *BatchError) Error() string {
	if e.Total() == 1 {
		return "invalid reading: " + e.Items[0].Error()
	}
	return strconv.Itoa(e.Total()) + " problems, first: " + e.Items[0].Error()
}

// maxEcho bounds how much of a client's value a problem repeats.
const maxEcho = 64

// truncate cuts s to maxEcho bytes (on a rune boundary), saying how long
// it was.
func truncate(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// Quote quotes a client's value for a problem or a log, truncated: every
// echo of what a client sent goes through it, so a large value never
// buys a large answer.
func Quote(s string) string { return strconv.Quote(truncate(s)) }

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func floatList(fs []float64) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = ftoa(f)
	}
	return strings.Join(parts, " or ")
}

func kindList() string {
	parts := make([]string, len(Specs))
	for i, s := range Specs {
		parts[i] = string(s.Kind)
	}
	return strings.Join(parts, ", ")
}
