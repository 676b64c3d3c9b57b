package migrator

import (
	"errors"
	"log/slog"
	"regexp"
	"testing"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
)

type keyOnly struct{ Database }

func (k keyOnly) Key() string { return "/srv/app.db" }

// A database locked by a live migration is refused with ErrLockHeld and a
// message naming the holder and its request.
func TestLockHeldError(t *testing.T) {
	srv := natstest.Start(t)
	m, err := New(Config{Drivers: map[string]Driver{"x": nil}}, srv.JS)
	if err == nil {
		t.Fatal("New accepted a nil driver")
	}
	m, err = New(Config{Drivers: map[string]Driver{"x": struct{ Driver }{}}}, srv.JS)
	if err != nil {
		t.Fatal(err)
	}
	if m.locks, err = srv.JS.KeyValue(t.Context(), events.BucketLocks); err != nil {
		t.Fatal(err)
	}
	held, err := m.lock(t.Context(), keyOnly{}, "/srv/app.db", "req-1", slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer held.release(t.Context())
	m.instance = "second-migrator"
	_, err = m.lock(t.Context(), keyOnly{}, "/srv/app.db", "req-2", slog.Default())
	if !errors.Is(err, ErrLockHeld) {
		t.Fatalf("second lock err = %v, want ErrLockHeld", err)
	}
	want := regexp.MustCompile(`^database is locked by another migration: /srv/app\.db is being migrated by \S+ for request req-1 \(lock migration\.[0-9a-f]{64} refreshed \d+(\.\d+)?(ms|µs|s|ns) ago\); retrying later$`)
	if !want.MatchString(err.Error()) {
		t.Errorf("second lock err =\n  %s\nwant to match\n  %s", err, want)
	}
}
