// Package processors computes alerts from vitals, exactly once.
//
// [Processor] is the one consume-transform-produce loop of MonitorMe: it
// consumes the vitals topic in a consumer group with read_committed, hands
// each record to a [Handler], and commits the handler's output records
// together with the consumed offsets in one Kafka transaction
// (kgo.GroupTransactSession). A crash or rebalance therefore never yields a
// lost or a duplicated alert for a read_committed reader.
//
// The handler is chosen by [Config.Rules]: the clinical engine (the
// default) or the thresholds. Rules are pure functions of (state, reading)
// and know nothing of Kafka; the handlers adapt them to records.
//
// Files by responsibility: processor.go, the transaction loop and the
// Handler interfaces; ready.go, what /readyz says of it; clock.go, the
// processor clock; clinical.go, the clinical dispatch (records in, rules
// applied, alert records out); clinical_news2.go and satseconds.go, the
// NEWS2 alert and the SatSeconds integral kept per patient; store.go, the
// per-patient state and its changelog; copies.go, the reading identities a
// patient's state remembers so a copy changes nothing; timers.go, signal
// lost, escalation, expiry and the rules' waits that end on a quiet
// partition (a value holds until the next reading of its kind); queue.go,
// the timer queue fired before every record; condition.go and news2.go,
// the pure rules; ruleset.go and rulesfile.go, the rules in force and the
// rules file; thresholds.go, the threshold handler.
package processors
