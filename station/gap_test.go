package station_test

// Issue 25, situation 4: the station must never miss an alarm across a gap
// in its connection. Each case raises an alarm while the page cannot hear
// it (a hung network, a tab asleep, a restarted server) and then counts
// the page's open alarms against the server's, alarm id by alarm id.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/roles"
)

// hangProxy forwards TCP to target and can hang as a network does: while
// frozen it accepts connections and forwards nothing; once thawed, the
// connections opened during the hang go through (their packets were only
// late), while those open before it stay dead without a word, as after a
// NAT or a Wi-Fi access point lost them: no reset, no close, nothing.
type hangProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	cond   *sync.Cond
	frozen bool
	epoch  int // incremented by each freeze
	closed bool
	conns  []net.Conn
}

func newHangProxy(t *testing.T, target string) *hangProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &hangProxy{ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *hangProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *hangProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		born := p.epoch
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		go func() {
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, u)
			p.mu.Unlock()
			go p.pipe(u, c, born)
			p.pipe(c, u, born)
		}()
	}
}

// pipe copies from src to dst while the connection may pass.
func (p *hangProxy) pipe(dst, src net.Conn, born int) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.pass(born) {
				return // dead: neither forwarded nor closed
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if p.pass(born) {
				dst.Close()
			}
			return
		}
	}
}

// pass waits out a freeze and says whether a connection born in epoch
// born still forwards: not if a freeze began after it was opened.
func (p *hangProxy) pass(born int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.frozen && !p.closed {
		p.cond.Wait()
	}
	return !p.closed && born == p.epoch
}

func (p *hangProxy) freeze() {
	p.mu.Lock()
	p.frozen = true
	p.epoch++
	p.mu.Unlock()
}

func (p *hangProxy) thaw() {
	p.mu.Lock()
	p.frozen = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *hangProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	conns := p.conns
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// devAt runs `monitorme dev` on addr with its data in dir and the tokens
// of tokens (so that a restart keeps the station's sign-in), a ward of
// patients simulated. It returns when /readyz answers 200.
func devAt(t *testing.T, dir, addr, tokens string, patients int) (stop func()) {
	t.Helper()
	_, stop = runDev(t, addr, "--data-dir", dir, "--auth-token-file", tokens, "--patients", fmt.Sprint(patients))
	return stop
}

// openAlarmIDs lists the server's open alarms, as the station reads them.
func openAlarmIDs(t *testing.T, base, token string) []string {
	t.Helper()
	var body struct {
		Alarms []struct {
			AlertID string `json:"alert_id"`
		}
	}
	if code := call(t, http.MethodGet, base+"/v1/alarms?limit=500", token, "", &body); code != http.StatusOK {
		t.Fatalf("GET /v1/alarms: %d", code)
	}
	var ids []string
	for _, a := range body.Alarms {
		ids = append(ids, a.AlertID)
	}
	slices.Sort(ids)
	return ids
}

// postCritical posts an SpO2 of 65 % for patient from a device of its
// own and returns the alert id of the spo2_critical the server lists.
func postCritical(t *testing.T, base, token, patient string, seq int) string {
	t.Helper()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if code := call(t, http.MethodPost, base+"/v1/vitals", token, fmt.Sprintf(`[{"patient_id":%q,"device_id":"gap-ox","kind":"spo2","value":65,"unit":"%%","ts":%q,"seq":%d}]`, patient, now, seq), nil); code != http.StatusAccepted {
		t.Fatalf("post the critical reading: %d", code)
	}
	var id string
	testkit.Eventually(t, 10*time.Second, "the server lists the new alarm", func() bool {
		var body struct {
			Alarms []struct {
				AlertID   string `json:"alert_id"`
				Condition string
				Reading   struct {
					DeviceID string `json:"device_id"`
					Seq      int
				}
			}
		}
		call(t, http.MethodGet, base+"/v1/alarms?patient="+patient, token, "", &body)
		for _, a := range body.Alarms {
			if a.Condition == "spo2_critical" && a.Reading.DeviceID == "gap-ox" && a.Reading.Seq == seq {
				id = a.AlertID
				return true
			}
		}
		return false
	})
	return id
}

// samePageAlarms waits until the page holds exactly the server's open
// alarms (by id) and shows id in its list, and says how long that took.
func samePageAlarms(t *testing.T, ctx context.Context, base, token, id, what string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	poll(t, ctx, what+": the alarm on screen", fmt.Sprintf(`!!document.querySelector('#alarm-list li[data-alert=%q]') && document.querySelector("#lost").hidden`, id), within)
	took := time.Since(start)
	// Every alarm id: the page's open alarms are the server's (the
	// simulated ward keeps raising and resolving, so it may take a moment).
	var page, server []string
	testkit.Eventually(t, 10*time.Second, what+": the page's open alarms are the server's", func() bool {
		page = eval[[]string](t, ctx, `[...st.alarms.keys()].sort()`)
		server = openAlarmIDs(t, base, token)
		return slices.Equal(page, server)
	})
	return took
}

func chromeAt(t *testing.T, exe string) (context.Context, func()) {
	t.Helper()
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.WindowSize(1920, 1080), chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true))...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 5*time.Minute)
	return ctx, func() { cancelT(); cancel(); cancelA() }
}

