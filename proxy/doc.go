// Package proxy serves a Docker Engine API proxy: an HTTP server on a
// listener the caller hands in that forwards every request to the Docker
// daemon at Config.DockerHost, untouched unless Config.Rewrite changes it.
//
// What passes through: API version negotiation (/_ping, /vX.Y/...),
// streamed responses (`logs -f`, events, chunked bodies) flushed as they
// come, request bodies streamed without buffering (build contexts, `docker
// cp`), and hijacked connections (attach, exec start: `Connection: Upgrade`,
// `Upgrade: tcp`, 101 Switching Protocols) copied both ways with half-close;
// older clients' attach and exec start without Upgrade headers (200, then
// the raw stream) are spliced to a connection of their own to Docker.
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
// dial timeout (10 s) instead of hanging; a request refused by Rewrite is
// answered 400 the same way. Nothing is buffered beyond net/http's and
// io.Copy's fixed buffers (and the JSON body of a spliced attach or exec
// start, at most 1 MB), so memory does not grow with body sizes.
//
// Goroutines: Serve runs net/http's accept loop and its per-connection
// goroutines (two more per hijacked or spliced connection, copying each
// way); Close ends the listener and every connection, hijacked ones
// included.
package proxy
