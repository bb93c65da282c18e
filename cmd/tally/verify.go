package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/client"
	"github.com/tallyhq/tally/token"
)

// maxVerifyInput bounds what verify reads from a file or stdin: a license
// file is a few KiB.
const maxVerifyInput = 1 << 20

func verifyCmd(a *app) *cobra.Command {
	var keysFile, saveKeys, machine, floorFile string
	var tolerance time.Duration
	cmd := &cobra.Command{
		Use:   "verify TOKEN_OR_FILE [--keys JWKS_FILE] [--machine FP] [--time-floor FILE]",
		Short: "Check a lease token or license file offline",
		Long: `Check a lease token or a license file without the cluster: its Ed25519
signature against the cluster's public keys, its validity window, the
machine it is locked to, and that this machine's clock was not turned back.
Exits 0 with a one-line summary when it is valid, and 1 with the reason when
it is not: bad_signature, unknown_kid, bad_algorithm, expired, not_yet_valid,
wrong_machine, malformed or clock_rolled_back.

The argument is a token, a path to a token or license file, or - for stdin.
Keys come from --keys (a JWKS file), else from GET /v1/keys of the cluster at
--addr; --save-keys FILE stores what was fetched, for air-gapped machines,
and may be given without an argument.

--machine is this machine's fingerprint (default: 'tally fingerprint').
--time-floor FILE keeps the latest trusted time seen (the iat of every
token accepted) and refuses a clock more than --tolerance behind it.`,
		Example: `  tally verify --save-keys jwks.json                 # while online
  tally verify acme.lic --keys jwks.json --time-floor ~/.tally/time-floor
  tally verify eyJhbGciOiJFZERTQSIs... --keys jwks.json`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if len(argv) == 0 && saveKeys == "" {
				return usagef("give a token or file to verify, or --save-keys FILE")
			}
			if keysFile != "" && saveKeys != "" {
				return usagef("--keys and --save-keys exclude each other: --save-keys fetches from the cluster")
			}
			if tolerance < 0 {
				return usagef("--tolerance must not be negative")
			}
			keys, err := a.verifyKeys(cmd, keysFile, saveKeys)
			if err != nil || len(argv) == 0 {
				return err
			}
			input, err := readVerifyInput(cmd.InOrStdin(), argv[0])
			if err != nil {
				return err
			}
			v := &client.OfflineVerifier{Keys: keys, Machine: machine, Tolerance: tolerance}
			if floorFile != "" {
				if v.Floor, err = token.OpenTimeFloor(floorFile); err != nil {
					return err
				}
			}
			res, err := v.Verify(input)
			if err != nil {
				if a.json {
					_ = a.emit(map[string]any{"valid": false, "reason": client.OfflineReason(err), "error": err.Error()}, nil)
				}
				return &exitCodeError{code: exitError, err: err}
			}
			out := struct {
				Valid bool `json:"valid"`
				*client.OfflineResult
			}{true, res}
			return a.emit(out, func(w io.Writer) { fmt.Fprintln(w, summarize(res)) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&keysFile, "keys", "", "JWKS file of the cluster's public keys (default: fetch from --addr)")
	f.StringVar(&saveKeys, "save-keys", "", "fetch the cluster's public keys and save them to this file")
	f.StringVar(&machine, "machine", "", "this machine's fingerprint (default: tally fingerprint)")
	f.StringVar(&floorFile, "time-floor", "", "file keeping the latest trusted time, to catch a clock turned back")
	f.DurationVar(&tolerance, "tolerance", token.DefaultClockTolerance, "how far the clock may sit behind the time floor")
	return cmd
}

// verifyKeys loads --keys, or fetches the cluster's keys and saves them to
// --save-keys when given.
func (a *app) verifyKeys(cmd *cobra.Command, keysFile, saveKeys string) (token.KeySet, error) {
	if keysFile != "" {
		return client.LoadKeySet(keysFile)
	}
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	jwks, err := c.Keys(cmd.Context())
	if err != nil {
		return nil, fmt.Errorf("fetch keys from the cluster (give --keys FILE to verify offline): %w", err)
	}
	keys, err := client.KeySetOf(jwks)
	if err != nil {
		return nil, fmt.Errorf("keys from the cluster: %w", err)
	}
	if saveKeys != "" {
		data, _ := json.MarshalIndent(jwks, "", "  ") // plain strings always encode
		if err := writeBytesAtomic(saveKeys, append(data, '\n'), 0o644); err != nil {
			return nil, fmt.Errorf("save keys: %w", err)
		}
		fmt.Fprintf(a.stderr, "Saved %d public key(s) to %s\n", len(jwks.Keys), saveKeys)
	}
	return keys, nil
}

// readVerifyInput returns the token or file content arg names: stdin for
// "-", the file's content for a path, else arg itself. An argument that is
// neither a file nor shaped like a token is reported as a missing file.
func readVerifyInput(stdin io.Reader, arg string) (string, error) {
	var r io.Reader
	switch st, err := os.Stat(arg); {
	case arg == "-":
		r = stdin
	case err == nil && st.Mode().IsRegular():
		f, err := os.Open(arg)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	case errors.Is(err, fs.ErrNotExist) && !looksLikeToken(arg):
		return "", fmt.Errorf("%s: no such file, and not a token", arg)
	default:
		return arg, nil
	}
	data, err := io.ReadAll(io.LimitReader(r, maxVerifyInput+1))
	if err != nil {
		return "", err
	}
	if len(data) > maxVerifyInput {
		return "", fmt.Errorf("%s: larger than %d bytes, not a token or license file", arg, maxVerifyInput)
	}
	return string(data), nil
}

// looksLikeToken is true for base64url text with two dots.
func looksLikeToken(s string) bool {
	return strings.Count(s, ".") == 2 && strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == ""
}

// summarize is the one line verify prints for a valid token or file.
func summarize(r *client.OfflineResult) string {
	exp := fmtTime(r.ExpiresAt())
	if l := r.License; l != nil {
		machine := "any machine"
		if l.Machine != "" {
			machine = "machine " + l.Machine
		}
		return fmt.Sprintf("valid license file %s for %s: product %s, policy %s, features %s, %s, expires %s",
			l.Subject, l.Customer, l.ProductID, l.PolicyID, token.FormatFeatures(l.Features), machine, exp)
	}
	l := r.Lease
	machine := "any machine"
	if l.Machine != "" {
		machine = "machine " + l.Machine
	}
	if l.BorrowedUntil != 0 {
		exp += ", borrowed until " + fmtTime(time.Unix(l.BorrowedUntil, 0))
	}
	return fmt.Sprintf("valid lease token %s: license %s, feature %s, %s, expires %s",
		l.Subject, l.LicenseID, l.Feature, machine, exp)
}
