// Package freeport picks loopback addresses for the clusters that tests and
// `tally bench --local` start on one machine.
//
// It picks below the kernel's ephemeral range (32768-60999 by default on
// Linux). A port from ":0" comes from that range, and between closing the
// probe and the node binding it, any process's outgoing connection may take
// it: with several test binaries running at once that happened, as
// "address already in use". Ports below the range are never handed out to
// outgoing connections; the random start keeps concurrent processes apart.
package freeport

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

const (
	low  = 10000
	high = 32768 // the default start of Linux's ephemeral range
)

var (
	mu     sync.Mutex
	issued = map[int]bool{} // never hand out a port twice in one process
)

// Addr returns a loopback address ("127.0.0.1:port") whose port is free,
// for TCP and for UDP (memberlist gossips over both), at the moment of the
// call.
func Addr() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	for range 200 {
		p := low + rand.IntN(high-low)
		if issued[p] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		if !free(addr) {
			continue
		}
		issued[p] = true
		return addr, nil
	}
	return "", errors.New("freeport: no free loopback port below 32768 after 200 tries")
}

// Addrs returns n distinct addresses from Addr.
func Addrs(n int) ([]string, error) {
	out := make([]string, n)
	for i := range out {
		a, err := Addr()
		if err != nil {
			return nil, err
		}
		out[i] = a
	}
	return out, nil
}

func free(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	return u.Close() == nil
}
