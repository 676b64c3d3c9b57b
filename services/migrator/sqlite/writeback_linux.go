package sqlite

import (
	"os"

	"golang.org/x/sys/unix"
)

// writeBehind asks the kernel to start writing out the n bytes of f at off,
// without waiting for them (sync_file_range, SYNC_FILE_RANGE_WRITE). A copy
// that starts the writeback of each chunk as it goes leaves its closing
// fsync little to do: the disk writes while the copy still reads. Errors are
// ignored: the fsync that follows reports any write that failed.
func writeBehind(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
