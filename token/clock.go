package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrClockRolledBack is a local clock earlier than the latest trusted time
// this machine has seen, by more than the tolerance.
var ErrClockRolledBack = errors.New("token: clock rolled back")

// DefaultClockTolerance is how far the local clock may sit behind the
// trusted-time floor before Check calls it rolled back.
//
// The floor comes from the cluster's clock (the iat of signed tokens) and is
// compared with this machine's clock, so the tolerance must cover honest
// skew between the two: desktops that never sync their clock drift by
// minutes, and a laptop or VM resumed from sleep runs behind until its time
// service catches up. Ten minutes absorbs that, while the rollbacks worth
// catching (days or months, to reuse an expired license file) stand out.
const DefaultClockTolerance = 10 * time.Minute

// TimeFloor persists the latest trusted time seen on this machine, so that
// turning the clock back cannot make an expired token or license file look
// current again.
//
// Trusted times are the iat of tokens and license files whose signature
// verified, and times in answers from the cluster: never the local clock,
// which is what is being checked. The floor only rises.
//
// The file is a speed bump, not a vault: a user who deletes it resets the
// floor. Keep it where the application keeps its own state. A missing file
// is a machine that has seen no trusted time yet; a file that does not
// parse is an error, so corrupting the file does not reset it either.
//
// A TimeFloor is safe for concurrent use. Processes that share one file
// each write it atomically (temporary file and rename) after re-reading it,
// so the floor on disk is always one whole value and a lower value rarely
// overwrites a higher one; the next Observe repairs that.
type TimeFloor struct {
	path  string
	mu    sync.Mutex
	floor time.Time
}

// floorFile is the JSON content of a time-floor file.
type floorFile struct {
	Version     int       `json:"version"`
	TrustedTime time.Time `json:"trusted_time"`
}

// maxFloorFile bounds what is read from a time-floor file.
const maxFloorFile = 4 << 10

// OpenTimeFloor loads the floor kept at path. A missing file is a zero
// floor; it is created by the first Observe.
func OpenTimeFloor(path string) (*TimeFloor, error) {
	if path == "" {
		return nil, errors.New("token: time floor path is empty")
	}
	t, err := readFloor(path)
	if err != nil {
		return nil, err
	}
	return &TimeFloor{path: path, floor: t}, nil
}

// Path returns the file the floor is kept in.
func (f *TimeFloor) Path() string { return f.path }

// Floor returns the latest trusted time seen (zero if none).
func (f *TimeFloor) Floor() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.floor
}

// Observe raises the floor to t if t is later, and writes it to the file.
// An earlier t changes nothing.
func (f *TimeFloor) Observe(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Another process may have raised the file meanwhile.
	if onDisk, err := readFloor(f.path); err == nil && onDisk.After(f.floor) {
		f.floor = onDisk
	}
	if !t.After(f.floor) {
		return nil
	}
	if err := writeFloor(f.path, t); err != nil {
		return err
	}
	f.floor = t.UTC()
	return nil
}

// Check returns ErrClockRolledBack when now is earlier than the floor by
// more than tolerance (a negative tolerance counts as zero).
func (f *TimeFloor) Check(now time.Time, tolerance time.Duration) error {
	floor := f.Floor()
	if floor.IsZero() {
		return nil
	}
	tolerance = max(tolerance, 0)
	if behind := floor.Sub(now); behind > tolerance {
		return fmt.Errorf("%w: this machine's clock says %s, %s before the latest trusted time %s (tolerance %s)",
			ErrClockRolledBack, now.UTC().Format(time.RFC3339), behind.Round(time.Second),
			floor.Format(time.RFC3339), tolerance)
	}
	return nil
}

func readFloor(path string) (time.Time, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("token: read time floor: %w", err)
	}
	return parseFloor(data)
}

// parseFloor decodes a time-floor file.
func parseFloor(data []byte) (time.Time, error) {
	if len(data) > maxFloorFile {
		return time.Time{}, fmt.Errorf("token: time floor file is %d bytes, limit %d", len(data), maxFloorFile)
	}
	var ff floorFile
	if err := json.Unmarshal(data, &ff); err != nil {
		return time.Time{}, fmt.Errorf("token: time floor file: %w", err)
	}
	if ff.Version != 1 {
		return time.Time{}, fmt.Errorf("token: time floor file: version %d, want 1", ff.Version)
	}
	return ff.TrustedTime.UTC(), nil
}

// writeFloor replaces the file at path with t, whole or not at all.
func writeFloor(path string, t time.Time) error {
	data, err := json.Marshal(floorFile{Version: 1, TrustedTime: t.UTC()})
	if err != nil {
		return fmt.Errorf("token: encode time floor: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("token: time floor dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tally-time-floor-*")
	if err != nil {
		return fmt.Errorf("token: write time floor: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("token: write time floor: %w", err)
	}
	syncDir(dir)
	return nil
}
