package sqlite

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// A snapshot's checksum is written, when the snapshot is taken, into a side
// file: the snapshot's path followed by sumSuffix, holding one line
// "crc32c <8 hex digits> <size in bytes>". The snapshot was checked in full
// (PRAGMA quick_check) when it was taken, so bytes that still match its
// checksum need no second check: a restore verifies them while it copies
// them. Snapshots without a side file (taken before checksums, or the file a
// restore kept by a hard link) are checked with PRAGMA quick_check instead.
const sumSuffix = ".crc32c"

// castagnoli is CRC32C, computed by the CPU's own instruction where it has one.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// copyBuffer is the size of the reads and writes that copy or hash a whole
// file: small enough to stay in the CPU's cache between the read, the hash
// and the write. Measured at 1 GB on a 2-core VM, copying and hashing
// through 128 to 512 KiB took about as long as the kernel's copy_file_range
// (which keeps the bytes out of reach of a hash), through 1 MiB up to twice
// as long and through 4 MiB three to six times as long.
const copyBuffer = 256 << 10

// fileSum is the CRC32C and the size of a file.
type fileSum struct {
	crc  uint32
	size int64
}

func (s fileSum) String() string { return fmt.Sprintf("CRC32C %08x over %d bytes", s.crc, s.size) }

// sumPath returns the path of the side file holding snapshot's checksum.
func sumPath(snapshot string) string { return snapshot + sumSuffix }

// sumFile returns the checksum of the file at path.
func sumFile(path string) (fileSum, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileSum{}, err
	}
	defer f.Close()
	h := crc32.New(castagnoli)
	// Hide WriteTo: *os.File's would not use our buffer.
	n, err := io.CopyBuffer(h, struct{ io.Reader }{f}, make([]byte, copyBuffer))
	if err != nil {
		return fileSum{}, fmt.Errorf("checksum %s: %w", path, err)
	}
	return fileSum{crc: h.Sum32(), size: n}, nil
}

// writeSum writes, and syncs, the side file of the file snapshot.
func writeSum(snapshot string, s fileSum) error {
	p := sumPath(snapshot)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("record checksum: %w", err)
	}
	_, err = fmt.Fprintf(f, "crc32c %08x %d\n", s.crc, s.size)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		_ = os.Remove(p)
		return fmt.Errorf("record checksum in %s: %w", p, err)
	}
	return nil
}

// readSum reads the checksum recorded for the file snapshot; recorded is
// false, with no error, when there is none. A side file that cannot be read
// or parsed is an error, not a snapshot without a checksum: side files are
// synced before their snapshot appears, so only damage makes one unreadable.
func readSum(snapshot string) (s fileSum, recorded bool, err error) {
	p := sumPath(snapshot)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fileSum{}, false, nil
	}
	if err != nil {
		return fileSum{}, false, fmt.Errorf("read checksum: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) == 3 && f[0] == "crc32c" && len(f[1]) == 8 {
		crc, cerr := strconv.ParseUint(f[1], 16, 32)
		size, serr := strconv.ParseInt(f[2], 10, 64)
		if cerr == nil && serr == nil && size >= 0 {
			return fileSum{crc: uint32(crc), size: size}, true, nil
		}
	}
	return fileSum{}, false, fmt.Errorf("checksum file %s is damaged (want one line \"crc32c <8 hex digits> <size>\"); remove it to check the snapshot with PRAGMA quick_check instead", p)
}

// verifySum compares got, the checksum of the file snapshot now, with want,
// the one recorded when it was taken.
func verifySum(snapshot string, got, want fileSum) error {
	if got == want {
		return nil
	}
	return fmt.Errorf("snapshot %s changed since it was taken: its bytes have %v, but %v was recorded in %s when it was taken",
		snapshot, got, want, sumPath(snapshot))
}

// checkSize compares the size of the file snapshot with the one recorded
// when it was taken, which refuses a truncated snapshot without reading it.
func checkSize(snapshot string, want fileSum) error {
	fi, err := os.Stat(snapshot)
	if err != nil {
		return err
	}
	if fi.Size() != want.size {
		return fmt.Errorf("snapshot %s changed since it was taken: it holds %d bytes, but %v was recorded in %s when it was taken",
			snapshot, fi.Size(), want, sumPath(snapshot))
	}
	return nil
}

// writeBehindEvery is how many bytes a copy writes before it starts their
// writeback (see writeBehind).
const writeBehindEvery = 8 << 20

// copyHashed copies src to a new file dst through copyBuffer, hashing the
// bytes it writes and starting their writeback as it goes, and syncs dst
// when sync is set. patch, when set, may change each chunk (read at offset
// off of src) before it is hashed and written.
func copyHashed(src, dst string, sync bool, patch func(off int64, b []byte)) (s fileSum, err error) {
	in, err := os.Open(src)
	if err != nil {
		return fileSum{}, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fileSum{}, err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	buf := make([]byte, copyBuffer)
	var crc uint32
	var off, started int64
	for {
		n, rerr := in.Read(buf)
		if n > 0 {
			b := buf[:n]
			if patch != nil {
				patch(off, b)
			}
			crc = crc32.Update(crc, castagnoli, b)
			if _, err := out.Write(b); err != nil {
				return fileSum{}, err
			}
			off += int64(n)
			if off-started >= writeBehindEvery {
				writeBehind(out, started, off-started)
				started = off
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fileSum{}, rerr
		}
	}
	if sync {
		err = out.Sync()
	}
	return fileSum{crc: crc, size: off}, err
}
