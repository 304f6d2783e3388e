// Package web builds the echo server every HTTP role shares: RFC 9457
// problem documents for every error, panic recovery, OpenTelemetry spans
// per request, and /healthz, /readyz and /metrics.
// Roles register their own routes on the returned *echo.Echo.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/schemas"
)

// Problem is an RFC 9457 problem document. Errors lists per-item problems
// of a batch, so a device can fix them all at once.
type Problem struct {
	Type   string               `json:"type"`
	Title  string               `json:"title"`
	Status int                  `json:"status"`
	Detail string               `json:"detail,omitempty"`
	Errors []schemas.FieldError `json:"errors,omitempty"`
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter time.Duration `json:"-"`
	// Cause is logged, not sent: a backend's error may carry details
	// a client should not see.
	Cause error `json:"-"`
	// Header is sent with the problem (WWW-Authenticate on a 401).
	Header http.Header `json:"-"`
}

func (p *Problem) Error() string { return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail) }

// NewProblem returns a problem of the given status; title defaults to the
// status text.
func NewProblem(status int, detail string) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
}

// Check is a readiness check: nil when ready.
type Check func(ctx context.Context) error

// New returns an echo server with MonitorMe's error handling and the
// operational endpoints. ready checks are run by /readyz in order.
func New(log *slog.Logger, tel *telemetry.Telemetry, ready ...Check) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(log)
	e.Use(middleware.Recover())
	// A request id on every response (a caller's own X-Request-Id is
	// kept), for matching a complaint to the access log.
	e.Use(middleware.RequestID())
	e.Use(securityHeaders)
	// Every route's body is bounded; ingest's own limit (--ingest-body-limit)
	// is the one larger body, set on its route.
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: MaxBody,
		Skipper: func(c echo.Context) bool { return c.Request().URL.Path == "/v1/vitals" }}))
	e.Use(accessLog(log))
	e.Use(echo.WrapMiddleware(otelhttp.NewMiddleware("monitorme",
		otelhttp.WithTracerProvider(tel.TracerProvider),
		otelhttp.WithMeterProvider(tel.MeterProvider),
		otelhttp.WithPropagators(tel.Propagator),
	)))
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
		defer cancel()
		for _, check := range ready {
			if err := check(ctx); err != nil {
				p := NewProblem(http.StatusServiceUnavailable, "not ready: "+err.Error())
				p.RetryAfter = time.Second
				return p
			}
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	})
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(tel.Registry, promhttp.HandlerOpts{})))
	return e
}

func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		var p *Problem
		var he *echo.HTTPError
		switch {
		case errors.As(err, &p):
			if p.Cause != nil {
				log.Warn("request failed", "method", c.Request().Method, "path", c.Path(), "status", p.Status, "err", p.Cause)
			}
		case errors.As(err, &he):
			detail := fmt.Sprint(he.Message)
			switch he.Code {
			case http.StatusRequestEntityTooLarge:
				detail = "request body is larger than the limit of this endpoint"
			case http.StatusNotFound:
				detail = "no such endpoint: " + c.Request().Method + " " + c.Request().URL.Path
			case http.StatusMethodNotAllowed:
				detail = "method " + c.Request().Method + " not allowed on " + c.Request().URL.Path
			}
			p = NewProblem(he.Code, detail)
		default:
			log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
			p = NewProblem(http.StatusInternalServerError, "internal error")
		}
		for k, v := range p.Header {
			c.Response().Header()[k] = v
		}
		if p.RetryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int((p.RetryAfter+time.Second-1)/time.Second)))
		}
		c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
		c.Response().WriteHeader(p.Status)
		if c.Request().Method != http.MethodHead {
			_ = c.Echo().JSONSerializer.Serialize(c, p, "")
		}
	}
}

// SubjectKey is the echo context key under which authentication (the
// auth package) leaves the caller's subject for the access log.
const SubjectKey = "monitorme.subject"

// MaxBody bounds the request body of every route but ingest's.
const MaxBody = "64KiB"

// securityHeaders are set on every response: no MIME sniffing, no
// framing, no referrer; patient data (the /v1 routes) never stored by a
// browser or a proxy cache.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if strings.HasPrefix(c.Request().URL.Path, "/v1/") {
			h.Set(echo.HeaderCacheControl, "no-store")
		}
		return next(c)
	}
}

// accessLog logs every request: method, route pattern (not the path,
// which names a patient), status, duration and request id. No query, no
// body: nothing a patient could be recognized by.
func accessLog(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			// Successes at debug (a ward's gateways post every second),
			// client errors at info, server errors at warn.
			level := slog.LevelDebug
			switch status := c.Response().Status; {
			case status >= 500:
				level = slog.LevelWarn
			case status >= 400:
				level = slog.LevelInfo
			}
			attrs := []any{"method", c.Request().Method, "route", c.Path(), "status", c.Response().Status,
				"duration_ms", time.Since(start).Milliseconds(), "request_id", c.Response().Header().Get(echo.HeaderXRequestID)}
			// Who called: a user, station or gateway id, never a patient.
			if sub, ok := c.Get(SubjectKey).(string); ok {
				attrs = append(attrs, "subject", sub)
			}
			log.Log(c.Request().Context(), level, "request", attrs...)
			return nil
		}
	}
}

// Timeouts bound what a client can hold of the server. ReadHeader and
// Read stop a client that sends slowly (a slow-body connection was held
// 150 s and more before); Write a client that reads slowly; Idle a
// keep-alive connection nobody uses. The live stream clears its own write
// deadline (see NoWriteDeadline) and sends heartbeats instead.
type Timeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
	// TLS, when set, serves HTTPS (tls.go).
	TLS TLSFiles
	// Log receives certificate reloads; nil discards them.
	Log *slog.Logger
}

// DefaultTimeouts suit the API: an ingest batch of the largest body is
// read in well under Read, and Write covers waiting for broker acks.
func DefaultTimeouts() Timeouts {
	return Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: 30 * time.Second, Idle: 60 * time.Second}
}

// NoWriteDeadline lifts the server's write timeout for a response that
// lasts, the live stream: its heartbeats find a client that is gone.
func NoWriteDeadline(c echo.Context) error {
	return http.NewResponseController(c.Response()).SetWriteDeadline(time.Time{})
}

// Serve runs e on ln until ctx ends, then shuts it down gracefully, giving
// in-flight requests (an ingest waiting for broker acks) time to finish.
func Serve(ctx context.Context, e *echo.Echo, ln net.Listener) error {
	return ServeWith(ctx, e, ln, DefaultTimeouts())
}

// ServeWith is Serve with other timeouts.
func ServeWith(ctx context.Context, e *echo.Echo, ln net.Listener, t Timeouts) error {
	if t.TLS.Enabled() {
		log := t.Log
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		var err error
		if ln, err = tlsListener(ln, t.TLS, log); err != nil {
			return err
		}
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read, WriteTimeout: t.Write, IdleTimeout: t.Idle}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}
