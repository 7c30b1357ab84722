package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestIsRaw(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"PUT", "/containers/x/archive", true},
		{"PUT", "/v1.41/containers/x/archive", true},
		{"GET", "/v1.47/containers/x/archive", true},
		{"HEAD", "/containers/x/archive", true},
		{"GET", "/containers/x/export", true},
		{"POST", "/v1.41/images/load", true},
		{"GET", "/images/get", true},
		{"GET", "/v1.41/images/busybox/get", true},
		{"GET", "/v1.41/images/reg.io/a/b:1/get", true},
		{"POST", "/build", true},
		{"POST", "/v1.41/build", true},
		{"POST", "/containers/x/archive", false},
		{"GET", "/containers/x/json", false},
		{"GET", "/containers/json", false},
		{"POST", "/containers/create", false},
		{"GET", "/images/json", false},
		{"GET", "/build", false},
		{"POST", "/build/prune", false},
		{"GET", "/_ping", false},
	} {
		if got := isRaw(tc.method, tc.path); got != tc.want {
			t.Errorf("isRaw(%s %s) = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}

// noLeak fails t unless the number of goroutines returns to what it is
// now, once the test's connections are closed.
func noLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// archiveEngine answers PUT archive with the size and SHA-256 of the body
// and how it was framed, and GET archive with size bytes (with
// Content-Length when length is set, chunked otherwise).
func archiveEngine(t *testing.T, size int, length bool) string {
	return engine(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.Close {
			t.Errorf("engine: %s %s without Connection: close: not relayed raw", r.Method, r.URL)
		}
		switch r.Method {
		case http.MethodPut:
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%d %x %v %d %s", n, h.Sum(nil), r.TransferEncoding, r.ContentLength, r.Header.Get("X-Keep"))
		case http.MethodGet, http.MethodHead:
			if length {
				w.Header().Set("Content-Length", strconv.Itoa(size))
			}
			w.Header().Set("X-Docker-Container-Path-Stat", "e30=")
			if r.Method == http.MethodHead {
				return
			}
			w.Write(pattern(size))
		}
	}))
}

// pattern is n bytes that are not all alike.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>11)
	}
	return b
}

func TestRawRequestBody(t *testing.T) {
	const size = 10 << 20
	noLeak(t)
	host := archiveEngine(t, 0, true)
	_, _, c := start(t, Config{DockerHost: host})
	data := pattern(size)
	want := fmt.Sprintf("%d %x", size, sha256.Sum256(data))
	for _, tc := range []struct {
		name    string
		body    io.Reader
		framing string
	}{
		{"content-length", bytes.NewReader(data), fmt.Sprintf("[] %d", size)},
		{"chunked", io.MultiReader(bytes.NewReader(data)), "[chunked] -1"},
	} {
		req, _ := http.NewRequest(http.MethodPut, "http://docker/v1.41/containers/x/archive?path=/tmp", tc.body)
		req.Header.Set("X-Keep", "kept")
		req.Header.Set("Keep-Alive", "timeout=5")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v", tc.name, resp.StatusCode, err)
		}
		if w := want + " " + tc.framing + " kept"; string(got) != w {
			t.Errorf("%s: engine saw %q, want %q", tc.name, got, w)
		}
		if !resp.Close {
			t.Errorf("%s: response without Connection: close", tc.name)
		}
	}
	c.CloseIdleConnections()
}

func TestRawResponse(t *testing.T) {
	const size = 8 << 20
	noLeak(t)
	for _, length := range []bool{true, false} {
		host := archiveEngine(t, size, length)
		_, _, c := start(t, Config{DockerHost: host})
		for _, method := range []string{http.MethodHead, http.MethodGet, http.MethodGet} {
			req, _ := http.NewRequest(method, "http://docker/containers/x/archive?path=/f", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("length %v, %s: %v", length, method, err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("length %v, %s: %v", length, method, err)
			}
			if resp.Header.Get("X-Docker-Container-Path-Stat") != "e30=" || !resp.Close {
				t.Errorf("length %v, %s: header %v, Close %v", length, method, resp.Header, resp.Close)
			}
			wantLen := int64(-1)
			if length {
				wantLen = size
			}
			if resp.ContentLength != wantLen {
				t.Errorf("length %v, %s: Content-Length %d, want %d", length, method, resp.ContentLength, wantLen)
			}
			if method == http.MethodHead && len(got) != 0 || method == http.MethodGet && !bytes.Equal(got, pattern(size)) {
				t.Errorf("length %v, %s: %d bytes, not what the engine sent", length, method, len(got))
			}
		}
		c.CloseIdleConnections()
	}
}

// rawEngine serves a unix socket with handle for each connection,
// without net/http, so that it can misbehave; it returns DOCKER_HOST.
func rawEngine(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "raw.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handle(c)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return "unix://" + sock
}

// readHead reads a request head from c.
func readHead(c net.Conn) (*http.Request, *bufio.Reader, error) {
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	return req, br, err
}

func TestRawResponseUntilClose(t *testing.T) {
	noLeak(t)
	host := rawEngine(t, func(c net.Conn) {
		req, _, err := readHead(c)
		if err != nil || req.Header.Get("Connection") != "close" || !req.Close {
			t.Errorf("engine: %v, Connection %q", err, req.Header.Get("Connection"))
		}
		// No length, no chunks: the body ends when the connection does.
		io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nall of it")
	})
	_, _, c := start(t, Config{DockerHost: host})
	resp, err := c.Get("http://docker/containers/x/export")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(got) != "all of it" || !resp.Close || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("%q, %v, Close %v, header %v", got, err, resp.Close, resp.Header)
	}
	c.CloseIdleConnections()
}

