package auditor_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/auditor"
)

// TestDashboardLiveInChromium opens an upgrade's live page in headless
// chromium, publishes the upgrade's events on real NATS, and reads the DOM:
// the page shows the upgrade progressing, then its rollback, without a
// reload. CUTOVER_SCREENSHOT=file.png saves a screenshot of the page mid-way.
func TestDashboardLiveInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not found on PATH: run scripts/install-chromium.sh (Debian's chromium package) to run the browser test")
	}
	s := natstest.Start(t)
	store := openStore(t, filepath.Join(t.TempDir(), "audit.db"))
	hub := auditor.NewHub(0, 0)
	a, err := auditor.New(auditor.Config{Logger: testLogger(t), Hub: hub}, s.JS, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	srv := httptest.NewServer(auditor.NewDashboard(store, hub, testLogger(t), nil))
	t.Cleanup(srv.Close)

	actx, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true))...)
	t.Cleanup(cancel)
	bctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancel)
	chromedp.ListenTarget(bctx, func(ev any) {
		switch ev := ev.(type) {
		case *cdpruntime.EventExceptionThrown:
			t.Logf("page exception: %s", ev.ExceptionDetails.Error())
		case *cdpruntime.EventConsoleAPICalled:
			for _, a := range ev.Args {
				t.Logf("console.%s: %s", ev.Type, a.Value)
			}
		}
	})
	// The browser starts with the first Run, on a context that lives as long
	// as the test: a Run on a timeout context would close it when done.
	if err := chromedp.Run(bctx); err != nil {
		t.Fatalf("start chromium %s: %v", chromium, err)
	}
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// text polls an element's text until it contains want.
	text := func(sel, want string) {
		t.Helper()
		var got string
		defer func() {
			if t.Failed() {
				t.Logf("%s shows %q", sel, got)
			}
		}()
		eventually(t, 30*time.Second, sel+" to show "+want, func() bool {
			ctx, cancel := context.WithTimeout(bctx, 5*time.Second)
			defer cancel()
			if err := chromedp.Run(ctx, chromedp.Text(sel, &got, chromedp.ByQuery)); err != nil {
				got = "(" + err.Error() + ")"
				return false
			}
			return strings.Contains(got, want)
		})
	}

	req := events.MustNew(events.Source("test", ""), events.UpgradeRequested{Release: events.Release{Name: "demo-v2",
		Services: map[string]events.ServiceRelease{"web": {Image: "web:v2"}}}})
	id := req.ID()
	run("open the live page", chromedp.Navigate(srv.URL+"/upgrades/"+id),
		chromedp.Evaluate(`window.__notReloaded = true`, nil))
	text("#live", "live")

	pl := func(d events.Data) events.Event {
		return events.MustNew(events.Source("planner", ""), d, events.WithUpgrade(id), events.CausedBy(req))
	}
	nu := func(node string, d events.Data) events.Event {
		return events.MustNew(events.Source("node-updater", node), d, events.WithUpgrade(id), events.WithNode(node))
	}
	cmd := func(node string, rollback bool, image string, c string) events.Event {
		return events.MustNew(events.Source("planner", ""), events.NodeUpdateRequested{Rollback: rollback, Containers: []events.ContainerTarget{{Container: c, Service: "web", Image: image}}},
			events.WithUpgrade(id), events.WithNode(node))
	}
	publish(t, s.JS, req,
		pl(events.UpgradePlanned{Release: "demo-v2", Changes: []events.ContainerChange{
			{Node: "n1", Container: "web-1", Service: "web", FromImage: "web:v1", ToImage: "web:v2", Reason: "image differs"},
			{Node: "n2", Container: "web-2", Service: "web", FromImage: "web:v1", ToImage: "web:v2", Reason: "image differs"}},
			Waves: []events.PlannedWave{{Index: 0, Nodes: []string{"n1"}}, {Index: 1, Nodes: []string{"n2"}}}}),
		pl(events.UpgradeStarted{Waves: 2}),
		cmd("n1", false, "web:v2", "web-1"),
		pl(events.WaveStarted{Wave: 0, Nodes: []string{"n1"}}),
		nu("n1", events.ContainerPulled{Container: "web-1", Image: "web:v2", ImageID: "sha256:2", DurationMs: 120}),
		nu("n1", events.ContainerDraining{Container: "web-1", Service: "web"}),
	)
	text("#state", "running")
	text(`#nodes [data-container="web-1"]`, "draining")
	text(`#nodes [data-container="web-2"]`, "planned")

	publish(t, s.JS,
		nu("n1", events.ContainerReplaced{Container: "web-1", Service: "web", Result: events.ResultReplaced, FromImage: "web:v1", ToImage: "web:v2", InterruptionMs: 850}),
		nu("n1", events.NodeUpdateCompleted{Results: []events.ContainerResult{{Container: "web-1", Result: events.ResultReplaced, InterruptionMs: 850}}}),
		pl(events.WaveCompleted{Wave: 0, Nodes: []string{"n1"}, Replaced: 1}),
		cmd("n2", false, "web:v2", "web-2"),
		pl(events.WaveStarted{Wave: 1, Nodes: []string{"n2"}}),
		nu("n2", events.ContainerDraining{Container: "web-2", Service: "web"}),
	)
	text(`#nodes [data-container="web-1"]`, "replaced")
	text(`#nodes [data-container="web-1"]`, "850 ms interruption")
	text("#waves", "wave 0: n1 — completed")
	if path := os.Getenv("CUTOVER_SCREENSHOT"); path != "" {
		var png []byte
		run("take a screenshot", chromedp.CaptureScreenshot(&png))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	verdict := events.MustNew(events.Source("auditor", ""), events.HealthVerdict{Service: "web", Wave: 0, Verdict: "failing",
		Evidence: []string{"3 consecutive failures from n1 (policy: 3)"}}, events.WithUpgrade(id))
	publish(t, s.JS, verdict,
		events.MustNew(events.Source("auditor", ""), events.RollbackRequested{Reason: "service web failed its health policy in the watch window of wave 0", RequestedBy: "auditor"},
			events.CausedBy(verdict)),
	)
	text("#state", "rolling-back")
	text("#rollback", "service web failed its health policy")
	text("#health", "web (wave 0): failing")

	publish(t, s.JS,
		nu("n2", events.NodeUpdateFailed{Wave: 1, Container: "web-2", Step: "health", Error: "rollback requested", Results: []events.ContainerResult{{Container: "web-2", Result: events.ResultReverted}}}),
		cmd("n1", true, "web:v1", "web-1"),
		nu("n1", events.NodeUpdateCompleted{Rollback: true, Results: []events.ContainerResult{{Container: "web-1", Result: events.ResultReplaced, FromImage: "web:v2", ToImage: "web:v1"}}}),
		pl(events.RollbackCompleted{Result: "completed", Nodes: []string{"n1"}, Reason: "service web failed its health policy in the watch window of wave 0"}),
	)
	text("#state", "rolled-back")
	text(`#nodes [data-container="web-1"]`, "rolled back")
	text(`#nodes [data-container="web-2"]`, "reverted")
	text("#rollback", "Rollback completed")
	text("#timeline", "rollback.completed")

	var notReloaded bool
	run("check the page was not reloaded", chromedp.Evaluate(`window.__notReloaded === true`, &notReloaded))
	if !notReloaded {
		t.Fatal("the page was reloaded: the marker set at load time is gone")
	}
	if path := os.Getenv("CUTOVER_SCREENSHOT"); path != "" {
		var png []byte
		run("take a screenshot", chromedp.CaptureScreenshot(&png))
		_ = os.WriteFile(strings.TrimSuffix(path, ".png")+"-rolled-back.png", png, 0o644)
	}
}
