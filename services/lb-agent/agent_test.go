package lbagent_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	lbagent "github.com/cutover-dev/cutover/services/lb-agent"
	"github.com/cutover-dev/cutover/services/lb-agent/haproxy"
)

// subscribeAcks returns the acknowledgements node's events get, until the end of the test.
func subscribeAcks(t *testing.T, s *natstest.Server, node string) <-chan events.Event {
	t.Helper()
	acks := make(chan events.Event, 4)
	sub, err := s.Conn.Subscribe(events.NodeAckSubject(node), func(m *nats.Msg) {
		if e, err := events.Decode(m.Header, m.Data); err == nil {
			acks <- e
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return acks
}

// TestAgentDrainsBeforeAcknowledgingAndRestoresAfterReplacement plays the
// node-updater's side by hand: a draining event for web-1 while a request to
// web-1 is still open. The acknowledgement must come only after that
// request finished, with web-1 out of rotation; a replaced event puts it back.
func TestAgentDrainsBeforeAcknowledgingAndRestoresAfterReplacement(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy not installed: run scripts/install-haproxy.sh (make test does)")
	}
	s := natstest.Start(t)
	hold := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	addrs := map[string]string{}
	for _, name := range []string{"web-1", "web-2"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				<-hold
			}
			fmt.Fprint(w, name)
		}))
		t.Cleanup(srv.Close)
		addrs[name] = strings.TrimPrefix(srv.URL, "http://")
	}
	t.Cleanup(release)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	front := l.Addr().String()
	l.Close()
	hp, err := haproxy.Run(t.Context(), t.TempDir(), haproxy.Backend{Name: "web", Listen: front, Servers: map[string]string{"s1": addrs["web-1"], "s2": addrs["web-2"]}, HealthPath: "/healthz"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hp.Close() })
	natstest.Eventually(t, 15*time.Second, "servers up", func() bool {
		st, err := hp.Stats(t.Context(), "web")
		return err == nil && st[0].Status == "UP" && st[1].Status == "UP"
	})

	agent, err := lbagent.New(lbagent.Config{Servers: map[string]lbagent.Server{"web-1": {"web", "s1"}, "web-2": {"web", "s2"}}, DrainTimeout: 10 * time.Second}, s.JS, hp.Client)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Serve(t, agent, 10*time.Second)

	acks := subscribeAcks(t, s, "node1")

	// An open request pinned on s1 (s2 in maintenance while it starts).
	if err := hp.SetState(t.Context(), "web", "s2", haproxy.StateMaint); err != nil {
		t.Fatal(err)
	}
	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + front + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		defer resp.Body.Close()
		b := make([]byte, 16)
		n, _ := resp.Body.Read(b)
		slow <- string(b[:n])
	}()
	natstest.Eventually(t, 15*time.Second, "the open request on s1", func() bool { st, _ := hp.Stat(t.Context(), "web", "s1"); return st.Sessions == 1 })
	if err := hp.SetState(t.Context(), "web", "s2", haproxy.StateReady); err != nil {
		t.Fatal(err)
	}

	pub := events.NewPublisher(s.JS)
	draining := events.MustNew(events.Source("node-updater", "node1"), events.ContainerDraining{Container: "web-1", Service: "web"}, events.WithNode("node1"), events.WithUpgrade("u1"))
	if err := pub.Publish(t.Context(), draining); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 15*time.Second, "s1 draining", func() bool { st, _ := hp.Stat(t.Context(), "web", "s1"); return st.Status == "DRAIN" })
	select {
	case e := <-acks:
		t.Fatalf("acknowledged (%s) while a request on web-1 was still open", e.ID())
	default:
	}
	release()
	if got := <-slow; got != "web-1" {
		t.Errorf("the open request was answered %q, want web-1 (it must not be cut)", got)
	}
	var ack events.Event
	select {
	case ack = <-acks:
	case <-time.After(15 * time.Second):
		t.Fatal("no acknowledgement after the session ended")
	}
	d, _ := events.DataAs[events.ContainerDrained](ack)
	if d.Container != "web-1" || events.CausationID(ack) != draining.ID() || events.UpgradeID(ack) != "u1" {
		t.Errorf("ack = %+v, causation %s; want web-1 answering %s in upgrade u1", d, events.CausationID(ack), draining.ID())
	}
	if st, _ := hp.Stat(t.Context(), "web", "s1"); st.Status != "MAINT" {
		t.Errorf("s1 is %s after the drain, want MAINT", st.Status)
	}

	replaced := events.MustNew(events.Source("node-updater", "node1"), events.ContainerReplaced{Container: "web-1", Result: events.ResultReplaced, FromImage: "v1", ToImage: "v2"}, events.WithNode("node1"))
	if err := pub.Publish(t.Context(), replaced); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 15*time.Second, "s1 back in rotation", func() bool { st, _ := hp.Stat(t.Context(), "web", "s1"); return st.Status == "UP" })
}

