package sqlite_test

import (
	"testing"

	"golang.org/x/sys/unix"
)

// warmMemory touches n bytes of fresh memory and frees them, untimed,
// before each timed copy. This VM (Firecracker) hands free memory back to
// its host a few seconds after it is freed (virtio-balloon free page
// reporting); a large write that lands on such memory waits for the host to
// give each page back and costs 2–4× a copy, depending only on what the
// benchmark freed seconds before. After warmMemory every timed copy, the
// floor's included, writes to memory the guest already holds, as on a
// machine without page reporting.
func warmMemory(b *testing.B, n int64) {
	b.Helper()
	m, err := unix.Mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		b.Fatalf("warm memory: %v", err)
	}
	for i := 0; i < len(m); i += 4096 {
		m[i] = 1
	}
	if err := unix.Munmap(m); err != nil {
		b.Fatalf("warm memory: %v", err)
	}
}
