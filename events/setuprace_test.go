package events_test

import (
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/embednats"
	"github.com/cutover-dev/cutover/events/natstest"
)

// setupTogether connects two planners at once, one to each URL, and
// returns their errors.
func setupTogether(t *testing.T, urls [2]string, replicas int) []error {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for j := range errs {
		wg.Go(func() {
			nc, _, err := events.Connect(t.Context(), events.ClientConfig{URL: urls[j]}, "cutover-planner",
				events.WithSetup(events.SetupConfig{Replicas: replicas, Logger: slog.New(slog.DiscardHandler)}))
			if err == nil {
				nc.Close()
			}
			errs[j] = err
		})
	}
	wg.Wait()
	return errs
}

// TestConcurrentFirstSetupsBothSucceed starts two planners at once on a
// fresh server, and on a fresh cluster (one planner on each of two of its
// servers), as a new deployment does: both must find or create the
// stream and every bucket.
func TestConcurrentFirstSetupsBothSucceed(t *testing.T) {
	t.Run("one server", func(t *testing.T) {
		for i := range 10 {
			s, err := embednats.Start(embednats.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Name: "race"})
			if err != nil {
				t.Fatal(err)
			}
			errs := setupTogether(t, [2]string{s.ClientURL(), s.ClientURL()}, 1)
			s.Shutdown()
			s.WaitForShutdown()
			for j, err := range errs {
				if err != nil {
					t.Errorf("run %d, planner %d: %v", i, j, err)
				}
			}
		}
	})
	t.Run("cluster", func(t *testing.T) {
		for i := range 3 {
			t.Run("", func(t *testing.T) {
				c := natstest.StartCluster(t, 3)
				urls := strings.Split(c.URLs(), ",")
				for j, err := range setupTogether(t, [2]string{urls[0], urls[1]}, 3) {
					if err != nil {
						t.Errorf("run %d, planner %d: %v", i, j, err)
					}
				}
			})
		}
	})
}
