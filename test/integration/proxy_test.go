package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/proxy"
	"github.com/weftnet/weft/test/netns"
)

// TestDockerProxy runs Debian's docker client (20.10) through weft's
// Docker API proxy to a real dockerd: run, attach with stdin, exec with a
// pty, logs -f and cp of 20 MB, each checked for what Docker would show
// without the proxy.
func TestDockerProxy(t *testing.T) {
	netns.SkipUnlessRoot(t)
	w := netns.NewWorld(t, 1)
	d := w.Hosts[0].StartDockerd(t)

	// Record whether the docker client hijacks with Upgrade headers: the
	// head of every request it sends passes through a recorder.
	p, err := proxy.New(proxy.Config{DockerHost: d.Host})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "proxy.sock")
	inner, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	rec := &headRecorder{}
	ln := &recordingListener{Listener: inner, rec: rec}
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()
	t.Cleanup(func() {
		p.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	cli := "/usr/bin/docker"
	if _, err := os.Stat(cli); err != nil {
		cli = "docker"
	}
	cfgDir := t.TempDir()
	host := "unix://" + sock
	docker := func(stdin string, args ...string) *exec.Cmd {
		ctx, cancel := context.WithTimeout(context.Background(), netns.DefaultTimeout)
		t.Cleanup(cancel)
		cmd := exec.CommandContext(ctx, cli, append([]string{"-H", host}, args...)...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+host, "DOCKER_CONTEXT=", "DOCKER_CONFIG="+cfgDir)
		cmd.Stdin = strings.NewReader(stdin)
		return cmd
	}
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, err := docker(stdin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	timed := func(what string, f func()) {
		began := time.Now()
		f()
		t.Logf("%s: %v", what, time.Since(began).Round(time.Millisecond))
	}

	timed("run --rm echo hi", func() {
		if out := must("", "run", "--rm", "--network", "none", netns.BusyboxImage, "echo", "hi"); out != "hi\n" {
			t.Errorf("run echo: %q", out)
		}
	})
	timed("run -i cat (attach, stdin half-closed)", func() {
		if out := must("one\ntwo\n", "run", "-i", "--rm", "--network", "none", netns.BusyboxImage, "cat"); out != "one\ntwo\n" {
			t.Errorf("run -i cat: %q", out)
		}
	})

	must("", "run", "-d", "--network", "none", "--name", "sleeper", netns.BusyboxImage, "sleep", "600")
	timed("exec -it under script", func() {
		cmd := exec.Command("script", "-qec", cli+" -H "+host+" exec -it sleeper sh -c 'tty; read x; echo got=$x'", "/dev/null")
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfgDir)
		cmd.Stdin = strings.NewReader("hello\n")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "/dev/pts/") || !strings.Contains(string(out), "got=hello") {
			t.Errorf("exec -it: %v\n%q", err, out)
		}
	})

	timed("attach -it under script", func() {
		must("", "run", "-dit", "--network", "none", "--name", "tty", netns.BusyboxImage, "sh")
		cmd := exec.Command("script", "-qec", cli+" -H "+host+" attach tty", "/dev/null")
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfgDir)
		cmd.Stdin = strings.NewReader("echo att=$((40+2))\nexit\n")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "att=42") {
			t.Errorf("attach: %v\n%q", err, out)
		}
		must("", "rm", "-f", "tty")
	})

	// An older client's attach: no Upgrade header, Docker answers 200 and
	// the raw stream goes both ways.
	timed("attach without Upgrade (older clients)", func() {
		must("", "run", "-di", "--network", "none", "--name", "cat", netns.BusyboxImage, "cat")
		defer must("", "rm", "-f", "cat")
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, "POST /v1.41/containers/cat/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("attach without Upgrade: %s", resp.Status)
		}
		io.WriteString(conn, "hello\n")
		// Not a tty: the output comes framed, an 8-byte header first.
		frame := make([]byte, 8+len("hello\n"))
		if _, err := io.ReadFull(br, frame); err != nil || string(frame[8:]) != "hello\n" {
			t.Errorf("attach without Upgrade: read %q, %v", frame, err)
		}
	})

	// What Docker answers to an unknown path reaches the client as is.
	timed("unknown API path", func() {
		c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
		defer c.CloseIdleConnections()
		resp, err := c.Get("http://docker/v1.41/no/such/path")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"message"`) {
			t.Errorf("unknown path: %d %s", resp.StatusCode, body)
		}
	})

	timed("logs -f of 3 s of output", func() {
		id := strings.TrimSpace(must("", "run", "-d", "--network", "none", netns.BusyboxImage,
			"sh", "-c", "for i in 1 2 3 4 5 6; do echo n$i; sleep 0.5; done"))
		cmd := docker("", "logs", "-f", id)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var lines []string
		var firstAt time.Duration
		for sc := bufio.NewScanner(out); sc.Scan(); {
			if lines = append(lines, sc.Text()); len(lines) == 1 {
				firstAt = time.Since(began)
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("logs -f: %v", err)
		}
		total := time.Since(began)
		if strings.Join(lines, " ") != "n1 n2 n3 n4 n5 n6" {
			t.Errorf("logs -f: %q", lines)
		}
		if firstAt > total-time.Second {
			t.Errorf("logs -f: first line after %v of %v: held back", firstAt, total)
		}
		t.Logf("logs -f: first line after %v, end after %v", firstAt.Round(time.Millisecond), total.Round(time.Millisecond))
	})

	timed("cp of 20 MB in and out", func() {
		dir := t.TempDir()
		data := make([]byte, 20<<20)
		rand.Read(data)
		in, back := filepath.Join(dir, "in"), filepath.Join(dir, "back")
		if err := os.WriteFile(in, data, 0o600); err != nil {
			t.Fatal(err)
		}
		must("", "cp", in, "sleeper:/tmp/f")
		if out := must("", "exec", "sleeper", "wc", "-c", "/tmp/f"); !strings.HasPrefix(strings.TrimSpace(out), "20971520") {
			t.Errorf("in the container: %q", out)
		}
		must("", "cp", "sleeper:/tmp/f", back)
		if got, err := os.ReadFile(back); err != nil || !bytes.Equal(got, data) {
			t.Errorf("cp round trip differs (%v)", err)
		}
	})

	// The same two copies with and without the proxy.
	dir := t.TempDir()
	zeros := filepath.Join(dir, "zeros")
	if err := os.WriteFile(zeros, make([]byte, 20<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	timed("cp 20 MB in and out, through the proxy", func() {
		must("", "cp", zeros, "sleeper:/tmp/g")
		must("", "cp", "sleeper:/tmp/g", filepath.Join(dir, "back1"))
	})
	timed("cp 20 MB in and out, straight to Docker", func() {
		d.MustDocker(t, "cp", zeros, "sleeper:/tmp/h")
		d.MustDocker(t, "cp", "sleeper:/tmp/h", filepath.Join(dir, "back2"))
	})
	must("", "rm", "-f", "sleeper")

	hijacks, upgrades := rec.hijacks()
	t.Logf("hijacked requests %v, %d with Upgrade: tcp", hijacks, upgrades)
	if len(hijacks) == 0 || upgrades != len(hijacks) {
		t.Errorf("hijacks %v, %d with Upgrade: tcp", hijacks, upgrades)
	}
}

// headRecorder keeps the request heads the docker client sent.
type headRecorder struct {
	mu    sync.Mutex
	heads []string
}

// hijacks lists the attach and exec start requests among the heads, and
// how many of them asked for Upgrade: tcp.
func (r *headRecorder) hijacks() (paths []string, upgrades int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range r.heads {
		line, _, _ := strings.Cut(h, "\r\n")
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "POST" || !(strings.HasSuffix(f[1], "/attach") || strings.Contains(f[1], "/exec/") && strings.HasSuffix(f[1], "/start")) {
			continue
		}
		if !strings.Contains(h, "Docker-Client/") {
			continue // the test's own requests
		}
		paths = append(paths, f[1])
		if strings.Contains(h, "\r\nUpgrade: tcp\r\n") {
			upgrades++
		}
	}
	return paths, upgrades
}

// recordingListener hands out connections whose reads are scanned for
// request heads.
type recordingListener struct {
	net.Listener
	rec *headRecorder
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, rec: l.rec}, nil
}

// recordingConn records the bytes read up to the end of each request head
// (a blank line); bodies and hijacked streams are not kept beyond 64 KiB.
type recordingConn struct {
	net.Conn
	rec *headRecorder
	buf []byte
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if len(c.buf) < 64<<10 {
		c.buf = append(c.buf, p[:n]...)
		for {
			i := bytes.Index(c.buf, []byte("\r\n\r\n"))
			if i < 0 {
				break
			}
			c.rec.mu.Lock()
			c.rec.heads = append(c.rec.heads, string(c.buf[:i+2]))
			c.rec.mu.Unlock()
			c.buf = c.buf[i+4:]
		}
	}
	return n, err
}

// CloseWrite passes the half-close the proxy uses on hijacked
// connections.
func (c *recordingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
