package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/schemas"
)

// e. `monitorme dev` SIGKILLed repeatedly while readings are posted: the
// embedded broker restarts on its data dir each time, and afterwards every
// acknowledged reading is there once and every alert it raised is there
// exactly once under read_committed.
func TestDevSurvivesSIGKILL(t *testing.T) {
	need(t)
	plaintextOnly(t)
	start := time.Now()
	dir := t.TempDir()
	brokerAddr, httpAddr := freeAddr(t), freeAddr(t)
	devArgs := []string{"dev", "--data-dir", dir, "--broker-addr", brokerAddr, "--http-addr", httpAddr, "--no-simulator", "--log-level", "warn", "--rules", "threshold", "--auth-token-file", apiTokens}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	res := newLoadResult()
	var sentAll []schemas.Reading
	seq := uint64(1)
	const kills = 6
	for k := range kills {
		dev := startRole(t, "dev", devArgs...)
		waitReady(t, httpAddr, 60*time.Second)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				b := readings("e", seq, 200)
				seq += 200
				sentAll = append(sentAll, b...)
				mu.Unlock()
				status, err := post(client, httpAddr, b)
				if err != nil {
					status = -1
				}
				res.add(b, status)
			}
		})
		// Run until a random amount more was acknowledged (about 1.5–4 s
		// at this machine's rate), then crash mid-load.
		target := res.ackedCount() + 20_000 + 200*rng.IntN(150)
		testkit.Eventually(t, 2*time.Minute, "readings acknowledged before the kill", func() bool { return res.ackedCount() >= target })
		dev.kill()
		close(stop)
		wg.Wait()
		t.Logf("SIGKILLed monitorme dev (%d of %d); %d readings acknowledged so far", k+1, kills, len(res.acked))
	}

	dev := startRole(t, "dev", devArgs...)
	waitReady(t, httpAddr, 60*time.Second)
	seeds := []string{brokerAddr}
	adm := kadm.NewClient(testkit.SeedClient(t, seeds))
	testkit.Eventually(t, 3*time.Minute, "the restarted processor caught up", func() bool {
		lag, err := kafka.GroupLag(context.Background(), adm, "alerting", "vitals.v1")
		return err == nil && lag == 0
	})

	// Readings: every acknowledged one, once.
	got := countReadings(t, seeds, "vitals.v1")
	missing, dups := 0, 0
	for s := range res.acked {
		if got[s] == 0 {
			missing++
		}
	}
	for _, n := range got {
		if n > 1 {
			dups += n - 1
		}
	}
	// Alerts: one for every alert-worthy reading that is in the topic
	// (acknowledged ones must be; an unacknowledged one may be), none
	// twice, none for a reading that is not there.
	present := make([]schemas.Reading, 0, len(got))
	for _, r := range sentAll {
		if got[r.Seq] > 0 {
			present = append(present, r)
		}
	}
	c := checkAlerts(expectedAlerts(present), countAlerts(t, seeds, "alerts.v1"))
	if missing > 0 || dups > 0 {
		t.Errorf("readings: %d acknowledged missing, %d duplicated", missing, dups)
		logDuplicates(t, seeds, "vitals.v1", readingIdent)
	}
	if c.missing+c.dups+c.unexpected > 0 {
		t.Errorf("alerts: want %d exactly once; missing %d, duplicates %d, unexpected %d", c.want, c.missing, c.dups, c.unexpected)
		logDuplicates(t, seeds, "alerts.v1", alertIdent)
	}
	if code := dev.stop(t); code != 0 {
		t.Errorf("dev exited %d on SIGTERM", code)
	}
	t.Logf("statuses %v", res.statuses)
	record(row{name: "e. monitorme dev SIGKILLed while ingesting", sent: len(sentAll), acked: len(res.acked), found: len(res.acked) - missing, dups: dups + c.dups,
		alertsWant: c.want, alertsFound: c.found, kills: fmt.Sprintf("%d dev", kills), elapsed: time.Since(start), result: result(t)})
}
