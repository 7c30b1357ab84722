package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// engine starts a fake Engine API serving h on a unix socket and returns
// its DOCKER_HOST.
func engine(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "engine.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return "unix://" + sock
}

// start serves a proxy for cfg on a unix socket and returns the socket
// and a client that reaches the proxy through it.
func start(t *testing.T, cfg Config) (*Proxy, string, *http.Client) {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "proxy.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(ln) }()
	t.Cleanup(func() {
		p.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	t.Cleanup(c.CloseIdleConnections)
	return p, sock, c
}

func TestNewRefusesNonUnix(t *testing.T) {
	for _, host := range []string{"", "tcp://127.0.0.1:2375", "unix://", "/var/run/docker.sock"} {
		if _, err := New(Config{DockerHost: host}); !errors.Is(err, ErrDockerHost) {
			t.Errorf("New(%q) = %v, want ErrDockerHost", host, err)
		}
	}
}

func TestPingAndVersionPassThrough(t *testing.T) {
	host := engine(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		switch r.URL.Path {
		case "/_ping":
			io.WriteString(w, "OK")
		case "/v1.41/version":
			io.WriteString(w, `{"ApiVersion":"1.41"}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"page not found"}`)
		}
	}))
	_, _, c := start(t, Config{DockerHost: host})
	for path, want := range map[string]string{
		"/_ping":         "OK",
		"/v1.41/version": `{"ApiVersion":"1.41"}`,
		"/v1.41/nope":    `{"message":"page not found"}`,
	} {
		resp, err := c.Get("http://docker" + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != want || resp.Header.Get("Api-Version") != "1.41" {
			t.Errorf("%s: %d %q (Api-Version %q), want %q", path, resp.StatusCode, body, resp.Header.Get("Api-Version"), want)
		}
	}
}

// TestStreaming: lines written over 2 s arrive one by one, each before the
// next is written.
func TestStreaming(t *testing.T) {
	const lines, gap = 5, 400 * time.Millisecond
	host := engine(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range lines {
			fmt.Fprintf(w, "line %d\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(gap)
		}
	}))
	_, _, c := start(t, Config{DockerHost: host})
	began := time.Now()
	resp, err := c.Get("http://docker/v1.41/containers/x/logs?follow=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range lines {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		// Line i is written at i*gap; it must not wait for the next one.
		if at := time.Since(began); at > time.Duration(i)*gap+gap/2 {
			t.Errorf("%q arrived after %v: held back", line, at)
		}
	}
}

// TestBodyStreamed: the engine reads the first megabyte of a 100 MB body
// before the client has written the rest.
func TestBodyStreamed(t *testing.T) {
	const size, first = 100 << 20, 1 << 20
	gotFirst := make(chan struct{})
	total := make(chan int64, 1)
	host := engine(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.CopyN(io.Discard, r.Body, first); err != nil {
			t.Errorf("engine: %v", err)
		}
		close(gotFirst)
		n, _ := io.Copy(io.Discard, r.Body)
		total <- first + n
		io.WriteString(w, "{}")
	}))
	_, _, c := start(t, Config{DockerHost: host})
	pr, pw := io.Pipe()
	go func() {
		chunk := make([]byte, 64<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if sent == first {
				select {
				case <-gotFirst:
				case <-time.After(10 * time.Second):
					pw.CloseWithError(errors.New("engine saw nothing of the body: the proxy holds it"))
					return
				}
			}
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	began := time.Now()
	resp, err := c.Post("http://docker/v1.41/build", "application/x-tar", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if n := <-total; n != size {
		t.Fatalf("engine got %d bytes, want %d", n, size)
	}
	t.Logf("100 MB through the proxy in %v", time.Since(began).Round(time.Millisecond))
}

// hijackEngine answers like Docker's attach and exec start: 101 UPGRADED
// (200 OK without Upgrade: tcp), then it echoes until the caller half-closes, and says "bye".
func hijackEngine(t *testing.T) string {
	return engine(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // the exec start's JSON
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("engine hijack: %v", err)
			return
		}
		defer c.Close()
		if r.Header.Get("Upgrade") == "tcp" {
			io.WriteString(c, "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
		} else { // as Docker answers older clients
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n")
		}
		io.Copy(c, brw)
		io.WriteString(c, "bye")
	}))
}

// upgrade sends an exec start with Docker's upgrade headers on a new
// connection to sock and returns the connection after the 101.
func upgrade(t *testing.T, sock string) (*net.UnixConn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, "POST /v1.41/exec/abc/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"+
		"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 2\r\n\r\n{}")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "tcp" {
		t.Fatalf("got %s %v, want 101 with Upgrade: tcp", resp.Status, resp.Header)
	}
	return c.(*net.UnixConn), br
}

func TestUpgrade(t *testing.T) {
	_, sock, _ := start(t, Config{DockerHost: hijackEngine(t)})
	c, br := upgrade(t, sock)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	for _, msg := range []string{"ping\n", "ls -l\n"} {
		io.WriteString(c, msg)
		got, err := br.ReadString('\n')
		if err != nil || got != msg {
			t.Fatalf("echo of %q: %q, %v", msg, got, err)
		}
	}
	// stdin closed (docker's CloseWrite): the output still comes back.
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "bye" {
		t.Fatalf("after half-close: %q, %v; want \"bye\"", rest, err)
	}
}

