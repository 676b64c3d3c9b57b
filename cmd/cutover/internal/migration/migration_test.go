package migration_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/migration"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
)

// TestRefusalSaysWhatIsWrong: the migrator's rejection of a request reaches
// the operator as its reason, with the field only when one is to blame.
func TestRefusalSaysWhatIsWrong(t *testing.T) {
	tests := []struct {
		name, field, reason, want string
	}{
		{"no field", "", "database_id \"nova\" is a postgres database here", "the migrator refused the request: database_id \"nova\" is a postgres database here"},
		{"a field", "data.to_version", "is missing", "the migrator refused the request (field data.to_version): is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.Start(t)
			// A migrator that refuses every request; the test waits for its
			// publish to finish before the server goes.
			published := make(chan error, 1)
			sub, err := srv.Conn.Subscribe(events.SubjectMigrationCmd, func(m *nats.Msg) {
				req, err := events.Decode(m.Header, m.Data)
				if err != nil {
					published <- err
					return
				}
				rej, err := events.New(events.Source("migrator", ""), events.EventRejected{Consumer: "migrator", Subject: m.Subject, EventID: req.ID(), Field: tt.field, Reason: tt.reason})
				if err == nil {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					err = events.NewPublisher(srv.JS).Publish(ctx, rej)
				}
				published <- err
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()
			_, err = migration.Ask(t.Context(), srv.JS, events.MigrationStatusRequested{Driver: "sqlite", Database: "nova", DatabaseID: "nova"}, 30*time.Second)
			select {
			case perr := <-published:
				if perr != nil {
					t.Fatalf("the refusing migrator: %v", perr)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the refusing migrator never saw the request")
			}
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v, want %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "(field )") {
				t.Errorf("an empty field is shown: %v", err)
			}
		})
	}
}
