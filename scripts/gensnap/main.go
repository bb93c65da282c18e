// Command gensnap writes a Tally snapshot at the scale target for
// scripts/measure-rss.sh: licenses on one policy, each with a number of
// live leases (100k × 10 by default, like fsm's Restore1M benchmark), built
// through the FSM's own Apply so the state is one a cluster could reach.
// Command times are now and the lease TTL is hours, so no lease expires
// while the snapshot is measured.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tallyhq/tally/fsm"
)

func main() {
	out := flag.String("out", "big.snap", "snapshot file to write")
	licenses := flag.Int("licenses", 100_000, "licenses")
	perLicense := flag.Int("leases-per-license", 10, "live leases per license")
	ttl := flag.Duration("ttl", 6*time.Hour, "lease TTL")
	flag.Parse()

	f := fsm.New()
	var index uint64
	apply := func(t fsm.CommandType, body any) {
		data, err := fsm.Encode(t, body)
		if err != nil {
			log.Fatal(err)
		}
		index++
		res, ok := f.Apply(&raft.Log{Index: index, Data: data}).(*fsm.Result)
		if !ok || res.Refusal != nil {
			log.Fatalf("command %d (type %d) refused: %+v", index, t, res)
		}
	}
	start := time.Now()
	// Commands are stamped 1 µs apart ending now: all inside the request
	// window, none in the future of the cluster's clock.
	n := *licenses * *perLicense
	now := start.UnixNano() - int64(n+10)*int64(time.Microsecond)
	apply(fsm.CmdCreateProduct, fsm.CreateProduct{ID: "prod_rss", Name: "CAD Suite", Time: now})
	apply(fsm.CmdCreatePolicy, fsm.CreatePolicy{Time: now, Policy: fsm.Policy{
		ID: "pol_rss", ProductID: "prod_rss", Name: "floating", LeaseTTL: int64(*ttl),
		// One seat more than the leases, so the measurement can check a
		// checkout still works after the restore.
		Features: []fsm.Feature{{Name: "cad", Seats: *perLicense + 1}, {Name: "view", Seats: -1}},
	}})
	for i := 0; i < *licenses; i++ {
		apply(fsm.CmdCreateLicense, fsm.CreateLicense{Time: now, License: fsm.License{
			ID: fmt.Sprintf("lic_%026d", i), Key: licenseKey(i), PolicyID: "pol_rss", Customer: "acme"}})
	}
	for j := 0; j < *perLicense; j++ {
		for i := 0; i < *licenses; i++ {
			k := j**licenses + i
			now += int64(time.Microsecond)
			lease := fmt.Sprintf("lse_%026d", k)
			apply(fsm.CmdCheckout, fsm.Checkout{LeaseID: lease, LicenseKey: licenseKey(i), Feature: "cad",
				Holder:    fsm.Holder{Machine: fmt.Sprintf("ws-%07d", k), User: "user", Hostname: "host", Process: "cad.exe"},
				RequestID: "req-" + lease, Time: now})
		}
	}
	built := time.Since(start)

	file, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	snap, err := f.Snapshot()
	if err != nil {
		log.Fatal(err)
	}
	sink := &fileSink{File: file, w: bufio.NewWriterSize(file, 1<<20)}
	if err := snap.Persist(sink); err != nil {
		log.Fatal(err)
	}
	st, err := os.Stat(*out)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("gensnap: %d licenses, %d leases, %d bytes in %s (state built in %s)\n",
		*licenses, n, st.Size(), *out, built.Round(time.Second))
}

// licenseKey is license i's key; the measurement checks out on key 0.
func licenseKey(i int) string { return fmt.Sprintf("TLY-RSS-%024d", i) }

// fileSink is a raft.SnapshotSink writing to a file.
type fileSink struct {
	*os.File
	w *bufio.Writer
}

func (s *fileSink) Write(p []byte) (int, error) { return s.w.Write(p) }
func (s *fileSink) ID() string                  { return "gensnap" }
func (s *fileSink) Cancel() error               { return s.File.Close() }
func (s *fileSink) Close() error {
	if err := s.w.Flush(); err != nil {
		return err
	}
	return s.File.Close()
}
