// Command ephem starts ephemeral debug containers next to running targets.
package main

import (
	"context"
	"os"
	"syscall"

	"github.com/ephem-dev/ephem/internal/cli"
	"github.com/ephem-dev/ephem/internal/signalctx"
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
	// Interrupt and SIGTERM cancel ctx, once a command that must clean
	// up has armed it (internal/cli: every command but those that only print).
	ctx, stop := signalctx.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:], cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
