package pgtest

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchSizeEnv sets the size in MB of the databases benchmarks build.
const BenchSizeEnv = "CUTOVER_BENCH_SIZE_MB"

// BenchSizeMB returns CUTOVER_BENCH_SIZE_MB, default 16 so that
// `go test -bench .` stays quick; the published figures use 1024.
func BenchSizeMB(tb testing.TB) int {
	s := os.Getenv(BenchSizeEnv)
	if s == "" {
		return 16
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a size in MB", BenchSizeEnv, s)
	}
	return n
}

// CopyTree copies the regular files of src into dst and fsyncs each: the
// floor the snapshot benchmarks compare against.
func CopyTree(src, dst string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		return CopyFile(p, filepath.Join(dst, d.Name()))
	})
}

// CopyFile copies src to dst and fsyncs it.
func CopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
