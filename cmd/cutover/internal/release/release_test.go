package release_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/release"
)

func TestNewest(t *testing.T) {
	tags := []string{"latest", "1.9.0", "v1.10.2", "1.10.10", "2.0.0-rc1", "1.10", "2.1.3", "01.2.3", "2.1.12"}
	tests := []struct {
		name      string
		tags      []string
		current   string
		patchOnly bool
		want      string
		wantErr   string
	}{
		{name: "numeric not lexical order, pre-releases skipped", tags: tags, want: "2.1.12"},
		{name: "newest patch of the running minor", tags: tags, current: "1.10.2", patchOnly: true, want: "1.10.10"},
		{name: "v prefix on current", tags: tags, current: "v1.9.0", patchOnly: true, want: "1.9.0"},
		{name: "no tag of that minor", tags: tags, current: "3.0.0", patchOnly: true, wantErr: "newest patch of 3.0"},
		{name: "current not semver", tags: tags, current: "latest", patchOnly: true, wantErr: "--current"},
		{name: "no semver at all", tags: []string{"latest", "main"}, wantErr: "MAJOR.MINOR.PATCH"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := release.Newest(tc.tags, tc.current, tc.patchOnly)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Newest = %q, %v; want an error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Newest = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// push puts a random image at host/repo:tag and returns its digest.
func push(t *testing.T, host, repo, tag string) string {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(host + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

func TestLatestAndPinAgainstARegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	digests := map[string]string{}
	for _, tag := range []string{"1.2.0", "1.2.7", "1.3.0", "latest"} {
		digests[tag] = push(t, host, "shop/web", tag)
	}

	got, err := release.Latest(t.Context(), host, "shop/web", release.Options{})
	if err != nil || got.Tag != "1.3.0" || got.Digest != digests["1.3.0"] || got.Ref != host+"/shop/web@"+digests["1.3.0"] {
		t.Errorf("Latest = %+v, %v; want 1.3.0 at %s", got, err, digests["1.3.0"])
	}
	got, err = release.Latest(t.Context(), host, "shop/web", release.Options{PatchOnly: true, Current: "1.2.0"})
	if err != nil || got.Tag != "1.2.7" || got.Digest != digests["1.2.7"] {
		t.Errorf("Latest patch = %+v, %v; want 1.2.7", got, err)
	}
	if _, err := release.Latest(t.Context(), host, "shop/nope", release.Options{}); err == nil || !strings.Contains(err.Error(), "check --registry") {
		t.Errorf("Latest of a missing repo = %v, want an error with the fix", err)
	}

	manifest := "release: r2\nservices:\n  web:\n    image: " + host + "/shop/web:1.3.0 # the new one\n    images:\n      web_worker: " + host + "/shop/web:1.2.7\n"
	out, err := release.PinManifest(t.Context(), []byte(manifest), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{host + "/shop/web@" + digests["1.3.0"] + " # the new one", "web_worker: " + host + "/shop/web@" + digests["1.2.7"]} {
		if !strings.Contains(string(out), want) {
			t.Errorf("pinned manifest lacks %q:\n%s", want, out)
		}
	}
	_, err = release.PinManifest(t.Context(), []byte("release: r\nservices:\n  web:\n    image: "+host+"/shop/web:9.9.9\n"), false)
	if err == nil || !strings.Contains(err.Error(), "line 4") || errors.Is(err, release.ErrNoVersion) {
		t.Errorf("pinning a missing tag = %v, want the line named", err)
	}
}
