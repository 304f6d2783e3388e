package web

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/monitorme/monitorme/internal/telemetry"
)

func testServer(t *testing.T, to Timeouts) (*echo.Echo, string) {
	t.Helper()
	e := New(slog.New(slog.DiscardHandler), telemetry.Nop())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ServeWith(ctx, e, ln, to); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return e, ln.Addr().String()
}

// Every response carries a request id and the security headers; patient
// data is never stored.
func TestSecurityHeadersAndRequestID(t *testing.T) {
	e := New(slog.New(slog.DiscardHandler), telemetry.Nop())
	e.GET("/v1/patients", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]any{}) })
	for _, path := range []string{"/v1/patients", "/v1/nope", "/healthz"} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		h := rec.Header()
		if h.Get(echo.HeaderXRequestID) == "" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", path, h)
		}
		if strings.HasPrefix(path, "/v1/") && h.Get(echo.HeaderCacheControl) != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", path, h.Get(echo.HeaderCacheControl))
		}
	}
}

// A client that sends its body slowly, or holds an idle keep-alive
// connection, is cut off at the timeouts (both were held 150 s and more,
// with only ReadHeaderTimeout set).
func TestSlowAndIdleConnectionsAreCut(t *testing.T) {
	e, addr := testServer(t, Timeouts{ReadHeader: time.Second, Read: 300 * time.Millisecond, Write: time.Second, Idle: 300 * time.Millisecond})
	e.POST("/v1/vitals", func(c echo.Context) error {
		_, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})
	closedWithin := func(conn net.Conn, d time.Duration) bool {
		_ = conn.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, conn)
		return err == nil // EOF: the server closed it
	}
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /v1/vitals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[")
	if !closedWithin(slow, 3*time.Second) {
		t.Fatal("a slow body held the connection past the read timeout")
	}

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	_ = resp.Body.Close()
	if !closedWithin(idle, 3*time.Second) {
		t.Fatal("an idle keep-alive connection was held past the idle timeout")
	}
}

// A response that lifts its write deadline (the live stream) outlasts
// the write timeout.
func TestNoWriteDeadlineOutlastsTheWriteTimeout(t *testing.T) {
	e, addr := testServer(t, Timeouts{ReadHeader: time.Second, Read: time.Second, Write: 200 * time.Millisecond, Idle: time.Second})
	e.GET("/v1/stream", func(c echo.Context) error {
		if err := NoWriteDeadline(c); err != nil {
			return err
		}
		c.Response().WriteHeader(http.StatusOK)
		for i := range 6 {
			fmt.Fprintf(c.Response(), "tick %d\n", i)
			c.Response().Flush()
			time.Sleep(100 * time.Millisecond)
		}
		return nil
	})
	resp, err := http.Get("http://" + addr + "/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || !strings.Contains(string(body), "tick 5") {
		t.Fatalf("the stream was cut: %q %v", body, err)
	}
}

// Every route's body is bounded (ingest has its own, larger limit on its
// route): a larger one is a 413 problem.
func TestBodiesAreBounded(t *testing.T) {
	e := New(slog.New(slog.DiscardHandler), telemetry.Nop())
	read := func(c echo.Context) error {
		if _, err := io.ReadAll(c.Request().Body); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
	e.POST("/v1/alerts/:id/ack", read)
	e.POST("/v1/vitals", read)
	big := strings.Repeat("x", 100<<10)
	for path, want := range map[string]int{"/v1/alerts/a/ack": http.StatusRequestEntityTooLarge, "/v1/vitals": http.StatusNoContent} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(big)))
		if rec.Code != want {
			t.Errorf("%s with 100 KiB: %d %s, want %d", path, rec.Code, rec.Body, want)
		}
	}
}

// CORS headers go to the configured origins only, and to nobody when
// none is configured.
func TestCORSOnlyForConfiguredOrigins(t *testing.T) {
	for _, tc := range []struct {
		origins     []string
		from, allow string
	}{
		{nil, "https://station.example", ""},
		{[]string{"https://station.example"}, "https://station.example", "https://station.example"},
		{[]string{"https://station.example"}, "https://evil.example", ""},
	} {
		e := New(slog.New(slog.DiscardHandler), telemetry.Nop())
		e.Use(CORS(tc.origins))
		e.GET("/v1/patients", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
		for _, method := range []string{http.MethodGet, http.MethodOptions} {
			req := httptest.NewRequest(method, "/v1/patients", nil)
			req.Header.Set("Origin", tc.from)
			if method == http.MethodOptions {
				req.Header.Set("Access-Control-Request-Method", "GET")
				req.Header.Set("Access-Control-Request-Headers", "authorization")
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != tc.allow {
				t.Errorf("origins %v, %s from %s: Access-Control-Allow-Origin %q, want %q", tc.origins, method, tc.from, got, tc.allow)
			}
		}
	}
	for _, bad := range []string{"*", "station.example", "https://station.example/path"} {
		if CheckOrigins([]string{bad}) == nil {
			t.Errorf("origin %q accepted", bad)
		}
	}
}
