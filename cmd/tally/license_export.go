package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
)

// addOfflineCommands adds what works without the cluster, or prepares for
// it: license export (under license), verify and fingerprint (desktop).
func addOfflineCommands(root *cobra.Command, a *app) {
	for _, c := range root.Commands() {
		if c.Name() == "license" {
			c.AddCommand(licenseExportCmd(a))
		}
	}
	for _, c := range []*cobra.Command{verifyCmd(a), fingerprintCmd(a)} {
		c.GroupID = "desktop"
		root.AddCommand(c)
	}
}

func licenseExportCmd(a *app) *cobra.Command {
	var machine, output string
	var until expiresValue
	cmd := &cobra.Command{
		Use:   "export ID [--machine FP] [--until DATE] [-o FILE]",
		Short: "Write a signed license file for offline use",
		Long: `Export a license as a signed license file, for machines that cannot reach the
cluster. The file lists what the license grants and is signed by the
leader's key; 'tally verify' and the SDK check it with the cluster's public
keys, offline.

--machine locks the file to one machine: give the fingerprint that
'tally fingerprint' prints on that machine. --until ends the file before the
license's own expiry; a license that never expires needs it. Revoked and
suspended licenses are refused. A file cannot be withdrawn once handed out,
so keep --until short.

The file goes to stdout, or to FILE with -o (written whole or not at all).`,
		Example: `  tally license export lic_1 --until 2027-01-31 -o acme.lic
  tally license export lic_1 --machine 3f2a9c0d5e7b41a8c6d2e0f1a9b8c7d6 --until 2026-12-31`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			out, err := c.ExportLicense(cmd.Context(), argv[0], api.ExportLicenseRequest{Machine: machine, Until: until.t})
			if err != nil {
				return err
			}
			if output == "" {
				if a.json {
					return a.emit(out, nil)
				}
				_, err := io.WriteString(a.stdout, out.LicenseFile)
				return err
			}
			if err := writeBytesAtomic(output, []byte(out.LicenseFile), 0o644); err != nil {
				return err
			}
			return a.emit(out, func(w io.Writer) {
				fmt.Fprintf(w, "Wrote license file for %s to %s (expires %s)\n", argv[0], output, fmtTime(out.ExpiresAt))
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&machine, "machine", "", "lock the file to this machine fingerprint (default: any machine)")
	f.Var(&until, "until", "end the file at this time, RFC 3339 or YYYY-MM-DD (default: the license's expiry)")
	f.StringVarP(&output, "output", "o", "", "write the file here instead of stdout")
	return cmd
}

func fingerprintCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "fingerprint",
		Short: "Print this machine's fingerprint",
		Long: `Print the fingerprint that license files are locked to ('tally license export
--machine') and that 'tally checkout' holds seats under. It is a hash of
/etc/machine-id (or /var/lib/dbus/machine-id, or /etc/hostid), else of the
host name; see docs/offline.md for what changes it.`,
		Example: `  tally fingerprint`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fp, err := client.MachineFingerprint()
			if err != nil {
				return err
			}
			out := struct {
				Fingerprint string `json:"fingerprint"`
			}{fp}
			return a.emit(out, func(w io.Writer) { fmt.Fprintln(w, fp) })
		},
	}
}

// defaultMachine is what desktop commands call this machine: its
// fingerprint, or the host name where there is none.
func defaultMachine() string {
	if fp, err := client.MachineFingerprint(); err == nil {
		return fp
	}
	host, _ := os.Hostname()
	return host
}

// writeBytesAtomic writes data with mode perm through writeFileAtomic, so
// path is never half-written.
func writeBytesAtomic(path string, data []byte, perm os.FileMode) error {
	return writeFileAtomic(path, func(w io.Writer) error {
		if f, ok := w.(*os.File); ok {
			if err := f.Chmod(perm); err != nil {
				return err
			}
		}
		_, err := w.Write(data)
		return err
	})
}
