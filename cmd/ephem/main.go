// Command ephem starts ephemeral debug containers next to running targets.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ephem-dev/ephem/internal/cli"
	_ "github.com/ephem-dev/ephem/pkg/runtime/backends" // every backend
	"github.com/ephem-dev/ephem/pkg/runtime/local/nsenter"
)

func main() {
	// The local engine re-executes this binary as the debug container's init.
	// nsenter's C constructor has already joined the target's namespaces
	// when that is the case; Init never returns.
	if nsenter.IsInit() {
		nsenter.Init()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:], cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
