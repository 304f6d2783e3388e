package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/monitorme/monitorme/internal/web"
	"github.com/monitorme/monitorme/schemas"
	chschema "github.com/monitorme/monitorme/schemas/clickhouse"
)

// History is the store of past vitals and alerts: ClickHouse, through
// internal/warehouse.
type History interface {
	RawVitals(ctx context.Context, q chschema.VitalsQuery) ([]chschema.RawVital, error)
	VitalBuckets(ctx context.Context, q chschema.VitalsQuery) ([]chschema.VitalBucket, error)
	Alerts(ctx context.Context, q chschema.AlertsQuery) ([]schemas.Alert, error)
}

// WithHistory serves the history endpoints from h.
func WithHistory(h History) Option { return func(s *Server) { s.history = h } }

// Limits of the history endpoints: what a clinician's review of a day
// needs, and no query that scans a year of raw readings.
const (
	MaxRawRange      = 24 * time.Hour
	MaxStepRange     = 366 * 24 * time.Hour
	MinStep          = time.Minute
	MaxStep          = 24 * time.Hour
	MaxBuckets       = 10_000
	MaxHistoryLimit  = 100_000
	DefaultRawLimit  = 10_000
	DefaultAlertsMax = 1_000
	defaultRange     = 24 * time.Hour
)