// TestCloseEndsHijacked: Close ends hijacked connections, which net/http
// no longer tracks.
func TestCloseEndsHijacked(t *testing.T) {
	p, sock, _ := start(t, Config{DockerHost: hijackEngine(t)})
	c, br := upgrade(t, sock)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	p.Close()
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("hijacked connection still open after Close")
	} else if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("hijacked connection not closed: %v", err)
	}
}

// TestMalformed: bad requests are answered by net/http and the proxy
// keeps serving.
func TestMalformed(t *testing.T) {
	host := engine(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "OK") }))
	_, sock, c := start(t, Config{DockerHost: host, MaxHeaderBytes: 4 << 10})
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"garbage", "GARBAGE\r\n\r\n", 400},
		{"bad version", "GET /_ping HTTP/9.9\r\nHost: x\r\n\r\n", 505},
		{"no host", "GET /_ping HTTP/1.1\r\n\r\n", 400},
		{"bad header", "GET /_ping HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n", 400},
		{"huge header", "GET /_ping HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", 431},
		{"bad chunk", "POST /v1.41/build HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0},
	} {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, tc.req)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		switch {
		case tc.status == 0:
			// Any answer or a closed connection will do; the proxy must live.
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case resp.StatusCode != tc.status:
			t.Errorf("%s: %s, want %d", tc.name, resp.Status, tc.status)
		}
		conn.Close()
		resp, err = c.Get("http://docker/_ping")
		if err != nil {
			t.Fatalf("after %s: %v", tc.name, err)
		}
		resp.Body.Close()
	}
}

// TestSlowHeader: a caller that never finishes its header is cut off.
func TestSlowHeader(t *testing.T) {
	_, sock, _ := start(t, Config{DockerHost: "unix:///nonexistent", ReadHeaderTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /_ping HTTP/1.1\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("connection not closed by the proxy: %v", err)
	}
}

func dockerError(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var e struct{ Message string }
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Message == "" {
		t.Fatalf("not Docker's error body: %v", err)
	}
	return e.Message
}

func TestDockerDown(t *testing.T) {
	_, _, c := start(t, Config{DockerHost: "unix://" + filepath.Join(t.TempDir(), "gone.sock")})
	began := time.Now()
	resp, err := c.Get("http://docker/v1.41/containers/json")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	msg := dockerError(t, resp)
	if !strings.Contains(msg, "gone.sock") {
		t.Errorf("message %q does not name Docker's socket", msg)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("answered after %v", d)
	}
}

// TestHijackWithoutUpgrade: an older client's attach (no Upgrade header,
// 200 and then the raw stream both ways) works, stdin sent right behind
// the request included.
func TestHijackWithoutUpgrade(t *testing.T) {
	_, sock, _ := start(t, Config{DockerHost: hijackEngine(t)})
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := conn.(*net.UnixConn)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST /v1.24/containers/abc/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: docker\r\n"+
		"Content-Length: 2\r\n\r\n{}early\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/vnd.docker.raw-stream" {
		t.Fatalf("got %s %v", resp.Status, resp.Header)
	}
	if got, err := br.ReadString('\n'); got != "early\n" {
		t.Fatalf("stdin sent with the request: %q, %v", got, err)
	}
	io.WriteString(c, "ping\n")
	if got, err := br.ReadString('\n'); got != "ping\n" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(br); err != nil || string(rest) != "bye" {
		t.Fatalf("after half-close: %q, %v; want \"bye\"", rest, err)
	}
}

func TestIsHijack(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/v1.41/containers/abc/attach", true},
		{"POST", "/containers/abc/attach", true},
		{"POST", "/v1.24/exec/abc/start", true},
		{"POST", "/exec/abc/start", true},
		{"GET", "/v1.41/containers/abc/attach", false},
		{"POST", "/v1.41/containers/abc/attach/ws", false},
		{"POST", "/v1.41/containers/abc/start", false},
		{"POST", "/v1.41/exec/abc/resize", false},
		{"POST", "/v1.41/containers/create", false},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if got := isHijack(r); got != tc.want {
			t.Errorf("%s %s: %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}

// TestChunkedResponse: several MB in one chunked response arrive whole.
func TestChunkedResponse(t *testing.T) {
	const size = 8 << 20
	host := engine(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("x"), 10000)
		for sent := 0; sent < size; sent += len(chunk) {
			w.Write(chunk[:min(len(chunk), size-sent)])
			w.(http.Flusher).Flush()
		}
	}))
	_, _, c := start(t, Config{DockerHost: host})
	resp, err := c.Get("http://docker/v1.41/images/get")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != size || len(resp.TransferEncoding) == 0 {
		t.Fatalf("got %d bytes (%v), encoding %v; want %d chunked", n, err, resp.TransferEncoding, size)
	}
}
