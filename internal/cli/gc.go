package cli

import (
	"fmt"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/cobra"
)

func newGCCmd(g *GlobalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "gc",
		Short: "Remove state left by interrupted runs (partial downloads and unpacks)",
		Example: `  ephem gc
  ephem gc --cache-dir /srv/ephem-cache`,
		Long: `Sessions keep their mounts in their own mount namespace and their files on
a tmpfs, so a killed ephem leaves nothing mounted on the host. What a killed
pull can leave is a partial download or unpack in the cache's tmp directory;
gc removes those that no running ephem holds, and the records of interactive
sessions that ended while detached.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := image.Open(g.CacheDir)
			if err != nil {
				return fmt.Errorf("opening the image cache: %w", err)
			}
			b, err := g.backends.fallback()
			if err != nil {
				return err
			}
			c, err := capability[runtime.Cleaner](g, b, target.Ref{}, "gc", nil, image.PullOptions{})
			if err != nil {
				return err
			}
			if err := c.GC(cmd.Context()); err != nil {
				return err
			}
			return store.GC(cmd.Context())
		},
	}
}
