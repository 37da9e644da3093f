package target

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Client makes unary gRPC calls to a unix socket over bare HTTP/2
// without TLS, the calls of a batch at once: their requests go out in one
// write with the connection's preface, and the answers are read in the
// caller's goroutine. gRPC's own client waits for the server's preface
// first (two more round trips behind CRI-O's cmux) and hands each call
// through several goroutines, whose wake-ups cost as much again on a busy
// machine. Batches share one connection, one at a time.
type h2Client struct {
	sock    string
	maxRecv int

	mu     sync.Mutex
	first  net.Conn // dialed already, for the first connection
	conn   net.Conn // the connection, nil until dialed or once broken
	fr     *http2.Framer
	bw     *bufio.Writer
	hbuf   bytes.Buffer
	henc   *hpack.Encoder
	stream uint32 // the last stream's ID
	unread uint32 // DATA received since the last connection WINDOW_UPDATE
}

// h2Call is one unary call of a batch: the request, and once done the
// answer or the error.
type h2Call struct {
	ns, method string    // ns, if not empty, is the containerd namespace
	req        []byte    // the request message, encoded (pbmsgs.go)
	resp       pbDecoder // decodes the answer
	stream     bool      // the answer is a stream of messages, not one
	err        error

	id         uint32
	done       bool
	httpStatus string
	body       []byte
	grpcStatus string
	grpcMsg    string
}

// h2Window is the flow-control window ephem grants a connection.
const h2Window = 1 << 30

// newH2Client returns a client for the socket at sock whose first
// connection is first, when not nil (dialed already to tell a missing
// socket at once), and whose answers are bounded to maxRecv bytes.
func newH2Client(sock string, first net.Conn, maxRecv int) *h2Client {
	return &h2Client{sock: sock, first: first, maxRecv: maxRecv}
}

// close closes the client's connection.
func (h *h2Client) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range []net.Conn{h.first, h.conn} {
		if c != nil {
			_ = c.Close()
		}
	}
	h.first, h.conn = nil, nil
}

// call calls method with req (in containerd namespace ns, if not empty)
// and decodes the answer into resp. An error is a gRPC status, as gRPC's
// client gives it (grpcError): the server's when it answered
// (serverAnswered), else Unavailable, DeadlineExceeded or Canceled
// wrapping what happened.
func (h *h2Client) call(ctx context.Context, ns, method string, req []byte, resp pbDecoder) error {
	c := &h2Call{ns: ns, method: method, req: req, resp: resp}
	h.batch(ctx, c)
	return c.err
}

// batch makes calls at once (one round trip) and sets each one's answer
// or error (see call).
func (h *h2Client) batch(ctx context.Context, calls ...*h2Call) {
	h.mu.Lock()
	defer h.mu.Unlock()
	err := h.exchange(ctx, calls)
	for _, c := range calls {
		if c.err == nil && !c.done {
			c.err = fmt.Errorf("calling %s: %w", c.method, err)
		}
		if c.err == nil {
			c.err = c.decode(h.maxRecv)
		}
		c.err = grpcError(ctx, c.err)
	}
	if err != nil && h.conn != nil {
		_ = h.conn.Close()
		h.conn = nil
	}
}

// connect dials the socket unless the client is connected, and writes
// the connection's preface.
func (h *h2Client) connect(ctx context.Context) error {
	if h.conn != nil {
		return nil
	}
	conn := h.first
	h.first = nil
	if conn == nil {
		var d net.Dialer
		var err error
		if conn, err = d.DialContext(ctx, "unix", h.sock); err != nil {
			return err
		}
	}
	h.conn, h.stream, h.unread = conn, 0, 0
	h.bw = bufio.NewWriter(conn)
	h.fr = http2.NewFramer(h.bw, bufio.NewReader(conn))
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.fr.MaxHeaderListSize = 1 << 20
	h.hbuf.Reset()
	h.henc = hpack.NewEncoder(&h.hbuf)
	if _, err := h.bw.WriteString(http2.ClientPreface); err != nil {
		return err
	}
	if err := h.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(min(h.maxRecv+1<<16, 1<<31-1))}); err != nil {
		return err
	}
	return h.fr.WriteWindowUpdate(0, h2Window)
}

