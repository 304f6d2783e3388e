package api

import (
	"embed"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/monitorme/monitorme/clinical"
	"github.com/monitorme/monitorme/internal/auth"
	"github.com/monitorme/monitorme/internal/web"
	"github.com/monitorme/monitorme/schemas"
	"github.com/monitorme/monitorme/station"
)

//go:embed openapi.json
var openAPI embed.FS

// Server holds the query routes.
type Server struct {
	live  *Live
	acks  AckWriter
	rules *clinical.Config
	// history is nil when no ClickHouse is configured.
	history History
	// records reads a patient's record from the topics for the export
	// when there is no history store; nil if the roles gave none.
	records RecordSource
	// heartbeat is how often an idle SSE stream gets a comment, so
	// proxies do not close it.
	heartbeat time.Duration
	// streams counts the open live streams, at most maxStreams: 2,000
	// clients were all accepted before, at about 150 KB each.
	streams    atomic.Int64
	maxStreams int64
	// perSubject counts the open streams of each caller (token subject,
	// or client address without authentication), at most maxPerSubject:
	// one leaked token or runaway screen cannot take every stream.
	mu            sync.Mutex
	perSubject    map[string]int
	maxPerSubject int
}

// DefaultMaxStreams bounds the concurrent live streams of one API server.
const DefaultMaxStreams = 500

// WithMaxStreams sets how many live streams the server serves at once; a
// stream beyond it is answered 503 with Retry-After.
func WithMaxStreams(n int) Option { return func(s *Server) { s.maxStreams = int64(n) } }

// DefaultMaxStreamsPerSubject bounds the concurrent live streams of one
// caller: a ward's station screens sharing a token fit.
const DefaultMaxStreamsPerSubject = 50

// WithMaxStreamsPerSubject sets how many live streams one caller (token
// subject) holds at once; one beyond is answered 429 with Retry-After.
func WithMaxStreamsPerSubject(n int) Option { return func(s *Server) { s.maxPerSubject = n } }

// NewServer returns the query API over live.
func NewServer(live *Live, opts ...Option) *Server {
	s := &Server{live: live, heartbeat: 15 * time.Second, maxStreams: int64(live.cfg.MaxStreams),
		maxPerSubject: live.cfg.MaxStreamsPerCaller, perSubject: map[string]int{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Register adds the query routes to e.
func (s *Server) Register(e *echo.Echo) {
	// Every route is held to what the OpenAPI document says of its
	// requests (contract.go).
	ck := Contract()
	e.GET("/v1/openapi.json", func(c echo.Context) error { return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, OpenAPI()) }, ck)
	e.GET("/v1/schemas/:name", s.schema, ck)
	e.GET("/v1/patients", s.patients, ck)
	e.GET("/v1/patients/:id/vitals/latest", s.latest, ck)
	e.GET("/v1/patients/:id/vitals", s.vitalsHistory, ck)
	e.GET("/v1/patients/:id/alerts", s.alertsHistory, ck)
	e.GET("/v1/patients/:id/rules", s.patientRules, ck)
	e.GET("/v1/alerts", s.alerts, ck)
	e.POST("/v1/alerts/:id/ack", s.ack, ck)
	e.POST("/v1/patients/:id/silence", s.silence, ck)
	e.GET("/v1/alarms/summary", s.alarmSummary, ck)
	e.GET("/v1/alarms", s.openAlarms, ck)
	e.GET("/v1/stream", s.stream, ck)
	e.GET("/v1/wards", s.wards, ck)
	e.POST("/v1/patients/:id/placement", s.placement, ck)
	e.GET("/v1/patients/:id/export", s.export, ck)
	// The nurse-station page: a client of the routes above, served here
	// so that every API server has one.
	station.Register(e)
}

func (s *Server) schema(c echo.Context) error {
	b, err := schemas.Files.ReadFile(c.Param("name"))
	if err != nil {
		return web.NewProblem(http.StatusNotFound, "no schema "+schemas.Quote(c.Param("name"))+"; try "+schemas.ReadingV1+".schema.json, "+schemas.AlertV1+".schema.json or "+schemas.AckV1+".schema.json")
	}
	return c.Blob(http.StatusOK, "application/schema+json", b)
}

func (s *Server) patients(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"patients": s.live.Patients()})
}

