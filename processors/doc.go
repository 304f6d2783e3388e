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
// default) or the thresholds. The rules themselves are package clinical's,
// pure functions of (state, input, time) with no Kafka in them; the
// patients' state per transaction and its changelog restore are package
// statestore's. This package adapts them to records and transactions.
//
// Files by responsibility: processor.go, the transaction loop; handler.go,
// the Handler interfaces; config.go and rulesfile.go, the configuration
// and the rules file read once; metrics.go, each component's instruments;
// ready.go, what /readyz says of it; clock.go, the processor clock (record
// arrivals, then the wall clock once caught up); clinical.go, the clinical
// handler (records decoded, clinical.Stream applied, alert and changelog
// records out); thresholds.go, the threshold handler.
package processors
