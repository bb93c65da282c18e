package token

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTimeFloorObserveAndCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "time-floor")
	f, err := OpenTimeFloor(path)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Floor().IsZero() {
		t.Fatalf("new floor = %v, want zero", f.Floor())
	}
	// No floor yet: any clock passes.
	if err := f.Check(time.Unix(0, 0), 0); err != nil {
		t.Fatalf("check without floor: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("file created before the first Observe: %v", err)
	}

	if err := f.Observe(now); err != nil {
		t.Fatal(err)
	}
	if err := f.Observe(now.Add(-time.Hour)); err != nil { // lower: ignored
		t.Fatal(err)
	}
	if !f.Floor().Equal(now) {
		t.Fatalf("floor = %v, want %v", f.Floor(), now)
	}

	tol := 5 * time.Minute
	for _, tc := range []struct {
		name string
		at   time.Time
		want error
	}{
		{"later than the floor", now.Add(time.Hour), nil},
		{"at the floor", now, nil},
		{"behind by the tolerance", now.Add(-tol), nil},
		{"behind by more than the tolerance", now.Add(-tol - time.Second), ErrClockRolledBack},
		{"a month back", now.Add(-30 * 24 * time.Hour), ErrClockRolledBack},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.Check(tc.at, tol)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
		})
	}
	if err := f.Check(now.Add(-time.Second), -time.Hour); !errors.Is(err, ErrClockRolledBack) {
		t.Fatalf("negative tolerance: %v, want it treated as zero", err)
	}

	// The floor survives a restart.
	again, err := OpenTimeFloor(path)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Floor().Equal(now) {
		t.Fatalf("reloaded floor = %v, want %v", again.Floor(), now)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("floor dir holds %d entries, want only the floor file", len(entries))
	}
}

// A process holding an old floor must not lower what another wrote.
func TestTimeFloorObserveRereadsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "floor")
	a, _ := OpenTimeFloor(path)
	b, _ := OpenTimeFloor(path)
	if err := a.Observe(now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := b.Observe(now); err != nil {
		t.Fatal(err)
	}
	c, err := OpenTimeFloor(path)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Floor().Equal(now.Add(time.Hour)) || !b.Floor().Equal(now.Add(time.Hour)) {
		t.Fatalf("floors = %v on disk, %v in b; want %v", c.Floor(), b.Floor(), now.Add(time.Hour))
	}
}

func TestTimeFloorRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not json":      "yesterday",
		"empty":         "",
		"wrong version": `{"version":2,"trusted_time":"2026-01-01T00:00:00Z"}`,
		"bad time":      `{"version":1,"trusted_time":"soon"}`,
		"too big":       `{"version":1,"pad":"` + strings.Repeat("x", maxFloorFile) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if f, err := OpenTimeFloor(path); err == nil {
				t.Fatalf("opened a bad floor file, floor %v", f.Floor())
			}
		})
	}
	if _, err := OpenTimeFloor(""); err == nil {
		t.Fatal("opened an empty path")
	}
}

func TestTimeFloorConcurrentObserve(t *testing.T) {
	f, err := OpenTimeFloor(filepath.Join(t.TempDir(), "floor"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := f.Observe(now.Add(time.Duration(i) * time.Minute)); err != nil {
				t.Error(err)
			}
			_ = f.Check(now, time.Minute)
		})
	}
	wg.Wait()
	want := now.Add(7 * time.Minute)
	if !f.Floor().Equal(want) {
		t.Fatalf("floor = %v, want %v", f.Floor(), want)
	}
	g, err := OpenTimeFloor(f.Path())
	if err != nil || !g.Floor().Equal(want) {
		t.Fatalf("on disk %v (%v), want %v", g.Floor(), err, want)
	}
}
