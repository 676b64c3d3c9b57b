package testkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// DemoAppPackage is the import path of the demo service built by BuildDemoApp.
const DemoAppPackage = "github.com/cutover-dev/cutover/harness/demoapp"

// IdentityAppPackage is the import path of the OpenStack-shaped service
// (db-sync, MariaDB) built by BuildIdentityApp.
const IdentityAppPackage = "github.com/cutover-dev/cutover/harness/identityapp"

// buildTimeout bounds `go build` when the caller's ctx has no deadline. A
// warm build cache needs about a second; a cold one compiles the standard
// library and modernc.org/sqlite for a static binary, which took more than 3
// minutes on a busy 2-core machine during a first `make demo`.
const buildTimeout = 10 * time.Minute

// appBuild caches a binary for the life of the process: every image uses
// the same binary (the version comes from the image env), so one build is
// enough. A mutex rather than sync.Once so a cancelled build is retried, and
// so a cached file that vanished with its temp dir is rebuilt.
type appBuild struct {
	mu   sync.Mutex
	path string
}

var demoBuild, identityBuild appBuild

// BuildDemoApp builds the demoapp command as a static Linux binary for the
// host's architecture and returns the path of the binary inside dir. The
// first call in a process runs `go build`; later calls copy that binary into
// dir (or return it as is when dir is the same), rebuilding only when the
// cached file has disappeared.
//
// The go tool runs in this package's source directory so the build resolves
// through the repository's go.work or go.mod whatever the caller's working
// directory; when the source location is unknown (a -trimpath build) it runs
// in the current directory.
func BuildDemoApp(ctx context.Context, dir string) (string, error) {
	return demoBuild.build(ctx, dir, DemoAppPackage, "demoapp")
}

// BuildIdentityApp is BuildDemoApp for the identityapp command (the
// OpenStack-shaped service of demo-openstack), written as dir/identityapp.
func BuildIdentityApp(ctx context.Context, dir string) (string, error) {
	return identityBuild.build(ctx, dir, IdentityAppPackage, "identityapp")
}

// build builds pkg as dir/name, or copies the binary built before.
func (b *appBuild) build(ctx context.Context, dir, pkg, name string) (string, error) {
	ctx, cancel := withDefaultTimeout(ctx, buildTimeout)
	defer cancel()

	b.mu.Lock()
	defer b.mu.Unlock()

	dst, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", fmt.Errorf("resolve %s path: %w", name, err)
	}
	if cached := b.path; cached != "" {
		if cached == dst {
			if _, err := os.Stat(dst); err == nil {
				return dst, nil
			}
		} else if err := copyExecutable(cached, dst); err == nil {
			return dst, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}

	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w", "-o", dst, pkg)
	cmd.Dir = sourceDir()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			// The go tool was killed: "signal: killed" alone reads as a crash.
			return "", fmt.Errorf("build %s: go build %s did not finish: %w (a first build compiles every dependency, minutes on a busy machine; run it again: the Go build cache keeps what was compiled)", name, pkg, ctxErr)
		}
		return "", fmt.Errorf("build %s: %w\n%s", name, err, out)
	}
	b.path = dst
	return dst, nil
}

// sourceDir is the directory holding this file, or "" (the current
// directory) when the binary was built with -trimpath and the path is not a
// real one.
func sourceDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	dir := filepath.Dir(file)
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	return dir
}

func copyExecutable(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open cached demoapp: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return fmt.Errorf("create demoapp copy: %w", err)
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close demoapp copy: %w", cerr)
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copy demoapp: %w", err)
	}
	return nil
}

// withDefaultTimeout applies d when ctx has no deadline, so no call can hang
// forever on a wedged daemon or toolchain.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
