package kfake

import (
	"context"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A crash between the COMMIT markers of one EndTxn tore the transaction:
// committed on the partitions that had their marker, aborted on the
// others, its offsets never committed (a consumer-transform-producer then
// processed its input again: duplicates). The commit is now decided in
// pids.log before the first marker and rolled forward on load. This test
// copies the data dir right after the first marker, as a SIGKILL would
// leave it, and loads the copy.
func TestCrashBetweenMarkersRollsTheCommitForward(t *testing.T) {
	dir, crashed := t.TempDir(), t.TempDir()
	c, err := NewCluster(DataDir(dir), NumBrokers(1), SeedTopics(2, "out"), SeedTopics(1, "in"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("torn"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := range int32(2) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "out", Partition: p, Value: []byte("alert")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	aot := kmsg.NewPtrAddOffsetsToTxnRequest()
	aot.TransactionalID, aot.ProducerID, aot.ProducerEpoch, aot.Group = "torn", pid, epoch, "g"
	if resp, err := aot.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v %+v", err, resp)
	}
	toc := kmsg.NewPtrTxnOffsetCommitRequest()
	toc.TransactionalID, toc.ProducerID, toc.ProducerEpoch, toc.Group, toc.Generation = "torn", pid, epoch, "g", -1
	tt := kmsg.NewTxnOffsetCommitRequestTopic()
	tt.Topic, tt.TopicID = "in", c.TopicInfo("in").TopicID
	tp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	tp.Partition, tp.Offset, tp.LeaderEpoch = 0, 5, -1
	tt.Partitions = append(tt.Partitions, tp)
	toc.Topics = append(toc.Topics, tt)
	if resp, err := toc.RequestWith(ctx, cl); err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("TxnOffsetCommit: %v %+v", err, resp)
	}
	var once sync.Once
	testHookAfterMarker = func() { once.Do(func() { copyTree(t, dir, crashed) }) }
	defer func() { testHookAfterMarker = nil }()
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	c.Close()

	// The crashed copy: both records committed, and the offset.
	c2, err := NewCluster(DataDir(crashed), NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	rd, err := kgo.NewClient(kgo.SeedBrokers(c2.ListenAddrs()...), kgo.ConsumeTopics("out"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	got := map[int32]int{}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && len(got) < 2 {
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		rd.PollFetches(pctx).EachRecord(func(r *kgo.Record) { got[r.Partition]++ })
		pcancel()
	}
	if got[0] != 1 || got[1] != 1 {
		t.Errorf("after the crash, committed records by partition: %v, want one on each (the transaction was torn)", got)
	}
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Group = "g"
	ot := kmsg.NewOffsetFetchRequestTopic()
	ot.Topic, ot.Partitions = "in", []int32{0}
	of.Topics = append(of.Topics, ot)
	resp, err := of.RequestWith(ctx, rd)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || resp.Topics[0].Partitions[0].Offset != 5 {
		t.Errorf("after the crash, the group's offset: %+v, want 5", resp.Topics)
	}
}

// copyTree copies dir to dst as it is at this moment.
func copyTree(t *testing.T, dir, dst string) {
	err := filepath.WalkDir(dir, func(path string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(to)
		if err != nil {
			return err
		}
		defer out.Close()
		_, err = io.Copy(out, in)
		return err
	})
	if err != nil {
		t.Errorf("copy the data dir: %v", err)
	}
}
