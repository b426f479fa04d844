package middleware

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
)

// Framing closes the connection after every HTTP/1 request with a chunked
// body, so that nothing read after that body is ever served as a request:
// a proxy in front that framed the body by a Content-Length sent with it
// (RFC 9112 lets the chunked coding win, and net/http deletes that
// Content-Length) may have forwarded a second request inside it. And it
// refuses with 400 a chunked request whose head also carried
// Content-Length, when the connection was accepted by FramingListener
// (plain HTTP: over TLS the head is not seen, and the close is the only
// defence).
//
// It must run before anything that can refuse a request, or a refused
// chunked request would leave its connection open.
func Framing(reject Reject) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		if r.ProtoMajor != 1 || !slices.Contains(r.TransferEncoding, "chunked") {
			c.Next()
			return
		}
		c.Header("Connection", "close")
		if fc, ok := r.Context().Value(framingConnKey{}).(*framingConn); !ok || !fc.ambiguous.Load() {
			c.Next()
			return
		}
		reject(c, Rejection{Status: http.StatusBadRequest, Code: "ambiguous-framing",
			Detail: "the request has both Content-Length and Transfer-Encoding: send one of them"})
		// Ends the read net/http makes of the unread body after the answer.
		_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Now())
	}
}

// FramingListener wraps ln, a plain TCP listener, so that Framing can tell
// a chunked request whose head also carried Content-Length: each accepted
// connection follows the request heads as net/http reads them, without
// changing a byte. maxHeaderBytes is the server's MaxHeaderBytes (0: the
// net/http default). The server must pass the connections on to its
// requests with FramingContext as its ConnContext.
//
// It is not for TLS: net/http must get the *tls.Conn itself to speak
// HTTP/2, and the bytes under it are encrypted.
func FramingListener(ln net.Listener, maxHeaderBytes int) net.Listener {
	if maxHeaderBytes <= 0 {
		maxHeaderBytes = http.DefaultMaxHeaderBytes
	}
	// net/http reads a head with up to 4 KiB of slop past MaxHeaderBytes,
	// plus what its 4 KiB buffer held before: a longer head is refused.
	return &framingListener{Listener: ln, limit: maxHeaderBytes + 8<<10}
}

// FramingContext is the http.Server ConnContext that lets Framing find the
// connection a request came on.
func FramingContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		return context.WithValue(ctx, framingConnKey{}, fc)
	}
	return ctx
}

type framingConnKey struct{}

type framingListener struct {
	net.Listener
	limit int
}

func (l *framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c, scan: headScanner{limit: l.limit}}, nil
}

// framingConn is a connection whose reads pass through headScanner until
// it has seen the first chunked request, the last one served on the
// connection (Framing closes it after that one).
type framingConn struct {
	net.Conn
	// scan belongs to whoever reads: net/http reads a connection from
	// one goroutine at a time.
	scan headScanner
	// ambiguous is set once, when scanning ends at a chunked head that
	// also had Content-Length; the handler's goroutine reads it.
	ambiguous atomic.Bool
}

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if !c.scan.done && n > 0 {
		c.scan.feed(p[:n])
		if c.scan.ambiguous {
			c.ambiguous.Store(true)
		}
	}
	return n, err
}

// NetConn returns the connection the wrapper reads from, for a taker of
// the connection (the takeover writer) that needs no more watching of it.
func (c *framingConn) NetConn() net.Conn { return c.Conn }

// SyscallConn lets a hijacker reach the socket (the takeover writer polls
// and writes it directly).
func (c *framingConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// CloseWrite lets net/http close a connection gracefully: it shuts the
// sending side and lingers, so that the client reads the last answer
// before unread bytes make the kernel reset the connection.
func (c *framingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// ReadFrom keeps the socket's own ReadFrom (sendfile, splice) for
// net/http's response writer.
func (c *framingConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(c.Conn, r)
}
