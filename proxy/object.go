package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// object is a JSON object that keeps its members in order, so that a
// document the proxy changes reads as Docker wrote it apart from the
// change (`docker inspect` prints members in the order they come).
type object []member

type member struct {
	key string
	val json.RawMessage
}

var errNotObject = errors.New("not a JSON object")

// UnmarshalJSON implements json.Unmarshaler. null leaves o nil.
func (o *object) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		*o = nil
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errNotObject
	}
	out := object{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return errNotObject
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return err
		}
		out = append(out, member{key, val})
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	*o = out
	return nil
}

// MarshalJSON implements json.Marshaler.
func (o object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := json.Marshal(m.key)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		if len(m.val) == 0 {
			buf.WriteString("null")
		} else {
			buf.Write(m.val)
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// get returns the member key (nil when absent).
func (o object) get(key string) json.RawMessage {
	for _, m := range o {
		if m.key == key {
			return m.val
		}
	}
	return nil
}

// has reports whether key is a member.
func (o object) has(key string) bool {
	for _, m := range o {
		if m.key == key {
			return true
		}
	}
	return false
}

// set replaces member key with v encoded, or appends it.
func (o *object) set(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	for i := range *o {
		if (*o)[i].key == key {
			(*o)[i].val = b
			return nil
		}
	}
	*o = append(*o, member{key, b})
	return nil
}

// decode decodes member key into v; an absent member leaves v alone.
func (o object) decode(key string, v any) error {
	b := o.get(key)
	if b == nil {
		return nil
	}
	return json.Unmarshal(b, v)
}
