package upgrades

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/services/planner"
)

// Resolve turns what an operator typed into an upgrade id: the id,
// a prefix of exactly one id, or a release name exactly one upgrade has.
func Resolve(ctx context.Context, js jetstream.JetStream, arg string) (string, error) {
	if arg == "" {
		return "", exit.Usagef("give an upgrade id, a unique prefix of one, or a release name (cutover list shows them)")
	}
	ups, err := planner.ListUpgrades(ctx, js)
	if err != nil {
		return "", err
	}
	return Match(ups, arg)
}

// Match finds arg among ups: an id, a prefix of exactly one id, or
// a release name exactly one upgrade has.
func Match(ups []*planner.Upgrade, arg string) (string, error) {
	var byPrefix, byRelease []*planner.Upgrade
	for _, u := range ups {
		if u.ID == arg {
			return u.ID, nil
		}
		if strings.HasPrefix(u.ID, arg) {
			byPrefix = append(byPrefix, u)
		}
		if u.Release.Name == arg {
			byRelease = append(byRelease, u)
		}
	}
	switch {
	case len(byPrefix) == 1:
		return byPrefix[0].ID, nil
	case len(byPrefix) > 1:
		return "", fmt.Errorf("%q is the start of %d upgrade ids (%s); give more of the id", arg, len(byPrefix), idList(byPrefix))
	case len(byRelease) == 1:
		return byRelease[0].ID, nil
	case len(byRelease) > 1:
		return "", fmt.Errorf("release %q names %d upgrades (%s); give the id of one", arg, len(byRelease), idList(byRelease))
	}
	return "", fmt.Errorf("no upgrade has the id, id prefix or release name %q; cutover list shows the upgrades the planner knows (check --nats if it shows none)", arg)
}

func idList(ups []*planner.Upgrade) string {
	ids := make([]string, 0, len(ups))
	for _, u := range ups {
		ids = append(ids, u.ID+" ("+u.Phase+")")
	}
	slices.Sort(ids)
	if len(ids) > 5 {
		ids = append(ids[:5], "…")
	}
	return strings.Join(ids, ", ")
}