func TestAgentRefusesAnEmptyServerMap(t *testing.T) {
	if _, err := lbagent.New(lbagent.Config{}, nil, nil); err == nil || !strings.Contains(err.Error(), "map each container") {
		t.Errorf("err = %v", err)
	}
}

// TestAgentDrainsTheNodesServerOfASharedContainerName follows Kolla's
// layout with a real HAProxy: every controller runs a container called
// nova_api, and the backend nova_api_back names its servers after the
// nodes. Draining nova_api on controller2 must take controller2 out of
// rotation and leave controller1 serving.
func TestAgentDrainsTheNodesServerOfASharedContainerName(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy not installed: run scripts/install-haproxy.sh (make test does)")
	}
	s := natstest.Start(t)
	addrs := map[string]string{}
	for _, node := range []string{"controller1", "controller2"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, node) }))
		t.Cleanup(srv.Close)
		addrs[node] = strings.TrimPrefix(srv.URL, "http://")
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	front := l.Addr().String()
	l.Close()
	hp, err := haproxy.Run(t.Context(), t.TempDir(), haproxy.Backend{Name: "nova_api_back", Listen: front, Servers: addrs, HealthPath: "/healthz"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hp.Close() })
	status := func(server string) string {
		st, err := hp.Stat(t.Context(), "nova_api_back", server)
		if err != nil {
			return err.Error()
		}
		return st.Status
	}
	natstest.Eventually(t, 15*time.Second, "servers up", func() bool { return status("controller1") == "UP" && status("controller2") == "UP" })

	agent, err := lbagent.New(lbagent.Config{Backends: map[string]string{"nova_api": "nova_api_back"}, DrainTimeout: 5 * time.Second}, s.JS, hp.Client)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Serve(t, agent, 10*time.Second)
	acks := subscribeAcks(t, s, "controller2")

	pub := events.NewPublisher(s.JS)
	draining := events.MustNew(events.Source("node-updater", "controller2"), events.ContainerDraining{Container: "nova_api", Service: "nova-api"}, events.WithNode("controller2"))
	if err := pub.Publish(t.Context(), draining); err != nil {
		t.Fatal(err)
	}
	select {
	case ack := <-acks:
		if events.CausationID(ack) != draining.ID() {
			t.Errorf("ack answers %s, want %s", events.CausationID(ack), draining.ID())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no acknowledgement of the drain")
	}
	if got := status("controller2"); got != "MAINT" {
		t.Errorf("controller2 is %s after the drain, want MAINT", got)
	}
	if got := status("controller1"); got != "UP" {
		t.Errorf("controller1 is %s after controller2's drain, want UP (only the draining node's server leaves)", got)
	}
	replaced := events.MustNew(events.Source("node-updater", "controller2"), events.ContainerReplaced{Container: "nova_api", Result: events.ResultReplaced, FromImage: "v1", ToImage: "v2"}, events.WithNode("controller2"))
	if err := pub.Publish(t.Context(), replaced); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 15*time.Second, "controller2 back in rotation", func() bool { return status("controller2") == "UP" })
}
