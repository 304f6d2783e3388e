package producers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/monitorme/monitorme/internal/auth"
	"github.com/monitorme/monitorme/internal/web"
	"github.com/monitorme/monitorme/schemas"
)

// IngestConfig configures POST /v1/vitals.
type IngestConfig struct {
	// BodyLimit is the largest request body accepted, in echo's size
	// notation: K, M, G are powers of 1000 ("4M" is 4,000,000 bytes), Ki,
	// Mi, Gi powers of 1024. A larger body is answered 413.
	BodyLimit string
	// AckTimeout bounds how long a request waits for the brokers. It is
	// needed on top of the producer's delivery timeout because a record
	// sent to a broker that then died cannot be failed by the producer
	// until the broker's fate is known, which can take as long as the
	// outage.
	AckTimeout time.Duration
	// MaxBacklog is how many readings the alert processors may be behind
	// the vitals topic before ingest refuses batches with 503 and
	// Retry-After (backlog.go); 0 never refuses for a backlog.
	MaxBacklog int64
}

// DefaultIngestConfig returns the defaults the flag help names.
func DefaultIngestConfig() IngestConfig {
	return IngestConfig{BodyLimit: "4MiB", AckTimeout: 20 * time.Second, MaxBacklog: 100_000}
}

// RegisterFlags binds c to flags.
func (c *IngestConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.BodyLimit, "ingest-body-limit", c.BodyLimit, "largest POST /v1/vitals body: KiB/MiB are 1024s, K/M 1000s (4MiB is 4194304 bytes)")
	fs.DurationVar(&c.AckTimeout, "ingest-ack-timeout", c.AckTimeout, "longest wait for broker acknowledgement before answering 503")
	fs.Int64Var(&c.MaxBacklog, "ingest-max-backlog", c.MaxBacklog, "readings the alert processors may be behind the vitals topic before POST /v1/vitals answers 503 with Retry-After (0: never)")
}

// Validate refuses settings ingest cannot honor.
func (c *IngestConfig) Validate() error {
	if n, err := ParseSize(c.BodyLimit); err != nil || n < 1024 {
		return fmt.Errorf("ingest-body-limit: %q, want a size of at least 1KiB such as 512KiB or 4MiB", c.BodyLimit)
	}
	if c.AckTimeout < time.Second {
		return fmt.Errorf("ingest-ack-timeout: %v, want at least 1s", c.AckTimeout)
	}
	if c.MaxBacklog < 0 {
		return fmt.Errorf("ingest-max-backlog: %d, want 0 (never refuse) or more", c.MaxBacklog)
	}
	return nil
}

// Writer is what ingest needs of a producer.
type Writer interface {
	Produce(ctx context.Context, rs []schemas.Reading) error
}

// Ingest is the POST /v1/vitals handler.
type Ingest struct {
	cfg      IngestConfig
	w        Writer
	log      *slog.Logger
	now      func() time.Time
	readings metric.Int64Counter
	// limit is BodyLimit in bytes, parsed once here, not per request.
	limit int64
	// backlog, if set, is what load shedding looks at (backlog.go).
	backlog *Backlog
}

// ShedWith makes ingest refuse batches while b says the processors are
// more than MaxBacklog readings behind or the heap is near its limit.
func (in *Ingest) ShedWith(b *Backlog) { in.backlog = b }

