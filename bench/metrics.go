package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// scrapeCPU reads process_cpu_seconds_total from a node's /metrics: the
// CPU time its process has used, user and system.
func (e *env) scrapeCPU(ctx context.Context, base string) (float64, error) {
	var b wbuf
	if code := e.d.send(ctx, http.MethodGet, base+"/metrics", nil, false, &b); code != "" {
		return 0, fmt.Errorf("GET %s/metrics: %s", base, code)
	}
	return metricValue(b.resp, "process_cpu_seconds_total")
}

// metricValue finds an unlabelled sample in Prometheus text format.
func metricValue(text []byte, name string) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name+" ")
		if !ok {
			continue
		}
		return strconv.ParseFloat(strings.TrimSpace(rest), 64)
	}
	return 0, fmt.Errorf("no %s in the metrics (the node does not export process metrics)", name)
}
