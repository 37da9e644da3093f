// Command floor links what any Go command line that pulls OCI images
// links (cobra, net/http, go-containerregistry's remote) and does
// nothing: hack/bench times it as the case go-floor, the start-up that
// ephem version cannot go under whatever it leaves out.
package main

import (
	_ "net/http"

	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/spf13/cobra"
)

func main() {}