// shed returns the 503 of a batch refused to keep the platform within
// what it can process, or nil. Between half of MaxBacklog and MaxBacklog
// a growing share of batches is refused, every batch above it: refusing
// all at once at one bound left the processors idle while every gateway
// waited out its Retry-After, then flooded them again (measured at
// 60,000 readings/s in the realistic benchmark: 1.2 of 2 cores used).
func (in *Ingest) shed() error {
	if in.backlog == nil {
		return nil
	}
	var detail string
	lag, known := in.backlog.Lag()
	switch max := in.cfg.MaxBacklog; {
	case in.backlog.HeapFull():
		detail = "this ingest is near its memory limit; retry the whole batch later (nothing of it was accepted)"
	case known && max > 0 && lag > max/2 && (lag >= max || rand.Int64N(max/2+1) < lag-max/2):
		detail = fmt.Sprintf("the alert processors are %d readings behind (refusing from --ingest-max-backlog/2, %d, all from %d); retry the whole batch later (nothing of it was accepted)", lag, max/2, max)
	default:
		return nil // every POST passes here: nothing allocated
	}
	p := web.NewProblem(http.StatusServiceUnavailable, detail)
	p.RetryAfter = time.Second
	return p
}

// NewIngest returns the ingest handler writing to w.
func NewIngest(cfg IngestConfig, w Writer, log *slog.Logger, mp metric.MeterProvider) (*Ingest, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	readings, err := mp.Meter("monitorme/producers").Int64Counter("monitorme.ingest.readings",
		metric.WithDescription("Readings received by POST /v1/vitals by outcome: accepted, unavailable (refused with 503); invalid counts rejected requests, shed the requests refused (503) while the processors were too far behind or the heap near its limit"))
	if err != nil {
		return nil, err
	}
	limit, _ := ParseSize(cfg.BodyLimit) // checked by Validate
	return &Ingest{cfg: cfg, w: w, log: log, now: time.Now, readings: readings, limit: limit}, nil
}

// Register adds the ingest route to e.
func (in *Ingest) Register(e *echo.Echo) {
	e.POST("/v1/vitals", in.post)
}

// Accepted is the 202 body.
type Accepted struct {
	Accepted int `json:"accepted"`
}

func (in *Ingest) post(c echo.Context) error {
	req := c.Request()
	// The Content-Type is required: a body without one is not taken as
	// JSON, which also keeps a browser's cross-site "simple" form post
	// (text/plain, no preflight) from writing readings.
	ndjson := false
	ct := req.Header.Get(echo.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	switch {
	case ct == "":
		return web.NewProblem(http.StatusUnsupportedMediaType, "Content-Type is missing; send application/json (an array of readings) or application/x-ndjson (one reading a line)")
	case err != nil:
		return web.NewProblem(http.StatusUnsupportedMediaType, "unreadable Content-Type "+schemas.Quote(ct))
	case mt == "application/x-ndjson" || mt == "application/jsonl":
		ndjson = true
	case mt != echo.MIMEApplicationJSON:
		return web.NewProblem(http.StatusUnsupportedMediaType, "Content-Type "+schemas.Quote(mt)+" is not accepted; send application/json (an array of readings) or application/x-ndjson (one reading a line)")
	}
	if err := in.shed(); err != nil {
		// Before the body is read: shedding is to save the work.
		in.count(c, "shed", 1)
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, in.limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return web.NewProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than the limit of this endpoint (%s, --ingest-body-limit): send fewer readings a batch", in.cfg.BodyLimit))
		}
		return web.NewProblem(http.StatusBadRequest, "read body: "+err.Error())
	}
	rs, err := schemas.DecodeBatch(body, ndjson, in.now())
	if err != nil {
		return in.invalid(c, err)
	}
	if err := mayPost(c, rs); err != nil {
		in.count(c, "invalid", 1)
		return err
	}
	ctx, cancel := context.WithTimeout(req.Context(), in.cfg.AckTimeout)
	defer cancel()
	if err := in.w.Produce(ctx, rs); err != nil {
		in.count(c, "unavailable", len(rs))
		return in.unavailable(err)
	}
	in.count(c, "accepted", len(rs))
	return c.JSON(http.StatusAccepted, Accepted{Accepted: len(rs)})
}

