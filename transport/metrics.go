package transport

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests   *prometheus.HistogramVec
	checkouts  *prometheus.CounterVec
	heartbeats prometheus.Counter
	forwards   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tally_http_request_duration_seconds",
			Help:    "HTTP requests by route and result code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "code"}),
		checkouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_checkouts_total",
			Help: "Checkouts answered by this node, by result.",
		}, []string{"result"}),
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tally_heartbeats_total",
			Help: "Heartbeats this node accepted.",
		}),
		forwards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_forwarded_requests_total",
			Help: "Requests this node forwarded to the leader, by result.",
		}, []string{"result"}),
	}
	reg.MustRegister(m.requests, m.checkouts, m.heartbeats, m.forwards)
	return m
}
