package producers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/monitorme/monitorme/internal/auth"
	"github.com/monitorme/monitorme/internal/auth/authtest"
	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/internal/web"
	"github.com/monitorme/monitorme/schemas"
)

type ingestEnv struct {
	c   *kfake.Cluster
	kc  kafka.Config
	url string
}

func newIngestEnv(t *testing.T, pc ProducerConfig, ic IngestConfig, mw ...echo.MiddlewareFunc) *ingestEnv {
	t.Helper()
	c, kc := testkit.CreateCluster(t, 6)
	tel := telemetry.Nop()
	p, err := NewProducer(pc, kc, tel)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	in, err := NewIngest(ic, p, slog.New(slog.DiscardHandler), tel.MeterProvider)
	if err != nil {
		t.Fatal(err)
	}
	e := web.New(slog.New(slog.DiscardHandler), tel)
	e.Use(mw...)
	in.Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &ingestEnv{c: c, kc: kc, url: srv.URL + "/v1/vitals"}
}

func post(t *testing.T, url, contentType string, body []byte, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func batch(n int, start time.Time) []schemas.Reading {
	var rs []schemas.Reading
	for i := range n {
		rs = append(rs, schemas.Reading{PatientID: fmt.Sprintf("patient-%d", i%17), DeviceID: fmt.Sprintf("dev-%d", i%17), Kind: schemas.SpO2,
			Value: float64(90 + i%10), Unit: "%", TS: start.Add(time.Duration(i) * time.Millisecond), Seq: uint64(i)})
	}
	return rs
}

// A 202 means every reading is on the topic, keyed by patient, on the
// partition Kafka's own murmur2 partitioner would pick.
func TestAcceptedMeansReadable(t *testing.T) {
	env := newIngestEnv(t, DefaultProducerConfig(), DefaultIngestConfig())
	rs := batch(300, time.Now().UTC().Add(-time.Minute))
	body, _ := json.Marshal(rs[:200])
	resp, b := post(t, env.url, "application/json", body)
	if resp.StatusCode != http.StatusAccepted || string(b) != `{"accepted":200}`+"\n" {
		t.Fatalf("json batch: %d %s", resp.StatusCode, b)
	}
	var nd bytes.Buffer
	for _, r := range rs[200:] {
		line, _ := json.Marshal(r)
		nd.Write(line)
		nd.WriteByte('\n')
	}
	if resp, b := post(t, env.url, "application/x-ndjson", nd.Bytes()); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("ndjson batch: %d %s", resp.StatusCode, b)
	}

	recs := testkit.ReadAll(t, env.c, env.kc.Topics.Vitals, kgo.ReadCommitted())
	if len(recs) != len(rs) {
		t.Fatalf("read %d records, accepted %d", len(recs), len(rs))
	}
	want := map[uint64]schemas.Reading{}
	for _, r := range rs {
		want[r.Seq] = r
	}
	for _, rec := range recs {
		r, err := schemas.DecodeReading(rec)
		if err != nil {
			t.Fatal(err)
		}
		w, ok := want[r.Seq]
		if !ok || !r.TS.Equal(w.TS) || r.Value != w.Value || r.PatientID != w.PatientID {
			t.Fatalf("record %+v does not match an accepted reading (or is a duplicate)", r)
		}
		delete(want, r.Seq)
		if string(rec.Key) != r.PatientID || schemas.Header(rec, schemas.HeaderSchema) != schemas.ReadingV1 {
			t.Fatalf("record key %q / schema header %q", rec.Key, schemas.Header(rec, schemas.HeaderSchema))
		}
		if p := int32(murmur2(rec.Key)&0x7fffffff) % env.kc.Partitions; rec.Partition != p {
			t.Fatalf("patient %s on partition %d, Kafka's partitioner says %d", rec.Key, rec.Partition, p)
		}
	}
}

