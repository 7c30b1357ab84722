package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/test/netns"
)

// TestDockerProxy runs Debian's docker client (20.10) through the
// router's Docker API proxy to a real dockerd: run, attach with stdin,
// exec with a pty, logs -f of 10 s, cp of 100 MB, several MB in one
// chunked response, each checked for what Docker would show without the
// proxy; malformed requests and unknown paths get Docker's answers and
// leave the proxy serving; the socket is as reachable as Docker's, and
// the TCP listener needs mutual TLS.
func TestDockerProxy(t *testing.T) {
	netns.SkipUnlessRoot(t)
	w := netns.NewWorld(t, 1)
	h := w.Hosts[0]
	d := h.StartDockerd(t)
	d.Launch(t)
	routerSock := strings.TrimPrefix(weftEnv(t, d), "unix://")

	// Record whether the docker client hijacks with Upgrade headers: its
	// connections pass through a relay that records request heads on
	// their way to the router's proxy.
	sock := filepath.Join(t.TempDir(), "relay.sock")
	inner, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	rec := &headRecorder{}
	ln := &recordingListener{Listener: inner, rec: rec}
	go relay(ln, routerSock)
	t.Cleanup(func() { ln.Close() })

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
		conn, err := net.Dial("unix", routerSock)
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
	api := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", routerSock)
	}}}
	t.Cleanup(api.CloseIdleConnections)
	timed("unknown API path", func() {
		resp, err := api.Get("http://docker/v1.41/no/such/path")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"message"`) {
			t.Errorf("unknown path: %d %s", resp.StatusCode, body)
		}
	})

	// Malformed requests: answered as Docker's own HTTP server answers
	// them (400, 431), and the proxy serves on.
	timed("malformed requests", func() {
		for what, req := range map[string]string{
			"not HTTP":         "NOT HTTP AT ALL\r\n\r\n",
			"bad header":       "GET /version HTTP/1.1\r\nHost: docker\r\nno colon here\r\n\r\n",
			"a 2 MB header":    "GET /version HTTP/1.1\r\nHost: docker\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n",
			"bad chunked body": "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
		} {
			conn, err := net.Dial("unix", routerSock)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			go io.WriteString(conn, req)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			conn.Close()
			if err != nil || resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Errorf("%s: %v %v, want a 4xx answer", what, resp, err)
				continue
			}
			t.Logf("%s: %s", what, resp.Status)
		}
		if out := must("", "version", "--format", "{{.Server.APIVersion}}"); strings.TrimSpace(out) == "" {
			t.Errorf("version after malformed requests: %q", out)
		}
	})

	timed("logs -f of 10 s of output", func() {
		id := strings.TrimSpace(must("", "run", "-d", "--network", "none", netns.BusyboxImage,
			"sh", "-c", "i=1; while [ $i -le 20 ]; do echo n$i; i=$((i+1)); sleep 0.5; done"))
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
		var firstAt, tenthAt time.Duration
		for sc := bufio.NewScanner(out); sc.Scan(); {
			switch lines = append(lines, sc.Text()); len(lines) {
			case 1:
				firstAt = time.Since(began)
			case 10:
				tenthAt = time.Since(began)
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("logs -f: %v", err)
		}
		total := time.Since(began)
		var want []string
		for i := 1; i <= 20; i++ {
			want = append(want, fmt.Sprintf("n%d", i))
		}
		if !slices.Equal(lines, want) {
			t.Errorf("logs -f: %q", lines)
		}
		// Lines arrive as they are printed, not at the end.
		if firstAt > total-5*time.Second || tenthAt > total-2*time.Second {
			t.Errorf("logs -f: first line after %v, tenth after %v, of %v: held back", firstAt, tenthAt, total)
		}
		t.Logf("logs -f: first line after %v, tenth after %v, end after %v", firstAt.Round(time.Millisecond), tenthAt.Round(time.Millisecond), total.Round(time.Millisecond))
	})

	timed("cp of 100 MB in and out", func() {
		dir := t.TempDir()
		data := make([]byte, 100<<20)
		rand.Read(data)
		in, back := filepath.Join(dir, "in"), filepath.Join(dir, "back")
		if err := os.WriteFile(in, data, 0o600); err != nil {
			t.Fatal(err)
		}
		must("", "cp", in, "sleeper:/tmp/f")
		if out := must("", "exec", "sleeper", "wc", "-c", "/tmp/f"); !strings.HasPrefix(strings.TrimSpace(out), strconv.Itoa(len(data))) {
			t.Errorf("in the container: %q", out)
		}
		must("", "cp", "sleeper:/tmp/f", back)
		if got, err := os.ReadFile(back); err != nil || !bytes.Equal(got, data) {
			t.Errorf("cp round trip differs (%v)", err)
		}
		must("", "exec", "sleeper", "rm", "/tmp/f")
	})

	// Several MB of output in one chunked response: docker logs of a
	// container that printed them.
	timed("8 MB of logs in one chunked response", func() {
		// 80,000 lines of 100 bytes.
		line := strings.Repeat("0123456789", 10)[:99]
		id := strings.TrimSpace(must("", "run", "-d", "--network", "none", netns.BusyboxImage, "sh", "-c", "yes "+line+" | head -n 80000"))
		must("", "wait", id)
		want := strings.Repeat(line+"\n", 80000)
		if out := must("", "logs", id); out != want {
			t.Errorf("docker logs: %d bytes, want %d", len(out), len(want))
		}
		resp, err := api.Get("http://docker/v1.41/containers/" + id + "/logs?stdout=1")
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		// Each line comes framed (8-byte header) as the container has no tty.
		if err != nil || resp.StatusCode != http.StatusOK || !slices.Equal(resp.TransferEncoding, []string{"chunked"}) || n < int64(len(want)) {
			t.Errorf("logs: %s, transfer encoding %v, %d bytes (%v); want 200, chunked, at least %d bytes", resp.Status, resp.TransferEncoding, n, err, len(want))
		}
	})
	must("", "rm", "-f", "sleeper")

	hijacks, upgrades := rec.hijacks()
	t.Logf("hijacked requests %v, %d with Upgrade: tcp", hijacks, upgrades)
	if len(hijacks) == 0 || upgrades != len(hijacks) {
		t.Errorf("hijacks %v, %d with Upgrade: tcp", hijacks, upgrades)
	}

	// Who can reach the socket: whoever can reach Docker's.
	mine, err1 := os.Stat(routerSock)
	theirs, err2 := os.Stat(strings.TrimPrefix(d.Host, "unix://"))
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	m, o := mine.Sys().(*syscall.Stat_t), theirs.Sys().(*syscall.Stat_t)
	if mine.Mode() != theirs.Mode() || m.Uid != o.Uid || m.Gid != o.Gid {
		t.Errorf("proxy socket %v %d:%d, Docker's %v %d:%d", mine.Mode(), m.Uid, m.Gid, theirs.Mode(), o.Uid, o.Gid)
	}

	// The TCP listener: refused without TLS files; with them, only a
	// client with a certificate the CA signed gets through.
	h.Stop(t)
	launch := []string{"launch", "--port", strconv.Itoa(h.Port), "--name", h.Nick, "--plugin-socket", d.PluginSocket(), "--proxy-addr", "127.0.0.1:2377"}
	if r := d.Weft(launch...); r.OK() || !strings.Contains(r.Stderr, "only with TLS") {
		t.Errorf("--proxy-addr without TLS: %v, want a refusal saying TLS is needed", r)
	}
	if pids := h.RouterPIDs(); len(pids) > 0 {
		t.Fatalf("a router runs after the refused launch: %v", pids)
	}
	pki := writeTestPKI(t, t.TempDir())
	d.Launch(t, "--proxy-addr", "127.0.0.1:2377", "--proxy-tls-cert", pki.serverCert, "--proxy-tls-key", pki.serverKey, "--proxy-tls-cacert", pki.ca)
	tcp := func(tlsArgs ...string) netns.Result {
		args := append([]string{"env", "DOCKER_CONFIG=" + cfgDir, "DOCKER_HOST=", cli, "-H", "tcp://127.0.0.1:2377"}, tlsArgs...)
		return h.Run(append(args, "version", "--format", "{{.Server.APIVersion}}")...)
	}
	if r := tcp("--tlsverify", "--tlscacert", pki.ca, "--tlscert", pki.clientCert, "--tlskey", pki.clientKey); !r.OK() || strings.TrimSpace(r.Stdout) == "" {
		t.Errorf("docker over TLS with a client certificate: %v", r)
	}
	if r := tcp("--tlsverify", "--tlscacert", pki.ca); r.OK() {
		t.Errorf("docker over TLS without a client certificate got through: %v", r)
	}
	if r := tcp(); r.OK() {
		t.Errorf("docker without TLS got through: %v", r)
	}
	t.Logf("TLS listener: a client certificate gets through, none does not")
}

// testPKI names the PEM files writeTestPKI made.
type testPKI struct{ ca, serverCert, serverKey, clientCert, clientKey string }

// writeTestPKI makes a CA, a server certificate for 127.0.0.1 and a
// client certificate, all signed by the CA, in dir.
func writeTestPKI(t *testing.T, dir string) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "weft test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, kind string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", keyDER)
	}
	p := testPKI{ca: write("ca.pem", "CERTIFICATE", caDER)}
	p.serverCert, p.serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return p
}

// relay passes each connection ln accepts to the unix socket at target,
// both ways, half-closes included, until ln is closed.
func relay(ln net.Listener, target string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.Dial("unix", target)
			if err != nil {
				return
			}
			defer up.Close()
			go func() {
				io.Copy(up, c)
				up.(*net.UnixConn).CloseWrite()
			}()
			io.Copy(c, up)
		}()
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
		if len(f) < 2 {
			continue
		}
		path, _, _ := strings.Cut(f[1], "?")
		if f[0] != "POST" || !(strings.HasSuffix(path, "/attach") || strings.Contains(path, "/exec/") && strings.HasSuffix(path, "/start")) {
			continue
		}
		if !strings.Contains(h, "Docker-Client/") {
			continue // the test's own requests
		}
		paths = append(paths, path)
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
