//go:build unix

package sqlite

import (
	"os"
	"syscall"
)

// sameOwnerAndMode gives dst the mode, owner and group of src, so that the
// service can still open a restored database file.
func sameOwnerAndMode(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := os.Chmod(dst, fi.Mode().Perm()); err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || (int(st.Uid) == os.Getuid() && int(st.Gid) == os.Getgid()) {
		return nil
	}
	return os.Chown(dst, int(st.Uid), int(st.Gid))
}
