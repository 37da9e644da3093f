package cli

import (
	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"
)

// newKubeFlags binds kubectl's connection flags (--kubeconfig, --context,
// --cluster, -n, --as, --token, --server, --request-timeout...) and returns
// the client configuration they select. ephem's --user is the debug
// container's user, as for docker, so the kubeconfig user is --kube-user.
// The flags come from clientcmd rather than cli-runtime, whose import would
// register every API group at every ephem start.
func newKubeFlags(fs *pflag.FlagSet) clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	fs.StringVar(&rules.ExplicitPath, clientcmd.RecommendedConfigPathFlag, "", "Kubernetes: path to the kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	overrides := &clientcmd.ConfigOverrides{}
	names := clientcmd.RecommendedConfigOverrideFlags("")
	names.ContextOverrideFlags.AuthInfoName.LongName = "kube-user"
	clientcmd.BindOverrideFlags(overrides, fs, names)
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
}
