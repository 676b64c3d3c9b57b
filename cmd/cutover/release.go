package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/cutover-dev/cutover/services/planner/manifest"
	"github.com/cutover-dev/cutover/services/planner/release"
)

const releaseUsage = `usage:
  cutover release latest --registry R --repo X [--patch-only --current TAG] [-o text|json] [--insecure]
      the newest semver tag of R/X (or the newest patch of TAG's major.minor) and its digest
  cutover release pin -f release.yaml [-o pinned.yaml] [--insecure]
      the manifest with every image pinned to the digest its tag has now
`

func runRelease(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, releaseUsage)
		return exitError{2}
	}
	switch args[0] {
	case "latest":
		return runReleaseLatest(ctx, args[1:], os.Stdout)
	case "pin":
		return runReleasePin(ctx, args[1:], os.Stdout)
	default:
		fmt.Fprintf(os.Stderr, "cutover release: unknown subcommand %q\n%s", args[0], releaseUsage)
		return exitError{2}
	}
}

func runReleaseLatest(ctx context.Context, args []string, w io.Writer) error {
	fs := flag.NewFlagSet("release latest", flag.ContinueOnError)
	reg := fs.String("registry", "", "registry host[:port], e.g. quay.io or 127.0.0.1:5000")
	repo := fs.String("repo", "", "repository in the registry, e.g. openstack.kolla/nova-api")
	patchOnly := fs.Bool("patch-only", false, "only the newest patch of --current's major.minor (a minor update)")
	current := fs.String("current", "", "the tag running now (with --patch-only)")
	output := fs.String("o", "text", "output format: text (TAG DIGEST) or json")
	insecure := fs.Bool("insecure", false, "allow plain HTTP (localhost and private addresses use HTTP anyway)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *reg == "" || *repo == "" {
		return errors.New("--registry and --repo are required, e.g. cutover release latest --registry quay.io --repo openstack.kolla/nova-api")
	}
	if *patchOnly && *current == "" {
		return errors.New("--patch-only needs --current TAG: the tag running now, whose major.minor the patch must keep")
	}
	if *output != "text" && *output != "json" {
		return fmt.Errorf("-o %q: use text or json", *output)
	}
	img, err := release.Latest(ctx, *reg, *repo, release.Options{PatchOnly: *patchOnly, Current: *current, Insecure: *insecure})
	if err != nil {
		return err
	}
	if *output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(img)
	}
	_, err = fmt.Fprintf(w, "%s %s\n", img.Tag, img.Digest)
	return err
}

func runReleasePin(ctx context.Context, args []string, w io.Writer) error {
	fs := flag.NewFlagSet("release pin", flag.ContinueOnError)
	file := fs.String("f", "", "release manifest (YAML)")
	out := fs.String("o", "", "write the pinned manifest here (default: standard output)")
	insecure := fs.Bool("insecure", false, "allow plain HTTP (localhost and private addresses use HTTP anyway)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *file == "" {
		return errors.New("-f is required: the release manifest to pin, e.g. cutover release pin -f release.yaml -o pinned.yaml")
	}
	raw, err := os.ReadFile(*file)
	if err != nil {
		return fmt.Errorf("read release manifest: %w", err)
	}
	pinned, err := release.PinManifest(ctx, raw, *insecure)
	if err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	if _, err := manifest.ParseRelease(*file, pinned); err != nil {
		return fmt.Errorf("pinned manifest no longer validates: %w", err)
	}
	if *out == "" {
		_, err = w.Write(pinned)
		return err
	}
	if err := os.WriteFile(*out, pinned, 0o644); err != nil {
		return fmt.Errorf("write pinned manifest %s: %w", *out, err)
	}
	return nil
}

// loadRelease reads a release manifest, pinning its images to digests
// first when pin is set (cutover plan --pin).
func loadRelease(ctx context.Context, file string, pin, insecure bool) (manifest.Release, error) {
	if !pin {
		return manifest.LoadRelease(file)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return manifest.Release{}, fmt.Errorf("read release manifest: %w", err)
	}
	pinned, err := release.PinManifest(ctx, raw, insecure)
	if err != nil {
		return manifest.Release{}, fmt.Errorf("%s: %w", file, err)
	}
	return manifest.ParseRelease(file, pinned)
}
