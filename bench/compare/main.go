package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = cmdRun(os.Args[2:])
	case "report":
		err = cmdReport(os.Args[2:])
	case "ports":
		err = cmdPorts(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage:
  compare run -backend raft|tally|etcd [-c 1,16,64,256] [-duration 10s] [-warmup 2s] -out FILE
              [-addrs A,B,C] [-token-file FILE] [-seats 256] [-payload 200] [-dir DIR]
  compare report [-json] FILE...
  compare ports N`)
	os.Exit(2)
}

// Run is what one `compare run` measured: one backend at each concurrency.
type Run struct {
	Backend  string `json:"backend"`
	Duration string `json:"duration"`
	Cells    []Cell `json:"cells"`
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	name := fs.String("backend", "", "raft, tally or etcd")
	conc := fs.String("c", "1,16,64,256", "concurrencies, comma-separated")
	dur := fs.Duration("duration", 10*time.Second, "measured time per concurrency")
	warm := fs.Duration("warmup", 2*time.Second, "unmeasured load before the first concurrency")
	out := fs.String("out", "", "write the results here as JSON (required)")
	addrs := fs.String("addrs", "", "tally: HTTP addresses; etcd: client URLs (comma-separated)")
	tokenFile := fs.String("token-file", "", "tally: file with the admin token")
	seats := fs.Int("seats", 256, "tally, etcd: seats of the hot license (at least the largest -c, so no request waits for a seat)")
	payload := fs.Int("payload", 200, "raft: bytes per entry (a Tally checkout command is about this size)")
	dir := fs.String("dir", "", "raft: directory for the three nodes' data (default: a temp dir, removed after)")
	_ = fs.Parse(args)
	cs, err := parseInts(*conc)
	if err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("-out is required")
	}
	b, err := openBackend(*name, split(*addrs), *tokenFile, *seats, *payload, *dir, cs)
	if err != nil {
		return err
	}
	defer b.Close()
	if *warm > 0 {
		measure(b, *name, min(16, maxOf(cs)), *warm)
	}
	run := Run{Backend: *name, Duration: dur.String()}
	for _, c := range cs {
		var before int64
		if eb, ok := b.(*etcdBackend); ok {
			before = eb.retries.Load()
		}
		cell := measure(b, *name, c, *dur)
		if eb, ok := b.(*etcdBackend); ok {
			cell.Extra = map[string]int64{"cas_retries": eb.retries.Load() - before}
		}
		fmt.Fprintf(os.Stderr, "%-5s c=%-3d %9.0f ops/s  cpu %3.0f%%  %s\n", *name, c, cell.OpsPerSec, cell.CPUBusy, latencyLine(cell))
		run.Cells = append(run.Cells, cell)
	}
	data, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(*out, append(data, '\n'), 0o644)
}

func openBackend(name string, addrs []string, tokenFile string, seats, payload int, dir string, cs []int) (backend, error) {
	switch name {
	case "raft":
		if dir == "" {
			tmp, err := os.MkdirTemp("", "compare-raft-")
			if err != nil {
				return nil, err
			}
			b, err := newRaftBackend(tmp, payload)
			if err != nil {
				os.RemoveAll(tmp)
				return nil, err
			}
			return &cleanup{backend: b, dir: tmp}, nil
		}
		return newRaftBackend(dir, payload)
	case "tally":
		tok, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("tally needs -token-file: %w", err)
		}
		return newTallyBackend(addrs, strings.TrimSpace(string(tok)), seats, maxOf(cs))
	case "etcd":
		return newEtcdBackend(addrs, seats)
	}
	return nil, fmt.Errorf("unknown backend %q (raft, tally or etcd)", name)
}

// cleanup removes a backend's temp dir after closing it.
type cleanup struct {
	backend
	dir string
}

func (c *cleanup) Close() error {
	err := c.backend.Close()
	os.RemoveAll(c.dir)
	return err
}

// cmdPorts prints n free loopback ports, one per line, for run.sh.
func cmdPorts(args []string) error {
	if len(args) != 1 {
		usage()
	}
	n, err := strconv.Atoi(args[0])
	if err != nil {
		return err
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range split(s) {
		v, err := strconv.Atoi(p)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("bad concurrency %q", p)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no concurrency given")
	}
	return out, nil
}

func maxOf(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