func TestInvalidRequestsProduceNothing(t *testing.T) {
	ic := DefaultIngestConfig()
	ic.BodyLimit = "2K"
	env := newIngestEnv(t, DefaultProducerConfig(), ic)
	good, _ := json.Marshal(batch(1, time.Now().UTC()))
	mixed := `[` + string(good[1:len(good)-1]) + `,{"patient_id":"P1","device_id":"D1","kind":"heart_rate","value":72,"unit":"bpm","ts":"2026-01-01T09:00:00Z","seq":1}]`
	ahead, _ := json.Marshal(batch(1, time.Now().UTC().Add(time.Hour)))
	tests := []struct {
		name, contentType, body string
		status                  int
		detail                  string
	}{
		{"one bad item rejects the batch", "application/json", mixed, 400, "nothing of it was accepted"},
		// Valid by the document (issue 26): no schema can say "now".
		{"a reading ahead of the clock conflicts", "application/json", string(ahead), 409, "set the device's clock"},
		{"not an array", "application/json", `{"a":1}`, 400, "JSON array"},
		{"empty", "application/json", `[]`, 400, "empty"},
		{"too large", "application/json", "[" + strings.Repeat(string(good[1:len(good)-1])+",", 20) + string(good[1:]), 413, "larger than the limit"},
		{"wrong media type", "text/plain", string(good), 415, "application/json"},
		{"no media type", "", string(good), 415, "Content-Type is missing"},
		{"two readings on one NDJSON line", "application/x-ndjson", string(good[1:len(good)-1]) + string(good[1:len(good)-1]), 400, "nothing of it was accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := post(t, env.url, tt.contentType, []byte(tt.body))
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			var p web.Problem
			if err := json.Unmarshal(b, &p); err != nil || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("not a problem document: %s", b)
			}
			if !strings.Contains(p.Detail, tt.detail) {
				t.Fatalf("detail %q does not say %q", p.Detail, tt.detail)
			}
			if tt.status == 400 && tt.name == "one bad item rejects the batch" {
				if len(p.Errors) != 1 || p.Errors[0].Index != 1 || p.Errors[0].Field != "unit" {
					t.Fatalf("errors %+v, want index 1 field unit", p.Errors)
				}
			}
			if tt.name == "two readings on one NDJSON line" {
				if len(p.Errors) != 1 || p.Errors[0].Line != 1 || !strings.Contains(p.Errors[0].Reason, "data after the reading") {
					t.Fatalf("errors %+v, want line 1 with data after the reading", p.Errors)
				}
			}
		})
	}
	if recs := testkit.ReadAll(t, env.c, env.kc.Topics.Vitals, kgo.ReadUncommitted()); len(recs) != 0 {
		t.Fatalf("rejected requests produced %d records", len(recs))
	}
}

// failProduce makes the broker answer every produce with
// NOT_ENOUGH_REPLICAS, as a real cluster does with too few brokers in sync
// (kfake cannot lose replicas on its own).
func failProduce(c *kfake.Cluster) (stop func()) {
	on := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		select {
		case <-on:
			return nil, nil, false
		default:
		}
		req := kreq.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			st.TopicID = rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	return func() { close(on) }
}

