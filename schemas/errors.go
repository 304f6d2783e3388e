package schemas

import (
	"strconv"
	"strings"
)

// FieldError is one problem with one item of a batch. Index is the item's
// position in the request (0-based); Field is its JSON name, or "" when the
// item as a whole is unreadable.
type FieldError struct {
	Index  int    `json:"index"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

func (e FieldError) Error() string {
	var b strings.Builder
	b.WriteString("item ")
	b.WriteString(strconv.Itoa(e.Index))
	if e.Field != "" {
		b.WriteString(" field ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// BatchError lists every problem of a rejected batch, so a client can fix
// them all in one round trip.
type BatchError struct {
	Items []FieldError
}

func (e *BatchError) Error() string {
	if len(e.Items) == 1 {
		return "invalid reading: " + e.Items[0].Error()
	}
	return strconv.Itoa(len(e.Items)) + " problems, first: " + e.Items[0].Error()
}

func quote(s string) string { return strconv.Quote(s) }

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
