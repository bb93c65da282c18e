package transport

import (
	"errors"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// RaftStream is the TCP stream layer under raft.NetworkTransport.
type RaftStream struct {
	net.Listener
	advertise net.Addr
}

// ListenRaft binds addr and advertises the bound address (so port 0 works
// in tests).
func ListenRaft(addr string) (*RaftStream, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	adv := l.Addr().(*net.TCPAddr)
	if adv.IP.IsUnspecified() {
		_ = l.Close()
		return nil, errors.New("raft address must be a concrete IP, not " + addr)
	}
	return &RaftStream{Listener: l, advertise: adv}, nil
}

// Addr is the advertised address.
func (s *RaftStream) Addr() net.Addr { return s.advertise }

// Dial implements raft.StreamLayer.
func (s *RaftStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.Dial("tcp", string(address))
}