// LatestVitals is the body of GET /v1/patients/{id}/vitals/latest.
type LatestVitals struct {
	PatientID string                           `json:"patient_id"`
	Vitals    map[schemas.Kind]schemas.Reading `json:"vitals"`
	// NEWS2 is the patient's current score from these readings, as the
	// engine scores it; absent when they are not a complete, current set
	// (or the server has no rules).
	NEWS2 *CurrentNEWS2View `json:"news2,omitempty"`
	// Silence is the alarm silence in force, if any.
	Silence *schemas.Silence `json:"silence,omitempty"`
}

func (s *Server) latest(c echo.Context) error {
	id, err := patientPath(c)
	if err != nil {
		return err
	}
	vitals, ok := s.live.Latest(id)
	if !ok {
		return web.NewProblem(http.StatusNotFound, "no recent readings of patient "+strconv.Quote(id))
	}
	body := LatestVitals{PatientID: id, Vitals: vitals}
	if s.rules != nil {
		body.NEWS2 = currentNEWS2View(s.rules, id, vitals)
	}
	if sil, ok := s.live.Silence(id, time.Now()); ok {
		body.Silence = &sil
	}
	return c.JSON(http.StatusOK, body)
}

// MaxAlertsLimit bounds GET /v1/alerts?limit=.
const MaxAlertsLimit = 1000

func (s *Server) alerts(c echo.Context) error {
	var problems []schemas.FieldError
	patient := c.QueryParam("patient")
	if patient != "" {
		if _, err := patientParam(patient, "patient"); err != nil {
			return err
		}
	}
	var since time.Time
	if vs, given := c.QueryParams()["since"]; given {
		v := vs[0]
		t, err := time.Parse(time.RFC3339Nano, v)
		switch {
		case v == "":
			problems = append(problems, schemas.FieldError{Field: "since", Reason: "is empty: give an RFC 3339 time, or leave since out"})
		case err != nil:
			problems = append(problems, schemas.FieldError{Field: "since", Reason: "is not an RFC 3339 time: " + schemas.Quote(v)})
		}
		since = t
	}
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxAlertsLimit {
			problems = append(problems, schemas.FieldError{Field: "limit", Reason: fmt.Sprintf("must be an integer from 1 to %d, got %q", MaxAlertsLimit, v)})
		}
		limit = n
	}
	if problems != nil {
		return badQuery(problems)
	}
	return c.JSON(http.StatusOK, map[string]any{"alerts": s.live.Alerts(Filter{Patient: patient, Ward: c.QueryParam("ward")}, since, limit)})
}

func badQuery(problems []schemas.FieldError) error {
	return fieldProblem("Invalid query parameters", problems)
}

// fieldProblem is a 400 naming every bad field, the first in its detail.
func fieldProblem(title string, problems []schemas.FieldError) error {
	p := web.NewProblem(http.StatusBadRequest, problems[0].Field+" "+problems[0].Reason)
	p.Title = title
	p.Errors = problems
	return p
}

// pathID returns the path parameter name percent-decoded: a browser's
// encodeURIComponent sends "ward3:bed7" as "ward3%3Abed7".
func pathID(c echo.Context, name string) (string, error) {
	v, err := pathValue(c, name)
	if err != nil {
		return "", badQuery([]schemas.FieldError{{Field: name, Reason: err.Error()}})
	}
	return v, nil
}

// pathValue is the path parameter name decoded once. echo routes on the
// request's raw path when it has one (an escape Go would not have made,
// as %3A for ":"), and hands those parameters over undecoded; otherwise
// on the decoded path, and a second decoding read "%25" as a lone "%"
// and refused a value the document allows (found by schemathesis).
func pathValue(c echo.Context, name string) (string, error) {
	raw := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return raw, nil
	}
	v, err := url.PathUnescape(raw)
	if err != nil {
		return "", errors.New("is not percent-encoded correctly: " + schemas.Quote(raw))
	}
	return v, nil
}

// patientPath is the patient id of the route's :id, decoded and checked.
func patientPath(c echo.Context) (string, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return "", err
	}
	return patientParam(id, "id")
}

func patientParam(id, field string) (string, error) {
	r := schemas.Reading{PatientID: id, DeviceID: "x", Kind: schemas.Sleep, Unit: "1", TS: time.Unix(1, 0)}
	for _, e := range r.Check(time.Now()) {
		if e.Field == "patient_id" {
			return "", badQuery([]schemas.FieldError{{Field: field, Reason: e.Reason}})
		}
	}
	return id, nil
}

