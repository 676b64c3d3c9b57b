package docker

import (
	"maps"
	"path"
	"reflect"
	"slices"
	"strings"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// attachment is a network a replacement joins after it is created: API 1.41
// accepts a single network in EndpointsConfig at create.
type attachment struct {
	network  string
	endpoint *network.EndpointSettings
}

// replacementConfig derives the create options of a container called name
// running image from the inspection of the container it replaces, keeping
// only what the user set on that container:
//
//   - Config fields equal to the old image's defaults (identical Env
//     entries, Cmd, Entrypoint, WorkingDir, User, identical labels, exposed
//     ports, Healthcheck, Volumes, StopSignal) are dropped, so the new
//     image's defaults apply. With oldImage nil (the old image is gone)
//     nothing can be told apart and everything is kept.
//   - Hostname is dropped when it is Docker's default (the short container
//     ID) or borrowed from the host or another container's namespace.
//   - HostConfig is kept whole; legacy links are rewritten from the
//     inspection's "/db:/web/db" form to "db:db", and anonymous volumes of
//     the old container are mounted again by name so their data carries over.
//   - Networks keep their aliases (less the automatic short-ID alias),
//     static addresses, links and driver options; the primary network (the
//     one NetworkMode names) goes in EndpointsConfig, the others are returned
//     to be connected before the start.
//   - labels are set over the labels kept.
func replacementConfig(old container.InspectResponse, oldImage *dockerspec.DockerOCIImageConfig, name, image string, labels map[string]string) (client.ContainerCreateOptions, []attachment) {
	var cfg container.Config
	if old.Config != nil {
		cfg = *old.Config
	}
	cfg.Image = image
	cfg.Env = slices.Clone(cfg.Env)
	cfg.Labels = maps.Clone(cfg.Labels)
	cfg.ExposedPorts = maps.Clone(cfg.ExposedPorts)
	cfg.Volumes = maps.Clone(cfg.Volumes)
	// ONBUILD and SHELL only matter when building from an image.
	cfg.OnBuild, cfg.Shell = nil, nil

	var host container.HostConfig
	if old.HostConfig != nil {
		host = *old.HostConfig
	}
	mode := host.NetworkMode
	if cfg.Hostname == shortID(old.ID) || mode.IsHost() || mode.IsContainer() {
		cfg.Hostname = ""
	}
	if oldImage != nil {
		dropImageDefaults(&cfg, oldImage)
	}
	if len(labels) > 0 && cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	maps.Copy(cfg.Labels, labels)

	host.Links = rewriteLinks(host.Links)
	host.Mounts = append(slices.Clone(host.Mounts), anonymousVolumes(old)...)

	opts := client.ContainerCreateOptions{Name: name, Config: &cfg, HostConfig: &host}
	if mode.IsHost() || mode.IsNone() || mode.IsContainer() || old.NetworkSettings == nil {
		return opts, nil
	}
	primary := primaryNetwork(mode, old.NetworkSettings.Networks)
	var extra []attachment
	for _, netName := range slices.Sorted(maps.Keys(old.NetworkSettings.Networks)) {
		ep := userEndpoint(old.NetworkSettings.Networks[netName], shortID(old.ID))
		if netName == primary {
			opts.NetworkingConfig = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netName: ep}}
			continue
		}
		extra = append(extra, attachment{network: netName, endpoint: ep})
	}
	return opts, extra
}

