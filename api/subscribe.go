package api

// The live view's subscribers: each SSE stream's bounded queue, what a
// slow reader skips, and the backlog a reconnect resumes from.

// broadcast hands ev to matching subscribers without ever blocking: a
// subscriber whose buffer is full is disconnected. Called with mu held.
func (l *Live) broadcast(ev *Event) {
	if n := l.cfg.ResumeEvents; n > 0 {
		if len(l.recent) < n {
			l.recent = append(l.recent, ev)
		} else {
			l.recent[l.recentHead] = ev
			l.recentHead = (l.recentHead + 1) % n
		}
	}
	for s := range l.subs {
		// Every event applied after the subscription began is delivered,
		// however old its record's timestamp: an alarm the processor
		// raised late (a reading buffered through an outage, a
		// transaction retried) was dropped when it was stamped more than
		// a second before the stream began.
		if !s.filter.match(ev) {
			continue
		}
		if ev.Type == "vital" {
			select {
			case s.vitals <- ev:
			default:
				s.skipped.Add(1)
			}
			continue
		}
		select {
		case s.ch <- ev:
		default:
			l.drop(s)
		}
	}
}

func (l *Live) drop(s *subscriber) {
	if !s.closed {
		s.closed = true
		close(s.ch)
		delete(l.subs, s)
	}
}

func (l *Live) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := range l.subs {
		l.drop(s)
	}
}

// Subscription is one live stream's share of the events.
type Subscription struct {
	// Events carries the alert and placement events; it is closed when
	// the subscriber let it fill, or the view stops.
	Events <-chan *Event
	// Vitals carries the readings; a full buffer skips them (Skipped).
	Vitals <-chan *Event
	s      *subscriber
	l      *Live
}

// Skipped returns how many readings were skipped since the last call
// because the subscriber's buffer was full.
func (sub *Subscription) Skipped() int64 { return sub.s.skipped.Swap(0) }

// Cancel ends the subscription.
func (sub *Subscription) Cancel() {
	sub.l.mu.Lock()
	sub.l.drop(sub.s)
	sub.l.mu.Unlock()
}

// Subscribe subscribes to the live events of patient ("" for all): every
// event the view applies after the call.
func (l *Live) Subscribe(patient string) *Subscription {
	sub, _, _ := l.SubscribeAfter(Filter{Patient: patient}, "")
	return sub
}

// SubscribeAfter is Subscribe for a stream that reconnects: backlog are
// the events f selects after the one with id lastID, then the
// subscription carries what follows, with nothing lost or doubled between
// them. found is false when lastID is not among the recent events (too
// old, or unknown): the client must read the current state again.
func (l *Live) SubscribeAfter(f Filter, lastID string) (sub *Subscription, backlog []*Event, found bool) {
	s := &subscriber{filter: f,
		ch: make(chan *Event, l.cfg.SubscriberBuffer), vitals: make(chan *Event, l.cfg.SubscriberBuffer)}
	l.mu.Lock()
	if lastID != "" {
		n := len(l.recent)
		for i := n - 1; i >= 0; i-- { // newest first
			if l.recent[(l.recentHead+i)%n].ID != lastID {
				continue
			}
			found = true
			for j := i + 1; j < n; j++ {
				if ev := l.recent[(l.recentHead+j)%n]; f.match(ev) {
					backlog = append(backlog, ev)
				}
			}
			break
		}
	}
	l.subs[s] = struct{}{}
	l.mu.Unlock()
	return &Subscription{Events: s.ch, Vitals: s.vitals, s: s, l: l}, backlog, found
}