func TestRawContinue(t *testing.T) {
	noLeak(t)
	host := rawEngine(t, func(c net.Conn) {
		req, _, err := readHead(c)
		if err != nil {
			t.Errorf("engine: %v", err)
			return
		}
		io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
		b, err := io.ReadAll(req.Body)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
		if err != nil {
			t.Errorf("engine: %v", err)
		}
	})
	_, sock, _ := start(t, Config{DockerHost: host})
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "POST /images/load HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("%v, %v; want 100 Continue", resp, err)
	}
	io.WriteString(conn, "hello")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(got) != "hello" {
		t.Errorf("%s %q", resp.Status, got)
	}
}

// TestRawCallerGoesAway: a caller that stops mid-body (closing its
// connection) ends Docker's connection too, and nothing is left running.
func TestRawCallerGoesAway(t *testing.T) {
	noLeak(t)
	engineErr := make(chan error, 1)
	host := engine(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		engineErr <- err
	}))
	_, sock, c := start(t, Config{DockerHost: host})
	for _, req := range []string{
		"PUT /containers/x/archive HTTP/1.1\r\nHost: d\r\nContent-Length: 1000000\r\n\r\n" + strings.Repeat("x", 1000),
		"POST /build HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n",
	} {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, req)
		time.Sleep(50 * time.Millisecond)
		conn.Close()
		select {
		case err := <-engineErr:
			if err == nil {
				t.Errorf("engine read a whole body the caller never sent")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("engine still reading the body of a caller that went away")
		}
	}
	// The proxy serves on.
	resp, err := c.Get("http://docker/_ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c.CloseIdleConnections()
}

// TestRawMalformed: heads net/http refuses are answered 400 before the
// relay, and a malformed body is Docker's to refuse.
func TestRawMalformed(t *testing.T) {
	noLeak(t)
	host := engine(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, `{"message":"bad body"}`, http.StatusBadRequest)
		}
	}))
	_, sock, _ := start(t, Config{DockerHost: host})
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"bad length", "PUT /containers/x/archive HTTP/1.1\r\nHost: d\r\nContent-Length: abc\r\n\r\n", 400},
		{"two lengths", "PUT /containers/x/archive HTTP/1.1\r\nHost: d\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
		{"bad encoding", "POST /build HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"bad chunk", "POST /build HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
	} {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, tc.req)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		} else if resp.StatusCode != tc.status {
			t.Errorf("%s: %s, want %d", tc.name, resp.Status, tc.status)
		}
		conn.Close()
	}
}