// mayPost refuses a batch with a reading of a device the caller's token
// is not bound to: a gateway's token posts for its own monitors only.
// Nothing of the batch is accepted, as with any other problem in it.
func mayPost(c echo.Context, rs []schemas.Reading) error {
	p, ok := auth.FromContext(c)
	if !ok {
		return nil
	}
	var errs []schemas.FieldError
	for i, r := range rs {
		if !p.MayPost(r.DeviceID) {
			errs = append(errs, schemas.FieldError{Index: i, Field: "device_id", Reason: schemas.Quote(r.DeviceID) + " is not a device of this token"})
		}
	}
	if len(errs) == 0 {
		return nil
	}
	pr := web.NewProblem(http.StatusForbidden, fmt.Sprintf("%d reading(s) of devices subject %s may not post for; nothing of the batch was accepted", len(errs), p.Subject))
	pr.Title = "Not allowed"
	pr.Errors = errs[:min(len(errs), 20)]
	return pr
}

func (in *Ingest) count(c echo.Context, outcome string, n int) {
	in.readings.Add(c.Request().Context(), int64(n), metric.WithAttributes(attribute.String("outcome", outcome)))
}

func (in *Ingest) invalid(c echo.Context, err error) error {
	p := web.NewProblem(http.StatusBadRequest, err.Error())
	p.Title = "Invalid readings"
	var be *schemas.BatchError
	if errors.As(err, &be) {
		p.Detail = fmt.Sprintf("%d problem(s) in the batch; nothing of it was accepted", be.Total())
		if be.More > 0 {
			p.Detail += fmt.Sprintf(" (the first %d are listed, %d more are not)", len(be.Items), be.More)
		}
		p.Errors = be.Items
		if be.ClockOnly() {
			// Valid by the document (no schema can say "now"), so not
			// a 400: the batch conflicts with this server's clock.
			p.Status, p.Title = http.StatusConflict, "Readings outside the server's clock"
			p.Detail += fmt.Sprintf(": every problem is a reading stamped before 2000 or more than %v after this server's clock; set the device's clock (NTP)", schemas.MaxFutureSkew)
		}
	}
	in.count(c, "invalid", 1)
	return p
}

func (in *Ingest) unavailable(err error) error {
	// The reason may name a broker but never a patient value.
	in.log.Warn("ingest refused a batch", "err", err)
	p := web.NewProblem(http.StatusServiceUnavailable, "")
	p.RetryAfter = 5 * time.Second
	switch {
	case errors.Is(err, ErrBusy):
		p.Detail = "the ingest buffer is full; retry the whole batch later"
		p.RetryAfter = time.Second
	case errors.Is(err, ErrAckTimeout):
		p.Detail = "the brokers did not acknowledge every reading in time; retry the whole batch (readings already written are recognized by device_id, kind and seq)"
	case errors.Is(err, context.Canceled):
		p.Detail = "the request was canceled before every reading was acknowledged; retry the whole batch"
	default:
		p.Detail = "the brokers did not acknowledge every reading; retry the whole batch (readings already written are recognized by device_id, kind and seq)"
	}
	return p
}

// ParseSize reads a size as --ingest-body-limit takes it: a whole number
// of bytes, or with a unit: K, M, G (powers of 1000, also KB, MB, GB) or
// KiB, MiB, GiB (powers of 1024), as echo's notation; B is bytes. Before,
// gommon parsed it, a module imported for this alone.
func ParseSize(s string) (int64, error) {
	num := strings.TrimRight(s, "KMGTPEiBkmgb")
	unit := strings.ToUpper(s[len(num):])
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a whole number of bytes, or one with K, M, G, KiB, MiB or GiB", s)
	}
	mult := map[string]int64{"": 1, "B": 1, "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9,
		"KI": 1 << 10, "KIB": 1 << 10, "MI": 1 << 20, "MIB": 1 << 20, "GI": 1 << 30, "GIB": 1 << 30}[unit]
	if mult == 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a whole number of bytes, or one with K, M, G, KiB, MiB or GiB", s)
	}
	return n * mult, nil
}