// VitalsHistory is the body of GET /v1/patients/{id}/vitals.
type VitalsHistory struct {
	PatientID string    `json:"patient_id"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	// Step is empty for raw readings.
	Step string `json:"step,omitempty"`
	// Truncated says the answer is not the whole range asked for: the
	// limit cut it, or the range was longer than one answer covers (then
	// To is where it stops and Next asks for the rest).
	Truncated bool `json:"truncated"`
	// Next is the query string of the rest of the range, when To is
	// before the to asked for; also a Link header with rel="next".
	Next   string   `json:"next,omitempty"`
	Series []Series `json:"series"`
}

// Series is one vital's points, oldest first.
type Series struct {
	Kind    schemas.Kind `json:"kind"`
	Unit    string       `json:"unit"`
	Points  []RawPoint   `json:"points,omitempty"`
	Buckets []Bucket     `json:"buckets,omitempty"`
}

// RawPoint is one reading.
type RawPoint struct {
	TS       time.Time `json:"ts"`
	Value    float64   `json:"value"`
	DeviceID string    `json:"device_id"`
	Seq      uint64    `json:"seq"`
}

// Bucket summarises the readings of one step.
type Bucket struct {
	TS      time.Time `json:"ts"`
	Min     float64   `json:"min"`
	Avg     float64   `json:"avg"`
	Max     float64   `json:"max"`
	Samples uint64    `json:"samples"`
}

// AlertsHistory is the body of GET /v1/patients/{id}/alerts.
type AlertsHistory struct {
	PatientID string          `json:"patient_id"`
	From      time.Time       `json:"from"`
	To        time.Time       `json:"to"`
	Truncated bool            `json:"truncated"`
	Next      string          `json:"next,omitempty"`
	Alerts    []schemas.Alert `json:"alerts"`
}

// historyParams reads the parameters both endpoints share. Every problem
// is collected, so one answer names all of them.
type historyParams struct {
	problems []schemas.FieldError
	// rest is the to asked for when the range was longer than one answer
	// covers and window cut it; zero otherwise.
	rest time.Time
}

func (h *historyParams) bad(field, format string, args ...any) {
	h.problems = append(h.problems, schemas.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (h *historyParams) instant(c echo.Context, name string, def time.Time) time.Time {
	v := c.QueryParam(name)
	if v == "" {
		return def
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		h.bad(name, "is not an RFC 3339 time: %q", v)
		return def
	}
	return t.UTC()
}

// window reads from and to: by default the 24 hours before now. A range
// longer than maxRange is answered from its start for maxRange, and the
// answer says where the rest begins (next), as a page: before, it was a
// 400, which no client could foresee from the document (a range is two
// parameters; no schema relates them). A from at or after to is the
// empty range: the answer holds nothing.
func (h *historyParams) window(c echo.Context, maxRange time.Duration) (from, to time.Time) {
	to = h.instant(c, "to", time.Now().UTC())
	from = h.instant(c, "from", to.Add(-defaultRange))
	if from.Before(to) && to.Sub(from) > maxRange {
		h.rest, to = to, from.Add(maxRange)
	}
	return from, to
}

// next is the query of the rest of a range window cut, or "": the same
// query with from where this answer stopped and the to asked for. It is
// also sent as a Link header (RFC 8288), as a FHIR client expects.
func (h *historyParams) next(c echo.Context, to time.Time) string {
	if h.rest.IsZero() {
		return ""
	}
	q := c.QueryParams()
	n := url.Values{}
	for k, v := range q {
		n[k] = v
	}
	n.Set("from", to.UTC().Format(time.RFC3339Nano))
	n.Set("to", h.rest.UTC().Format(time.RFC3339Nano))
	qs := n.Encode()
	c.Response().Header().Add("Link", "<"+c.Request().URL.Path+"?"+qs+`>; rel="next"`)
	return qs
}

// empty says the range holds nothing to ask the store for.
func empty(from, to time.Time) bool { return !from.Before(to) }

func (h *historyParams) limit(c echo.Context, def int) int {
	v := c.QueryParam("limit")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxHistoryLimit {
		h.bad("limit", "must be an integer from 1 to %d, got %q", MaxHistoryLimit, v)
		return def
	}
	return n
}

func (s *Server) vitalsHistory(c echo.Context) error {
	id, err := patientPath(c)
	if err != nil {
		return err
	}
	var h historyParams
	kind := c.QueryParam("kind")
	if kind != "" {
		if _, ok := schemas.SpecFor(schemas.Kind(kind)); !ok {
			h.bad("kind", "unknown vital %q; see GET /v1/schemas/%s.schema.json", kind, schemas.ReadingV1)
		}
	}
	var step time.Duration
	maxRange := MaxRawRange
	if v := c.QueryParam("step"); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			h.bad("step", "is not a duration such as 1m, 15m or 1h: %q", v)
		case d < MinStep || d > MaxStep || d%MinStep != 0:
			h.bad("step", "must be whole minutes from %v to %v, got %v", MinStep, MaxStep, d)
		default:
			// A range of more buckets than one answer holds is cut,
			// as a longer range is (window).
			step, maxRange = d, min(MaxStepRange, d*MaxBuckets)
		}
	}
	from, to := h.window(c, maxRange)
	limit := h.limit(c, DefaultRawLimit)
	if step > 0 {
		// Every bucket of every kind fits: limit applies to readings.
		limit = (MaxBuckets + 1) * schemas.NumKinds
	}
	if h.problems != nil {
		return badQuery(h.problems)
	}
	if s.history == nil {
		return noHistory()
	}
	q := chschema.VitalsQuery{Patient: id, Kind: kind, From: from, To: to, Step: step, Limit: limit + 1}
	out := VitalsHistory{PatientID: id, From: from, To: to, Series: []Series{}}
	if out.Next = h.next(c, to); out.Next != "" {
		out.Truncated = true
	}
	if step > 0 {
		out.Step = step.String()
	}
	if empty(from, to) {
		return c.JSON(http.StatusOK, out)
	}
	ctx := c.Request().Context()
	if step == 0 {
		rows, err := s.history.RawVitals(ctx, q)
		if err != nil {
			return historyUnavailable(err)
		}
		if len(rows) > limit {
			rows, out.Truncated, out.Next = rows[:limit], true, "" // a shorter range first
			c.Response().Header().Del("Link")
		}
		for _, r := range rows {
			se := series(&out, r.Kind)
			if se.Unit == "" {
				se.Unit = r.Unit
			}
			se.Points = append(se.Points, RawPoint{TS: r.TS.UTC(), Value: r.Value, DeviceID: r.DeviceID, Seq: r.Seq})
		}
		return c.JSON(http.StatusOK, out)
	}
	rows, err := s.history.VitalBuckets(ctx, q)
	if err != nil {
		return historyUnavailable(err)
	}
	for _, r := range rows {
		se := series(&out, r.Kind)
		se.Buckets = append(se.Buckets, Bucket{TS: r.TS.UTC(), Min: r.Min, Avg: r.Avg, Max: r.Max, Samples: r.Samples})
	}
	return c.JSON(http.StatusOK, out)
}

// series is kind's series in out, added if new: the rows come ordered
// by kind, so it is the last one or a new one.
func series(out *VitalsHistory, kind string) *Series {
	if n := len(out.Series); n > 0 && string(out.Series[n-1].Kind) == kind {
		return &out.Series[n-1]
	}
	se := Series{Kind: schemas.Kind(kind)}
	if spec, ok := schemas.SpecFor(se.Kind); ok {
		se.Unit = spec.Unit
	}
	out.Series = append(out.Series, se)
	return &out.Series[len(out.Series)-1]
}

func (s *Server) alertsHistory(c echo.Context) error {
	id, err := patientPath(c)
	if err != nil {
		return err
	}
	var h historyParams
	from, to := h.window(c, MaxStepRange)
	limit := h.limit(c, DefaultAlertsMax)
	if h.problems != nil {
		return badQuery(h.problems)
	}
	if s.history == nil {
		return noHistory()
	}
	out := AlertsHistory{PatientID: id, From: from, To: to}
	if out.Next = h.next(c, to); out.Next != "" {
		out.Truncated = true
	}
	if !empty(from, to) {
		alerts, err := s.history.Alerts(c.Request().Context(), chschema.AlertsQuery{Patient: id, From: from, To: to, Limit: limit + 1})
		if err != nil {
			return historyUnavailable(err)
		}
		out.Alerts = alerts
		if len(alerts) > limit {
			out.Alerts, out.Truncated, out.Next = alerts[:limit], true, ""
			c.Response().Header().Del("Link")
		}
	}
	if out.Alerts == nil {
		out.Alerts = []schemas.Alert{}
	}
	return c.JSON(http.StatusOK, out)
}

func noHistory() error {
	return web.NewProblem(http.StatusNotImplemented,
		"history is served from ClickHouse, and this deployment has none configured (--clickhouse-addr); live data: GET /v1/patients/{id}/vitals/latest, GET /v1/alerts, GET /v1/stream")
}

// historyUnavailable is a 503: the request was good, the store did not
// answer. The error is logged, not shown: it may carry server details.
func historyUnavailable(err error) error {
	p := web.NewProblem(http.StatusServiceUnavailable, "the history store (ClickHouse) did not answer; try again shortly")
	p.RetryAfter, p.Cause = 5*time.Second, err
	return p
}
