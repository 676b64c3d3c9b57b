package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/release"
	"github.com/cutover-dev/cutover/services/planner/manifest"
)

// newReleaseCmd is cutover release latest|pin.
func newReleaseCmd() *cobra.Command {
	return cli.GroupCmd("release", "find the newest tag of an image, or pin a manifest's images to digests",
		newReleaseLatestCmd(), newReleasePinCmd())
}

func newReleaseLatestCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "latest --registry R --repo X [--patch-only --current TAG]",
		Short: "the newest semver tag (or newest patch of TAG's major.minor) and its digest",
		Example: "  cutover release latest --registry quay.io --repo openstack.kolla/nova-api\n" +
			"  cutover release latest --registry quay.io --repo openstack.kolla/nova-api --patch-only --current 2024.1.3 -o json",
		Args: cli.NoArgs,
	}
	reg := cmd.Flags().String("registry", "", "registry host[:port], e.g. quay.io or 127.0.0.1:5000")
	repo := cmd.Flags().String("repo", "", "repository in the registry, e.g. openstack.kolla/nova-api")
	patchOnly := cmd.Flags().Bool("patch-only", false, "only the newest patch of --current's major.minor (a minor update)")
	current := cmd.Flags().String("current", "", "the tag running now (with --patch-only)")
	output := cli.OutputFlag(cmd, "text", "json")
	insecure := cmd.Flags().Bool("insecure", false, "allow plain HTTP (localhost and private addresses use HTTP anyway)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *reg == "" || *repo == "" {
			return usageErrorf("--registry and --repo are required, e.g. cutover release latest --registry quay.io --repo openstack.kolla/nova-api")
		}
		if *patchOnly && *current == "" {
			return usageErrorf("--patch-only needs --current TAG: the tag running now, whose major.minor the patch must keep")
		}
		img, err := release.Latest(cmd.Context(), *reg, *repo, release.Options{PatchOnly: *patchOnly, Current: *current, Insecure: *insecure})
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if output.Value == "json" {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(img)
		}
		_, err = fmt.Fprintf(w, "%s %s\n", img.Tag, img.Digest)
		return err
	}
	return cmd
}

func newReleasePinCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "pin -f release.yaml [--out pinned.yaml]",
		Short:   "pin every image of a manifest to the digest its tag has now",
		Example: "  cutover release pin -f release.yaml --out pinned.yaml",
		Args:    cli.NoArgs,
	}
	file := cli.FileFlag(cmd, "release manifest (YAML)")
	out := cmd.Flags().String("out", "", "write the pinned manifest to this file (default: standard output)")
	_ = cmd.MarkFlagFilename("out", "yaml", "yml")
	insecure := cmd.Flags().Bool("insecure", false, "allow plain HTTP (localhost and private addresses use HTTP anyway)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *file == "" {
			return usageErrorf("-f is required: the release manifest to pin, e.g. cutover release pin -f release.yaml --out pinned.yaml")
		}
		raw, err := os.ReadFile(*file)
		if err != nil {
			return fmt.Errorf("read release manifest: %w", err)
		}
		pinned, err := release.PinManifest(cmd.Context(), raw, *insecure)
		if err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
		if _, err := manifest.ParseRelease(*file, pinned); err != nil {
			return fmt.Errorf("pinned manifest no longer validates: %w", err)
		}
		if *out == "" {
			_, err = cmd.OutOrStdout().Write(pinned)
			return err
		}
		if err := os.WriteFile(*out, pinned, 0o644); err != nil {
			return fmt.Errorf("write pinned manifest %s: %w", *out, err)
		}
		return nil
	}
	return cmd
}
