package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
)

// addKeyCommands adds `tally keys`: the token-signing key lifecycle.
func addKeyCommands(root *cobra.Command, a *app) {
	keys := group("keys", "List, rotate and retire the token-signing keys",
		`Every node signs lease tokens with its own Ed25519 key, kept in a 0600 file
in its data dir and never sent anywhere. The public keys are replicated and
served at GET /v1/keys, where desktops and 'tally verify' fetch them.

Keys belong to an epoch. To replace the keys without downtime:

  1. tally keys rotate        start a new epoch: every node makes a fresh
                              key, and the leader signs with its new key
                              as soon as the command returns. Tokens signed
                              with older keys still verify.
  2. wait                     until every token signed with the old keys has
                              expired: the longest lease TTL of your
                              policies, or the longest borrow
                              (max_borrow_hours) if borrowing is allowed.
  3. tally keys retire KID    for each key of an older epoch (see
                              tally keys list). A retired key leaves
                              GET /v1/keys, and tokens it signed stop
                              verifying.

A key of the current epoch cannot be retired (key_in_use): rotate first.`)
	keys.AddCommand(keysListCmd(a), keysRotateCmd(a), keysRetireCmd(a))
	keys.GroupID = "admin"
	root.AddCommand(keys)
}

func keysListCmd(a *app) *cobra.Command {
	return listCmd(a, &cobra.Command{
		Use:   "list",
		Short: "List signing keys with their node, epoch and status",
		Long: `List every signing key the cluster knows: its kid, the node that holds its
private key, its epoch, when it was added, and its status: signing (the
leader signs new tokens with it), verifying (served in GET /v1/keys, tokens
it signed verify) or retired (no longer served).`,
		Example: `  tally keys list
  tally keys list --json`,
		Args: args(cobra.NoArgs),
	},
		(*client.Client).SigningKeys,
		func(w io.Writer, list *api.SigningKeyList) {
			row(w, "KID", "NODE", "EPOCH", "STATUS", "ADDED", "RETIRED")
			for _, k := range list.Keys {
				retired := "-"
				if k.RetiredAt != nil {
					retired = fmtTime(*k.RetiredAt)
				}
				row(w, k.KID, k.NodeID, k.Epoch, k.Status, fmtTime(k.AddedAt), retired)
			}
			fmt.Fprintf(w, "current epoch: %d\n", list.Epoch)
		})
}

func keysRotateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Start a new key epoch: every node makes a fresh signing key",
		Long: `Start a new key epoch. Every node makes a fresh private key for it; the
leader registers its new public key and signs every later token with it
before this command returns. Tokens signed with older keys keep verifying
until you retire those keys with 'tally keys retire', which you should do
only after the longest token lifetime (lease TTL, or borrow) has passed.`,
		Example: `  tally keys rotate`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.RotateKeys(cmd.Context())
			if err != nil {
				return err
			}
			return a.emit(res, func(w io.Writer) {
				fmt.Fprintf(w, "Rotated to key epoch %d; the leader signs with key %s\n", res.Epoch, res.KID)
			})
		},
	}
}

func keysRetireCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "retire KID",
		Short: "Retire a key of an older epoch: its tokens stop verifying",
		Long: `Retire a signing key of an older epoch. It disappears from GET /v1/keys, so
every token it signed stops verifying, offline proofs of borrowed seats
included. Retire a key only after the longest token lifetime has passed
since the rotation that replaced it. A key of the current epoch is refused
with key_in_use; an unknown kid is not_found.`,
		Example: `  tally keys retire Yx3vQ2mP0aB7cD9e`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			k, err := c.RetireKey(cmd.Context(), argv[0])
			if err != nil {
				return err
			}
			return a.emit(k, func(w io.Writer) {
				fmt.Fprintf(w, "Retired key %s (node %s, epoch %d)\n", k.KID, k.NodeID, k.Epoch)
			})
		},
	}
}
