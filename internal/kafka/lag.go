package kafka

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
)

// LagCollector exports the lag of consumer groups (the processor's, the
// sink's) per topic and partition, asked of the brokers when /metrics is
// scraped: what a platform team alerts on when a role falls behind.
//
//	monitorme_consumer_group_lag{group, topic, partition}  records not yet committed
//	monitorme_consumer_group_lag_up{group}                 1 if the lag could be read
//
// On a topic written in transactions (alerts.v1) a caught-up group reads a
// lag of 1 per partition: the commit marker after its last record.
func LagCollector(adm *kadm.Client, groups ...string) prometheus.Collector {
	return &lagCollector{adm: adm, groups: groups,
		lag: prometheus.NewDesc("monitorme_consumer_group_lag", "Records of a partition after its group's committed offset.",
			[]string{"group", "topic", "partition"}, nil),
		up: prometheus.NewDesc("monitorme_consumer_group_lag_up", "1 if the brokers answered the group's lag at this scrape, else 0.",
			[]string{"group"}, nil),
	}
}

type lagCollector struct {
	adm     *kadm.Client
	groups  []string
	lag, up *prometheus.Desc
}

func (l *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- l.lag
	ch <- l.up
}

// Collect asks the brokers, bounded so a down cluster does not hold the
// scrape; it reports up=0 rather than failing the whole scrape.
func (l *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	lags, err := l.adm.Lag(ctx, l.groups...)
	for _, g := range l.groups {
		gl, ok := lags[g]
		up := 0.0
		if err == nil && ok && gl.Error() == nil {
			up = 1
			for _, m := range gl.Lag.Sorted() {
				if m.Err == nil && m.Lag >= 0 {
					ch <- prometheus.MustNewConstMetric(l.lag, prometheus.GaugeValue, float64(m.Lag), g, m.Topic, strconv.Itoa(int(m.Partition)))
				}
			}
		}
		ch <- prometheus.MustNewConstMetric(l.up, prometheus.GaugeValue, up, g)
	}
}
