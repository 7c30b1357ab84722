package router

import (
	"context"
	"errors"
	"testing"

	"github.com/weftnet/weft/mesh"
)

func TestNewConfigErrors(t *testing.T) {
	dev, tr := &sinkDevice{mtu: 1500}, &pipeTransport{}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no name", Config{Device: dev, Transport: tr}},
		{"no device", Config{Self: 1, Transport: tr}},
		{"no transport", Config{Self: 1, Device: dev}},
		{"tiny device MTU", Config{Self: 1, Device: &sinkDevice{mtu: 500}, Transport: tr}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("err %v, want ErrConfig", err)
			}
		})
	}
}

func TestConnectionReplacement(t *testing.T) {
	r, err := New(Config{Self: 1, Device: &sinkDevice{mtu: 1500}, Transport: &pipeTransport{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.PrepareConnection(mesh.OverlayConnectionParams{RemotePeer: 1}); !errors.Is(err, ErrSelfConnection) {
		t.Fatalf("self connection: %v", err)
	}
	p := mesh.OverlayConnectionParams{LocalPeer: 1, RemotePeer: 2, ConnUID: 1, SendControl: func([]byte) error { return nil }}
	old, _ := r.PrepareConnection(p)
	old.Confirm()
	p.ConnUID = 2
	cur, _ := r.PrepareConnection(p)
	cur.Confirm()
	old.Stop() // must not remove its successor
	if c := (*r.conns.Load())[2]; c != cur.(*conn) {
		t.Fatal("stopping the old connection removed the new one")
	}
	cur.Stop()
	cur.Confirm() // no effect after Stop
	if _, ok := r.ConnectionStatus(2); ok {
		t.Fatal("connection still registered")
	}
}

// runDevice blocks reads until closed, like a real device.
type runDevice struct {
	sinkDevice
	closed chan struct{}
}

func (d *runDevice) Read([][]byte, []int, int) (int, error) {
	<-d.closed
	return 0, errClosedForTest
}
func (d *runDevice) Close() error { close(d.closed); return nil }

var errClosedForTest = errors.New("closed")

// runTransport fails reads with a persistent error.
type runTransport struct{ pipeTransport }

func (t *runTransport) ReadBatch([]Datagram) (int, error) { return 0, errors.New("broken socket") }

func TestRunStopsOnPersistentReadError(t *testing.T) {
	dev := &runDevice{sinkDevice: sinkDevice{mtu: 1500}, closed: make(chan struct{})}
	r, err := New(Config{Self: 1, Device: dev, Transport: &runTransport{}})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Run(context.Background())
	if err == nil {
		t.Fatal("Run returned nil after the transport broke")
	}
	select {
	case <-dev.closed:
	default:
		t.Fatal("device not closed")
	}
}
