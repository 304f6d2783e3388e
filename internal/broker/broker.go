// Package broker runs the embedded Kafka-protocol broker of `monitorme dev`:
// franz-go's kfake, persisted to a data directory so a restart keeps every
// reading and alert. It is a development and test broker: a single node
// without replication, so acks=all is only as durable as one disk.
//
// It runs its own log cleaner. kfake applies retention and compaction
// only from an hourly ticker that it starts when a topic is created, not
// when a data dir is loaded, so a broker restarted more often than hourly
// never deleted or compacted anything (a dev data dir grew 1.73 MB a
// minute with 20 patients). Here every start cleans once, before any
// client connects, and then every CleanInterval.
package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Config configures the embedded broker.
type Config struct {
	// DataDir holds the broker's logs and metadata; "" keeps everything in
	// memory (tests).
	DataDir string
	// Addr is the loopback address to listen on; port 0 picks a free one.
	Addr string
	// Partitions is the default partition count of auto-created topics.
	Partitions int
	// CleanInterval is how often retention (retention.ms) and compaction
	// (cleanup.policy=compact) run on every topic. Between those passes
	// a compacted partition is also compacted as soon as it grew by
	// compactDirtyBytes.
	CleanInterval time.Duration
	// SegmentBytes bounds a partition's log segment (no flag). Retention
	// deletes whole segments, and kfake's 100 MiB default would keep a
	// week-old reading on disk until 100 MiB of newer ones had followed
	// it in its partition.
	SegmentBytes int
}

// DefaultConfig returns the defaults the flag help names.
func DefaultConfig() Config {
	return Config{DataDir: ".monitorme/broker", Addr: "127.0.0.1:9092", Partitions: 12, CleanInterval: time.Minute, SegmentBytes: 8 << 20}
}

// RegisterFlags binds c to flags.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory the embedded broker persists to")
	fs.StringVar(&c.Addr, "broker-addr", c.Addr, "address the embedded broker listens on (loopback only; port 0 picks a free port)")
	fs.DurationVar(&c.CleanInterval, "broker-clean-interval", c.CleanInterval, "how often the embedded broker deletes records past retention and compacts compacted topics (also once at every start)")
}

// Validate refuses settings the embedded broker cannot honor.
func (c *Config) Validate() error {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("broker-addr: %w", err)
	}
	if host != "127.0.0.1" && host != "localhost" {
		return fmt.Errorf("broker-addr: %q: the embedded broker listens on 127.0.0.1 only", c.Addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("broker-addr: port %q: %w", port, err)
	}
	if c.SegmentBytes < 1<<10 {
		return fmt.Errorf("segment bytes: %d, want at least 1KiB", c.SegmentBytes)
	}
	if c.CleanInterval < time.Second || c.CleanInterval > time.Hour {
		return fmt.Errorf("broker-clean-interval: %v, want 1s to 1h", c.CleanInterval)
	}
	return nil
}

// Broker is a running embedded broker.
type Broker struct {
	c    *kfake.Cluster
	lock *os.File

	stop    chan struct{}
	cleaner sync.WaitGroup
}

// ErrDataDirInUse is returned when another process holds the data dir.
var ErrDataDirInUse = errors.New("data dir in use by another process")

// Start starts the broker, reloading whatever DataDir holds.
func Start(cfg Config, log *slog.Logger) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	_, portStr, _ := net.SplitHostPort(cfg.Addr)
	port, _ := strconv.Atoi(portStr)
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ClusterID("monitorme-dev"),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.BrokerConfigs(map[string]string{"log.segment.bytes": strconv.Itoa(cfg.SegmentBytes)}),
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	lock, err := lockDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		unlock(lock)
		return nil, fmt.Errorf("start embedded broker on %s: %w (is the port taken? choose another with --broker-addr, or use running brokers with --brokers)", cfg.Addr, err)
	}
	b := &Broker{c: c, lock: lock, stop: make(chan struct{})}
	// Clean before anything reads: the processor restores its state from
	// the compacted changelog, not from everything written since the
	// last clean.
	start := time.Now()
	b.Clean()
	log.Debug("embedded broker started", "addrs", c.ListenAddrs(), "data_dir", cfg.DataDir, "first_clean", time.Since(start))
	b.cleaner.Go(func() {
		t := time.NewTicker(cfg.CleanInterval)
		defer t.Stop()
		dirty := time.NewTicker(time.Second)
		defer dirty.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				b.Clean()
			case <-dirty.C:
				b.c.CompactEach(compactDirtyBytes, false)
			}
		}
	})
	return b, nil
}

// compactDirtyBytes is how much a compacted partition may grow before it
// is compacted between full cleans. A partition's compaction holds the
// broker while it reads the partition (twice, decompressing), and its
// cost grows with what was written since the last: at 50,000 readings/s
// a minute's changelog made passes that stalled every request for 7-17
// s. 4 MiB is a few hundred milliseconds of a busy partition and a short
// turn; the clean part it re-reads is one snapshot per patient.
const compactDirtyBytes = 4 << 20

// Clean applies every topic's retention.ms and compacts every topic whose
// cleanup.policy is compact, now: a partition at a time, serving requests
// in between (kfake's one pass over every partition stalled the platform
// for 12 s at 50,000 readings/s; third_party/kfake/README.md).
func (b *Broker) Clean() { b.c.CompactEach(0, true) }

// lockDir takes an exclusive lock on dir, because two brokers writing one
// data dir would corrupt it. The kernel drops the lock when the process
// dies, so a crash never leaves it stale.
func lockDir(dir string) (*os.File, error) {
	if dir == "" {
		return nil, nil
	}
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s (is another monitorme dev running?)", ErrDataDirInUse, dir)
	}
	return f, nil
}

func unlock(f *os.File) {
	if f != nil {
		f.Close()
	}
}

// Addrs returns the addresses clients should use as seeds.
func (b *Broker) Addrs() []string { return b.c.ListenAddrs() }

// Close stops the broker and writes its state to the data dir.
func (b *Broker) Close() {
	close(b.stop)
	b.cleaner.Wait()
	b.c.Close()
	unlock(b.lock)
}
