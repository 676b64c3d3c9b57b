package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cutover-dev/cutover/services/planner/inventory"
	"github.com/cutover-dev/cutover/services/planner/inventory/kolla"
)

// runInventory dispatches `cutover inventory import|check`.
func runInventory(_ context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("inventory needs a subcommand: import --kolla FILE [-o out.yaml], or check FILE")
	}
	switch args[0] {
	case "import":
		fs := flag.NewFlagSet("inventory import", flag.ContinueOnError)
		kollaFile := fs.String("kolla", "", "kolla-ansible INI inventory (e.g. multinode)")
		out := fs.String("o", "", "write the cutover inventory here (default: stdout)")
		registry := fs.String("registry", "", "image registry/namespace (default quay.io/openstack.kolla)")
		tag := fs.String("tag", "", "image tag the fleet runs now (default 2024.1-ubuntu-jammy)")
		if err := fs.Parse(args[1:]); err != nil {
			return exitError{2}
		}
		if *kollaFile == "" {
			return errors.New("--kolla is required: the kolla-ansible inventory to import")
		}
		return importKolla(*kollaFile, *out, kolla.Options{Registry: *registry, Tag: *tag}, os.Stdout, os.Stderr)
	case "check":
		if len(args) != 2 {
			return errors.New("usage: cutover inventory check FILE")
		}
		inv, err := inventory.Load(args[1])
		if err != nil {
			return err
		}
		fmt.Printf("%s: %d nodes, %d roles, %d services: valid\n", args[1], len(inv.Nodes), len(inv.Roles), len(inv.Services))
		return nil
	default:
		return fmt.Errorf("inventory: unknown subcommand %q; use import or check", args[0])
	}
}

func importKolla(in, out string, opts kolla.Options, stdout, stderr io.Writer) error {
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("open kolla inventory: %w", err)
	}
	defer f.Close()
	parsed, err := kolla.Parse(in, f)
	if err != nil {
		return err
	}
	inv, rep, err := kolla.Convert(parsed, opts)
	if err != nil {
		return err
	}
	raw, err := inventory.Marshal(inv)
	if err != nil {
		return err
	}
	header := fmt.Sprintf("# cutover inventory imported from kolla-ansible inventory %s.\n# Review images, databases (version) and max_unavailable before planning.\n", in)
	raw = append([]byte(header), raw...)
	if len(rep.EmptyGroups) > 0 {
		fmt.Fprintf(stderr, "skipped service groups with no hosts: %s\n", strings.Join(rep.EmptyGroups, ", "))
	}
	if len(rep.IdleHosts) > 0 {
		fmt.Fprintf(stderr, "skipped hosts that run no service: %s\n", strings.Join(rep.IdleHosts, ", "))
	}
	if out == "" {
		_, err = stdout.Write(raw)
		return err
	}
	if err := os.WriteFile(out, raw, 0o644); err != nil {
		return fmt.Errorf("write inventory %s: %w", out, err)
	}
	fmt.Fprintf(stderr, "wrote %s: %d nodes, %d roles, %d services\n", out, len(inv.Nodes), len(inv.Roles), len(inv.Services))
	return nil
}
