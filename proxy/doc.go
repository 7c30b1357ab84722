// Package proxy serves a Docker Engine API proxy: an HTTP server on a
// listener the caller hands in that forwards every request to the Docker
// daemon at Config.DockerHost. Requests pass through untouched unless
// Config.Weft is set; then container and network creates are rewritten to
// put containers on the weft network, a start is answered once the
// container is attached, and inspect and list answers show containers as
// the user made them (intercept.go, respond.go).
//
// What passes through: API version negotiation (/_ping, /vX.Y/...),
// streamed responses (`logs -f`, events, chunked bodies) flushed as they
// come, request bodies streamed without buffering (build contexts, `docker
// cp`), and hijacked connections (attach, exec start: `Connection: Upgrade`,
// `Upgrade: tcp`, 101 Switching Protocols) copied both ways with half-close;
// older clients' attach and exec start without Upgrade headers (200, then
// the raw stream) are spliced to a connection of their own to Docker.
//
// Large bodies the proxy never changes (the archive API of docker cp,
// container export, image load and save, build contexts) skip
// httputil.ReverseProxy: each such request gets a connection of its own
// to Docker, its head is written there with Connection: close, and both
// bodies are copied as raw bytes in the framing their sender chose
// (raw.go). Only the head of Docker's answer is read, to say Connection:
// close to the caller too; the answer ends when Docker closes, and the
// caller's connection is closed after it.
//
// Who can reach it: whoever can open the listener. The router creates the
// unix socket with the owner, group and mode of Docker's own socket, so the
// proxy grants nobody anything Docker does not already grant them. The
// worst caller is therefore a Docker user: anything Docker allows (which is
// root on the host), and nothing more through the proxy itself.
//
// Bounds: request headers must arrive within Config.ReadHeaderTimeout and
// fit in Config.MaxHeaderBytes; a malformed request is answered 400 by
// net/http and the proxy keeps serving; an unreachable daemon is answered
// 502 with Docker's error body ({"message": "..."}) after at most the
// dial timeout (10 s) instead of hanging, and so is a raw request Docker
// closes before answering; a create the proxy refuses is answered 400 the
// same way. Nothing is buffered beyond net/http's and io.Copy's fixed
// buffers, the raw relay's 64 KB ones, and the bodies the proxy changes
// (a create, at most 4 MB; an inspect or list answer, at most 64 MB; the
// JSON body of a spliced attach or exec start, at most 1 MB), so memory
// does not grow with the sizes of the bodies that pass through.
//
// Goroutines: Serve runs net/http's accept loop and its per-connection
// goroutines (two more per hijacked or spliced connection, copying each
// way; one more per raw request, copying its body to Docker, while the
// connection's own goroutine copies the answer back); Close ends the
// listener and every connection, hijacked ones included.
package proxy
