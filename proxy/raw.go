package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxResponseHead bounds the head of Docker's answer to a raw request
// (status line and headers), the only part of it the proxy reads.
const maxResponseHead = 1 << 20

// isRaw reports whether r is one of the requests the proxy relays as raw
// bytes after their head: those whose bodies (either way) may be large
// and that the proxy never changes. [/vX.Y] before each:
//
//	PUT, GET and HEAD /containers/ID/archive  (docker cp)
//	GET /containers/ID/export
//	POST /images/load, GET /images/get and /images/NAME/get
//	POST /build
func isRaw(method, path string) bool {
	parts := strings.Split(strings.Trim(apiPath(path), "/"), "/")
	switch method {
	case http.MethodPut, http.MethodHead:
		return len(parts) == 3 && parts[0] == "containers" && parts[2] == "archive"
	case http.MethodGet:
		switch {
		case len(parts) == 3 && parts[0] == "containers":
			return parts[2] == "archive" || parts[2] == "export"
		case len(parts) >= 2 && parts[0] == "images" && parts[len(parts)-1] == "get":
			// An image name may hold slashes: /images/reg/x/y/get.
			return true
		}
	case http.MethodPost:
		return len(parts) == 2 && parts[0] == "images" && parts[1] == "load" ||
			len(parts) == 1 && parts[0] == "build"
	}
	return false
}

// hopHeaders are the request headers that describe the caller's
// connection rather than the request; the raw relay drops them (and the
// ones Connection names) and sends its own Connection: close.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Upgrade"}

