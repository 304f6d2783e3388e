package processors

// The processor's readiness: ready means acting on readings as they come,
// every vitals partition it was given restored and caught up with its
// backlog. The group's callbacks keep the assignment; the transaction
// loop marks a partition live when an end-offset check finds it caught up.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// assignment is a vitals partition given to the processor: since when,
// and whether an end-offset check made after that found it caught up.
type assignment struct {
	since time.Time
	live  bool
}

// Ready reports, for /readyz, whether the processor acts on readings as
// they come: it joined its group, restored the state of every partition
// it was given, and caught up with each partition's backlog. Before, it
// said ready once the state was restored, while a backlog of readings (a
// restart after downtime, a partition moved to it) still waited: an alarm
// posted in that first second came seconds later.
func (p *Processor) Ready(context.Context) error {
	if !p.ready.Load() {
		return errors.New("processor: joining the group and restoring partition state")
	}
	p.assignedMu.Lock()
	defer p.assignedMu.Unlock()
	var behind []int32
	for part, a := range p.assigned {
		if !a.live {
			behind = append(behind, part)
		}
	}
	if len(behind) > 0 {
		slices.Sort(behind)
		return fmt.Errorf("processor: catching up with the backlog of vitals partitions %v", behind)
	}
	return nil
}

// assign and unassign keep p.assigned as the group moves partitions.
func (p *Processor) assign(parts []int32) {
	p.assignedMu.Lock()
	defer p.assignedMu.Unlock()
	if p.assigned == nil {
		p.assigned = map[int32]*assignment{}
	}
	now := time.Now()
	// A handler without timers keeps no clock and asks for no end
	// offsets: it acts on each record as it comes, restored or not.
	_, timed := p.h.(Timed)
	for _, part := range parts {
		if _, ok := p.assigned[part]; !ok {
			p.assigned[part] = &assignment{since: now, live: !timed}
		}
	}
}

func (p *Processor) unassign(parts []int32) {
	p.assignedMu.Lock()
	defer p.assignedMu.Unlock()
	for _, part := range parts {
		delete(p.assigned, part)
	}
}

// caughtUp marks live the assigned partitions that the end-offset check
// made at checked found caught up, if it was made after they were given.
func (p *Processor) caughtUp(checked time.Time, caught map[int32]bool) {
	p.assignedMu.Lock()
	defer p.assignedMu.Unlock()
	for part, a := range p.assigned {
		if !a.live && caught[part] && !checked.Before(a.since) {
			a.live = true
		}
	}
}
