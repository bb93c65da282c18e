package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAdminTokenFileCreatedPrivateAndReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "admin-token")
	tok, err := loadOrCreateAdminToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 64 {
		t.Fatalf("token of %d characters, want 64 hex", len(tok))
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, want 0600", st.Mode().Perm())
	}
	again, err := loadOrCreateAdminToken(path)
	if err != nil || again != tok {
		t.Fatalf("reloaded %q, %v; want the same token", again, err)
	}
	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateAdminToken(short); err == nil || !strings.Contains(err.Error(), "shorter") {
		t.Fatalf("short token accepted: %v", err)
	}
}

func TestAgentFlagsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    agentFlags
		want string
	}{
		{"no data dir", agentFlags{nodeID: "n1", profile: "default"}, "--data-dir is required"},
		{"two servers", agentFlags{nodeID: "n1", dataDir: "d", httpAddr: "127.0.0.1:1", raftAddr: "127.0.0.1:2", gossipAddr: "127.0.0.1:3", bootstrapExpect: 2, profile: "default"}, "bootstrap-expect 2"},
		{"bad address", agentFlags{nodeID: "n1", dataDir: "d", httpAddr: "nowhere", raftAddr: "127.0.0.1:2", gossipAddr: "127.0.0.1:3", profile: "default"}, "http address"},
		{"bad profile", agentFlags{nodeID: "n1", dataDir: "d", httpAddr: "127.0.0.1:1", raftAddr: "127.0.0.1:2", gossipAddr: "127.0.0.1:3", profile: "wan"}, "--raft-profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.f.config(nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
