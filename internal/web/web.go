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

// Serve runs e on ln until ctx ends, then shuts it down gracefully, giving
// in-flight requests (an ingest waiting for broker acks) time to finish.
func Serve(ctx context.Context, e *echo.Echo, ln net.Listener) error {
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
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
