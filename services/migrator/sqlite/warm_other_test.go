//go:build !linux

package sqlite_test

import "testing"

// warmMemory does nothing off Linux (see warm_linux_test.go).
func warmMemory(*testing.B, int64) {}
