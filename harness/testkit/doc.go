// Package testkit gives tests and `make demo` a self-contained Docker
// playground: no registry on the internet and no pre-pulled images are needed.
//
// What runs where:
//
//   - [BuildDemoApp] runs `go build` on the host for the demoapp command (a
//     static Linux binary, see ../demoapp) and caches the result per process.
//   - [StartRegistry] serves an in-memory OCI distribution registry
//     (go-containerregistry's pkg/registry) on 127.0.0.1 inside the calling
//     process. The Docker engine treats 127.0.0.0/8 registries as insecure, so
//     it pulls from it over plain HTTP with no daemon configuration.
//   - [Registry.Push] builds a one-layer image around the binary in memory and
//     pushes it; the version and behaviour of the app come from the image's
//     environment, so one binary backs every image.
//   - [PullImage], [EnsureNetwork], [CreateContainer] and [Cleanup] drive the
//     real Docker engine (API 1.41 or later) through the moby client, creating
//     containers the way a deployment would: labels, named volumes, a user
//     bridge network with aliases and a static IP, published ports.
//
// Tests that need Docker call [DockerOrSkip] ([DockerAvailable], skipping
// when it fails); [StartTestRegistry] is StartRegistry closed at the end of
// the test.
package testkit
