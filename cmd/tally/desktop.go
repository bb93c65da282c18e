package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/api"
)

func addDesktopCommands(root *cobra.Command, a *app) {
	for _, c := range []*cobra.Command{checkoutCmd(a), heartbeatCmd(a), checkinCmd(a), validateCmd(a)} {
		c.GroupID = "desktop"
		root.AddCommand(c)
	}
}

func defaultUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return os.Getenv("USERNAME")
}

func checkoutCmd(a *app) *cobra.Command {
	host, _ := os.Hostname()
	var (
		key, feature, machine, user, requestID string
		ttl, borrowFor                         time.Duration
	)
	cmd := &cobra.Command{
		Use:   "checkout --key KEY --feature FEATURE",
		Short: "Check a floating seat out",
		Long: `Check out one seat of a feature of a license. The seat is held until it is
checked in, or until its lease expires because no heartbeat came in time
(the TTL is the policy's unless --ttl asks for another).

Prints the lease id, its expiry and the signed lease token. Give the same
--request-id to retry a checkout without taking a second seat.

--borrow takes the seat for a whole number of hours, up to the policy's
max_borrow_hours, with no heartbeats: the seat stays taken until then or
until it is checked in, and the token, which expires at the borrow end, is
the offline proof. Keep it.`,
		Example: `  tally checkout --key TALLY-XXXX --feature cad
  tally checkout --key TALLY-XXXX --feature cad --ttl 5m --json
  tally checkout --key TALLY-XXXX --feature cad --borrow 72h`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := api.CheckoutRequest{
				LicenseKey: key,
				Feature:    feature,
				Holder:     api.Holder{Machine: machine, User: user, Hostname: host, Process: strconv.Itoa(os.Getpid())},
				RequestID:  requestID,
			}
			if cmd.Flags().Changed("ttl") {
				s, err := ttlSeconds("ttl", ttl)
				if err != nil {
					return err
				}
				req.TTLSeconds = s
			}
			if cmd.Flags().Changed("borrow") {
				h, err := borrowHours(borrowFor)
				if err != nil {
					return err
				}
				req.BorrowHours = h
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			resp, err := c.Checkout(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.emit(resp, func(w io.Writer) { printLease(w, resp) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "license key (required)")
	f.StringVar(&feature, "feature", "", "feature to check out (required)")
	f.StringVar(&machine, "machine", defaultMachine(), "machine the seat is held on (this machine's fingerprint unless given; see tally fingerprint)")
	f.StringVar(&user, "user", defaultUser(), "user who holds the seat")
	f.DurationVar(&ttl, "ttl", 0, "lease TTL to ask for, e.g. 90s (default: the policy's)")
	f.StringVar(&requestID, "request-id", "", "id that makes a retried checkout exactly-once (default: random)")
	f.DurationVar(&borrowFor, "borrow", 0, "borrow the seat for this many whole hours, e.g. 72h (no heartbeats needed)")
	_ = cmd.MarkFlagRequired("key")
	_ = cmd.MarkFlagRequired("feature")
	return cmd
}

func printLease(w io.Writer, resp *api.LeaseResponse) {
	l := resp.Lease
	row(w, "lease_id", l.ID)
	row(w, "license_id", l.LicenseID)
	row(w, "feature", l.Feature)
	row(w, "expires_at", fmtUntil(l.ExpiresAt))
	if l.BorrowedUntil != nil {
		row(w, "borrowed_until", fmtTime(*l.BorrowedUntil))
	}
	row(w, "token", resp.Token)
}

func heartbeatCmd(a *app) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "heartbeat LEASE_ID --key KEY",
		Short: "Keep a checked-out seat alive",
		Long: `Send one heartbeat for a lease, pushing its expiry one TTL into the future.
A lease that expired or was revoked answers lease_expired.`,
		Example: `  tally heartbeat 01J9Z3K0 --key TALLY-XXXX`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			resp, err := c.Heartbeat(cmd.Context(), argv[0], key)
			if err != nil {
				return err
			}
			return a.emit(resp, func(w io.Writer) { printLease(w, resp) })
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "license key (required)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func checkinCmd(a *app) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "checkin LEASE_ID --key KEY",
		Short: "Give a seat back",
		Long: `Check a lease in, freeing its seat at once. Checking in a lease twice is
not an error.`,
		Example: `  tally checkin 01J9Z3K0 --key TALLY-XXXX`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.Checkin(cmd.Context(), argv[0], key); err != nil {
				return err
			}
			return a.emit(emptyObject{}, func(w io.Writer) { fmt.Fprintf(w, "Checked in lease %s\n", argv[0]) })
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "license key (required)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func validateCmd(a *app) *cobra.Command {
	var key, feature, machine string
	cmd := &cobra.Command{
		Use:   "validate --key KEY",
		Short: "Check whether a license may be used",
		Long: `Ask the cluster whether a license is valid, optionally for one feature and
one machine. Exits 0 when it is valid and 1 when it is not, printing the
reason code (license_suspended, license_expired, feature_not_entitled, ...).

--consistency stale (the default) is answered by the node from memory;
linearizable confirms with the leader first.`,
		Example: `  tally validate --key TALLY-XXXX --feature cad
  tally validate --key TALLY-XXXX --consistency linearizable --json`,
		Args: args(cobra.NoArgs),
	}
	consistency := consistencyFlag(cmd, "stale (any node, from memory) or linearizable (confirmed with the leader)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		resp, err := c.Validate(cmd.Context(), api.ValidateRequest{LicenseKey: key, Feature: feature, Machine: machine}, consistency.value)
		if err != nil {
			return err
		}
		err = a.emit(resp, func(w io.Writer) {
			row(w, "valid", resp.Valid)
			if resp.Code != "" {
				row(w, "code", resp.Code)
			}
			if l := resp.License; l != nil {
				row(w, "license", l.ID)
				row(w, "customer", l.Customer)
				row(w, "status", l.Status)
				row(w, "expires_at", fmtTimePtr(l.ExpiresAt))
			}
			row(w, "seats", fmtSeats(resp.Seats))
			by := fmt.Sprintf("%s at applied index %d", resp.NodeID, resp.AppliedIndex)
			if resp.Consistency != "" {
				by += " (" + resp.Consistency + ")"
			}
			row(w, "answered_by", by)
		})
		if err != nil {
			return err
		}
		if !resp.Valid {
			code := resp.Code
			if code == "" {
				code = "not_valid"
			}
			return &exitCodeError{code: exitError, err: api.Errorf(code, "license is not valid")}
		}
		return nil
	}
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "license key (required)")
	f.StringVar(&feature, "feature", "", "feature that must be entitled")
	f.StringVar(&machine, "machine", "", "machine the license must be usable on")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}