// stream serves Server-Sent Events: "vital" and "alert" events whose data
// is the record value, with the record's topic/partition/offset as id.
// admitStream counts a new live stream against the server's and the
// caller's limits.
func (s *Server) admitStream(c echo.Context) (release func(), err error) {
	who := c.RealIP()
	if p, ok := auth.FromContext(c); ok && p.Method != "none" {
		who = p.Subject
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perSubject[who] >= s.maxPerSubject {
		p := web.NewProblem(http.StatusTooManyRequests, fmt.Sprintf("you already hold %d live streams, the limit of one caller; close one (one stream without ?patient= carries every patient)", s.maxPerSubject))
		p.RetryAfter = 5 * time.Second
		return nil, p
	}
	if s.streams.Load() >= s.maxStreams {
		p := web.NewProblem(http.StatusServiceUnavailable, fmt.Sprintf("this server already serves %d live streams, its limit; retry, or use another API replica", s.maxStreams))
		p.RetryAfter = 5 * time.Second
		return nil, p
	}
	s.perSubject[who]++
	s.streams.Add(1)
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.streams.Add(-1)
		if s.perSubject[who]--; s.perSubject[who] <= 0 {
			delete(s.perSubject, who) // the map does not keep every caller ever seen
		}
	}, nil
}

func (s *Server) stream(c echo.Context) error {
	patient := c.QueryParam("patient")
	if patient != "" {
		if _, err := patientParam(patient, "patient"); err != nil {
			return err
		}
	}
	if err := s.live.Ready(c.Request().Context()); err != nil {
		// A stream now would give part of the truth without saying so:
		// the events the view has yet to read are not in its ring, so a
		// resume would find nothing to resume from. The client retries.
		p := web.NewProblem(http.StatusServiceUnavailable, "the live view is still reading the topics up to their end; retry in a moment")
		p.RetryAfter = 2 * time.Second
		return p
	}
	release, err := s.admitStream(c)
	if err != nil {
		return err
	}
	defer release()
	// The stream lasts: the server's write timeout would cut it, and its
	// heartbeats find a client that is gone instead.
	if err := web.NoWriteDeadline(c); err != nil {
		return err
	}
	// A reconnecting EventSource sends the id of the last event it got;
	// what it missed is sent first (or a reset, when that is too old).
	lastID := c.Request().Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = c.QueryParam("last_event_id")
	}
	sub, backlog, found := s.live.SubscribeAfter(Filter{Patient: patient, Ward: c.QueryParam("ward")}, lastID)
	defer sub.Cancel()
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set(echo.HeaderCacheControl, "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": monitorme live stream\n\n")
	if lastID != "" && !found {
		fmt.Fprint(w, "event: reset\ndata: {\"reason\":\"the events after Last-Event-ID are no longer kept: read the current state again\"}\n\n")
	}
	for _, ev := range backlog {
		fmt.Fprintf(w, "event: %s\nid: %s\ndata: %s\n\n", ev.Type, ev.ID, ev.Data)
	}
	w.Flush()
	tick := time.NewTicker(s.heartbeat)
	defer tick.Stop()
	ctx := c.Request().Context()
	send := func(ev *Event) error {
		if n := sub.Skipped(); n > 0 {
			// Not silent: the client knows its vitals are behind and
			// can read the latest ones; no alarm is ever skipped.
			fmt.Fprintf(w, "event: skipped\ndata: {\"vitals\":%d}\n\n", n)
		}
		_, err := fmt.Fprintf(w, "event: %s\nid: %s\ndata: %s\n\n", ev.Type, ev.ID, ev.Data)
		return err
	}
	for {
		// Alarms first: a reading waits behind an alarm, never the
		// other way round. A resume still loses no alarm: an alarm not
		// yet sent was broadcast after the last event sent (alarms are
		// in order among themselves, and one already buffered would
		// have gone before that event), so it follows the
		// Last-Event-ID in the view's ring; at worst one is sent twice.
		select {
		case ev, ok := <-sub.Events:
			if !ok {
				return s.endStream(w)
			}
			if send(ev) != nil {
				return nil // client gone
			}
			w.Flush()
			continue
		default:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		case ev, ok := <-sub.Events:
			if !ok {
				return s.endStream(w)
			}
			if send(ev) != nil {
				return nil
			}
		case ev := <-sub.Vitals:
			if send(ev) != nil {
				return nil
			}
		}
		w.Flush()
	}
}

// endStream tells a client whose alarm buffer filled (or a stopping
// server's) that the stream ends: it reconnects after its Last-Event-ID.
func (s *Server) endStream(w *echo.Response) error {
	fmt.Fprint(w, "event: end\ndata: {}\n\n")
	w.Flush()
	return nil
}