func TestBrokerUnavailableAnswers503ThenRecovers(t *testing.T) {
	pc := DefaultProducerConfig()
	pc.DeliveryTimeout = time.Second
	env := newIngestEnv(t, pc, DefaultIngestConfig())
	stop := failProduce(env.c)
	body, _ := json.Marshal(batch(10, time.Now().UTC()))
	resp, b := post(t, env.url, "application/json", body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "retry the whole batch") {
		t.Fatalf("want 503 with Retry-After, got %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	stop()
	if resp, b := post(t, env.url, "application/json", body); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("after recovery: %d %s", resp.StatusCode, b)
	}
	if recs := testkit.ReadAll(t, env.c, env.kc.Topics.Vitals, kgo.ReadCommitted()); len(recs) != 10 {
		t.Fatalf("%d records after one accepted batch of 10", len(recs))
	}
}

func TestFullBufferAnswers503(t *testing.T) {
	pc := DefaultProducerConfig()
	pc.DeliveryTimeout = time.Second
	pc.MaxBuffered = 3
	env := newIngestEnv(t, pc, DefaultIngestConfig())
	defer failProduce(env.c)()
	body, _ := json.Marshal(batch(10, time.Now().UTC()))
	resp, b := post(t, env.url, "application/json", body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(b), "buffer is full") {
		t.Fatalf("want 503 buffer full, Retry-After 1; got %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
}

// The trace a device starts continues into the record: the vitals record
// carries the request's trace id in its traceparent header.
func TestTraceContextReachesTheRecord(t *testing.T) {
	env := newIngestEnv(t, DefaultProducerConfig(), DefaultIngestConfig())
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	body, _ := json.Marshal(batch(1, time.Now().UTC()))
	resp, b := post(t, env.url, "application/json", body, "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	recs := testkit.ReadAll(t, env.c, env.kc.Topics.Vitals, kgo.ReadCommitted())
	if tp := schemas.Header(recs[0], "traceparent"); !strings.Contains(tp, traceID) {
		t.Fatalf("record traceparent %q does not continue trace %s", tp, traceID)
	}
}

// murmur2 is Kafka's Utils.murmur2, written out independently of kgo so
// the partitioning test checks kgo against Kafka, not against itself.
func murmur2(data []byte) int32 {
	const seed, m, r = uint32(0x9747b28c), uint32(0x5bd1e995), 24
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

func TestMurmur2MatchesKafka(t *testing.T) {
	// Vectors from Kafka's UtilsTest.testMurmur2.
	for s, want := range map[string]int32{
		"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536,
		"a-little-bit-longer-string": -1486304829, "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, "abc": 479470107,
	} {
		if got := murmur2([]byte(s)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", s, got, want)
		}
	}
}

// A produce request the broker never answers (a broker that died with the
// request in flight) cannot be failed by the idempotent producer; the
// request still gets a 503 once the ack timeout passes.
func TestUnansweredProduceAnswers503AtTheAckTimeout(t *testing.T) {
	pc := DefaultProducerConfig()
	pc.DeliveryTimeout = time.Minute
	ic := DefaultIngestConfig()
	ic.AckTimeout = time.Second
	env := newIngestEnv(t, pc, ic)
	release := make(chan struct{})
	env.c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		env.c.KeepControl()
		env.c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	t.Cleanup(func() { close(release) })
	body, _ := json.Marshal(batch(10, time.Now().UTC()))
	resp, b := post(t, env.url, "application/json", body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "in time") {
		t.Fatalf("want 503 'not acknowledged in time', got %d %s", resp.StatusCode, b)
	}
}

func TestIngestConfigBodyLimit(t *testing.T) {
	for limit, ok := range map[string]bool{"4MiB": true, "512KiB": true, "4M": true, "1KiB": true, "": false, "lots": false, "12": false, "-1M": false} {
		c := DefaultIngestConfig()
		c.BodyLimit = limit
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("%q: %v", limit, err)
		}
	}
}

// A device token bound to its monitors posts for them only: a batch with
// another device's reading is refused whole (403), and nothing of it is
// on the topic.
func TestDeviceTokenPostsForItsDevicesOnly(t *testing.T) {
	_, a, tokens := authtest.Tokens(t,
		auth.TokenEntry{Subject: "gw-icu", Roles: []string{"device"}, Devices: []string{"dev-1", "dev-2"}},
		auth.TokenEntry{Subject: "nurse-7", Roles: []string{"clinician"}})
	gw, nurse := tokens[0], tokens[1]
	env := newIngestEnv(t, DefaultProducerConfig(), DefaultIngestConfig(), a.Middleware())
	rs := batch(3, time.Now().UTC().Add(-time.Minute)) // dev-0, dev-1, dev-2
	body, _ := json.Marshal(rs)
	for _, tc := range []struct {
		name, token string
		body        []byte
		want        int
		contains    string
	}{
		{"no token", "", body, 401, "needs a token"},
		{"a clinician", nurse, body, 403, "needs role device"},
		{"another device in the batch", gw, body, 403, `"index":0,"field":"device_id","reason":"\"dev-0\" is not a device of this token"`},
	} {
		var hdr []string
		if tc.token != "" {
			hdr = []string{"Authorization", "Bearer " + tc.token}
		}
		resp, b := post(t, env.url, "application/json", tc.body, hdr...)
		if resp.StatusCode != tc.want || !strings.Contains(string(b), tc.contains) {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, resp.StatusCode, b, tc.want, tc.contains)
		}
	}
	own, _ := json.Marshal(rs[1:])
	if resp, b := post(t, env.url, "application/json", own, "Authorization", "Bearer "+gw); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("its own devices: %d %s", resp.StatusCode, b)
	}
	recs := testkit.ReadAll(t, env.c, env.kc.Topics.Vitals, kgo.ReadCommitted())
	if len(recs) != 2 {
		t.Fatalf("%d readings on the topic, want the 2 of the accepted batch", len(recs))
	}
}

// --ingest-body-limit's notation, as echo's was (gommon parsed it before).
func TestParseSize(t *testing.T) {
	for s, want := range map[string]int64{"1024": 1024, "512KiB": 512 << 10, "4MiB": 4 << 20, "4Mi": 4 << 20, "4M": 4_000_000, "4MB": 4_000_000,
		"2K": 2000, "1GiB": 1 << 30, "1g": 1e9, "100B": 100} {
		if n, err := ParseSize(s); err != nil || n != want {
			t.Errorf("%s: %d %v, want %d", s, n, err, want)
		}
	}
	for _, s := range []string{"", "MiB", "4 lots", "-1K", "4TiB", "1.5MB", "99999999999GiB"} {
		if n, err := ParseSize(s); err == nil {
			t.Errorf("%s: %d, want an error", s, n)
		}
	}
}
