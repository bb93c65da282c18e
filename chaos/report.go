package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Summary is the one-screen account of a run.
func (r *Report) Summary() string {
	var b strings.Builder
	mode := "loopback"
	if r.Netns {
		mode = "netns"
	}
	verdict := "linearizable"
	switch {
	case r.Unknown:
		verdict = "porcupine timed out"
	case !r.Linearizable:
		verdict = "NOT linearizable"
	}
	fmt.Fprintf(&b, "seed %d, %d nodes (%s): %d ops, %d faults, %d violations; %s (checked in %v); recovery p50 %v max %v\n",
		r.Seed, r.Nodes, mode, r.TotalOps, len(r.Faults), len(r.Violations), verdict,
		r.CheckTime.Round(time.Millisecond), r.RecoverP50.Round(time.Millisecond), r.RecoverMax.Round(time.Millisecond))
	var kinds []string
	for k := range r.Ops {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	b.WriteString("  ops:")
	for _, k := range kinds {
		fmt.Fprintf(&b, " %s=%d", k, r.Ops[k])
	}
	b.WriteString("\n  faults:")
	for _, f := range r.Faults {
		fmt.Fprintf(&b, " %s(%s,%v)", f.Kind, f.Target, f.Healed.Sub(f.Start).Round(100*time.Millisecond))
	}
	b.WriteString("\n")
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "  VIOLATION: %s\n", v)
	}
	if r.Dir != "" {
		fmt.Fprintf(&b, "  evidence: %s\n", r.Dir)
	}
	return b.String()
}