func TestRawDockerDown(t *testing.T) {
	noLeak(t)
	_, _, c := start(t, Config{DockerHost: "unix://" + filepath.Join(t.TempDir(), "gone.sock")})
	resp, err := c.Post("http://docker/v1.41/images/load", "application/x-tar", strings.NewReader("tar"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	if msg := dockerError(t, resp); !strings.Contains(msg, "gone.sock") {
		t.Errorf("message %q does not name Docker's socket", msg)
	}
	c.CloseIdleConnections()
}

// TestRawDockerCloses: Docker closing before it answered is the caller's
// 502; closing in the middle of its answer cuts the caller's short.
func TestRawDockerCloses(t *testing.T) {
	noLeak(t)
	host := rawEngine(t, func(c net.Conn) {
		req, _, err := readHead(c)
		if err != nil {
			return
		}
		switch req.URL.Path {
		case "/containers/x/archive": // half an answer
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this")
		case "/images/get": // a head that never ends
			io.WriteString(c, "HTTP/1.1 200 OK\r\n")
			for range maxResponseHead / 16 {
				io.WriteString(c, "X: aaaaaaaaaaaa\r\n")
			}
		}
		// /images/load: nothing at all.
	})
	_, _, c := start(t, Config{DockerHost: host})
	for _, path := range []string{"/images/load", "/images/get"} {
		method := http.MethodGet
		if path == "/images/load" {
			method = http.MethodPost
		}
		req, _ := http.NewRequest(method, "http://docker"+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("%s: status %d, want 502", path, resp.StatusCode)
		}
		if msg := dockerError(t, resp); !strings.Contains(msg, "Docker") {
			t.Errorf("%s: message %q", path, msg)
		}
	}
	resp, err := c.Get("http://docker/containers/x/archive")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || string(got) != "only this" {
		t.Errorf("got %q, %v; want the 9 bytes sent and an error", got, err)
	}
	c.CloseIdleConnections()
}

// TestRawCloseEndsRelay: Close ends a relay whose Docker never answers.
func TestRawCloseEndsRelay(t *testing.T) {
	noLeak(t)
	release := make(chan struct{})
	host := rawEngine(t, func(c net.Conn) {
		readHead(c)
		<-release
	})
	defer close(release)
	p, sock, _ := start(t, Config{DockerHost: host})
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /containers/x/export HTTP/1.1\r\nHost: d\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	p.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("connection not closed by Close: %v", err)
	}
}

// BenchmarkArchive copies 16 MB into and out of a fake engine through
// the raw relay and, for comparison, through the ReverseProxy every
// other request takes.
func BenchmarkArchive(b *testing.B) {
	const size = 16 << 20
	data := pattern(size)
	sock := filepath.Join(b.TempDir(), "engine.sock")
	eln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			io.Copy(io.Discard, r.Body)
			return
		}
		w.Write(data)
	}))
	srv.Listener = eln
	srv.Start()
	defer srv.Close()
	host := "unix://" + sock
	for _, tc := range []struct{ via, dir string }{
		{"raw", "in"}, {"reverseproxy", "in"}, {"raw", "out"}, {"reverseproxy", "out"},
	} {
		via := tc.via
		b.Run(tc.via+"-"+tc.dir, func(b *testing.B) {
			p, err := New(Config{DockerHost: host})
			if err != nil {
				b.Fatal(err)
			}
			if via == "reverseproxy" {
				p.srv.Handler = p.rp
			}
			sock := filepath.Join(b.TempDir(), "proxy.sock")
			ln, err := net.Listen("unix", sock)
			if err != nil {
				b.Fatal(err)
			}
			go p.Serve(ln)
			defer p.Close()
			c := &http.Client{Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, "unix", sock)
				},
			}}
			defer c.CloseIdleConnections()
			b.SetBytes(size)
			for b.Loop() {
				if tc.dir == "in" {
					resp, err := c.Do(putReq(data))
					if err != nil {
						b.Fatal(err)
					}
					resp.Body.Close()
					continue
				}
				resp, err := c.Get("http://docker/containers/x/archive")
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// putReq is a chunked PUT of data to an archive, as docker cp sends it.
func putReq(data []byte) *http.Request {
	req, _ := http.NewRequest(http.MethodPut, "http://docker/containers/x/archive?path=/", io.MultiReader(bytes.NewReader(data)))
	return req
}

// TestRawOnlyHTTP11: an HTTP/1.0 caller, which cannot read a chunked
// answer, goes through the ReverseProxy instead.
func TestRawOnlyHTTP11(t *testing.T) {
	noLeak(t)
	host := engine(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Close && r.Header.Get("Connection") == "close" && r.ProtoMinor == 1 {
			t.Errorf("engine: an HTTP/1.0 request was relayed raw")
		}
		w.Write(pattern(100 << 10))
	}))
	_, sock, _ := start(t, Config{DockerHost: host})
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /containers/x/export HTTP/1.0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil || len(resp.TransferEncoding) > 0 || !bytes.Equal(got, pattern(100<<10)) {
		t.Errorf("%v, %v, %d bytes", err, resp.TransferEncoding, len(got))
	}
}

// TestReadResponseHead: heads whose lines are longer than the reader's
// buffer, split at every place, come out whole, with Connection: close
// instead of the Connection and Keep-Alive headers, and the body stays
// behind.
func TestReadResponseHead(t *testing.T) {
	for pad := range 40 {
		in := "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", pad) + "\r\nConnection: keep-alive\r\n" +
			"keep-alive: timeout=5\r\nContent-Length: 4\r\n\r\nbody"
		br := bufio.NewReaderSize(strings.NewReader(in), 16)
		head, status, err := readResponseHead(br, nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("pad %d: %d, %v", pad, status, err)
		}
		want := "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", pad) + "\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"
		if string(head) != want {
			t.Errorf("pad %d: head %q, want %q", pad, head, want)
		}
		if rest, _ := io.ReadAll(br); string(rest) != "body" {
			t.Errorf("pad %d: left %q, want the body", pad, rest)
		}
	}
	for _, in := range []string{"", "HTTP/1.1 200 OK\r\n", "GARBAGE\r\n\r\n", "HTTP/1.1 abc OK\r\n\r\n"} {
		if _, _, err := readResponseHead(bufio.NewReader(strings.NewReader(in)), nil); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}
