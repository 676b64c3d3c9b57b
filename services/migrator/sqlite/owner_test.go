//go:build unix

package sqlite_test

import (
	"os"
	"syscall"
	"testing"

	"github.com/cutover-dev/cutover/services/migrator/internal/dbtest"
)

// A restore keeps the database file's mode, owner and group, so that the
// service (another user, often) can still open it.
func TestRestoreKeepsModeAndOwner(t *testing.T) {
	path := seed(t)
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 { // root can hand the file to another user, as a service's would be
		uid, gid = 65534, 65534
		if err := os.Chown(path, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	db := open(t, path, "../testdata/ok")
	snap := dbtest.Snapshot(t, db)
	dbtest.Up(t, db, 4)
	dbtest.Restore(t, db, snap.ID)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o640 || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("after the restore: mode %v owner %d:%d, want -rw-r----- %d:%d", fi.Mode().Perm(), st.Uid, st.Gid, uid, gid)
	}
}
