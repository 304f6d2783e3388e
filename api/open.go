package api

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/monitorme/monitorme/schemas"
)

// OpenAlarm is one alert in its current state: the latest of its events,
// when it was raised, and where the patient is now: the latest placement
// the view read, else the ward and bed of the alert's latest event (a
// patient never placed, or discharged). GET /v1/alerts lists events (an
// alert up to four times); a station screen wants this.
type OpenAlarm struct {
	schemas.Alert
	RaisedAt time.Time `json:"raised_at"`
	Ward     string    `json:"ward"`
	Bed      string    `json:"bed"`
}

// OpenAlarms is the body of GET /v1/alarms.
type OpenAlarms struct {
	Alarms []OpenAlarm `json:"alarms"`
	// NextCursor, when set, fetches the next page (?cursor=).
	NextCursor string `json:"next_cursor,omitempty"`
}

// MaxOpenAlarmsLimit bounds GET /v1/alarms?limit=.
const MaxOpenAlarmsLimit = 500

func priorityRank(p schemas.Priority) int {
	switch p {
	case schemas.High:
		return 0
	case schemas.Medium:
		return 1
	}
	return 2
}

// alarmKey orders the open alarms as a central station lists them: by
// priority, the unacknowledged first, then the longest waiting first.
// raised is in Unix milliseconds, so that a cursor is a short text the
// document's pattern describes whole: every cursor the pattern allows
// parses (before, a base64 text, refused unless this server made it).
type alarmKey struct {
	rank, acked int
	raised      int64
	id          string
}

func keyOf(a *OpenAlarm) alarmKey {
	acked := 0
	if a.State == schemas.Acknowledged {
		acked = 1
	}
	return alarmKey{priorityRank(a.Priority), acked, a.RaisedAt.UnixMilli(), a.AlertID}
}

func (k alarmKey) compare(o alarmKey) int {
	return cmp.Or(cmp.Compare(k.rank, o.rank), cmp.Compare(k.acked, o.acked), cmp.Compare(k.raised, o.raised), cmp.Compare(k.id, o.id))
}

// cursor is rank.acked.raised.id, as the document's pattern says:
// ^[0-2]\.[01]\.-?[0-9]{1,15}\.[0-9a-f]{32}$.
func (k alarmKey) cursor() string {
	return fmt.Sprintf("%d.%d.%d.%s", k.rank, k.acked, k.raised, k.id)
}

func parseCursor(s string) (alarmKey, bool) {
	parts := strings.SplitN(s, ".", 4)
	if len(parts) != 4 || len(parts[2]) > 16 {
		return alarmKey{}, false
	}
	var k alarmKey
	var e1, e2, e3 error
	k.rank, e1 = strconv.Atoi(parts[0])
	k.acked, e2 = strconv.Atoi(parts[1])
	k.raised, e3 = strconv.ParseInt(parts[2], 10, 64)
	k.id = parts[3]
	return k, e1 == nil && e2 == nil && e3 == nil && schemas.IsAlertID(k.id)
}

func (s *Server) openAlarms(c echo.Context) error {
	var problems []schemas.FieldError
	q := c.QueryParams()
	ward, priority, state, patient := q.Get("ward"), q.Get("priority"), q.Get("state"), q.Get("patient")
	if priority != "" && priority != "high" && priority != "medium" && priority != "low" {
		problems = append(problems, schemas.FieldError{Field: "priority", Reason: "want high, medium or low, got " + schemas.Quote(priority)})
	}
	open := []schemas.State{schemas.Raised, schemas.Escalated, schemas.Acknowledged, schemas.ResolvedUnacknowledged}
	if state != "" && !slices.Contains(open, schemas.State(state)) {
		problems = append(problems, schemas.FieldError{Field: "state", Reason: "want raised, escalated, acknowledged or resolved-unacknowledged (an open alarm's states), got " + schemas.Quote(state)})
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxOpenAlarmsLimit {
			problems = append(problems, schemas.FieldError{Field: "limit", Reason: fmt.Sprintf("want 1 to %d, got %s", MaxOpenAlarmsLimit, schemas.Quote(v))})
		}
		limit = n
	}
	var after *alarmKey
	if v := q.Get("cursor"); v != "" {
		k, ok := parseCursor(v)
		if !ok {
			problems = append(problems, schemas.FieldError{Field: "cursor", Reason: "is not a cursor this API gave (next_cursor)"})
		}
		after = &k
	}
	if len(problems) > 0 {
		return badQuery(problems)
	}
	// The latest event of each alert, and its first. Latest is the last
	// the view read, not the one with the latest time: an alert's events
	// are in one partition, in the order the processor made them, and a
	// resolution may carry an earlier event time than a transfer's move
	// before it (taken by time, the alarm stayed open).
	byID := map[string]*OpenAlarm{}
	s.live.AlertEvents(time.Time{}, func(a *schemas.Alert) {
		if o, ok := byID[a.AlertID]; ok {
			raised := o.RaisedAt
			if a.TS.Before(raised) {
				raised = a.TS
			}
			o.Alert = *a
			o.RaisedAt = raised
			return
		}
		byID[a.AlertID] = &OpenAlarm{Alert: *a, RaisedAt: a.TS}
	})
	var rows []OpenAlarm
	for _, o := range byID {
		if !o.State.Open() || (patient != "" && o.PatientID != patient) || (priority != "" && string(o.Priority) != priority) ||
			(state != "" && string(o.State) != state) {
			continue
		}
		o.Ward, o.Bed = s.live.where(o.PatientID, &o.Alert)
		if ward != "" && o.Ward != ward {
			continue
		}
		if after != nil && keyOf(o).compare(*after) <= 0 {
			continue
		}
		rows = append(rows, *o)
	}
	slices.SortFunc(rows, func(a, b OpenAlarm) int { return keyOf(&a).compare(keyOf(&b)) })
	body := OpenAlarms{Alarms: rows}
	if len(rows) > limit {
		body.Alarms = rows[:limit]
		body.NextCursor = keyOf(&body.Alarms[limit-1]).cursor()
	}
	if body.Alarms == nil {
		body.Alarms = []OpenAlarm{}
	}
	return c.JSON(http.StatusOK, body)
}
