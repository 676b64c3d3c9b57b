package main

import (
	"testing"

	"github.com/cutover-dev/cutover/services/planner/manifest"
)

// TestShippedExamplesParse keeps the examples in deploy/ and the README valid.
func TestShippedExamplesParse(t *testing.T) {
	req, err := manifest.Load("../../deploy/examples/release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Release.Services) != 3 || req.Release.Services["keystone"].MinHealthyMs != 5000 {
		t.Errorf("example release = %+v", req)
	}
}
