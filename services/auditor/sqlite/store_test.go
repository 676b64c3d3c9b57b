package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/auditor"
	"github.com/cutover-dev/cutover/services/auditor/sqlite"
	"github.com/cutover-dev/cutover/services/auditor/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return open(t) })
}

func open(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func appendAll(t *testing.T, s *sqlite.Store, recs ...auditor.Record) {
	t.Helper()
	for _, r := range recs {
		if _, err := s.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
}

func record(t *testing.T, upgrade string, d events.Data, at time.Time) auditor.Record {
	t.Helper()
	e := events.MustNew(events.Source("test", ""), d, events.WithUpgrade(upgrade))
	e.SetTime(at)
	r, err := auditor.RecordOf(e, at)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var request = events.UpgradeRequested{Release: events.Release{Name: "2025.1", Services: map[string]events.ServiceRelease{"web": {Image: "web:v2"}}}}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestReopenKeepsHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, s, record(t, "u1", request, t0))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(t.Context(), path) // the schema is already at the latest version
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.Count(t.Context()); err != nil || n != 1 {
		t.Fatalf("Count after reopen = %d, %v; want 1", n, err)
	}
}
