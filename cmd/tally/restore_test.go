package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/api"
)

func TestSnapshotRestore(t *testing.T) {
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || r.URL.Path != "/v1/cluster/snapshot" || r.Header.Get("Content-Type") != "application/octet-stream" {
			writeJSON(w, 404, api.ErrorResponse{Error: api.Error{Code: api.CodeNotFound, Message: r.Method + " " + r.URL.Path}})
			return
		}
		got, _ = io.ReadAll(r.Body)
		if !bytes.HasPrefix(got, []byte("TALLYSNAP")) {
			writeJSON(w, 400, api.ErrorResponse{Error: api.Error{Code: api.CodeInvalidRequest, Message: "not a valid Tally snapshot: fsm: not a Tally snapshot"}})
			return
		}
		writeJSON(w, 200, api.SnapshotRestore{Index: 70000, SavedIndex: 42, Bytes: int64(len(got)), Licenses: 2, Leases: 5, AuditRecords: 9, DurationMS: 1500})
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	snap := append([]byte("TALLYSNAP\x01"), bytes.Repeat([]byte{0x90}, 3<<20)...)
	good := filepath.Join(dir, "good.snap")
	if err := os.WriteFile(good, snap, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "operator", "snapshot", "restore", good, "--addr", srv.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !bytes.Equal(got, snap) {
		t.Fatalf("server got %d bytes, want the file's %d", len(got), len(snap))
	}
	if !strings.Contains(out, "2 licenses, 5 live leases, 9 audit records; state index 70000 (saved at 42), took 1.5s") {
		t.Errorf("output = %q", out)
	}
	if !strings.Contains(errOut, "sent 3.0 MiB of 3.0 MiB (100%); the leader is restoring") {
		t.Errorf("no progress on stderr: %q", errOut)
	}

	code, out, _ = runCLI(t, "operator", "snapshot", "restore", good, "--json", "--addr", srv.URL)
	var res api.SnapshotRestore
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Leases != 5 {
		t.Errorf("--json: exit %d, %s", code, out)
	}

	bad := filepath.Join(dir, "bad.snap")
	if err := os.WriteFile(bad, []byte("not a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "operator", "snapshot", "restore", bad, "--addr", srv.URL); code == 0 || !strings.Contains(errOut, "not a valid Tally snapshot") {
		t.Errorf("bad file: exit %d, %q", code, errOut)
	}
	if code, _, _ := runCLI(t, "operator", "snapshot", "restore", filepath.Join(dir, "missing.snap"), "--addr", srv.URL); code == 0 {
		t.Error("a missing file restored")
	}
}
