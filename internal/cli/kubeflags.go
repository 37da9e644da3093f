package cli

import (
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// newKubeFlags returns kubectl's connection flags as ephem exposes them.
// Two are renamed because ephem's own take the name: --user is the debug
// container's user (as for docker), so the kubeconfig user is --kube-user;
// and --cache-dir is the image cache, so kubectl's discovery cache is off.
func newKubeFlags(fs *pflag.FlagSet) *genericclioptions.ConfigFlags {
	f := genericclioptions.NewConfigFlags(true)
	f.CacheDir = nil
	user := ""
	f.AuthInfoName = nil
	f.AddFlags(fs)
	fs.StringVar(&user, "kube-user", "", "the name of the kubeconfig user to use (kubectl's --user)")
	f.AuthInfoName = &user
	return f
}
