package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/planner"
)

// TestControlCommandsReachThePlanner runs the CLI's controls against a real
// planner over NATS: an unknown id is refused with the fix, pause and
// abort change the upgrade's phase, rollback publishes the rollback request.
func TestControlCommandsReachThePlanner(t *testing.T) {
	s := natstest.Start(t)
	kv, err := s.JS.KeyValue(t.Context(), events.BucketNodes)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(events.NodeInventory{Node: "n1", Containers: []events.ObservedContainer{{Name: "web-1", Service: "web", Image: "web:v1"}}})
	if _, err := kv.Put(t.Context(), "n1", raw); err != nil {
		t.Fatal(err)
	}
	p, err := planner.New(t.Context(), planner.Config{}, s.JS)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Serve(t, p, 10*time.Second)
	// No node-updater answers: the upgrade stays running with n1's command in flight.
	req := events.MustNew(events.Source("test", ""), events.UpgradeRequested{Release: events.Release{Name: "v2", Services: map[string]events.ServiceRelease{"web": {Image: "web:v2"}}}})
	natstest.Publish(t, s.JS, req)
	id := req.ID()
	phase := func(want string) {
		t.Helper()
		natstest.Eventually(t, 10*time.Second, "phase "+want, func() bool {
			u, err := planner.LoadUpgrade(t.Context(), s.JS, id)
			return err == nil && u.Phase == want && len(u.Outbox) == 0
		})
	}
	phase(planner.PhaseRunning)
	nats := []string{"--nats", s.ClientURL()}

	if r := runCLI(t.Context(), append([]string{"pause", "no-such-upgrade"}, nats...)...); r.code != 1 || !strings.Contains(r.stderr, "cutover list shows") {
		t.Errorf("pause of an unknown upgrade = %+v, want exit 1 and an error naming the fix", r)
	}
	r := runCLI(t.Context(), append([]string{"pause", id}, nats...)...)
	if r.code != 0 {
		t.Fatalf("pause: %+v", r)
	}
	if !strings.Contains(r.stdout, "cutover watch "+id) {
		t.Errorf("output %q does not say how to follow", r.stdout)
	}
	natstest.Eventually(t, 10*time.Second, "the pause to be recorded", func() bool {
		u, err := planner.LoadUpgrade(t.Context(), s.JS, id)
		return err == nil && u.PauseRequested
	})
	if r := runCLI(t.Context(), append([]string{"rollback", id, "--reason", "test"}, nats...)...); r.code != 0 {
		t.Fatalf("rollback: %+v", r)
	}
	st, _ := s.JS.Stream(t.Context(), events.StreamName)
	msg, err := st.GetLastMsgForSubject(t.Context(), events.SubjectRollbackRequest)
	if err != nil {
		t.Fatalf("no rollback request in the stream: %v", err)
	}
	e, err := events.Decode(msg.Header, msg.Data)
	if d, _ := events.DataAs[events.RollbackRequested](e); err != nil || events.UpgradeID(e) != id || d.Reason != "test" {
		t.Errorf("rollback request = %+v for %s (%v)", d, events.UpgradeID(e), err)
	}
	if r := runCLI(t.Context(), append([]string{"abort", id}, nats...)...); r.code != 0 {
		t.Fatalf("abort: %+v", r)
	}
	phase(planner.PhaseAborted)
}
