package api

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/web"
	"github.com/monitorme/monitorme/schemas"
)

// PlacementWriter records a patient's placement (admit, transfer,
// discharge) on the placements topic and returns once the broker has it.
type PlacementWriter interface {
	WritePlacement(ctx context.Context, p schemas.Placement) error
}

// runPlacements follows the compacted placements topic from its start:
// each patient's latest placement, which the station groups its tiles by.
// It has a client of its own because the other topics are read from a
// lookback, this one whole.
func (l *Live) runPlacements(ctx context.Context) {
	cl, err := kgo.NewClient(append(l.kcfg.ClientOpts("live-placements"),
		kgo.ConsumeTopics(l.kcfg.Topics.Placements),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		l.tel.KafkaHooks(nil),
	)...)
	if err != nil {
		l.log.Error("live view: placements client", "err", err)
		return
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			l.log.Warn("live view fetch error", "topic", t, "partition", p, "err", err)
		})
		fs.EachRecord(l.applyPlacement)
	}
}

func (l *Live) applyPlacement(r *kgo.Record) {
	pl, err := schemas.DecodePlacement(r)
	if err != nil {
		// Not shown: the record may carry a patient's name.
		l.log.Warn("live view: skipping an unreadable placement", "partition", r.Partition, "offset", r.Offset)
		l.log.Debug("unreadable placement", "partition", r.Partition, "offset", r.Offset, "err", err)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	wards := []string{pl.Ward}
	if old := l.wardOf(pl.PatientID); old != pl.Ward {
		wards = append(wards, old)
	}
	if pl.Event == schemas.Discharge {
		delete(l.placements, pl.PatientID)
	} else {
		l.placements[pl.PatientID] = pl
	}
	data, err := json.Marshal(pl) // encoded again: see apply
	if err != nil {
		return
	}
	l.broadcast(&Event{Type: "placement", ID: fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset), Patient: pl.PatientID, At: r.Timestamp, Data: data, Wards: wards})
}

// Bed is one occupied bed of a ward.
type Bed struct {
	Bed       string    `json:"bed"`
	PatientID string    `json:"patient_id"`
	Name      string    `json:"name,omitempty"`
	Since     time.Time `json:"since"`
}

// Ward is a ward's occupied beds, in bed order (numbers by value).
type Ward struct {
	Ward string `json:"ward"`
	Beds []Bed  `json:"beds"`
}

// Wards is the body of GET /v1/wards.
type Wards struct {
	Wards []Ward `json:"wards"`
	// Unplaced are the patients in the live view with no placement: a
	// monitor sending before the admission reached the platform.
	Unplaced []string `json:"unplaced"`
}

// Wards returns the wards and their occupied beds from the latest
// placements, and the patients with readings but no placement.
func (l *Live) Wards() Wards {
	l.mu.RLock()
	defer l.mu.RUnlock()
	byWard := map[string][]Bed{}
	for _, p := range l.placements {
		byWard[p.Ward] = append(byWard[p.Ward], Bed{Bed: p.Bed, PatientID: p.PatientID, Name: p.Name, Since: p.TS})
	}
	out := Wards{Wards: []Ward{}, Unplaced: []string{}}
	for _, w := range slices.Sorted(maps.Keys(byWard)) {
		beds := byWard[w]
		slices.SortFunc(beds, func(a, b Bed) int { return compareBeds(a.Bed, b.Bed) })
		out.Wards = append(out.Wards, Ward{Ward: w, Beds: beds})
	}
	for id := range l.patients {
		if _, ok := l.placements[id]; !ok {
			out.Unplaced = append(out.Unplaced, id)
		}
	}
	slices.Sort(out.Unplaced)
	return out
}

// compareBeds orders beds as a ward numbers them: 2 before 10.
func compareBeds(a, b string) int {
	x, errA := strconv.Atoi(a)
	y, errB := strconv.Atoi(b)
	if errA == nil && errB == nil {
		return cmp.Compare(x, y)
	}
	return cmp.Compare(a, b)
}

// where is where the patient of alert a is now: the latest placement,
// else the ward and bed a says (a patient never placed has the rules
// file's ward there, if any).
func (l *Live) where(patient string, a *schemas.Alert) (ward, bed string) {
	if pl, ok := l.Placement(patient); ok {
		return pl.Ward, pl.Bed
	}
	return a.Ward, a.Bed
}

// Placement returns the patient's latest placement, if admitted.
func (l *Live) Placement(patient string) (schemas.Placement, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	p, ok := l.placements[patient]
	return p, ok
}

func (s *Server) wards(c echo.Context) error {
	return c.JSON(http.StatusOK, s.live.Wards())
}

// PlacementRequest is the body of POST /v1/patients/{id}/placement.
type PlacementRequest struct {
	Event string `json:"event"`
	Ward  string `json:"ward,omitempty"`
	Bed   string `json:"bed,omitempty"`
	Name  string `json:"name,omitempty"`
	By    string `json:"by,omitempty"`
}

var placementBody = smallBody{"a placement", "Invalid placement", `{"event":"admit","ward":"icu","bed":"3"}`, `{"event": "admit" | "transfer" | "discharge", "ward": "<ward>", "bed": "<bed>", "name": "<display name>"}`}

func (s *Server) placement(c echo.Context) error {
	id, err := patientPath(c)
	if err != nil {
		return err
	}
	var req PlacementRequest
	if err := placementBody.read(c, &req); err != nil {
		return err
	}
	by, how, err := actor(c, req.By)
	if err != nil {
		return err
	}
	pl := schemas.Placement{PatientID: id, Event: req.Event, Ward: req.Ward, Bed: req.Bed, Name: req.Name, By: by, Auth: how, TS: time.Now().UTC()}
	if err := pl.Validate(); err != nil {
		return fieldProblem(placementBody.title, []schemas.FieldError{{Field: "body", Reason: err.Error()}})
	}
	if cur, ok := s.live.Placement(id); ok && pl.Event == schemas.Admit && (cur.Ward != pl.Ward || cur.Bed != pl.Bed) {
		p := web.NewProblem(http.StatusConflict, fmt.Sprintf("the patient is already admitted to ward %s bed %s: send a transfer", cur.Ward, cur.Bed))
		p.Title = "Already admitted"
		return p
	}
	pw, ok := s.acks.(PlacementWriter)
	if !ok {
		return web.NewProblem(http.StatusNotImplemented, "this server does not write placements")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 10*time.Second)
	defer cancel()
	if err := pw.WritePlacement(ctx, pl); err != nil {
		c.Response().Header().Set("Retry-After", "1")
		return web.NewProblem(http.StatusServiceUnavailable, "the placement was not stored (brokers unavailable); retry")
	}
	return c.JSON(http.StatusAccepted, map[string]any{"placement": pl})
}
