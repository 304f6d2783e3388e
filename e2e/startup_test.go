package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// h. Roles started the moment their topics are created: three processors
// and an ingest server start together on topics no broker knows yet. Each
// role creates what is missing, and a topic just created is unknown to the
// brokers that have not yet learnt it (UNKNOWN_TOPIC_OR_PARTITION, which
// ended `monitorme process` at start in issue 18's measurement): every
// role must wait for it and become ready, none may exit.
func TestRolesStartWhileTheirTopicsAreCreated(t *testing.T) {
	need(t)
	plaintextOnly(t)
	start := time.Now()
	_, flags := topicFlags(fmt.Sprintf("e2e-h%d", time.Now().UnixNano()%1_000_000))
	type role struct {
		p    *proc
		addr string
	}
	var (
		mu    sync.Mutex
		roles []role
		wg    sync.WaitGroup
	)
	for i := range 4 {
		wg.Go(func() {
			addr := freeAddr(t)
			name, args := "process", []string{"process", "--group", "e2e-h", "--rules", "threshold"}
			if i == 3 {
				name, args = "ingest", append([]string{"ingest"}, authFlags()...)
			}
			args = append(append(args, "--brokers", strings.Join(brokers, ","), "--http-addr", addr), flags...)
			p := startRole(t, name, args...)
			mu.Lock()
			roles = append(roles, role{p, addr})
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, r := range roles {
		waitReady(t, r.addr, 60*time.Second)
		if r.p.exited.Load() {
			t.Errorf("%s exited at start (its log is in e2e/.out/logs)", r.p.name)
		}
	}
	for _, r := range roles {
		if code := r.p.stop(t); code != 0 {
			t.Errorf("%s exited %d on SIGTERM", r.p.name, code)
		}
	}
	record(row{name: "h. 3 processors and ingest started together on topics not yet created", kills: "-", elapsed: time.Since(start), result: result(t)})
}
