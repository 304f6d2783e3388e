package producers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/monitorme/monitorme/schemas"
)

// ErrRejected is returned by HTTPSender when ingest refused the batch as
// invalid: sending it again cannot help.
var ErrRejected = errors.New("ingest rejected the batch")

// HTTPSender posts batches to an ingest API, as a bedside gateway would.
type HTTPSender struct {
	URL    string // base URL, e.g. http://127.0.0.1:8080
	Client *http.Client
	// Token, when set, is sent as the bearer token: a device token.
	Token string
}

// Send posts rs to /v1/vitals and returns nil on 202.
func (h *HTTPSender) Send(ctx context.Context, rs []schemas.Reading) error {
	body, err := json.Marshal(rs)
	if err != nil {
		return fmt.Errorf("encode batch: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(h.URL, "/")+"/v1/vitals", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	cl := h.Client
	if cl == nil {
		cl = http.DefaultClient
	}
	resp, err := cl.Do(req)
	if err != nil {
		return fmt.Errorf("post vitals: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusAccepted:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return fmt.Errorf("%w: %s: %s", ErrRejected, resp.Status, msg)
	}
	return fmt.Errorf("post vitals: %s: %s", resp.Status, msg)
}

// ProducerSender sends straight to the broker, for benchmarks and for a
// simulator that runs beside the brokers.
type ProducerSender struct{ P *Producer }

// Send produces rs and waits for their acknowledgement.
func (p ProducerSender) Send(ctx context.Context, rs []schemas.Reading) error {
	return p.P.Produce(ctx, rs)
}
