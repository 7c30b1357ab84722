package daemon

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/weftnet/weft/plugin"
)

// pluginLinks makes the drivers' endpoint interfaces on this host.
type pluginLinks struct{ d *Daemon }

func (l pluginLinks) CreateLink(link plugin.Link) (string, error) {
	return l.d.deps.Host.CreateEndpointLink(l.d.cfg.Bridge, link)
}

func (l pluginLinks) DeleteLink(id string) error { return l.d.deps.Host.DeleteEndpointLink(id) }

// startPlugin serves the Docker network and IPAM driver when a plugin
// socket is configured and Docker is present (it answers, or the
// socket's directory exists: Docker may start after weft). Endpoint
// interfaces of endpoints Docker removed while the router was stopped are
// deleted. It returns nil when nothing is served.
func (d *Daemon) startPlugin() (*plugin.Server, error) {
	if d.cfg.PluginSocket == "" || d.deps.Docker == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	pingErr := d.deps.Docker.Ping(ctx)
	cancel()
	if pingErr != nil {
		if _, err := os.Stat(filepath.Dir(d.cfg.PluginSocket)); err != nil {
			d.log.Info("Docker is not here: the network plugin is not served", "reason", pingErr)
			return nil, nil
		}
	}
	pcfg := plugin.Config{Allocator: d.ipam, Links: pluginLinks{d}, Store: d.store, MTU: d.mtu, Logger: d.log.With("part", "plugin")}
	if d.cfg.DNS {
		pcfg.DNS = dnsIP
	}
	drv, err := plugin.New(pcfg)
	if err != nil {
		return nil, err
	}
	known := drv.Endpoints()
	if ids, err := d.deps.Host.EndpointLinks(); err == nil {
		for _, id := range ids {
			if !slices.Contains(known, id) {
				d.deps.Host.DeleteEndpointLink(id)
			}
		}
	}
	srv, err := plugin.Serve(d.cfg.PluginSocket, drv, d.log.With("part", "plugin"))
	if err != nil {
		return nil, err
	}
	d.plugin = drv
	d.log.Info("serving the Docker network and IPAM driver", "name", plugin.Name, "socket", d.cfg.PluginSocket)
	return srv, nil
}
