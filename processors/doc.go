// Package processors computes alerts from vitals, exactly once.
//
// [Processor] is the one consume-transform-produce loop of MonitorMe: it
// consumes the vitals topic in a consumer group with read_committed, hands
// each record to a [Handler], and commits the handler's output records
// together with the consumed offsets in one Kafka transaction
// (kgo.GroupTransactSession). A crash or rebalance therefore never yields a
// lost or a duplicated alert for a read_committed reader.
//
// Rules are pure functions of a reading (later: of state, reading and
// clock) and know nothing of Kafka; the handlers in this package adapt them
// to records.
package processors
