package main

import (
	"context"
	"errors"

	"github.com/weftnet/weft/daemon"
	"github.com/weftnet/weft/docker"
)

// dockerEngine implements daemon.Docker with package docker.
type dockerEngine struct{ c *docker.Client }

func (e dockerEngine) Ping(ctx context.Context) error { return e.c.Ping(ctx) }

func (e dockerEngine) Container(ctx context.Context, ref string) (daemon.Container, error) {
	c, err := e.c.Inspect(ctx, ref)
	if errors.Is(err, docker.ErrNoSuchContainer) {
		return daemon.Container{}, noSuchContainer{err}
	}
	if err != nil {
		return daemon.Container{}, err
	}
	out := daemon.Container{ID: c.ID, Name: c.Name, Hostname: c.Hostname, Domainname: c.Domainname, PID: c.PID, Running: c.Running, Env: c.Env, Entrypoint: c.Entrypoint}
	for _, ep := range c.Networks {
		out.Endpoints = append(out.Endpoints, daemon.ContainerEndpoint{NetworkID: ep.NetworkID, Addr: ep.Addr})
	}
	return out, nil
}

func (e dockerEngine) Events(ctx context.Context) <-chan daemon.DockerEvent {
	in := e.c.Events(ctx)
	out := make(chan daemon.DockerEvent)
	go func() {
		defer close(out)
		for ev := range in {
			select {
			case out <- daemon.DockerEvent{Type: ev.Type, Action: ev.Action, ContainerID: ev.ContainerID, NetworkID: ev.NetworkID}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func (e dockerEngine) Running(ctx context.Context) ([]daemon.RunningContainer, error) {
	list, err := e.c.ListRunning(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]daemon.RunningContainer, len(list))
	for i, c := range list {
		out[i] = daemon.RunningContainer{ID: c.ID, Command: c.Command}
	}
	return out, nil
}

// noSuchContainer keeps Docker's message and tells the daemon the
// container does not exist (errors.Is(err, daemon.ErrNoSuchContainer)).
type noSuchContainer struct{ err error }

func (e noSuchContainer) Error() string   { return e.err.Error() }
func (e noSuchContainer) Unwrap() []error { return []error{daemon.ErrNoSuchContainer, e.err} }
