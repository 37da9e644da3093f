package image

import (
	"errors"
	"hash"
	"io"
	"sync"
)

// readAheadChunk is the size of one buffer a readAhead fills.
const readAheadChunk = 64 << 10

// readAheadDepth is how many chunks a readAhead may read ahead of its
// consumer (the memory it holds is (depth+1) chunks).
const readAheadDepth = 3

// readAheadMin is the least a chunk holds, but for the last one: fewer,
// larger hand-overs between the goroutines.
const readAheadMin = 16 << 10

// errReadAheadClosed is what Read returns after Close.
var errReadAheadClosed = errors.New("layer reader closed")

// readAhead reads a blob in a goroutine of its own, a few chunks ahead of
// its consumer, and hashes what it reads there: receiving and verifying the
// compressed stream then runs on another core than decompressing and
// unpacking it. Nothing is staged anywhere but in its few buffers.
type readAhead struct {
	filled chan readChunk
	free   chan []byte
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once

	cur  []byte // unread part of the current chunk
	buf  []byte // the current chunk's buffer, recycled when read
	err  error  // sticky error of the source
	hash hash.Hash
}

// readChunk is a buffer with n bytes read into it, or the source's error.
type readChunk struct {
	b   []byte
	n   int
	err error
}

// newReadAhead starts reading r; h, if not nil, receives every byte read,
// in order, before the consumer sees it. The caller must Close it, and
// must not use r meanwhile.
func newReadAhead(r io.Reader, h hash.Hash) *readAhead {
	ra := &readAhead{
		filled: make(chan readChunk, readAheadDepth),
		free:   make(chan []byte, readAheadDepth+1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		hash:   h,
	}
	for range readAheadDepth + 1 {
		ra.free <- make([]byte, readAheadChunk)
	}
	go ra.fill(r)
	return ra
}

// fill is the reading goroutine.
func (ra *readAhead) fill(r io.Reader) {
	defer close(ra.done)
	for {
		var b []byte
		select {
		case b = <-ra.free:
		case <-ra.stop:
			return
		}
		n, err := ra.read(r, b)
		if n > 0 && ra.hash != nil {
			_, _ = ra.hash.Write(b[:n])
		}
		select {
		case ra.filled <- readChunk{b: b, n: n, err: err}:
		case <-ra.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// read fills b with at least readAheadMin bytes, unless the source ends or
// fails first, or Close is called.
func (ra *readAhead) read(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < readAheadMin {
		k, err := r.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
		select {
		case <-ra.stop:
			return n, errReadAheadClosed
		default:
		}
	}
	return n, nil
}

// Read implements io.Reader.
func (ra *readAhead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.buf != nil {
			ra.free <- ra.buf // never blocks: there are depth+1 buffers
			ra.buf = nil
		}
		if ra.err != nil {
			return 0, ra.err
		}
		c, ok := <-ra.filled
		if !ok {
			return 0, errReadAheadClosed
		}
		ra.buf, ra.cur, ra.err = c.b, c.b[:c.n], c.err
		if len(p) == 0 {
			return 0, nil
		}
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// Close stops the reading goroutine and waits for it: it ends at once
// unless it is inside a read of the source, which the source's own bounds
// (the stall timeout, the request's context) end.
func (ra *readAhead) Close() error {
	ra.once.Do(func() { close(ra.stop) })
	<-ra.done
	return nil
}
