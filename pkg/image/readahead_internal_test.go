package image

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"
)

// TestReadAhead: what goes in comes out, in order and whole, hashed in
// full; a source's error comes after the bytes read before it; Close ends
// the reading goroutine while the consumer has stopped midway.
func TestReadAhead(t *testing.T) {
	data := make([]byte, 3*readAheadChunk+12345)
	_, _ = rand.Read(data)
	want := sha256.Sum256(data)

	t.Run("whole", func(t *testing.T) {
		for _, r := range []io.Reader{bytes.NewReader(data), iotest.OneByteReader(bytes.NewReader(data)),
			iotest.DataErrReader(bytes.NewReader(data)), iotest.HalfReader(bytes.NewReader(data))} {
			h := sha256.New()
			ra := newReadAhead(r, h)
			got, err := io.ReadAll(iotest.HalfReader(ra))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, %v; want %d and no error", len(got), err, len(data))
			}
			if !bytes.Equal(h.Sum(nil), want[:]) {
				t.Error("hash differs from the data's")
			}
			_ = ra.Close()
			_ = ra.Close()
		}
	})
	t.Run("error", func(t *testing.T) {
		boom := errors.New("boom")
		ra := newReadAhead(io.MultiReader(bytes.NewReader(data[:1000]), iotest.ErrReader(boom)), nil)
		defer func() { _ = ra.Close() }()
		got, err := io.ReadAll(ra)
		if !errors.Is(err, boom) || !bytes.Equal(got, data[:1000]) {
			t.Errorf("read %d bytes, %v; want 1000 and boom", len(got), err)
		}
		if _, err := ra.Read(make([]byte, 10)); !errors.Is(err, boom) {
			t.Errorf("read after the error: %v, want boom again", err)
		}
	})
	t.Run("close midway", func(t *testing.T) {
		pr, pw := io.Pipe()
		big := make([]byte, 2*(readAheadDepth+1)*readAheadChunk) // more than the read-ahead holds
		go func() { _, _ = pw.Write(big) }()
		ra := newReadAhead(pr, sha256.New())
		if _, err := io.ReadFull(ra, make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		closed := make(chan struct{})
		go func() { _ = ra.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not return")
		}
		_ = pr.Close()
	})
}
