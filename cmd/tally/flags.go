package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
)

// featureList is a repeatable --feature flag: "cad=3" is a feature with 3
// seats, "viewer" one that is entitled but not counted. One value may list
// several, comma-separated.
type featureList struct{ features []api.Feature }

func (f *featureList) String() string { return formatFeatures(f.features) }
func (f *featureList) Type() string   { return "name[=seats]" }

func (f *featureList) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		feat, err := parseFeature(strings.TrimSpace(part))
		if err != nil {
			return err
		}
		for _, have := range f.features {
			if have.Name == feat.Name {
				return fmt.Errorf("feature %q given twice", feat.Name)
			}
		}
		f.features = append(f.features, feat)
	}
	return nil
}

// parseFeature reads "name" or "name=seats".
func parseFeature(s string) (api.Feature, error) {
	name, seats, counted := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if name == "" {
		return api.Feature{}, fmt.Errorf("want name or name=seats, got %q", s)
	}
	if !counted {
		return api.Feature{Name: name}, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(seats))
	if err != nil || n < 0 {
		return api.Feature{}, fmt.Errorf("seats of %q must be a whole number >= 0, got %q", name, seats)
	}
	return api.Feature{Name: name, Seats: &n}, nil
}

// formatFeatures writes features as the flag takes them: "cad=3, viewer".
func formatFeatures(fs []api.Feature) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.Name
		if f.Seats != nil {
			parts[i] += "=" + strconv.Itoa(*f.Seats)
		}
	}
	return strings.Join(parts, ", ")
}

// enumValue is a string flag that takes one of a fixed set of values.
type enumValue struct {
	value   string
	allowed []string
}

func (e *enumValue) String() string { return e.value }
func (e *enumValue) Type() string   { return strings.Join(e.allowed, "|") }

func (e *enumValue) Set(s string) error {
	for _, a := range e.allowed {
		if s == a {
			e.value = s
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(e.allowed, ", "))
}

// consistencyFlag adds --consistency to a read command.
func consistencyFlag(cmd *cobra.Command, usage string) *enumValue {
	e := &enumValue{allowed: []string{api.ConsistencyStale, api.ConsistencyLinearizable}}
	cmd.Flags().Var(e, "consistency", usage)
	return e
}

// readOpts turns --consistency into SDK read options.
func readOpts(e *enumValue) []client.ReadOption {
	if e == nil || e.value == "" {
		return nil
	}
	return []client.ReadOption{client.WithConsistency(e.value)}
}

// expiresValue takes an RFC 3339 time or a YYYY-MM-DD date (midnight UTC).
type expiresValue struct{ t *time.Time }

func (e *expiresValue) Type() string { return "RFC3339|YYYY-MM-DD" }

func (e *expiresValue) String() string {
	if e.t == nil {
		return ""
	}
	return e.t.Format(time.RFC3339)
}

func (e *expiresValue) Set(s string) error {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		t = t.UTC()
		e.t = &t
		return nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return fmt.Errorf("want an RFC 3339 time (2027-01-31T00:00:00Z) or a date (2027-01-31)")
	}
	e.t = &t
	return nil
}

// metaValue is a repeatable --meta key=value flag.
type metaValue struct{ m map[string]string }

func (m *metaValue) Type() string { return "key=value" }

func (m *metaValue) String() string {
	parts := make([]string, 0, len(m.m))
	for _, k := range sortedKeys(m.m) {
		parts = append(parts, k+"="+m.m[k])
	}
	return strings.Join(parts, ",")
}

func (m *metaValue) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	if m.m == nil {
		m.m = map[string]string{}
	}
	m.m[strings.TrimSpace(k)] = v
	return nil
}

// ttlSeconds turns a --ttl duration into whole seconds, rounding up.
func ttlSeconds(flag string, d time.Duration) (int64, error) {
	if d < time.Second {
		return 0, usagef("--%s must be at least 1s, got %s", flag, d)
	}
	return int64(math.Ceil(d.Seconds())), nil
}

// borrowHours turns a --borrow duration into whole hours; a fraction is a
// usage error rather than rounded, so a borrow never silently exceeds what
// was asked or the policy's limit.
func borrowHours(d time.Duration) (int64, error) {
	if d < time.Hour || d%time.Hour != 0 {
		return 0, usagef("--borrow must be a whole number of hours, at least 1h (e.g. 72h), got %s", d)
	}
	return int64(d / time.Hour), nil
}
