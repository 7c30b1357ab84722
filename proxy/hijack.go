package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// maxHijackBody bounds the JSON body of an attach or exec start that is
// spliced (it is read before the connection is hijacked).
const maxHijackBody = 1 << 20

// isHijack reports whether r is one of the requests Docker answers by
// taking over the connection: POST [/vX.Y]/containers/ID/attach and
// [/vX.Y]/exec/ID/start.
func isHijack(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) == 4 && strings.HasPrefix(parts[0], "v") {
		parts = parts[1:]
	}
	return len(parts) == 3 && (parts[0] == "containers" && parts[2] == "attach" ||
		parts[0] == "exec" && parts[2] == "start")
}

// splice serves a hijacking request that came without `Upgrade: tcp`, as
// older clients send them: Docker then answers 200 and the connection
// carries the raw stream both ways, which no HTTP proxy can express. The
// request is written to a new connection to Docker, and from then on the
// two connections are copied into each other: Docker's answer and output
// to the caller, whatever the caller sends (stdin) to Docker. A half-close
// of the caller's side is passed on; the end of Docker's side ends both.
func (p *Proxy) splice(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxHijackBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "read request body: "+err.Error())
		return
	}
	if len(body) > maxHijackBody {
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	back, err := p.dial(r.Context(), "unix", "docker")
	if err != nil {
		p.forwardError(w, r, err)
		return
	}
	defer back.Close()
	out := r.Clone(context.Background())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	out.TransferEncoding = nil
	if err := out.Write(back); err != nil {
		p.forwardError(w, r, fmt.Errorf("write request: %w", err))
		return
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		p.cfg.Log.Warn("docker proxy: hijack", "path", r.URL.Path, "err", err)
		return
	}
	defer c.Close()
	fromDocker := make(chan struct{})
	go func() {
		defer close(fromDocker)
		io.Copy(c, back)
	}()
	toDocker := make(chan struct{})
	go func() {
		defer close(toDocker)
		if _, err := io.Copy(back, io.MultiReader(brw.Reader, c)); err == nil {
			closeWrite(back)
		}
	}()
	select {
	case <-fromDocker:
	case <-toDocker:
		<-fromDocker
	}
	c.Close()
	back.Close()
	<-toDocker
}

// closeWrite half-closes c when it can, and closes it otherwise.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		return
	}
	c.Close()
}