// serveRaw relays r to Docker as bytes: its head is written to a
// connection of its own to Docker with Connection: close, the caller's
// connection is hijacked, and from then on the body goes to Docker as the
// caller framed it (Content-Length or chunked) and Docker's answer comes
// back as Docker framed it, with only its head changed to say
// Connection: close. The answer ends when Docker closes its connection;
// the caller's is closed then too. The copies go through relayBuffer-sized
// buffers, so neither body is held in memory whatever its size. The
// caller must speak HTTP/1.1: Docker's answer may be chunked.
//
// Until the caller's connection is hijacked, failures are answered
// through w; after it, a failure before any of Docker's answer was sent
// is answered with the same 502 written raw, and a later one ends the
// connection (as a dropped connection to Docker would).
func (p *Proxy) serveRaw(w http.ResponseWriter, r *http.Request) {
	back, err := p.dial(r.Context(), "unix", "docker")
	if err != nil {
		p.forwardError(w, r, fmt.Errorf("dial: %w", err))
		return
	}
	defer back.Close()
	if _, err := back.Write(requestHead(r)); err != nil {
		p.forwardError(w, r, fmt.Errorf("write request head: %w", err))
		return
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		p.cfg.Log.Warn("docker proxy: hijack", "path", r.URL.Path, "err", err)
		return
	}
	defer c.Close()
	// net/http may have left a deadline for the head; the body has none
	// (as with ReverseProxy).
	c.SetDeadline(time.Time{})

	// To Docker: the body as the caller sends it, bytes net/http already
	// buffered first. EOF from the caller is passed on as a half-close,
	// as a direct connection would; an error ends both connections.
	toDocker := make(chan struct{})
	go func() {
		defer close(toDocker)
		if _, err := copyBuffered(back, brw.Reader, c); err != nil {
			back.Close()
			return
		}
		closeWrite(back)
	}()

	if err := p.relayResponse(c, back, r); err != nil {
		p.cfg.Log.Warn("docker proxy: raw relay", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	c.Close()
	back.Close()
	<-toDocker
}

// relayResponse copies Docker's answer from back to the caller c: its
// head (and any 1xx heads before it) rewritten to say Connection: close,
// then everything else as it comes until Docker closes the connection.
func (p *Proxy) relayResponse(c, back net.Conn, r *http.Request) error {
	br := bufio.NewReader(back)
	sent := false
	for {
		head, status, err := readResponseHead(br, r)
		if err != nil {
			if !sent {
				writeRawError(c, http.StatusBadGateway, "weft proxy: no answer from Docker at "+p.cfg.DockerHost+": "+err.Error())
			}
			return fmt.Errorf("read response head: %w", err)
		}
		if _, err := c.Write(head); err != nil {
			return fmt.Errorf("write response head: %w", err)
		}
		sent = true
		if status >= 200 || status == http.StatusSwitchingProtocols {
			break
		}
	}
	if _, err := copyBuffered(c, br, back); err != nil {
		return fmt.Errorf("copy response: %w", err)
	}
	return nil
}

// relayBuffer is the size of the buffers the raw relay copies through:
// a read from a unix socket returns at most what is queued there, and
// 64 KB lets one read take most of it (bufio's 4 KB made four times the
// system calls).
const relayBuffer = 64 << 10

// relayBuffers holds the relay's buffers between requests.
var relayBuffers = sync.Pool{New: func() any { return new([relayBuffer]byte) }}

// copyBuffered copies to dst what br already holds, and then src until
// EOF, through a relayBuffer of its own. br must be a reader of src
// (bufio.Reader.WriteTo would go on reading src through br's own, small
// buffer). It returns the bytes written and the first error, nil at
// src's EOF.
func copyBuffered(dst io.Writer, br *bufio.Reader, src io.Reader) (int64, error) {
	var n int64
	if k := br.Buffered(); k > 0 {
		b, _ := br.Peek(k)
		w, err := dst.Write(b)
		n += int64(w)
		if err != nil {
			return n, err
		}
		br.Discard(k)
	}
	buf := relayBuffers.Get().(*[relayBuffer]byte)
	defer relayBuffers.Put(buf)
	// Hide ReadFrom and WriteTo, so that io.CopyBuffer uses buf.
	w, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf[:])
	return n + w, err
}

// requestHead is r's request line and headers as the caller sent them,
// with the caller's framing of the body (Transfer-Encoding: chunked or
// Content-Length) and Connection: close instead of the caller's
// connection headers.
func requestHead(r *http.Request) []byte {
	h := r.Header.Clone()
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			if name = textprotoTrim(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
	h.Del("Transfer-Encoding")
	h.Del("Content-Length")
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.Method, r.RequestURI, r.Host)
	switch {
	case len(r.TransferEncoding) > 0:
		// net/http accepts only chunked.
		b.WriteString("Transfer-Encoding: chunked\r\n")
	case r.ContentLength > 0 || r.Header.Get("Content-Length") != "":
		b.WriteString("Content-Length: " + strconv.FormatInt(r.ContentLength, 10) + "\r\n")
	}
	h.Write(&b)
	b.WriteString("Connection: close\r\n\r\n")
	return b.Bytes()
}

// textprotoTrim trims the spaces and tabs around a header list element.
func textprotoTrim(s string) string { return strings.Trim(s, " \t") }

// readResponseHead reads one response head from br (at most
// maxResponseHead bytes) and returns it with its Connection headers
// replaced by Connection: close, and its status code. Everything after
// the head stays in br.
func readResponseHead(br *bufio.Reader, r *http.Request) ([]byte, int, error) {
	var raw []byte
	// lineStart: the next piece ReadSlice returns begins a line (a line
	// longer than br's buffer comes in several pieces).
	lineStart := true
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, 0, err
		}
		raw = append(raw, line...)
		if len(raw) > maxResponseHead {
			return nil, 0, errResponseHead
		}
		if err == nil && lineStart && (bytes.Equal(line, []byte("\r\n")) || bytes.Equal(line, []byte("\n"))) {
			break
		}
		lineStart = err == nil
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), r)
	if err != nil {
		return nil, 0, fmt.Errorf("parse: %w", err)
	}
	resp.Body.Close()
	out := make([]byte, 0, len(raw)+len("Connection: close\r\n"))
	for i, line := range bytes.SplitAfter(raw, []byte("\n")) {
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break // the blank line that ends the head
		}
		if i > 0 && isConnectionHeader(line) {
			continue
		}
		out = append(out, line...)
	}
	out = append(out, "Connection: close\r\n\r\n"...)
	return out, resp.StatusCode, nil
}

// isConnectionHeader reports whether line is a Connection or
// Keep-Alive header.
func isConnectionHeader(line []byte) bool {
	name, _, ok := bytes.Cut(line, []byte(":"))
	if !ok {
		return false
	}
	name = bytes.TrimSpace(name)
	return bytes.EqualFold(name, []byte("Connection")) || bytes.EqualFold(name, []byte("Keep-Alive"))
}

// writeRawError writes Docker's error answer on a hijacked connection.
func writeRawError(c net.Conn, status int, msg string) {
	body := errorBody(msg)
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}
