package roles

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/testkit"
)

// replay --diff --fail-on-diff exits 3 when the replayed alarms differ
// from the recorded ones (here no processor ever ran, so every alarm is
// added), 0 without --fail-on-diff; --to-topic writes the replayed events
// to a sandbox topic.
func TestReplayExitCodesAndSandbox(t *testing.T) {
	c, kc := testkit.CreateCluster(t, 4)
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	recs := testkit.WardInput("R", start, 4)
	for _, r := range recs {
		r.Topic = kc.Topics.Vitals
	}
	if err := testkit.Client(t, c, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil))).ProduceSync(testkit.Context(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), append([]string{"replay", "--brokers", strings.Join(c.ListenAddrs(), ","),
			"--from", start.Add(5 * time.Minute).Format(time.RFC3339), "--to", start.Add(25 * time.Minute).Format(time.RFC3339)}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := run("--diff", "--fail-on-diff")
	if code != 3 || !strings.Contains(out, "0 the same") || !strings.Contains(errOut, "the alarms differ") {
		t.Fatalf("--fail-on-diff with differences: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := run("--diff", "--format", "jsonl"); code != 0 || !strings.Contains(out, `"kind":"added"`) || !strings.Contains(out, `"summary":true`) {
		t.Fatalf("--diff without --fail-on-diff: exit %d\n%s", code, out)
	}
	// --against-rules-file compares two replays: the same rules are the
	// same alarms (exit 0 with --fail-on-diff); an SpO2 limit of 80 %
	// removes spo2_low alarms (exit 3). Before (issue 27), untested.
	dir := t.TempDir()
	same, lower := filepath.Join(dir, "same.yaml"), filepath.Join(dir, "lower.yaml")
	if os.WriteFile(same, []byte("defaults: {}\n"), 0o600) != nil || os.WriteFile(lower, []byte("defaults:\n  conditions:\n    spo2_low: {limit: 80}\n"), 0o600) != nil {
		t.Fatal("write rules files")
	}
	if code, out, errOut := run("--rules-file", same, "--against-rules-file", same, "--diff", "--fail-on-diff"); code != 0 || !strings.Contains(out, " 0 added, 0 removed, 0 shifted, 0 changed") {
		t.Fatalf("the same rules against themselves: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := run("--rules-file", lower, "--against-rules-file", same, "--diff", "--fail-on-diff", "--format", "jsonl"); code != 3 || !strings.Contains(out, `"condition":"spo2_low"`) {
		t.Fatalf("a lower SpO2 limit against the defaults: exit %d\n%s", code, out)
	}
	code, out, errOut = run("--to-topic", "sandbox.alerts", "--format", "jsonl")
	if code != 0 || !strings.Contains(errOut, "written to sandbox.alerts") {
		t.Fatalf("--to-topic: exit %d %s", code, errOut)
	}
	lines := strings.Count(out, "\n")
	if got := len(testkit.ReadAll(t, c, "sandbox.alerts", kgo.ReadCommitted())); got != lines || got == 0 {
		t.Fatalf("sandbox topic holds %d events, replay printed %d", got, lines)
	}
}
