package image_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/harness/testkit"
	"github.com/cutover-dev/cutover/services/migrator/image"
)

// push starts testkit's in-process registry and pushes an image holding files.
func push(t *testing.T, files map[string]string) string {
	t.Helper()
	reg := testkit.StartTestRegistry(t)
	bin := filepath.Join(t.TempDir(), "app")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := reg.Push(t.Context(), bin, testkit.ImageSpec{Repo: "shop/api", Tag: "2.0", Extra: files})
	if err != nil {
		t.Fatal(err)
	}
	return img.Ref
}

func TestFetch(t *testing.T) {
	ref := push(t, map[string]string{
		"/migrations/0001_users.up.sql":     "CREATE TABLE users (id INTEGER PRIMARY KEY);",
		"/migrations/0001_users.down.sql":   "DROP TABLE users;",
		"/migrations/nested/ignored.sql":    "SELECT 1;",
		"/opt/app/db/0001_other.up.sql":     "SELECT 2;",
		"/migrationsX/0001_not_this.up.sql": "SELECT 3;",
	})
	cases := []struct {
		name, dir string
		want      []string
		err       string
	}{
		{"default directory", "/migrations", []string{"0001_users.down.sql", "0001_users.up.sql"}, ""},
		{"other directory", "/opt/app/db", []string{"0001_other.up.sql"}, ""},
		{"empty directory", "/data", nil, "no files in /data; set the service's migrations directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := t.TempDir()
			err := image.Fetcher{}.Fetch(t.Context(), ref, c.dir, dst)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("Fetch(%s) err = %v, want %q", c.dir, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			entries, _ := os.ReadDir(dst)
			var got []string
			for _, e := range entries {
				got = append(got, e.Name())
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("fetched %v, want %v", got, c.want)
			}
		})
	}
	b, err := os.ReadFile(filepath.Join(fetch(t, ref), "0001_users.up.sql"))
	if err != nil || string(b) != "CREATE TABLE users (id INTEGER PRIMARY KEY);" {
		t.Errorf("content = %q, %v", b, err)
	}
	if err := (image.Fetcher{}).Fetch(t.Context(), strings.Replace(ref, ":2.0", ":nope", 1), "/migrations", t.TempDir()); err == nil || !strings.Contains(err.Error(), "check the reference and that the registry is reachable") {
		t.Errorf("Fetch(missing tag) err = %v", err)
	}
}

func fetch(t *testing.T, ref string) string {
	dst := t.TempDir()
	if err := (image.Fetcher{}).Fetch(t.Context(), ref, "/migrations", dst); err != nil {
		t.Fatal(err)
	}
	return dst
}