// dropImageDefaults removes from cfg what it inherited from img unchanged.
func dropImageDefaults(cfg *container.Config, img *dockerspec.DockerOCIImageConfig) {
	cfg.Env = slices.DeleteFunc(cfg.Env, func(kv string) bool { return slices.Contains(img.Env, kv) })
	if len(cfg.Env) == 0 {
		cfg.Env = nil
	}
	if slices.Equal(cfg.Cmd, img.Cmd) {
		cfg.Cmd = nil
	}
	if slices.Equal(cfg.Entrypoint, img.Entrypoint) {
		cfg.Entrypoint = nil
	}
	if cfg.WorkingDir == img.WorkingDir {
		cfg.WorkingDir = ""
	}
	if cfg.User == img.User {
		cfg.User = ""
	}
	if cfg.StopSignal == img.StopSignal {
		cfg.StopSignal = ""
	}
	if cfg.ArgsEscaped == img.ArgsEscaped {
		cfg.ArgsEscaped = false
	}
	for k, v := range img.Labels {
		if got, ok := cfg.Labels[k]; ok && got == v {
			delete(cfg.Labels, k)
		}
	}
	for p := range cfg.ExposedPorts {
		if _, ok := img.ExposedPorts[p.String()]; ok {
			delete(cfg.ExposedPorts, p)
		}
	}
	if len(cfg.ExposedPorts) == 0 {
		cfg.ExposedPorts = nil
	}
	for v := range img.Volumes {
		delete(cfg.Volumes, v)
	}
	if len(cfg.Volumes) == 0 {
		cfg.Volumes = nil
	}
	if cfg.Healthcheck != nil && img.Healthcheck != nil && reflect.DeepEqual(*cfg.Healthcheck, *img.Healthcheck) {
		cfg.Healthcheck = nil
	}
}

// rewriteLinks turns inspected links ("/db:/web/db") back into the
// "name:alias" form create accepts.
func rewriteLinks(links []string) []string {
	if links == nil {
		return nil
	}
	out := make([]string, 0, len(links))
	for _, l := range links {
		target, alias, ok := strings.Cut(l, ":")
		if !ok {
			out = append(out, l)
			continue
		}
		out = append(out, strings.TrimPrefix(target, "/")+":"+path.Base(alias))
	}
	return out
}

// anonymousVolumes returns mounts, by volume name, for the old container's
// volumes that neither a bind nor a mount names: anonymous volumes from the
// image's VOLUME or a bare "-v /path". Without them the new container would
// get fresh, empty anonymous volumes. Volumes inherited with VolumesFrom are
// left to VolumesFrom.
func anonymousVolumes(old container.InspectResponse) []mount.Mount {
	if old.HostConfig == nil || len(old.HostConfig.VolumesFrom) > 0 {
		return nil
	}
	named := map[string]bool{}
	for _, b := range old.HostConfig.Binds {
		if parts := strings.Split(b, ":"); len(parts) >= 2 {
			named[path.Clean(parts[1])] = true
		}
	}
	for _, m := range old.HostConfig.Mounts {
		named[path.Clean(m.Target)] = true
	}
	var out []mount.Mount
	for _, m := range old.Mounts {
		if m.Type != mount.TypeVolume || m.Name == "" || named[path.Clean(m.Destination)] {
			continue
		}
		out = append(out, mount.Mount{Type: mount.TypeVolume, Source: m.Name, Target: m.Destination, ReadOnly: !m.RW})
	}
	return out
}

// primaryNetwork returns the key of networks that NetworkMode names.
func primaryNetwork(mode container.NetworkMode, networks map[string]*network.EndpointSettings) string {
	want := mode.NetworkName()
	if _, ok := networks[want]; ok {
		return want
	}
	// NetworkMode may hold a network ID rather than its name.
	for name, ep := range networks {
		if ep != nil && ep.NetworkID != "" && strings.HasPrefix(ep.NetworkID, string(mode)) {
			return name
		}
	}
	if names := slices.Sorted(maps.Keys(networks)); len(names) > 0 {
		return names[0]
	}
	return ""
}

// userEndpoint keeps the user-set part of an inspected endpoint.
func userEndpoint(ep *network.EndpointSettings, shortID string) *network.EndpointSettings {
	if ep == nil {
		return &network.EndpointSettings{}
	}
	out := &network.EndpointSettings{
		Links:      slices.Clone(ep.Links),
		DriverOpts: maps.Clone(ep.DriverOpts),
		GwPriority: ep.GwPriority,
	}
	if ep.IPAMConfig != nil && (ep.IPAMConfig.IPv4Address.IsValid() || ep.IPAMConfig.IPv6Address.IsValid() || len(ep.IPAMConfig.LinkLocalIPs) > 0) {
		out.IPAMConfig = ep.IPAMConfig.Copy()
	}
	for _, a := range ep.Aliases {
		if a != shortID && !slices.Contains(out.Aliases, a) {
			out.Aliases = append(out.Aliases, a)
		}
	}
	return out
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