// exchange writes the calls' requests and reads until each is answered;
// an error is the connection's.
func (h *h2Client) exchange(ctx context.Context, calls []*h2Call) error {
	if err := h.connect(ctx); err != nil {
		return err
	}
	conn := h.conn
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if h.unread > 0 {
		if err := h.fr.WriteWindowUpdate(0, h.unread); err != nil {
			return err
		}
		h.unread = 0
	}
	byID := map[uint32]*h2Call{}
	for _, c := range calls {
		if err := h.writeRequest(c); err != nil {
			return h.ctxErr(ctx, err)
		}
		byID[c.id] = c
	}
	if err := h.bw.Flush(); err != nil {
		return h.ctxErr(ctx, err)
	}
	for pending := len(calls); pending > 0; {
		f, err := h.fr.ReadFrame()
		if err != nil {
			return h.ctxErr(ctx, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				err = h.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				err = h.fr.WritePing(true, f.Data)
			}
		case *http2.GoAwayFrame:
			for id, c := range byID {
				if !c.done && id > f.LastStreamID {
					c.done, c.err = true, fmt.Errorf("calling %s: the server is closing the connection", c.method)
					pending--
				}
			}
		case *http2.RSTStreamFrame:
			if c := byID[f.StreamID]; c != nil && !c.done {
				c.done, c.err = true, fmt.Errorf("calling %s: the server reset the stream: %v", c.method, f.ErrCode)
				pending--
			}
		case *http2.MetaHeadersFrame:
			if c := byID[f.StreamID]; c != nil && !c.done {
				c.headers(f)
				if f.StreamEnded() {
					c.done = true
					pending--
				}
			}
		case *http2.DataFrame:
			h.unread += f.Length
			if c := byID[f.StreamID]; c != nil && !c.done {
				if len(c.body)+len(f.Data()) > h.maxRecv+5 {
					c.done, c.err = true, &statusError{code: codeResourceExhausted, msg: fmt.Sprintf("the answer to %s is larger than %d bytes", c.method, h.maxRecv)}
					pending--
					err = h.fr.WriteRSTStream(f.StreamID, http2.ErrCodeCancel)
					break
				}
				c.body = append(c.body, f.Data()...)
				if f.StreamEnded() {
					c.done = true
					pending--
				}
			}
		}
		if err == nil {
			err = h.bw.Flush()
		}
		if err != nil {
			return h.ctxErr(ctx, err)
		}
	}
	return nil
}

// ctxErr is err, or the context's error if it ended the call.
func (h *h2Client) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

// writeRequest writes c's HEADERS and DATA frames on a new stream.
func (h *h2Client) writeRequest(c *h2Call) error {
	msg := c.req
	h.stream += 2
	if h.stream == 2 {
		h.stream = 1
	}
	c.id = h.stream
	h.hbuf.Reset()
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", c.method}, {":authority", "localhost"},
		{"content-type", "application/grpc"}, {"te", "trailers"}} {
		if err := h.henc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			return err
		}
	}
	if c.ns != "" {
		if err := h.henc.WriteField(hpack.HeaderField{Name: "containerd-namespace", Value: c.ns}); err != nil {
			return err
		}
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: c.id, BlockFragment: h.hbuf.Bytes(), EndHeaders: true}); err != nil {
		return err
	}
	body := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(body[1:], uint32(len(msg)))
	body = append(body, msg...)
	for {
		n := min(len(body), 16384) // the smallest frame size a server allows
		if err := h.fr.WriteData(c.id, n == len(body), body[:n]); err != nil {
			return err
		}
		if body = body[n:]; len(body) == 0 {
			return nil
		}
	}
}

// headers takes a HEADERS frame's fields: the answer's headers, or its
// trailers (or both, in a trailers-only answer).
func (c *h2Call) headers(f *http2.MetaHeadersFrame) {
	for _, hf := range f.Fields {
		switch hf.Name {
		case ":status":
			c.httpStatus = hf.Value
		case "grpc-status":
			c.grpcStatus = hf.Value
		case "grpc-message":
			c.grpcMsg = hf.Value
		}
	}
}

// decode reads the answer of a call that is done.
func (c *h2Call) decode(maxRecv int) error {
	code, err := strconv.Atoi(c.grpcStatus)
	if c.httpStatus != "200" || err != nil {
		return fmt.Errorf("calling %s: not a gRPC answer: HTTP %s, grpc-status %q", c.method, c.httpStatus, c.grpcStatus)
	}
	if code != int(codeOK) {
		msg := c.grpcMsg
		if m, err := url.PathUnescape(msg); err == nil {
			msg = m
		}
		return &statusError{code: rpcCode(code), msg: msg}
	}
	ans := c.body
	if len(ans) > maxRecv+5 {
		return &statusError{code: codeResourceExhausted, msg: fmt.Sprintf("the answer to %s is larger than %d bytes", c.method, maxRecv)}
	}
	for n := 0; len(ans) > 0 || (n == 0 && !c.stream); n++ {
		if len(ans) < 5 || ans[0] != 0 || int(binary.BigEndian.Uint32(ans[1:5])) > len(ans)-5 || (n > 0 && !c.stream) {
			return fmt.Errorf("reading the answer to %s: malformed message", c.method)
		}
		size := 5 + int(binary.BigEndian.Uint32(ans[1:5]))
		if err := c.resp.decode(ans[5:size]); err != nil {
			return fmt.Errorf("decoding the answer to %s: %w", c.method, err)
		}
		ans = ans[size:]
	}
	return nil
}
