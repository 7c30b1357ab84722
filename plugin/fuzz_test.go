package plugin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// pluginPaths are the calls Docker makes; the fuzzer picks one by index.
var pluginPaths = []string{
	"/Plugin.Activate",
	"/NetworkDriver.GetCapabilities", "/NetworkDriver.CreateNetwork", "/NetworkDriver.DeleteNetwork",
	"/NetworkDriver.CreateEndpoint", "/NetworkDriver.DeleteEndpoint", "/NetworkDriver.EndpointOperInfo",
	"/NetworkDriver.Join", "/NetworkDriver.Leave", "/NetworkDriver.AllocateNetwork", "/NetworkDriver.FreeNetwork",
	"/NetworkDriver.DiscoverNew", "/NetworkDriver.ProgramExternalConnectivity",
	"/IpamDriver.GetCapabilities", "/IpamDriver.GetDefaultAddressSpaces", "/IpamDriver.RequestPool",
	"/IpamDriver.ReleasePool", "/IpamDriver.RequestAddress", "/IpamDriver.ReleaseAddress",
}

// FuzzDriverRequest sends arbitrary bodies to every call of the plugin
// socket, in sequences (one network's state carries over within an
// input): nothing panics, every answer is JSON with Err on errors (or the
// library's plain-text 400 for a body it cannot decode), and the state still saves and loads.
func FuzzDriverRequest(f *testing.F) {
	f.Add(uint8(15), []byte(`{"AddressSpace":"weft","Pool":"10.1.1.0/24"}`), uint8(2), []byte(`{"NetworkID":"n","IPv4Data":[{"AddressSpace":"weft","Pool":"10.1.1.0/24","Gateway":"10.1.1.1/24"}]}`))
	f.Add(uint8(2), []byte(`{"NetworkID":"n","IPv4Data":[{"Pool":"10.2.0.0/16"}],"Options":{"com.docker.network.generic":{"a":1}}}`), uint8(4), []byte(`{"NetworkID":"n","EndpointID":"e","Interface":{"Address":"10.2.0.9/16"}}`))
	f.Add(uint8(17), []byte(`{"PoolID":"weft:10.32.0.0/16","Address":"10.32.0.1","Options":{"RequestAddressType":"com.docker.network.gateway"}}`), uint8(18), []byte(`{"PoolID":"x","Address":"not-an-ip"}`))
	f.Add(uint8(7), []byte(`{"NetworkID":"n","EndpointID":"e"}`), uint8(6), []byte(`{`))
	f.Add(uint8(4), []byte(`{"NetworkID":"n","EndpointID":"e","Interface":null}`), uint8(2), []byte(`{"IPv4Data":[null]}`))
	f.Fuzz(func(t *testing.T, p1 uint8, b1 []byte, p2 uint8, b2 []byte) {
		r := newRig(t)
		h, backends := newHandler(r.d, nil)
		defer func() {
			for _, b := range backends {
				b.Close()
			}
		}()
		for _, c := range []struct {
			path uint8
			body []byte
		}{{p1, b1}, {p2, b2}} {
			path := pluginPaths[int(c.path)%len(pluginPaths)]
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(c.body)))
			// The library answers a body it cannot decode with 400 and
			// plain text; everything else is JSON, errors with Err.
			var out map[string]any
			jsonErr := json.Unmarshal(rec.Body.Bytes(), &out)
			switch {
			case rec.Code == http.StatusOK && jsonErr != nil && !bytes.Equal(bytes.TrimSpace(rec.Body.Bytes()), []byte("null")):
				t.Fatalf("%s: answer is not JSON: %q", path, rec.Body.Bytes())
			case rec.Code == http.StatusBadRequest && rec.Body.Len() == 0:
				t.Fatalf("%s: 400 without a reason", path)
			case rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest && out["Err"] == nil:
				t.Fatalf("%s: error %d without Err: %q", path, rec.Code, rec.Body.Bytes())
			}
		}
		if _, err := decodeState(r.store.data); err != nil {
			t.Fatalf("saved state does not load: %v", err)
		}
	})
}
