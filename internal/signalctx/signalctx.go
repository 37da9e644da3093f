// Package signalctx is signal.NotifyContext that catches its signals only
// from the moment something waits on the context.
//
// Catching a signal costs a Go program two goroutines and, on their first
// use, two threads (os/signal's loop, and the goroutine locked to a thread
// that manages signal masks): about half a millisecond of a command that
// only prints its version. A command that never waits on its context has no
// use for them either: until something calls Done or Err, the signals keep
// their default action, so Ctrl-C ends such a command at once, as it should.
package signalctx

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"
)

// NotifyContext returns a copy of parent that is cancelled when one of
// sigs arrives, when stop is called, or when parent is done, as
// signal.NotifyContext does; but the signals are caught only from the first
// call of the context's Done or Err method (a context derived from it calls
// Done), or of Arm. stop, like signal.NotifyContext's, cancels the context
// and restores the signals' default behaviour; called first, it catches
// nothing.
func NotifyContext(parent context.Context, sigs ...os.Signal) (ctx context.Context, stop context.CancelFunc) {
	c := &lazyContext{parent: parent, sigs: sigs}
	return c, func() {
		c.start(false)
		c.stop()
	}
}

// Arm makes ctx, when NotifyContext made it, catch its signals from now on:
// a command that acquires what it must release (mounts, processes) arms it
// first, so that Ctrl-C cancels it rather than ending the process. Any other
// context is left alone.
func Arm(ctx context.Context) {
	if c, ok := ctx.(*lazyContext); ok {
		c.start(true)
	}
}

// lazyContext delegates to parent until started, then to inner: the
// signal-catching context, or a plain cancellable one if stop came first.
type lazyContext struct {
	parent context.Context
	sigs   []os.Signal

	once  sync.Once
	ready atomic.Bool
	inner context.Context
	stop  context.CancelFunc
}

// start makes inner once: catching the signals if catch is set.
func (c *lazyContext) start(catch bool) {
	c.once.Do(func() {
		if catch {
			c.inner, c.stop = signal.NotifyContext(c.parent, c.sigs...)
		} else {
			c.inner, c.stop = context.WithCancel(c.parent)
		}
		c.ready.Store(true)
	})
}

// Deadline is parent's: catching signals sets none.
func (c *lazyContext) Deadline() (time.Time, bool) { return c.parent.Deadline() }

// Done starts catching the signals and returns the channel closed when the
// context is cancelled.
func (c *lazyContext) Done() <-chan struct{} {
	c.start(true)
	return c.inner.Done()
}

// Err starts catching the signals and returns why the context is done, if
// it is.
func (c *lazyContext) Err() error {
	c.start(true)
	return c.inner.Err()
}

// Value is parent's value for key, or once started inner's (through which
// a derived context finds the cancellation it hangs on, without a goroutine
// to watch it).
func (c *lazyContext) Value(key any) any {
	if c.ready.Load() {
		return c.inner.Value(key)
	}
	return c.parent.Value(key)
}

// String names the context, as signal.NotifyContext's does.
func (c *lazyContext) String() string { return "signalctx.NotifyContext" }
