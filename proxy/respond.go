package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/weftnet/weft/proxy/hold"
)

// attachTimeout bounds how long a start waits for the router to attach
// the container (an allocation may wait for peers).
const attachTimeout = 2 * time.Minute

// modifyResponse changes Docker's answers where the proxy changed the
// request: a started container is attached before the start is answered,
// and inspect and list show the container as the user made it (without
// the hold entrypoint and its mount).
func (p *Proxy) modifyResponse(resp *http.Response) error {
	if p.cfg.Weft == nil {
		return nil
	}
	rt, id := routeOf(resp.Request.Method, resp.Request.URL.Path)
	switch {
	case rt == routeStart && resp.StatusCode == http.StatusNoContent:
		return p.afterStart(resp, id)
	case rt == routeInspect && resp.StatusCode == http.StatusOK:
		return rewriteBody(resp, unwrapInspect)
	case rt == routeList && resp.StatusCode == http.StatusOK:
		return rewriteBody(resp, unwrapList)
	}
	return nil
}

// afterStart attaches a container the proxy made once Docker started it;
// the hold entrypoint keeps its command waiting until then. A container
// that cannot be attached is killed, and the start answered with why.
func (p *Proxy) afterStart(resp *http.Response, id string) error {
	ctx, cancel := context.WithTimeout(resp.Request.Context(), attachTimeout)
	defer cancel()
	c, err := p.api.ContainerInspect(ctx, id)
	if err != nil {
		// Docker just started it; if it cannot say more now, the router's
		// Docker events attach it.
		p.cfg.Log.Warn("docker proxy: inspect a started container", "container", id, "err", err)
		return nil
	}
	if c.Config == nil {
		return nil
	}
	if _, held := hold.Strip(c.Config.Entrypoint); !held {
		return nil
	}
	err = p.cfg.Weft.AttachContainer(ctx, c.ID)
	if err == nil {
		return nil
	}
	p.cfg.Log.Warn("docker proxy: could not attach a started container; stopping it", "container", c.ID, "err", err)
	killCtx, cancelKill := context.WithTimeout(context.Background(), dockerQueryTimeout)
	defer cancelKill()
	if kerr := p.api.ContainerKill(killCtx, c.ID, "KILL"); kerr != nil {
		p.cfg.Log.Warn("docker proxy: kill a container that could not be attached", "container", c.ID, "err", kerr)
	}
	name := strings.TrimPrefix(c.Name, "/")
	replaceBody(resp, http.StatusInternalServerError, errorBody(fmt.Sprintf(
		"weft: could not attach container %s to the weft network, so it was stopped: %v", name, err)))
	return nil
}

// errorBody is Docker's error document.
func errorBody(msg string) []byte {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	return append(b, '\n')
}

// replaceBody makes resp a JSON answer with status and body.
func replaceBody(resp *http.Response, status int, body []byte) {
	if resp.Body != nil {
		resp.Body.Close()
	}
	resp.StatusCode = status
	resp.Status = fmt.Sprintf("%d %s", status, http.StatusText(status))
	resp.Header.Set("Content-Type", "application/json")
	setRespBody(resp, body)
}

func setRespBody(resp *http.Response, body []byte) {
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.Header.Del("Transfer-Encoding")
	resp.TransferEncoding = nil
}

// rewriteBody passes resp's JSON body through change. A body too large to
// hold, or one change cannot read, is passed on as Docker sent it.
func rewriteBody(resp *http.Response, change func([]byte) ([]byte, bool)) error {
	head, err := io.ReadAll(io.LimitReader(resp.Body, maxInspectBody+1))
	if err != nil {
		return fmt.Errorf("read Docker's answer: %w", err)
	}
	if int64(len(head)) > maxInspectBody {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
		return nil
	}
	resp.Body.Close()
	if out, ok := change(head); ok {
		head = out
	}
	setRespBody(resp, head)
	return nil
}

// unwrapInspect shows a held container's inspect document as it would be
// without the proxy: Path, Args and Config.Entrypoint without the hold
// entrypoint, HostConfig.Mounts and Mounts without its mount.
func unwrapInspect(body []byte) ([]byte, bool) {
	var doc, cfg object
	var entry []string
	if json.Unmarshal(body, &doc) != nil || doc.decode("Config", &cfg) != nil || cfg.decode("Entrypoint", &entry) != nil {
		return nil, false
	}
	rest, held := hold.Strip(entry)
	if !held {
		return nil, false
	}
	if len(rest) == 0 {
		rest = nil // Docker shows no entrypoint as null
	}
	_ = cfg.set("Entrypoint", rest)
	_ = doc.set("Config", cfg)

	var path string
	var args []string
	if doc.decode("Path", &path) == nil && doc.decode("Args", &args) == nil {
		if argv, ok := hold.Strip(append([]string{path}, args...)); ok && len(argv) > 0 {
			_ = doc.set("Path", argv[0])
			_ = doc.set("Args", append([]string{}, argv[1:]...))
		}
	}
	var host object
	var mounts []object
	if doc.decode("HostConfig", &host) == nil && host != nil && host.decode("Mounts", &mounts) == nil {
		kept := dropMounts(mounts, "Target")
		if len(kept) == 0 {
			kept = nil // as Docker shows a container made without mounts
		}
		_ = host.set("Mounts", kept)
		_ = doc.set("HostConfig", host)
	}
	var points []object
	if doc.decode("Mounts", &points) == nil && points != nil {
		_ = doc.set("Mounts", append([]object{}, dropMounts(points, "Destination")...))
	}
	return marshal(doc), true
}

// unwrapList shows a container list as it would be without the proxy:
// each held container's Command without the hold entrypoint and its
// Mounts without the hold mount.
func unwrapList(body []byte) ([]byte, bool) {
	var list []object
	if json.Unmarshal(body, &list) != nil {
		return nil, false
	}
	prefix := strings.Join(hold.Entrypoint(), " ") + " "
	changed := false
	for i, c := range list {
		var cmd string
		if c.decode("Command", &cmd) != nil || !strings.HasPrefix(cmd, prefix) {
			continue
		}
		_ = c.set("Command", strings.TrimPrefix(cmd, prefix))
		var points []object
		if c.decode("Mounts", &points) == nil && points != nil {
			_ = c.set("Mounts", append([]object{}, dropMounts(points, "Destination")...))
		}
		list[i] = c
		changed = true
	}
	if !changed {
		return nil, false
	}
	return marshal(list), true
}

// dropMounts removes the hold mount (whose key member is hold.MountPath).
func dropMounts(mounts []object, key string) []object {
	var kept []object
	for _, m := range mounts {
		var dst string
		if m.decode(key, &dst) == nil && dst == hold.MountPath {
			continue
		}
		kept = append(kept, m)
	}
	return kept
}

// marshal encodes a value that always encodes (maps and slices of JSON).
func marshal(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
