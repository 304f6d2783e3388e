// Package once holds the rule every long-running component keeps (the
// processor, the sink, the API's live view, the simulator): Run runs
// once, and a second call is ErrRunTwice. Before (issue 27), each of the
// four defined its own ErrRunTwice.
package once

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrRunTwice is returned by a second call of a component's Run: its
// consumer, its state or its clients belong to the first.
var ErrRunTwice = errors.New("run called twice: a component runs once")

// Guard admits one Run.
type Guard struct{ ran atomic.Bool }

// Start returns nil the first time, ErrRunTwice (naming what) after.
func (g *Guard) Start(what string) error {
	if !g.ran.CompareAndSwap(false, true) {
		return fmt.Errorf("%s: %w", what, ErrRunTwice)
	}
	return nil
}
