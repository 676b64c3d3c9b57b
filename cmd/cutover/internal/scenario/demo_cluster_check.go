package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/upgrades"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/harness/testkit"
)

// checkEngine reads the outcome back from the Docker engine and the
// containers themselves, not from cutover's events.
func (d *clusterDemo) checkEngine(ctx context.Context, names []string, images map[string]testkit.Image) bool {
	fmt.Fprintln(d.out, "the containers, read back from the Docker engine:")
	tw := tabwriter.NewWriter(d.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  container\tnode\timage\thealth\tserves")
	ok := true
	for _, name := range names {
		img, health, node, serves := "?", "?", "?", "?"
		if insp, err := d.cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{}); err == nil {
			c := insp.Container
			for v, i := range images {
				if i.ID == c.Image {
					img = v
				}
			}
			if c.State != nil && c.State.Health != nil {
				health = string(c.State.Health.Status)
			}
			node = c.Config.Labels["dev.cutover.node"]
			if ep, found := c.NetworkSettings.Networks[clusterName]; found && ep.IPAddress.IsValid() {
				serves = servedVersion(ctx, "http://"+ep.IPAddress.String()+":8080/")
			}
		}
		if img != "v2" || health != "healthy" || serves != "v2" {
			ok = false
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", name, node, img, health, serves)
	}
	tw.Flush()
	return ok
}

// servedVersion is the version the demo app at url says it runs, or "?".
func servedVersion(ctx context.Context, url string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "?"
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "?"
	}
	defer resp.Body.Close()
	var v struct {
		Version string `json:"version"`
	}
	if json.NewDecoder(resp.Body).Decode(&v) != nil || v.Version == "" {
		return "?"
	}
	return v.Version
}

// checkHistory compares the upgrade's events in the stream with the
// auditor's history: every one stored once, and no container replaced twice.
func (d *clusterDemo) checkHistory(ctx context.Context, js jetstream.JetStream, id string, containers int) bool {
	// The cluster may still be electing leaders after the lost server:
	// read again until it answers.
	var inStream, recs []events.Event
	var readErr error
	if err := wait(ctx, 30*time.Second, "the stream to answer", func() bool {
		inStream, readErr = upgrades.Events(ctx, js, id)
		return readErr == nil
	}); err != nil {
		fmt.Fprintf(d.out, "  read the upgrade's events from the stream: %v (%v)\n", readErr, err)
		return false
	}
	aud := &upgrades.Auditor{Base: "http://" + d.http}
	if err := wait(ctx, 30*time.Second, "the auditor to store every event of the upgrade", func() bool {
		recs, readErr = aud.Events(ctx, id)
		stored := map[string]bool{}
		for _, r := range recs {
			stored[r.ID()] = true
		}
		for _, e := range inStream {
			if !stored[e.ID()] {
				return false
			}
		}
		return readErr == nil
	}); err != nil {
		fmt.Fprintf(d.out, "  auditor: %v (%v)\n", err, readErr)
		return false
	}
	seen := map[string]int{}
	replaced := map[string]int{}
	for _, r := range recs {
		seen[r.ID()]++
		if c, err := events.DataAs[events.ContainerReplaced](r); err == nil && r.Type() == events.TypeContainerReplaced && c.Result == events.ResultReplaced {
			replaced[c.Container]++
		}
	}
	ok := len(seen) == len(recs) && len(replaced) == containers
	for c, n := range replaced {
		if n != 1 {
			ok = false
			fmt.Fprintf(d.out, "  %s was replaced %d times\n", c, n)
		}
	}
	fmt.Fprintf(d.out, "the auditor's history (a process of its own, SQLite): %d events of the upgrade, each once; the stream holds %d of them, all stored; %d containers replaced once each\n",
		len(recs), len(inStream), len(replaced))
	return ok
}

// report prints what the services said about the faults: the standby
// planner taking over and the clients that lost and regained the bus.
func (d *clusterDemo) report() {
	fmt.Fprintln(d.out, "\nwhat the services logged about the faults:")
	d.mu.Lock()
	procs := append([]*proc(nil), d.procs...)
	d.mu.Unlock()
	for _, p := range procs {
		if strings.HasPrefix(p.name, "nats-") {
			continue
		}
		if d.killed[p.name] {
			fmt.Fprintf(d.out, "  %-28s killed\n", p.name)
			continue
		}
		for _, l := range p.grep("took over the planner lease") {
			fmt.Fprintf(d.out, "  %-28s %s\n", p.name, logMsg(l))
		}
		lost, back := p.grep("lost the bus"), p.grep("regained the bus")
		switch {
		case len(lost) > 0 && len(back) > 0:
			fmt.Fprintf(d.out, "  %-28s lost the bus %d×, regained it: %s\n", p.name, len(lost), logMsg(back[len(back)-1]))
		case len(lost) > 0:
			fmt.Fprintf(d.out, "  %-28s lost the bus and has not regained it\n", p.name)
		default:
			fmt.Fprintf(d.out, "  %-28s logged no lost connection\n", p.name)
		}
	}
}

// logMsg keeps a slog text line's message and attributes, without its
// time and level.
func logMsg(line string) string {
	if i := strings.Index(line, "msg="); i >= 0 {
		return line[i:]
	}
	return line
}

// cleanup stops every process, printing the end of each log when the demo
// failed, and removes the containers, volumes, network, images and files.
func (d *clusterDemo) cleanup(ctx context.Context, failed bool) error {
	d.mu.Lock()
	procs := append([]*proc(nil), d.procs...)
	d.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop(procGrace)
	}
	if failed {
		for _, p := range procs {
			fmt.Fprintf(d.out, "\n--- %s (exit %v), last lines:\n%s\n", p.name, p.err, strings.Join(p.tail(15), "\n"))
		}
	}
	err := d.removeDocker(ctx)
	d.kit.close(ctx) // the registry and the work directory
	if _, serr := os.Stat(d.work); !errors.Is(serr, os.ErrNotExist) {
		err = errors.Join(err, fmt.Errorf("remove %s: %v", d.work, serr))
	}
	if err == nil {
		fmt.Fprintf(d.out, "cleaned up: %d processes stopped; containers, volumes, network and images labelled %s removed; %s removed\n", len(procs), clusterLabel, d.work)
	}
	return err
}

// removeDocker removes what the demo made on the engine.
func (d *clusterDemo) removeDocker(ctx context.Context) error {
	errs := []error{testkit.Cleanup(ctx, d.cli, clusterLabel)}
	if _, err := d.cli.NetworkRemove(ctx, clusterName, client.NetworkRemoveOptions{}); err != nil && !strings.Contains(err.Error(), "not found") {
		errs = append(errs, fmt.Errorf("remove network %s: %w", clusterName, err))
	}
	return errors.Join(errs...)
}
