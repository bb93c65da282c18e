//go:build !chaosbugs

package node

import (
	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/fsm"
)

// Planted bugs for the chaos suite live in planted_on.go (-tags chaosbugs);
// here they are constant off and compiled away.
const (
	bugStaleRead       = false
	bugAckBeforeCommit = false
)

func (n *Node) ackBeforeCommit(cmd *fsm.Checkout) (*api.LeaseResponse, error) {
	panic("planted bugs are not built in")
}
