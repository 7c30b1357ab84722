package proxy

import (
	"encoding/json"
	"testing"
)

// FuzzRewrite feeds the decoders of Docker's and the client's JSON that
// the proxy changes with arbitrary bytes: none may panic, and whatever
// they produce is JSON.
func FuzzRewrite(f *testing.F) {
	f.Add([]byte(heldInspect))
	f.Add([]byte(`[{"Id":"c1","Command":"/.weft/weft wait-for-interface -- sh","Mounts":[{"Destination":"/.weft/weft"}]}]`))
	f.Add([]byte(`{"Name":"n","Driver":"weft","IPAM":{"Driver":"default","Config":[{"Subnet":"10.1.1.0/24"}]}}`))
	f.Add([]byte(`{"Config":{"Entrypoint":["/.weft/weft","wait-for-interface","--"]},"Path":"/.weft/weft","Args":null,"Mounts":null}`))
	f.Add([]byte(`{"a":{"b":[{"c":"\u00e9"}]},"a":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if out, ok := unwrapInspect(b); ok && !json.Valid(out) {
			t.Fatalf("unwrapInspect(%q) = invalid %q", b, out)
		}
		if out, ok := unwrapList(b); ok && !json.Valid(out) {
			t.Fatalf("unwrapList(%q) = invalid %q", b, out)
		}
		if out := planNetworkCreate(b); string(out) != string(b) && !json.Valid(out) {
			t.Fatalf("planNetworkCreate(%q) = invalid %q", b, out)
		}
		var o object
		if json.Unmarshal(b, &o) == nil {
			out, err := json.Marshal(o)
			if err != nil || !json.Valid(out) {
				t.Fatalf("object %q re-encoded as %q: %v", b, out, err)
			}
		}
		AttachSpecs([]string{"WEFT_CIDR=" + string(b)})
	})
}
