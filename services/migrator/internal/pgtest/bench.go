package pgtest

import (
	"os"
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
