//go:build !unix

package sqlite

import "os"

// sameOwnerAndMode gives dst the mode of src.
func sameOwnerAndMode(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	return os.Chmod(dst, fi.Mode().Perm())
}