func signIn(t *testing.T, ctx context.Context, url, token string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"/")); err != nil {
		t.Fatalf("open the station: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible("#login-token"), chromedp.SendKeys("#login-token", token)); err != nil {
		t.Fatalf("type the token: %v", err)
	}
	act(t, ctx, "sign in", chromedp.Click(`#login-form button[type="submit"]`))
	poll(t, ctx, "live", `document.querySelector("#lost").hidden`, 60*time.Second)
}

// The station behind a network that hangs for 20 s while a critical
// reading is posted straight to the server: the alarm is on screen within
// 5 s of the thaw. Before, it showed 25 s after the thaw in one run and not
// within 30 s in two others: the watchdog's new stream named no last event
// and the open alarms were not read again. Then a tab asleep while the
// network lost its connection: on waking, the same.
func TestStationAcrossAHungNetworkInChromium(t *testing.T) {
	exe := chromium(t)
	base, token, _ := dev(t, 3)
	proxy := newHangProxy(t, strings.TrimPrefix(base, "http://"))
	ctx, done := chromeAt(t, exe)
	defer done()
	signIn(t, ctx, proxy.url(), token)
	poll(t, ctx, "three beds", `document.querySelectorAll(".tile").length === 3`, 60*time.Second)

	proxy.freeze()
	id := postCritical(t, base, token, "P002", 1)
	poll(t, ctx, "the banner during the hang", `!document.querySelector("#lost").hidden && !document.querySelector("#alarms-incomplete").hidden`, 15*time.Second)
	time.Sleep(20*time.Second - 5*time.Second) // the rest of the hang
	proxy.thaw()
	took := samePageAlarms(t, ctx, base, token, id, "after the hung network", 5*time.Second)
	t.Logf("network hung 20 s → alarm on screen %v after the thaw", took.Round(time.Millisecond))

	// A tab asleep (frozen by the browser) while the network drops its
	// connection: on waking it connects again at once.
	if _, err := chromedp.Call(ctx, page.SetWebLifecycleState, page.SetWebLifecycleStateParams{State: page.SetWebLifecycleStateStateFrozen}); err != nil {
		t.Fatalf("freeze the tab: %v", err)
	}
	proxy.freeze() // the open stream dies without a word
	id2 := postCritical(t, base, token, "P003", 1)
	time.Sleep(2 * time.Second) // the tab sleeps on while the alarm is raised
	proxy.thaw()
	woken := time.Now()
	if _, err := chromedp.Call(ctx, page.SetWebLifecycleState, page.SetWebLifecycleStateParams{State: page.SetWebLifecycleStateStateActive}); err != nil {
		t.Fatalf("wake the tab: %v", err)
	}
	samePageAlarms(t, ctx, base, token, id2, "after the tab woke", 5*time.Second)
	t.Logf("tab woken → alarm on screen in %v", time.Since(woken).Round(time.Millisecond))
}

// The station across a restart of the server (same data, same tokens): an
// alarm raised in the first second after it comes back is on screen
// within 5 s, and the page's open alarms are the server's.
func TestStationAcrossAServerRestartInChromium(t *testing.T) {
	exe := chromium(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.yaml")
	var out, errb bytes.Buffer
	if code := roles.Run(context.Background(), []string{"token", "create", "--file", tokens, "--subject", "station-test", "--role", "admin"}, &out, &errb); code != 0 {
		t.Fatalf("token create: %d %s", code, errb.String())
	}
	token := strings.TrimSpace(regexp.MustCompile(`mm_\S+`).FindString(out.String()))
	addr := testkit.FreeAddr(t)
	base := "http://" + addr
	stop := devAt(t, filepath.Join(dir, "data"), addr, tokens, 3)
	ctx, done := chromeAt(t, exe)
	defer done()
	signIn(t, ctx, base, token)
	first := postCritical(t, base, token, "P002", 1)
	samePageAlarms(t, ctx, base, token, first, "before the restart", 10*time.Second)

	stop()
	poll(t, ctx, "the banner while the server is down", `!document.querySelector("#lost").hidden`, 20*time.Second)
	stop = devAt(t, filepath.Join(dir, "data"), addr, tokens, 3)
	defer stop()
	back := time.Now()
	id := postCritical(t, base, token, "P003", 1)
	took := samePageAlarms(t, ctx, base, token, id, "after the restart", 10*time.Second)
	t.Logf("server back → alarm of its first second on screen %v after it was listed (%v after ready)", took.Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("the alarm took %v to reach the screen after the restart", took)
	}
}
