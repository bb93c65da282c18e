package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestAddrsAreDistinctFreeAndBelowTheEphemeralRange(t *testing.T) {
	addrs, err := Addrs(30)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
		_, port, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := strconv.Atoi(port); p < low || p >= high {
			t.Fatalf("port %d outside [%d, %d)", p, low, high)
		}
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("%s is not free for TCP: %v", a, err)
		}
		u, err := net.ListenPacket("udp", a)
		if err != nil {
			t.Fatalf("%s is not free for UDP: %v", a, err)
		}
		l.Close()
		u.Close()
	}
}
