package docker

import (
	"context"

	"github.com/docker/docker/api/types/container"
)

// Running is a running container as Docker lists it.
type Running struct {
	ID string
	// Command is its entrypoint and command joined with spaces, as
	// `docker ps --no-trunc` shows it.
	Command string
}

// ListRunning lists the running containers. Docker not answering gives an
// error wrapping ErrUnreachable.
func (c *Client) ListRunning(ctx context.Context) ([]Running, error) {
	list, err := c.api.ContainerList(ctx, container.ListOptions{})
	if err != nil {
		return nil, c.fail("list containers", err)
	}
	out := make([]Running, 0, len(list))
	for _, s := range list {
		if s.ID != "" {
			out = append(out, Running{ID: s.ID, Command: s.Command})
		}
	}
	return out, nil
}
